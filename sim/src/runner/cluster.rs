//! The cluster: the members' nodes and what the simulator owns for them (disks that outlive
//! crashes, skewable clocks), and what the nemesis currently holds down, so that a crash,
//! a restart and the final heal each are one step.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use faultline_node::{
    run_member_with_transport, Canary, InitialClusterState, NodeConfig, Observer,
};
use faultline_storage::{DiskFaults, MemDisk};
use madsim::runtime::{Handle, NodeHandle};
use rand::Rng;

use super::aimed::{AimedCrashes, AimedObserver, Crasher};
use super::cuts::{LeaderCutObserver, LeaderCuts, PeerCuts};
use super::messages::{wants_message_chaos, ChaosPeers, MessageChaos};
use super::peer_net::PeerNet;
use crate::clock::SkewClock;
use crate::plan::{stream, Fault, MemberPlan, Plan, Scenario};
use crate::trace::{Recorder, TraceEvent};

mod disk_windows;

/// Member port on every member's IP.
const MEMBER_PORT: u16 = 2379;
/// How long a member holds a watch poll open before answering it empty.
pub(super) const WATCH_POLL_TIMEOUT_MS: u64 = 200;

pub(super) struct Cluster {
    pub(super) handle: Handle,
    pub(super) recorder: Arc<Recorder>,
    pub(super) members: BTreeMap<u64, NodeHandle>,
    disks: BTreeMap<u64, Arc<Mutex<MemDisk>>>,
    /// Each member's clock, and the rates of the skew faults on it (the latest applies).
    pub(super) clocks: BTreeMap<u64, Arc<SkewClock>>,
    pub(super) skews: BTreeMap<u64, Vec<u32>>,
    pub(super) zones: BTreeMap<u64, u32>,
    /// Members currently killed by the nemesis (a member may be hit by two overlapping faults).
    down: BTreeMap<u64, u32>,
    pub(super) isolated: BTreeMap<u64, u32>,
    /// Members cut off from their peers (links between members only); shared with the
    /// new-leader cuts, which fire from inside a member's task.
    pub(super) peer_cuts: Arc<Mutex<PeerCuts>>,
    /// Present when the plan has `CutNewLeaders` windows (only then: an observer hook and a
    /// timer node would change every other run's schedule).
    pub(super) leader_cuts: Option<Arc<Mutex<LeaderCuts>>>,
    /// Present when the plan has message faults (delays, duplicates, reordering): every
    /// member's batches then go through it (`messages.rs`).
    pub(super) message_chaos: Option<Arc<Mutex<MessageChaos>>>,
    /// Present when the plan has `AimedCrash` windows (for the same reason).
    pub(super) aimed: Option<Arc<Mutex<AimedCrashes>>>,
    pub(super) paused: BTreeMap<u64, u32>,
    /// The disk faults of the open windows on each member (overlapping windows add up).
    disk_faults: BTreeMap<u64, Vec<DiskFaults>>,
    /// Members whose synced bytes rotted and that did not run since.
    rotted: std::collections::BTreeSet<u64>,
    /// Members whose synced bytes rotted and that the operator is not done with.
    /// Shared with the members' observer ([`RefusalCheck`]), which must not lock the cluster.
    rot_unresolved: Arc<Mutex<std::collections::BTreeSet<u64>>>,
    /// Where the nemesis sends (member, time in ns) after restarting a member whose synced
    /// bytes rotted: the operator replaces it if it refuses to start. Present when the plan
    /// has such faults; dropped when the nemesis is done, which ends the operator's watch.
    pub(super) restarted_after_rot: Option<tokio::sync::mpsc::UnboundedSender<(u64, u64)>>,
    nemesis_rng: rand_chacha::ChaCha8Rng,
    /// Members the operator removed: their nodes are dead for good, and faults skip them.
    retired: std::collections::BTreeSet<u64>,
    /// Members the operator added so far (they get the addresses after the initial ones).
    added: u32,
    /// What a new member's node is started with.
    seed: u64,
    scenario: Scenario,
    canary: Option<Canary>,
    observer: Arc<dyn Observer>,
}

pub(super) fn member_addrs(plan: &Plan) -> BTreeMap<u64, SocketAddr> {
    plan.members
        .iter()
        .map(|m| (m.id, SocketAddr::new(m.ip, MEMBER_PORT)))
        .collect()
}

