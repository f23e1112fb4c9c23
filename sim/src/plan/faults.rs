//! The fault schedule: the nemesis's windows, drawn from the scenario's fault mix on the
//! seed's own "nemesis" stream.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::scenario::Scenario;

/// Who a partition isolates: a fixed member, or whoever leads when the fault starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum IsolateTarget {
    Member(u64),
    Leader,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Fault {
    /// Kill the member's process (unsynced disk writes are lost), restart it at the end.
    Crash { member: u64 },
    /// Cut every link of the member, both ways, until the end of the window.
    Isolate { target: IsolateTarget },
    /// Crash every member of the zone at once; restart them all at the end.
    ZoneDown { zone: u32 },
    /// Cut the links between the member and every other member, both ways; clients still
    /// reach it (a minority partition with clients on its side).
    PartitionFromPeers { target: IsolateTarget },
    /// Freeze the member's process (a GC or VM pause): no crash, no lost state; its timers
    /// and inbox resume at the end of the window (etcd #20418's trigger).
    Pause { target: IsolateTarget },
    /// Crash whoever leads when the window starts; restart it at the end.
    CrashLeader,
    /// While the window is open, every leader (the one at its start, and each member that
    /// wins an election) is cut from its peers, clients still reaching it, after a delay: none
    /// (before its first append leaves) half of the time, else up to `delay_max_ms`; each cut
    /// lasts between `hold_max_ms / 2` and `hold_max_ms`. Leaders that lose their followers
    /// right after an election, or halfway through catching one up, are where Raft's
    /// Figure 8 (an earlier term's entry committed by counting, then overwritten) happens.
    CutNewLeaders { delay_max_ms: u64, hold_max_ms: u64 },
    /// The member's clock runs at `rate_percent` of simulated time until the end of the
    /// window (a drifting or throttled VM clock): its Raft ticks (elections, heartbeats,
    /// check-quorum) and its lease expiry follow it. Nothing may break safety: timing is only
    /// ever an optimization in Raft, and reads go through ReadIndex.
    ClockSkew {
        target: IsolateTarget,
        rate_percent: u32,
    },
    /// Messages from `from` to `to` are lost while the reverse direction delivers (Jepsen's
    /// asymmetric partitions); clients still reach both. Hits nobody when both resolve to
    /// the same member.
    OneWayCut {
        from: IsolateTarget,
        to: IsolateTarget,
    },
    /// The live members, in the order `arrangement` shuffles them into, split into two halves
    /// that cannot talk to each other, except the first member (the bridge), which talks to
    /// both (Jepsen's bridge; needs 3 members). Links between members only, both ways.
    Bridge {
        #[serde(with = "super::wide_u64")]
        arrangement: u64,
    },
    /// The live members, shuffled by `arrangement`, split into a majority (the first
    /// `n / 2 + 1`) and a minority (the rest) that cannot talk to each other (3|2 in five
    /// members, 2|1 in three).
    MajorityMinority {
        #[serde(with = "super::wide_u64")]
        arrangement: u64,
    },
    /// The live members, shuffled by `arrangement`, stand in a ring and each reaches only its
    /// two neighbours (needs 4 members: in 3, everyone is a neighbour).
    Ring {
        #[serde(with = "super::wide_u64")]
        arrangement: u64,
    },
    /// The member's disk fails every fsync (EIO) until the end of the window; the bytes a
    /// failed sync covered are lost at the next power loss (Linux drops the dirty pages).
    /// The member must fail-stop at its first failed sync, as etcd does; at the end of the
    /// window it is crashed (power loss) and restarted.
    FsyncError { target: IsolateTarget },
    /// The member's disk is full (writes fail with ENOSPC) until the end of the window. etcd
    /// cannot write its WAL then and exits (fatal), so the member must fail-stop at its first
    /// refused write; at the end of the window it is crashed and restarted.
    DiskFull { target: IsolateTarget },
    /// The member is crashed, then one byte of a synced file on its disk rots: a WAL segment
    /// that a later one follows, or its newest snapshot, chosen by `pick` (file, offset and
    /// mask). At the end of the window it is restarted; it must refuse to start, naming the
    /// file and offset, and the simulator replaces it with an empty member (remove + add).
    /// Nothing rots while another member's rot is not resolved (see `TraceEvent::SyncedByteRot`).
    CorruptSynced {
        member: u64,
        #[serde(with = "super::wide_u64")]
        pick: u64,
    },
    /// The members of the zone are cut off from the members of every other zone, both ways,
    /// until the end of the window; links inside the zone stay, and clients still reach
    /// everyone (a zone's uplink lost, its machines alive: unlike `ZoneDown`, nothing crashes).
    ZoneCut { zone: u32 },
    /// Batches between members (every link when `target` is `None`, else the target's links
    /// both ways) are each delayed by `delay_ms_max / 2 ..= delay_ms_max` while the window
    /// is open, each link keeping its order (a congested link or a slow NIC queues).
    DelaySpike {
        target: Option<IsolateTarget>,
        delay_ms_max: u64,
    },
    /// `percent` of the batches to and from the target are delivered twice, the copy up to
    /// `lag_ms_max` after the original (a retransmission that was not needed).
    DuplicateMessages {
        target: IsolateTarget,
        percent: u32,
        lag_ms_max: u64,
    },
    /// `percent` of the batches to and from the target are held back by up to `hold_ms_max`,
    /// so that later batches overtake them (and old terms' messages arrive late).
    ReorderMessages {
        target: IsolateTarget,
        percent: u32,
        hold_ms_max: u64,
    },
    /// The target's clock jumps by `jump_ms` when the window opens: forward at once (leases
    /// its member leads expire early; the Raft ticks it skipped run in a burst), or back
    /// (negative), which its monotonic clock shows as standing still until it caught up or
    /// the window ends (leases expire late; no Raft ticks meanwhile). See `sim/src/clock.rs`.
    ClockJump { target: IsolateTarget, jump_ms: i64 },
    /// While the window is open, the first member to reach `moment` is halted there and
    /// crashed at once (a power loss), then restarted `restart_after_ms` later (issue 13's
    /// aimed crashes: `runner/aimed.rs`). Once per window.
    AimedCrash {
        moment: CrashMoment,
        restart_after_ms: u64,
    },
    /// The member's disk fails every read (EIO) until the end of the window. The member reads
    /// its disk when it recovers, so the window opens by stopping its process (its disk keeps
    /// what it wrote) and starting it again at once: it must stop at the failed read of its
    /// WAL or snapshot, naming the file, as etcd exits fatally, never serve from part of its
    /// data or take the failure for a torn tail or an empty log. At the end of the window it
    /// is crashed (power loss) and restarted, as after `FsyncError`.
    DiskReadError { target: IsolateTarget },
    /// The member's disk is slow until the end of the window: every sync takes `delay_ms`
    /// of simulated time (an append a tenth of it), during which the member's loop is
    /// blocked, as etcd's raft loop is on a slow fsync (its heartbeats late, its commits
    /// slow; a slow leader may lose its followers to an election).
    SlowDisk {
        target: IsolateTarget,
        delay_ms: u64,
    },
}

