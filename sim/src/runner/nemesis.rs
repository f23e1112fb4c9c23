//! The nemesis: the plan's fault windows played in time order. Each window's start resolves
//! its target members (the leader at that moment, a zone's members) and applies the fault to
//! the cluster; its end undoes exactly that.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use faultline_storage::DiskFaults;

use super::cluster::Cluster;
use super::cuts::LeaderCuts;
use super::net_clock_faults;
use crate::plan::{arrange, cut_links, CrashMoment, Fault, IsolateTarget, Plan};
use crate::trace::TraceEvent;

/// Play the plan's fault windows, then wait for the end of the workload phase.
pub(super) async fn run_nemesis(plan: &Plan, shared: &Mutex<Cluster>) {
    let recorder = shared.lock().expect("cluster").recorder.clone();
    // Each window becomes a start and an end event; process them in time order.
    let mut events: Vec<(u64, bool, usize)> = Vec::new();
    for (i, window) in plan.faults.iter().enumerate() {
        events.push((window.start_ms, true, i));
        events.push((window.start_ms + window.duration_ms, false, i));
    }
    events.sort();
    let mut resolved: BTreeMap<usize, Vec<u64>> = BTreeMap::new();
    for (at_ms, is_start, i) in events {
        let now_ms = recorder.now_ns() / 1_000_000;
        if at_ms > now_ms {
            madsim::time::sleep(Duration::from_millis(at_ms - now_ms)).await;
        }
        // Held for this step only, never across an await (the operator shares the cluster).
        let mut guard = shared.lock().expect("cluster");
        let cluster = &mut *guard;
        let fault = plan.faults[i].fault;
        if is_start {
            let members = fault_members(fault, cluster);
            start_fault(fault, &members, cluster);
            resolved.insert(i, members);
        } else {
            let members = resolved.remove(&i).expect("started before it ends");
            end_fault(fault, &members, cluster);
        }
    }
    // Every window has closed: no member is restarted after rot any more.
    shared.lock().expect("cluster").restarted_after_rot = None;
    let end_ms = plan.scenario.workload_duration_ms;
    let now_ms = recorder.now_ns() / 1_000_000;
    if end_ms > now_ms {
        madsim::time::sleep(Duration::from_millis(end_ms - now_ms)).await;
    }
}

fn fault_members(fault: Fault, cluster: &Cluster) -> Vec<u64> {
    let mut members = planned_fault_members(fault, cluster);
    // A member the operator removed is gone; the fault has nobody to hit there.
    members.retain(|&member| cluster.is_live(member));
    // A one-way cut needs two distinct members; a link from a member to itself is no link.
    if matches!(fault, Fault::OneWayCut { .. }) && (members.len() != 2 || members[0] == members[1])
    {
        members.clear();
    }
    members
}

/// Whoever an `IsolateTarget` names right now (nobody when it names the leader and there is
/// none).
fn resolve_target(target: IsolateTarget, cluster: &Cluster) -> Vec<u64> {
    match target {
        IsolateTarget::Member(member) => vec![member],
        IsolateTarget::Leader => cluster.recorder.current_leader().into_iter().collect(),
    }
}

fn planned_fault_members(fault: Fault, cluster: &Cluster) -> Vec<u64> {
    match fault {
        Fault::Crash { member } => vec![member],
        Fault::CrashLeader | Fault::CutNewLeaders { .. } => {
            cluster.recorder.current_leader().into_iter().collect()
        }
        Fault::Isolate { target }
        | Fault::PartitionFromPeers { target }
        | Fault::Pause { target }
        | Fault::ClockSkew { target, .. }
        | Fault::FsyncError { target }
        | Fault::DiskFull { target }
        | Fault::DiskReadError { target }
        | Fault::SlowDisk { target, .. } => resolve_target(target, cluster),
        Fault::CorruptSynced { member, .. } => vec![member],
        // The vote moment starts by crashing the leader; the others pick their member later.
        Fault::AimedCrash {
            moment: CrashMoment::AfterVote,
            ..
        } => cluster.recorder.current_leader().into_iter().collect(),
        Fault::AimedCrash { .. } => Vec::new(),
        Fault::OneWayCut { from, to } => {
            let mut members = resolve_target(from, cluster);
            members.extend(resolve_target(to, cluster));
            members
        }
        Fault::Bridge { .. } | Fault::MajorityMinority { .. } | Fault::Ring { .. } => {
            let live: Vec<u64> = cluster
                .members
                .keys()
                .copied()
                .filter(|&member| cluster.is_live(member))
                .collect();
            arrange(fault, &live)
        }
        Fault::ZoneDown { zone } | Fault::ZoneCut { zone } => cluster
            .zones
            .iter()
            .filter(|(_, z)| **z == zone)
            .map(|(id, _)| *id)
            .collect(),
        // Every link between members: all of them hold it.
        Fault::DelaySpike { target: None, .. } => cluster.members.keys().copied().collect(),
        Fault::DelaySpike {
            target: Some(target),
            ..
        }
        | Fault::DuplicateMessages { target, .. }
        | Fault::ReorderMessages { target, .. }
        | Fault::ClockJump { target, .. } => resolve_target(target, cluster),
    }
}