/// What one member's node is made of; the simulator keeps the disk and the clock.
struct MemberParts {
    config: NodeConfig,
    disk: Arc<Mutex<MemDisk>>,
    clock: Arc<SkewClock>,
    observer: Arc<dyn Observer>,
    message_chaos: Option<Arc<Mutex<MessageChaos>>>,
}

impl Cluster {
    /// Create every member's node (started by madsim) with its disk and clock.
    pub(super) fn start(
        plan: &Plan,
        addrs: &BTreeMap<u64, SocketAddr>,
        canary: Option<Canary>,
        recorder: &Arc<Recorder>,
    ) -> Cluster {
        let handle = Handle::current();
        PeerNet::set_wire(handle.create_node().name("peer-wire").build());
        let peer_cuts = Arc::new(Mutex::new(PeerCuts::default()));
        let leader_cuts = plan
            .faults
            .iter()
            .any(|w| matches!(w.fault, Fault::CutNewLeaders { .. }))
            .then(|| {
                Arc::new(Mutex::new(LeaderCuts {
                    open: Vec::new(),
                    rng: stream(plan.seed, "nemesis/leader-cuts"),
                    peer_cuts: peer_cuts.clone(),
                    recorder: recorder.clone(),
                    timer: handle.create_node().name("nemesis-leader-cuts").build(),
                }))
            });
        let observer: Arc<dyn Observer> = match &leader_cuts {
            Some(cuts) => Arc::new(LeaderCutObserver {
                recorder: recorder.clone(),
                cuts: cuts.clone(),
            }),
            None => recorder.clone(),
        };
        let message_chaos = wants_message_chaos(&plan.faults).then(|| {
            Arc::new(Mutex::new(MessageChaos::new(stream(
                plan.seed,
                "nemesis/messages",
            ))))
        });
        let aimed = plan
            .faults
            .iter()
            .any(|w| matches!(w.fault, Fault::AimedCrash { .. }))
            .then(|| {
                Arc::new(Mutex::new(AimedCrashes::new(
                    stream(plan.seed, "nemesis/aimed-crashes"),
                    peer_cuts.clone(),
                    recorder.clone(),
                    handle.create_node().name("nemesis-aimed-crashes").build(),
                )))
            });
        let observer: Arc<dyn Observer> = match &aimed {
            Some(aimed) => Arc::new(AimedObserver {
                inner: observer,
                aimed: aimed.clone(),
            }),
            None => observer,
        };
        let rot_unresolved = Arc::new(Mutex::new(std::collections::BTreeSet::new()));
        let observer: Arc<dyn Observer> = Arc::new(RefusalCheck {
            inner: observer,
            rot_unresolved: rot_unresolved.clone(),
        });
        let mut cluster = Cluster {
            handle,
            recorder: recorder.clone(),
            members: BTreeMap::new(),
            disks: BTreeMap::new(),
            clocks: BTreeMap::new(),
            skews: BTreeMap::new(),
            zones: BTreeMap::new(),
            down: BTreeMap::new(),
            isolated: BTreeMap::new(),
            peer_cuts,
            leader_cuts,
            message_chaos,
            aimed,
            paused: BTreeMap::new(),
            disk_faults: BTreeMap::new(),
            rotted: Default::default(),
            rot_unresolved,
            restarted_after_rot: None,
            nemesis_rng: stream(plan.seed, "nemesis/runtime"),
            retired: Default::default(),
            added: 0,
            seed: plan.seed,
            scenario: plan.scenario.clone(),
            canary,
            observer,
        };
        for member in &plan.members {
            cluster.start_member(member, addrs, InitialClusterState::New);
        }
        cluster
    }