/// The moment of a member's work an aimed crash hits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CrashMoment {
    /// Right after a voter's grant leaves. The window starts by crashing the leader (so an
    /// election follows; it restarts with the voter); the first candidate's vote requests
    /// reach only as many voters as it needs, the first of them to grant is crashed and the
    /// candidate is cut from its peers until the window ends, so the others, the restarted
    /// voter among them, elect a second candidate: in the same term if the voter forgot its
    /// vote.
    AfterVote,
    /// Right after a follower acknowledges an append.
    AfterAppendAck,
    /// Between the WAL write and its sync (the power loss decides the unsynced tail's fate).
    BeforeSync,
    /// While a snapshot is half written: its file durable, the WAL's record of it (and, for
    /// a leader's snapshot, the hard state and entries of its Ready) not yet written. The
    /// restart combines a snapshot with a WAL that does not know of it.
    MidSnapshot,
}

/// The leader half of the time, else `member`.
fn leader_or(member: u64, rng: &mut ChaCha8Rng) -> IsolateTarget {
    if rng.random_bool(0.5) {
        IsolateTarget::Leader
    } else {
        IsolateTarget::Member(member)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultWindow {
    pub start_ms: u64,
    pub duration_ms: u64,
    pub fault: Fault,
}

pub(super) fn generate_faults(rng: &mut ChaCha8Rng, scenario: &Scenario) -> Vec<FaultWindow> {
    let mix = &scenario.faults;
    let weights = [
        mix.crash_weight,
        mix.isolate_member_weight,
        mix.isolate_leader_weight,
        mix.zone_down_weight,
        mix.peer_partition_weight,
        mix.pause_weight,
        mix.crash_leader_weight,
        mix.new_leader_cut_weight,
        mix.clock_skew_weight,
        // Appended last, so that a mix without them draws the schedules it always drew.
        mix.one_way_cut_weight,
        mix.bridge_weight,
        mix.majority_minority_weight,
        mix.ring_weight,
        mix.fsync_error_weight,
        mix.disk_full_weight,
        mix.corrupt_synced_weight,
        mix.zone_cut_weight,
        mix.delay_spike_weight,
        mix.duplicate_weight,
        mix.reorder_weight,
        mix.clock_jump_weight,
        mix.aimed_crash_weight,
        mix.read_error_weight,
        mix.slow_disk_weight,
    ];
    let total: u32 = weights.iter().sum();
    let mut faults = Vec::new();
    if total == 0 {
        return faults;
    }
    let mut now_ms = rng.random_range(mix.gap_ms.0..=mix.gap_ms.1);
    while now_ms < scenario.workload_duration_ms {
        let duration_ms = rng.random_range(mix.duration_ms.0..=mix.duration_ms.1);
        let member = rng.random_range(1..=u64::from(scenario.members));
        let mut pick = rng.random_range(0..total);
        let kind = weights
            .iter()
            .position(|&w| {
                if pick < w {
                    true
                } else {
                    pick -= w;
                    false
                }
            })
            .expect("pick < total");
        let fault = draw_fault(kind, member, rng, scenario);
        faults.push(FaultWindow {
            start_ms: now_ms,
            duration_ms,
            fault,
        });
        now_ms += duration_ms + rng.random_range(mix.gap_ms.0..=mix.gap_ms.1);
    }
    faults
}

/// The fault of kind `kind` (its index in `generate_faults`' weights), its parameters drawn.
fn draw_fault(kind: usize, member: u64, rng: &mut ChaCha8Rng, scenario: &Scenario) -> Fault {
    let mix = &scenario.faults;
    match kind {
        0 => Fault::Crash { member },
        1 => Fault::Isolate {
            target: IsolateTarget::Member(member),
        },
        2 => Fault::Isolate {
            target: IsolateTarget::Leader,
        },
        3 => Fault::ZoneDown {
            zone: rng.random_range(0..scenario.zones),
        },
        // Partitions and pauses hit the leader: that is where stale reads come from.
        4 => Fault::PartitionFromPeers {
            target: IsolateTarget::Leader,
        },
        5 => Fault::Pause {
            target: IsolateTarget::Leader,
        },
        6 => Fault::CrashLeader,
        7 => Fault::CutNewLeaders {
            delay_max_ms: mix.new_leader_cut_delay_max_ms,
            hold_max_ms: mix.new_leader_cut_hold_max_ms,
        },
        8 => Fault::ClockSkew {
            target: if rng.random_bool(0.5) {
                IsolateTarget::Leader
            } else {
                IsolateTarget::Member(member)
            },
            rate_percent: [10, 50, 200, 500][rng.random_range(0..4)],
        },
        // The leader's links are where a one-way cut matters: its heartbeats lost (the
        // follower campaigns), or the acknowledgements it waits for lost.
        9 if rng.random_bool(0.5) => Fault::OneWayCut {
            from: IsolateTarget::Leader,
            to: IsolateTarget::Member(member),
        },
        9 => Fault::OneWayCut {
            from: IsolateTarget::Member(member),
            to: IsolateTarget::Leader,
        },
        10 => Fault::Bridge {
            arrangement: rng.random(),
        },
        11 => Fault::MajorityMinority {
            arrangement: rng.random(),
        },
        12 => Fault::Ring {
            arrangement: rng.random(),
        },
        // The leader's disk failing is where an ignored error hurts most: it acknowledges.
        13 => Fault::FsyncError {
            target: leader_or(member, rng),
        },
        14 => Fault::DiskFull {
            target: leader_or(member, rng),
        },
        15 => Fault::CorruptSynced {
            member,
            pick: rng.random(),
        },
        16..=20 => message_or_clock_fault(kind, member, rng, scenario),
        21 => Fault::AimedCrash {
            moment: [
                CrashMoment::AfterVote,
                CrashMoment::AfterAppendAck,
                CrashMoment::BeforeSync,
                CrashMoment::MidSnapshot,
            ][rng.random_range(0..4)],
            restart_after_ms: rng.random_range(20..=200),
        },
        22 => Fault::DiskReadError {
            target: leader_or(member, rng),
        },
        23 => Fault::SlowDisk {
            target: leader_or(member, rng),
            delay_ms: rng.random_range(50..=500),
        },
        _ => unreachable!("one kind per weight"),
    }
}

/// A fault of the kinds appended after `CorruptSynced` (weights 16 on): zone cuts, message
/// delays, duplicates and reordering, clock jumps.
fn message_or_clock_fault(
    kind: usize,
    member: u64,
    rng: &mut ChaCha8Rng,
    scenario: &Scenario,
) -> Fault {
    // Percentages and times of the message faults: from a few batches to most of them, and
    // from a fraction of an election timeout to several.
    const PERCENTS: [u32; 3] = [10, 30, 60];
    const TIMES_MS: [u64; 4] = [50, 100, 200, 400];
    match kind {
        16 => Fault::ZoneCut {
            zone: rng.random_range(0..scenario.zones),
        },
        17 => Fault::DelaySpike {
            // Every link a third of the time, else the leader's or a member's.
            target: match rng.random_range(0..3) {
                0 => None,
                _ => Some(leader_or(member, rng)),
            },
            delay_ms_max: TIMES_MS[rng.random_range(0..TIMES_MS.len())],
        },
        18 => Fault::DuplicateMessages {
            target: leader_or(member, rng),
            percent: PERCENTS[rng.random_range(0..PERCENTS.len())],
            lag_ms_max: TIMES_MS[rng.random_range(0..TIMES_MS.len())],
        },
        19 => Fault::ReorderMessages {
            target: leader_or(member, rng),
            percent: PERCENTS[rng.random_range(0..PERCENTS.len())],
            hold_ms_max: TIMES_MS[rng.random_range(0..TIMES_MS.len())],
        },
        // The leader's clock is the one that expires leases; a follower's jump still bursts
        // or stops its election timer.
        20 => Fault::ClockJump {
            target: leader_or(member, rng),
            jump_ms: {
                let magnitude_ms: i64 = [300, 1000, 3000][rng.random_range(0..3)];
                if rng.random_bool(0.5) {
                    magnitude_ms
                } else {
                    -magnitude_ms
                }
            },
        },
        _ => unreachable!("one kind per weight"),
    }
}
