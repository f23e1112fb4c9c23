//! Disk faults (issue 13): fsyncs that fail and a full disk stop the member (etcd's fatal
//! exit) until the window ends; a synced byte that rots makes the member refuse to start, and
//! the simulator replaces it with an empty member.

use faultline_node::NodeEvent;

use super::{puts, quiet_plan};
use crate::plan::{Fault, FaultWindow, IsolateTarget, Plan};
use crate::runner::{simulate, RunOptions, RunOutput};
use crate::trace::{OperatorStep, TraceEvent};
use crate::verdict::{check, Verdict};

fn with_fault(mut plan: Plan, start_ms: u64, duration_ms: u64, fault: Fault) -> Plan {
    plan.faults = vec![FaultWindow {
        start_ms,
        duration_ms,
        fault,
    }];
    plan
}

/// The members the window hit, and its start and end (ns).
fn window(output: &RunOutput) -> (Vec<u64>, u64, u64) {
    let (members, start_ns) = output
        .trace
        .iter()
        .find_map(|r| match &r.event {
            TraceEvent::FaultStart { members, .. } => Some((members.clone(), r.at_ns)),
            _ => None,
        })
        .expect("the fault started");
    let end_ns = output
        .trace
        .iter()
        .find_map(|r| matches!(r.event, TraceEvent::FaultEnd { .. }).then_some(r.at_ns))
        .expect("the fault ended");
    (members, start_ns, end_ns)
}

/// A disk fault on the leader under a steady stream of writes: the leader stops at its first
/// failed write or sync (the error named), reports nothing after that until the window ends
/// (no apply, no acknowledged write, no role change: it sent and answered nothing), recovers
/// after it, and the run passes every checker.
fn assert_fail_stop(fault: Fault, error_names: &[&str]) {
    let plan = with_fault(quiet_plan(puts(100, 40), Vec::new()), 1500, 1500, fault);
    let output = simulate(&plan, &RunOptions::default());
    let (members, start_ns, end_ns) = window(&output);
    let [member] = members[..] else {
        panic!("the fault hit {members:?}, not one leader")
    };
    let events: Vec<(u64, &NodeEvent)> = output
        .trace
        .iter()
        .filter_map(|r| match &r.event {
            TraceEvent::Member { member: m, event } if *m == member => Some((r.at_ns, event)),
            _ => None,
        })
        .collect();
    let stop = events
        .iter()
        .position(|(at_ns, event)| {
            *at_ns >= start_ns && matches!(event, NodeEvent::StoppedByDisk { .. })
        })
        .expect("the member stopped");
    let (stopped_ns, NodeEvent::StoppedByDisk { error }) = events[stop] else {
        unreachable!()
    };
    assert!(stopped_ns < end_ns);
    for name in error_names {
        assert!(error.contains(name), "{error}");
    }
    let (after_ns, after) = events[stop + 1];
    assert!(
        after_ns >= end_ns && matches!(after, NodeEvent::Recovered { .. }),
        "after stopping, the member reported {after:?} at {after_ns} (window ends at {end_ns})"
    );
    // The crash at the end of the window is a power loss on the stopped member's disk.
    assert!(output.trace.iter().any(|r| r.at_ns == end_ns
        && matches!(&r.event, TraceEvent::DiskCrash { member: m, .. } if *m == member)));
    assert_eq!(check(&output), Verdict::Pass);
    assert_eq!(output.final_hashes.len(), 3);
}

#[test]
fn a_failed_fsync_stops_the_member_until_it_is_restarted() {
    let fault = Fault::FsyncError {
        target: IsolateTarget::Leader,
    };
    assert_fail_stop(fault, &["WAL sync failed: sync \"wal-", "(EIO)"]);
}

#[test]
fn a_full_disk_stops_the_member_until_it_is_restarted() {
    let fault = Fault::DiskFull {
        target: IsolateTarget::Leader,
    };
    assert_fail_stop(fault, &["WAL write failed: append \"wal-", "(ENOSPC)"]);
}