    /// Create the member's node with a fresh disk and clock (madsim starts it).
    fn start_member(
        &mut self,
        member: &MemberPlan,
        addrs: &BTreeMap<u64, SocketAddr>,
        state: InitialClusterState,
    ) {
        let disk = Arc::new(Mutex::new(MemDisk::new()));
        self.disks.insert(member.id, disk.clone());
        let clock = Arc::new(SkewClock::new());
        self.clocks.insert(member.id, clock.clone());
        let mut config = member_config(self.seed, &self.scenario, member, addrs, self.canary);
        config.initial_cluster_state = state;
        if let Some(chaos) = &self.message_chaos {
            let addr = Self::member_addr(member.ip);
            chaos
                .lock()
                .expect("message chaos")
                .addrs
                .insert(addr, member.id);
        }
        let parts = MemberParts {
            config,
            disk,
            clock,
            observer: self.observer.clone(),
            message_chaos: self.message_chaos.clone(),
        };
        let node = start_member(&self.handle, member, parts);
        self.peer_cuts
            .lock()
            .expect("peer cuts")
            .node_ids
            .insert(member.id, node.id());
        self.members.insert(member.id, node);
        self.zones.insert(member.id, member.zone);
    }

    /// Where the next member the operator adds will live: its address, and the zone with the
    /// fewest live members (the lowest such zone), or `zone` when given.
    pub(super) fn next_member_slot(&mut self, zone: Option<u32>) -> (std::net::IpAddr, u32) {
        self.added += 1;
        let ip = std::net::IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 1, self.added as u8));
        let zone = zone.unwrap_or_else(|| {
            (0..self.scenario.zones)
                .min_by_key(|z| self.zones.values().filter(|m| *m == z).count())
                .expect("at least one zone")
        });
        (ip, zone)
    }

    /// Start a member the cluster just added (`existing`: the members it is told of).
    pub(super) fn join_member(
        &mut self,
        member: &MemberPlan,
        existing: &BTreeMap<u64, SocketAddr>,
    ) {
        let mut addrs = existing.clone();
        addrs.insert(member.id, SocketAddr::new(member.ip, MEMBER_PORT));
        self.start_member(member, &addrs, InitialClusterState::Existing);
    }

    /// The member was removed from the cluster: its process ends for good and its disk is
    /// gone; faults no longer pick it, and a fault holding it ends without restarting it.
    pub(super) fn retire(&mut self, member: u64) {
        if !self.retired.insert(member) {
            return;
        }
        self.handle.kill(self.members[&member].id());
        self.zones.remove(&member);
        self.disk_faults.remove(&member);
        self.rotted.remove(&member);
        *self.disks[&member].lock().expect("disk") = MemDisk::new();
    }

    pub(super) fn is_live(&self, member: u64) -> bool {
        self.members.contains_key(&member) && !self.retired.contains(&member)
    }

    pub(super) fn member_addr(ip: std::net::IpAddr) -> SocketAddr {
        SocketAddr::new(ip, MEMBER_PORT)
    }

    /// Kill the member's process; its disk loses what was not synced (drawn from the
    /// nemesis's stream). A member already down stays down until every crash of it ends.
    pub(super) fn crash(&mut self, member: u64) {
        if self.retired.contains(&member) {
            return;
        }
        let count = self.down.entry(member).or_insert(0);
        *count += 1;
        if *count > 1 {
            return; // already down
        }
        self.handle.kill(self.members[&member].id());
        let disk = &self.disks[&member];
        let fault = crate::disk::crash_disk(&mut disk.lock().expect("disk"), &mut self.nemesis_rng);
        self.recorder
            .record(TraceEvent::DiskCrash { member, fault });
    }

    /// Stop the member's process gracefully (planned maintenance): unlike a crash, nothing on
    /// its disk is lost (a process that exits leaves its writes with the OS). Counted with the
    /// crashes, so that whichever of a crash and a stop ends last starts it again.
    pub(super) fn stop_gracefully(&mut self, member: u64) {
        if self.retired.contains(&member) {
            return;
        }
        let count = self.down.entry(member).or_insert(0);
        *count += 1;
        if *count == 1 {
            self.handle.kill(self.members[&member].id());
        }
    }

    pub(super) fn restart(&mut self, member: u64) {
        let Some(count) = self.down.get_mut(&member) else {
            assert!(
                self.retired.contains(&member),
                "member {member} restarted without a crash"
            );
            return; // retired while a crash fault held it; it never went down through it
        };
        *count -= 1;
        if *count == 0 {
            self.down.remove(&member);
            if !self.retired.contains(&member) {
                self.restart_process(member);
            }
        }
    }

    /// The member's process starts again; if its synced bytes rotted since it last ran, the
    /// operator watches whether it starts or refuses (and replaces it if it refuses).
    fn restart_process(&mut self, member: u64) {
        self.handle.restart(self.members[&member].id());
        if self.rotted.remove(&member) {
            if let Some(sender) = &self.restarted_after_rot {
                // The operator outlives the nemesis, which drops the sender when done.
                let _ = sender.send((member, self.recorder.now_ns()));
            }
        }
    }

    /// End every fault at once (the workload is over): liveness is judged from here.
    pub(super) fn heal_all(&mut self) {
        for (member, windows) in std::mem::take(&mut self.disk_faults) {
            self.apply_disk_faults(member);
            if windows.iter().any(DiskFaults::fails_operations) {
                self.crash(member);
            }
        }
        for (member, _) in std::mem::take(&mut self.down) {
            if !self.retired.contains(&member) {
                self.restart_process(member);
            }
        }
        for (member, _) in std::mem::take(&mut self.isolated) {
            super::peer_net::unclog_node(self.members[&member].id());
        }
        if let Some(cuts) = &self.leader_cuts {
            cuts.lock().expect("leader cuts").open.clear();
        }
        if let Some(aimed) = &self.aimed {
            aimed.lock().expect("aimed crashes").heal();
        }
        self.peer_cuts.lock().expect("peer cuts").heal_all();
        for (member, _) in std::mem::take(&mut self.skews) {
            self.clocks[&member].set_rate(100);
        }
        for clock in self.clocks.values() {
            clock.end_standstill();
        }
        if let Some(chaos) = &self.message_chaos {
            chaos.lock().expect("message chaos").heal();
        }
        for (member, _) in std::mem::take(&mut self.paused) {
            self.handle.resume(self.members[&member].id());
        }
        // Message loss is a fault too: liveness after heal is judged on a network that delivers.
        super::peer_net::stop_packet_loss();
        self.recorder.record(TraceEvent::Healed);
    }
}