fn start_fault(fault: Fault, members: &[u64], cluster: &mut Cluster) {
    cluster.recorder.record(TraceEvent::FaultStart {
        fault,
        members: members.to_vec(),
    });
    if let Fault::CutNewLeaders {
        delay_max_ms,
        hold_max_ms,
    } = fault
    {
        let cuts = cluster
            .leader_cuts
            .as_ref()
            .expect("created for plans with new-leader cuts");
        cuts.lock()
            .expect("leader cuts")
            .open
            .push((delay_max_ms, hold_max_ms));
        // The leader at the window's start counts as new.
        for &member in members {
            LeaderCuts::leader_elected(cuts, member);
        }
        return;
    }
    if let Fault::AimedCrash {
        moment,
        restart_after_ms,
    } = fault
    {
        let aimed = cluster
            .aimed
            .clone()
            .expect("created for plans with aimed crashes");
        let leader = members.first().copied();
        let mut aimed = aimed.lock().expect("aimed crashes");
        aimed.open(moment, restart_after_ms, leader, cluster);
        return;
    }
    let links = cut_links(fault, members);
    if !links.is_empty() {
        let mut peer_cuts = cluster.peer_cuts.lock().expect("peer cuts");
        for (from, to) in links {
            peer_cuts.cut_link(from, to);
        }
        return;
    }
    if net_clock_faults::start(fault, members, cluster) {
        return;
    }
    for &member in members {
        match fault {
            Fault::Crash { .. } | Fault::CrashLeader | Fault::ZoneDown { .. } => {
                cluster.crash(member)
            }
            Fault::Isolate { .. } => {
                let count = cluster.isolated.entry(member).or_insert(0);
                *count += 1;
                if *count == 1 {
                    super::peer_net::clog_node(cluster.members[&member].id());
                }
            }
            Fault::PartitionFromPeers { .. } => {
                cluster.peer_cuts.lock().expect("peer cuts").cut(member);
            }
            Fault::Pause { .. } => {
                let count = cluster.paused.entry(member).or_insert(0);
                *count += 1;
                if *count == 1 {
                    cluster.handle.pause(cluster.members[&member].id());
                }
            }
            Fault::ClockSkew { rate_percent, .. } => {
                cluster.skews.entry(member).or_default().push(rate_percent);
                cluster.clocks[&member].set_rate(rate_percent);
            }
            Fault::FsyncError { .. } | Fault::DiskFull { .. } | Fault::SlowDisk { .. } => {
                cluster.start_disk_fault(member, disk_faults(fault))
            }
            Fault::DiskReadError { .. } => {
                cluster.start_disk_fault(member, disk_faults(fault));
                // It reads its disk when it recovers: a process restart (nothing lost).
                cluster.stop_gracefully(member);
                cluster.restart(member);
            }
            Fault::CorruptSynced { pick, .. } => cluster.crash_and_rot(member, pick),
            Fault::CutNewLeaders { .. } | Fault::AimedCrash { .. } => {
                unreachable!("handled above")
            }
            // Their links were cut above; a shape with fewer members than it needs cuts none.
            Fault::OneWayCut { .. }
            | Fault::Bridge { .. }
            | Fault::MajorityMinority { .. }
            | Fault::Ring { .. } => {}
            Fault::ZoneCut { .. }
            | Fault::DelaySpike { .. }
            | Fault::DuplicateMessages { .. }
            | Fault::ReorderMessages { .. }
            | Fault::ClockJump { .. } => unreachable!("handled in net_clock_faults.rs"),
        }
    }
}