/// A pick that selects the first candidate file (the oldest sealed WAL segment) whatever the
/// number of candidates (up to 10), at an offset well inside it.
const FIRST_CANDIDATE_PICK: u64 = 2520 * 1_001;

/// Issue 13's "done when": a byte of a synced WAL segment rots on a crashed member; on restart
/// the member refuses to start with an error naming the file and the offset; the simulator
/// removes it and adds an empty member, bringing the cluster back to three members that agree,
/// and no acknowledged write is lost (the checkers pass).
#[test]
fn a_rotten_wal_byte_makes_the_member_refuse_to_start_and_it_is_replaced() {
    let mut plan = quiet_plan(puts(120, 20), Vec::new());
    // Small segments and no snapshots: every segment but the newest is sealed and kept.
    plan.scenario.wal_segment_size_bytes = 2048;
    plan.scenario.snapshot_threshold_entries = 0;
    let fault = Fault::CorruptSynced {
        member: 2,
        pick: FIRST_CANDIDATE_PICK,
    };
    let plan = with_fault(plan, 3500, 300, fault);
    let output = simulate(&plan, &RunOptions::default());
    let rot = output
        .trace
        .iter()
        .find_map(|r| match &r.event {
            TraceEvent::SyncedByteRot { member: 2, rot } => Some(rot.clone()),
            _ => None,
        })
        .expect("the rot was recorded")
        .expect("member 2 had a sealed segment");
    assert!(rot.file.starts_with("wal-"), "{rot:?}");
    let refusal = output
        .trace
        .iter()
        .find_map(|r| match &r.event {
            TraceEvent::Member {
                member: 2,
                event: NodeEvent::RefusedToStart { error },
            } => Some(error.clone()),
            _ => None,
        })
        .expect("member 2 refused to start");
    assert!(
        refusal.contains(&format!("WAL segment {} corrupt at byte ", rot.file)),
        "{refusal}"
    );
    let steps: Vec<&OperatorStep> = output
        .trace
        .iter()
        .filter_map(|r| match &r.event {
            TraceEvent::Operator { step, .. } => Some(step),
            _ => None,
        })
        .collect();
    let [OperatorStep::Removed { member: 2 }, OperatorStep::Added { member: added }, OperatorStep::Promoted { member: promoted }] =
        steps[..]
    else {
        panic!("the replacement's steps: {steps:?}")
    };
    assert_eq!(added, promoted);
    // Back to full size: three members answered the final HashKV, the new one among them.
    let members: Vec<u64> = output.final_hashes.keys().copied().collect();
    assert_eq!(members.len(), 3, "{members:?}");
    assert!(
        members.contains(added) && !members.contains(&2),
        "{members:?}"
    );
    assert_eq!(check(&output), Verdict::Pass);
}

/// With one open WAL segment (nothing sealed), the rot hits the newest snapshot: the member
/// refuses to start naming the snapshot file and the bytes its check covers, and is replaced.
#[test]
fn a_rotten_snapshot_byte_makes_the_member_refuse_to_start_and_it_is_replaced() {
    let mut plan = quiet_plan(puts(120, 20), Vec::new());
    plan.scenario.snapshot_threshold_entries = 20;
    plan.scenario.wal_segment_size_bytes = 1 << 20;
    let plan = with_fault(plan, 3500, 300, Fault::CorruptSynced { member: 3, pick: 7 });
    let output = simulate(&plan, &RunOptions::default());
    let rot = output
        .trace
        .iter()
        .find_map(|r| match &r.event {
            TraceEvent::SyncedByteRot { member: 3, rot } => rot.clone(),
            _ => None,
        })
        .expect("member 3 had a snapshot to rot");
    assert!(rot.file.ends_with(".snap"), "{rot:?}");
    let refusal = output
        .trace
        .iter()
        .find_map(|r| match &r.event {
            TraceEvent::Member {
                member: 3,
                event: NodeEvent::RefusedToStart { error },
            } => Some(error.clone()),
            _ => None,
        })
        .expect("member 3 refused to start");
    assert!(refusal.contains(&rot.file), "{refusal}");
    assert!(refusal.contains("bytes "), "{refusal}");
    let removed = output.trace.iter().any(|r| {
        matches!(
            r.event,
            TraceEvent::Operator {
                step: OperatorStep::Removed { member: 3 },
                ..
            }
        )
    });
    assert!(removed);
    assert_eq!(output.final_hashes.len(), 3);
    assert!(!output.final_hashes.contains_key(&3));
    assert_eq!(check(&output), Verdict::Pass);
}