/// Let the aimed crashes reach the shared cluster (they crash and restart its members from a
/// timer task of their own).
pub(super) fn arm_aimed_crashes(cluster: &Arc<Mutex<Cluster>>) {
    let aimed = cluster.lock().expect("cluster").aimed.clone();
    if let Some(aimed) = aimed {
        let weak: std::sync::Weak<Mutex<Cluster>> = Arc::downgrade(cluster);
        let weak: std::sync::Weak<Mutex<dyn Crasher>> = weak;
        aimed.lock().expect("aimed crashes").cluster = Some(weak);
    }
}

/// The members' observer, in front of the recorder: a member that refuses to start when no
/// fault damaged its synced data lost or broke its own durable state (a bug in the store, as
/// a member that panicked at recovery did before members could refuse): it panics there, in
/// the member's task, and the run fails as a panic.
struct RefusalCheck {
    inner: Arc<dyn Observer>,
    /// Members whose synced bytes the nemesis rotted, until the operator is done with them.
    rot_unresolved: Arc<Mutex<std::collections::BTreeSet<u64>>>,
}

impl Crasher for Cluster {
    fn crash(&mut self, member: u64) {
        Cluster::crash(self, member);
    }

    fn restart_if_down(&mut self, member: u64) {
        if self.down.contains_key(&member) {
            self.restart(member);
        }
    }

    fn live_members(&self) -> Vec<u64> {
        let members = self.members.keys().copied();
        members.filter(|&member| self.is_live(member)).collect()
    }
}

impl Observer for RefusalCheck {
    fn on_moment(
        &self,
        member: u64,
        moment: faultline_node::Moment,
    ) -> faultline_node::MomentAction {
        self.inner.on_moment(member, moment)
    }

    fn on_event(&self, member: u64, event: faultline_node::NodeEvent) {
        let refusal = match &event {
            faultline_node::NodeEvent::RefusedToStart { error } => Some(error.clone()),
            _ => None,
        };
        self.inner.on_event(member, event);
        if let Some(error) = refusal {
            let expected = self.rot_unresolved.lock().expect("rot").contains(&member);
            assert!(
                expected,
                "member {member} refused to start, but no fault damaged its synced data: {error}"
            );
        }
    }
}