/// What a disk fault does to the member's disk while its window is open.
fn disk_faults(fault: Fault) -> DiskFaults {
    DiskFaults {
        fail_syncs: matches!(fault, Fault::FsyncError { .. }),
        full: matches!(fault, Fault::DiskFull { .. }),
        fail_reads: matches!(fault, Fault::DiskReadError { .. }),
        sync_delay_ms: match fault {
            Fault::SlowDisk { delay_ms, .. } => delay_ms,
            _ => 0,
        },
    }
}

fn end_fault(fault: Fault, members: &[u64], cluster: &mut Cluster) {
    cluster.recorder.record(TraceEvent::FaultEnd {
        fault,
        members: members.to_vec(),
    });
    if let Fault::CutNewLeaders {
        delay_max_ms,
        hold_max_ms,
    } = fault
    {
        let cuts = cluster.leader_cuts.as_ref().expect("opened before");
        let mut cuts = cuts.lock().expect("leader cuts");
        let at = cuts
            .open
            .iter()
            .position(|w| *w == (delay_max_ms, hold_max_ms))
            .expect("opened before");
        cuts.open.remove(at);
        return;
    }
    if let Fault::AimedCrash { .. } = fault {
        let aimed = cluster.aimed.clone().expect("opened before");
        aimed.lock().expect("aimed crashes").close(cluster);
        return;
    }
    let links = cut_links(fault, members);
    if !links.is_empty() {
        let mut peer_cuts = cluster.peer_cuts.lock().expect("peer cuts");
        for (from, to) in links {
            peer_cuts.restore_link(from, to);
        }
        return;
    }
    if net_clock_faults::end(fault, members, cluster) {
        return;
    }
    for &member in members {
        match fault {
            Fault::Crash { .. } | Fault::CrashLeader | Fault::ZoneDown { .. } => {
                cluster.restart(member)
            }
            Fault::Isolate { .. } => {
                let count = cluster.isolated.get_mut(&member).expect("isolated before");
                *count -= 1;
                if *count == 0 {
                    cluster.isolated.remove(&member);
                    super::peer_net::unclog_node(cluster.members[&member].id());
                }
            }
            Fault::PartitionFromPeers { .. } => {
                cluster.peer_cuts.lock().expect("peer cuts").restore(member);
            }
            Fault::Pause { .. } => {
                let count = cluster.paused.get_mut(&member).expect("paused before");
                *count -= 1;
                if *count == 0 {
                    cluster.paused.remove(&member);
                    cluster.handle.resume(cluster.members[&member].id());
                }
            }
            Fault::ClockSkew { rate_percent, .. } => {
                let rates = cluster.skews.get_mut(&member).expect("skewed before");
                let at = rates
                    .iter()
                    .position(|r| *r == rate_percent)
                    .expect("skewed before");
                rates.remove(at);
                let rate = rates.last().copied().unwrap_or(100);
                if rates.is_empty() {
                    cluster.skews.remove(&member);
                }
                cluster.clocks[&member].set_rate(rate);
            }
            Fault::FsyncError { .. }
            | Fault::DiskFull { .. }
            | Fault::DiskReadError { .. }
            | Fault::SlowDisk { .. } => cluster.end_disk_fault(member, disk_faults(fault)),
            Fault::CorruptSynced { .. } => cluster.restart(member),
            Fault::CutNewLeaders { .. } | Fault::AimedCrash { .. } => {
                unreachable!("handled above")
            }
            // Their links were cut above; a shape with fewer members than it needs cuts none.
            Fault::OneWayCut { .. }
            | Fault::Bridge { .. }
            | Fault::MajorityMinority { .. }
            | Fault::Ring { .. } => {}
            Fault::ZoneCut { .. }
            | Fault::DelaySpike { .. }
            | Fault::DuplicateMessages { .. }
            | Fault::ReorderMessages { .. }
            | Fault::ClockJump { .. } => unreachable!("handled in net_clock_faults.rs"),
        }
    }
}