/// Issue 13's read errors: the window restarts the leader into a disk that fails its reads;
/// it stops at the first failed read of its WAL or snapshot, naming the file (etcd's fatal
/// exit at startup), answers nothing until the window ends, then recovers everything it had
/// synced (the checkers pass: no acknowledged write lost, members agree).
#[test]
fn a_failed_read_at_recovery_stops_the_member_until_it_is_restarted() {
    let fault = Fault::DiskReadError {
        target: IsolateTarget::Leader,
    };
    assert_fail_stop(
        fault,
        &["reading the member's storage failed: read \"", "(EIO)"],
    );
}

/// Issue 13's slow I/O: the leader's syncs take 400 ms of simulated time while the window is
/// open. Its loop is blocked meanwhile, so puts that took milliseconds before take hundreds
/// during the window, its followers stop hearing from it and elect another leader, and
/// the run still passes every checker. After the window the disk is fast again (no crash).
#[test]
fn a_slow_disk_slows_the_leaders_commits_and_costs_it_the_leadership() {
    let fault = Fault::SlowDisk {
        target: IsolateTarget::Leader,
        delay_ms: 400,
    };
    let plan = with_fault(quiet_plan(puts(100, 40), Vec::new()), 1500, 2000, fault);
    let output = simulate(&plan, &RunOptions::default());
    let (members, start_ns, end_ns) = window(&output);
    let [slow] = members[..] else {
        panic!("the fault hit {members:?}, not one leader")
    };
    // The longest put among those that overlap [from_ns, to_ns): a put that is in flight
    // when the disk turns slow waits for the slow leader's sync, whenever it was sent.
    let longest_put_ms = |from_ns: u64, to_ns: u64| {
        let ops = output.history.ops.iter();
        ops.filter(|op| op.invoke_ns < to_ns && op.complete_ns > from_ns)
            .map(|op| (op.complete_ns - op.invoke_ns) / 1_000_000)
            .max()
            .expect("puts in the range")
    };
    // From 1 s on (the first election is over) until the window: puts that ended before it.
    let before = output
        .history
        .ops
        .iter()
        .filter(|op| op.invoke_ns >= 1_000_000_000 && op.complete_ns < start_ns)
        .map(|op| (op.complete_ns - op.invoke_ns) / 1_000_000)
        .max()
        .expect("puts before the window");
    let during = longest_put_ms(start_ns, end_ns);
    assert!(
        before < 100,
        "puts took up to {before} ms before the window"
    );
    assert!(
        during >= 400,
        "puts took up to {during} ms during the window"
    );
    let new_leader = output.trace.iter().any(|r| {
        r.at_ns > start_ns
            && r.at_ns < end_ns
            && matches!(&r.event, TraceEvent::Member { member, event: NodeEvent::RoleChanged { role, .. } }
                if *member != slow && role == "Leader")
    });
    assert!(
        new_leader,
        "no other member was elected while {slow}'s disk was slow"
    );
    let stopped_or_crashed = output.trace.iter().any(|r| {
        matches!(
            &r.event,
            TraceEvent::Member {
                event: NodeEvent::StoppedByDisk { .. },
                ..
            }
        ) || matches!(&r.event, TraceEvent::DiskCrash { .. })
    });
    assert!(!stopped_or_crashed, "a slow disk stops nobody");
    assert_eq!(check(&output), Verdict::Pass);
    assert_eq!(output.final_hashes.len(), 3);
}