fn member_config(
    seed: u64,
    scenario: &Scenario,
    member: &MemberPlan,
    addrs: &BTreeMap<u64, SocketAddr>,
    canary: Option<Canary>,
) -> NodeConfig {
    let mut store_rng = stream(seed, &format!("store/member-{}", member.id));
    let base_rng_seed: u64 = store_rng.random();
    NodeConfig {
        id: member.id,
        members: addrs.clone(),
        initial_cluster_state: InitialClusterState::New,
        // A simulated member serves clients where it serves peers (one address).
        attributes: faultline_node::Attributes {
            name: member.name.clone(),
            client_urls: vec![format!("http://{}", addrs[&member.id])],
        },
        tick_interval_ms: scenario.tick_interval_ms,
        election_timeout_ticks: scenario.election_timeout_ticks,
        heartbeat_interval_ticks: scenario.heartbeat_interval_ticks,
        pre_vote: true,
        check_quorum: true,
        max_entries_per_append: scenario.max_entries_per_append,
        request_timeout_ms: scenario.client_request_timeout_ms,
        peer_timeout_ms: scenario.tick_interval_ms * scenario.election_timeout_ticks,
        rng_seed: base_rng_seed,
        watch_progress_notify_interval_ms: scenario.watch_progress_notify_interval_ms,
        watch_poll_timeout_ms: WATCH_POLL_TIMEOUT_MS,
        watch_slow_backlog_responses: faultline_mvcc::watch::SLOW_WATCHER_BACKLOG_DEFAULT,
        max_watch_response_bytes: faultline_mvcc::watch::MAX_RESPONSE_BYTES_DEFAULT,
        snapshot_threshold_entries: scenario.snapshot_threshold_entries,
        snapshot_catch_up_entries: scenario.snapshot_catch_up_entries,
        wal_segment_size_bytes: scenario.wal_segment_size_bytes,
        lease_checkpoint_interval_ms: scenario.lease_checkpoint_interval_ms,
        canary,
        buggify: if scenario.buggify {
            draw_buggify(seed)
        } else {
            faultline_node::Buggify::default()
        },
    }
}

/// The seed's BUGGIFY chances (the same for every member): each point is on in half of the
/// seeds, at 1, 5 or 20 percent (FoundationDB enables a point per run, then fires it by
/// chance). Its own stream, so that nothing else a seed draws moves.
pub(super) fn draw_buggify(seed: u64) -> faultline_node::Buggify {
    let mut rng = stream(seed, "buggify");
    let mut chance = || {
        if rng.random_bool(0.5) {
            [1, 5, 20][rng.random_range(0..3)]
        } else {
            0
        }
    };
    // Drawn in the order the points were added, so a seed's earlier points keep their draws.
    let drop_proposal_percent = chance();
    let snapshot_early_percent = chance();
    let split_watch_percent = chance();
    faultline_node::Buggify {
        drop_proposal_percent,
        snapshot_early_percent,
        split_watch_percent,
    }
}

/// The member's node: madsim runs `init` at start and at every restart.
fn start_member(handle: &Handle, member: &MemberPlan, parts: MemberParts) -> NodeHandle {
    let MemberParts {
        config,
        disk,
        clock,
        observer,
        message_chaos,
    } = parts;
    let incarnation = Arc::new(AtomicU64::new(0));
    handle
        .create_node()
        .name(&member.name)
        .ip(member.ip)
        .init(move || {
            let mut config = config.clone();
            // Each incarnation draws fresh (but seeded) randomness.
            let n = incarnation.fetch_add(1, Ordering::Relaxed);
            config.rng_seed = config
                .rng_seed
                .wrapping_add(n.wrapping_mul(0x9e37_79b9_7f4a_7c15));
            let disk: Box<dyn faultline_storage::Disk + Send> = Box::new(disk.clone());
            let observer = observer.clone();
            let clock: Arc<dyn faultline_node::Clock> = clock.clone();
            let message_chaos = message_chaos.clone();
            let id = config.id;
            async move {
                let addr = config.members[&id];
                let transport =
                    |handle: &faultline_node::MemberHandle| -> Arc<dyn faultline_node::PeerSender> {
                        let inner = PeerNet::register(addr, handle);
                        match &message_chaos {
                            Some(chaos) => Arc::new(ChaosPeers {
                                member: id,
                                inner,
                                chaos: chaos.clone(),
                            }),
                            None => inner,
                        }
                    };
                run_member_with_transport(config, disk, observer, clock, &transport).await;
            }
        })
        .build()
}
