//! The trace: a compact, hashable record of what happened in a run (member events and faults).
//! Together with the history it is hashed into the run's fingerprint: same seed, same hash.

use std::sync::{Arc, Mutex};

use faultline_invariants::history::History;
use faultline_node::{NodeEvent, Observer};
use serde::{Deserialize, Serialize};

use crate::names::members_text;
use crate::plan::{Fault, MaintenanceAction, MembershipAction};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TraceEvent {
    Member {
        member: u64,
        event: NodeEvent,
    },
    FaultStart {
        fault: Fault,
        members: Vec<u64>,
    },
    FaultEnd {
        fault: Fault,
        members: Vec<u64>,
    },
    /// What happened to the unsynced tail of each file of a member's disk when it crashed.
    DiskCrash {
        member: u64,
        fault: faultline_storage::CrashFault,
    },
    Healed,
    /// A synced byte of a crashed member's disk rotted (`Fault::CorruptSynced`); `None` when
    /// its disk held no file the fault may hit, or another member's rot is not resolved yet
    /// (not yet replaced: two members losing their data at once is beyond Raft's tolerance).
    SyncedByteRot {
        member: u64,
        rot: Option<crate::disk::SyncedRot>,
    },
    /// A step of the operator's membership work (see `plan::MembershipOp`).
    Operator {
        action: MembershipAction,
        step: OperatorStep,
    },
    /// A step of planned maintenance (see `plan::MaintenanceOp`); the availability check reads
    /// its windows (`verdict::maintenance`).
    Maintenance {
        action: MaintenanceAction,
        step: MaintenanceStep,
    },
    /// A message fault's window (delays, duplicates, reordering) ended, after it delayed,
    /// duplicated or held back `batches` batches between members (recorded after its end).
    MessagesTampered {
        fault: Fault,
        members: Vec<u64>,
        batches: u64,
    },
}

/// What one maintenance action did, in order. A member is *disrupted* (counts against the
/// budget, and requests to it may fail) from `Disrupting` (or `Replaced`, for the new member)
/// until a `Restored` that names it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MaintenanceStep {
    /// The action started (its window opens).
    Began,
    /// The budget allowed disrupting `member`; what follows may make it unavailable.
    Disrupting {
        member: u64,
    },
    /// Leadership moved away from a member about to stop (etcd's graceful stop does this).
    Transferred {
        from: u64,
        to: u64,
    },
    /// The member's process stopped gracefully (nothing on its disk is lost).
    Stopped {
        member: u64,
    },
    Restarted {
        member: u64,
    },
    /// `member` was removed and `by`, an empty member in its zone, added and promoted.
    Replaced {
        member: u64,
        by: u64,
    },
    /// Every voter is up and caught up again: the disruption of `members` is over.
    Restored {
        members: Vec<u64>,
    },
    /// The action could not go on (the workload ended while it waited for the budget, or a
    /// membership change gave up).
    Stopping {
        reason: String,
    },
    /// The action ended (its window closes).
    Ended,
}

/// What one operator step did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OperatorStep {
    /// `member` joined as a learner; its node started empty.
    Added {
        member: u64,
    },
    Promoted {
        member: u64,
    },
    /// `member` left the configuration; its node was stopped and its disk wiped.
    Removed {
        member: u64,
    },
    Transferred {
        from: u64,
        to: u64,
    },
    /// Nothing to do (for example no member the operator added is left to remove).
    Skipped {
        reason: String,
    },
    /// The step ran out of time (faults can keep a change from committing); the cluster is
    /// left as the step found it or halfway (a learner not promoted).
    GaveUp {
        reason: String,
    },
}

/// A trace event in one line of the log (the fingerprint hashes the event's JSON, never this
/// text).
impl std::fmt::Display for TraceEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TraceEvent::Member { member, event } => write!(f, "member {member}: {event:?}"),
            TraceEvent::FaultStart { fault, members } => {
                write!(f, "fault starts: {fault:?} on {}", members_text(members))
            }
            TraceEvent::FaultEnd { fault, members } => {
                write!(f, "fault ends: {fault:?} on {}", members_text(members))
            }
            TraceEvent::DiskCrash { member, fault } => {
                write!(f, "member {member}'s disk crashed: {fault:?}")
            }
            TraceEvent::Healed => write!(f, "every fault healed"),
            TraceEvent::SyncedByteRot { member, rot } => match rot {
                Some(rot) => write!(
                    f,
                    "member {member}'s disk: byte {} of {} rotted (xor {:#04x})",
                    rot.offset, rot.file, rot.xor_mask
                ),
                None => write!(f, "member {member}'s disk: nothing rotted"),
            },
            TraceEvent::Operator { action, step } => {
                write!(f, "operator ({action:?}): {step:?}")
            }
            TraceEvent::Maintenance { action, step } => {
                write!(f, "maintenance ({action:?}): {step:?}")
            }
            TraceEvent::MessagesTampered {
                fault,
                members,
                batches,
            } => write!(
                f,
                "{fault:?} on {} touched {batches} batches",
                members_text(members)
            ),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceRecord {
    /// Simulated time since the start of the run.
    pub at_ns: u64,
    pub event: TraceEvent,
}

pub type Trace = Vec<TraceRecord>;

/// Collects trace records from members (as their observer) and from the nemesis.
/// Single-threaded inside madsim; the mutex only satisfies `Send + Sync`.
pub struct Recorder {
    start: madsim::time::Instant,
    records: Mutex<Trace>,
}

impl Recorder {
    pub fn new() -> Arc<Recorder> {
        Arc::new(Recorder {
            start: madsim::time::Instant::now(),
            records: Mutex::new(Vec::new()),
        })
    }

    pub fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    pub fn record(&self, event: TraceEvent) {
        let at_ns = self.now_ns();
        // For `--trace` (elections, commits, faults, disk crashes); formatting happens only
        // when a subscriber enables it. Inside a member, madsim's `node` span names the member.
        tracing::debug!("{event}");
        self.records
            .lock()
            .expect("recorder lock")
            .push(TraceRecord { at_ns, event });
    }

    /// The member that most recently became leader in the highest term seen, if any.
    pub fn current_leader(&self) -> Option<u64> {
        let records = self.records.lock().expect("recorder lock");
        let mut best: Option<(u64, u64)> = None;
        for record in records.iter() {
            if let TraceEvent::Member {
                member,
                event: NodeEvent::RoleChanged { role, term, .. },
            } = &record.event
            {
                if role == "Leader" && best.is_none_or(|(t, _)| *term >= t) {
                    best = Some((*term, *member));
                }
            }
        }
        best.map(|(_, member)| member)
    }

    /// How the member's first start at or after `since_ns` went: `Some(false)` if it
    /// recovered its storage, `Some(true)` if it refused to start, `None` if it has not
    /// started yet.
    pub fn refused_to_start_since(&self, member: u64, since_ns: u64) -> Option<bool> {
        let records = self.records.lock().expect("recorder lock");
        records
            .iter()
            .filter(|r| r.at_ns >= since_ns)
            .find_map(|r| match &r.event {
                TraceEvent::Member {
                    member: m,
                    event: NodeEvent::RefusedToStart { .. },
                } if *m == member => Some(true),
                TraceEvent::Member {
                    member: m,
                    event: NodeEvent::Recovered { .. },
                } if *m == member => Some(false),
                _ => None,
            })
    }

    pub fn take(&self) -> Trace {
        std::mem::take(&mut *self.records.lock().expect("recorder lock"))
    }
}

impl Observer for Recorder {
    fn on_event(&self, member: u64, event: NodeEvent) {
        self.record(TraceEvent::Member { member, event });
    }
}

/// FNV-1a 64 over the bytes written to it: bincode streams each record here, so the hash
/// needs no buffer per record. (bincode, not JSON: the same records, without formatting
/// every number as text, which was most of the fingerprint's cost.)
struct Fnv1a64(u64);

impl std::io::Write for Fnv1a64 {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        for &byte in bytes {
            self.0 ^= u64::from(byte);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The run's fingerprint: a stable hash over the trace and the history.
pub fn fingerprint(trace: &Trace, history: &History) -> u64 {
    let mut hash = Fnv1a64(0xcbf2_9ce4_8422_2325);
    for record in trace {
        bincode::serialize_into(&mut hash, record).expect("trace records serialize");
    }
    for op in &history.ops {
        bincode::serialize_into(&mut hash, op).expect("operations serialize");
    }
    for watch in &history.watches {
        bincode::serialize_into(&mut hash, watch).expect("watch reports serialize");
    }
    hash.0
}

/// Counts that summarise a run in one line.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceSummary {
    pub elections: u64,
    pub max_term: u64,
    pub faults: u64,
    pub crashes: u64,
    pub entries_committed: u64,
    /// Snapshots members took of their own key space (log compactions).
    #[serde(default)]
    pub snapshots_taken: u64,
    /// Snapshots members installed from a leader (they had fallen behind its log).
    #[serde(default)]
    pub snapshots_installed: u64,
    /// The operator's membership work that completed: members added (as learners),
    /// promoted, removed, and leader transfers; steps it gave up on.
    #[serde(default)]
    pub members_added: u64,
    #[serde(default)]
    pub members_promoted: u64,
    #[serde(default)]
    pub members_removed: u64,
    #[serde(default)]
    pub leader_transfers: u64,
    #[serde(default)]
    pub operator_gave_up: u64,
    /// Planned maintenance: members restarted and replaced, and actions that stopped before
    /// their end (the workload ended while they waited for the budget, or a step gave up).
    #[serde(default)]
    pub maintenance_restarts: u64,
    #[serde(default)]
    pub maintenance_replacements: u64,
    #[serde(default)]
    pub maintenance_stopped: u64,
    pub ops: u64,
    pub ops_ok: u64,
    pub ops_failed: u64,
    pub ops_unknown: u64,
    /// BUGGIFY points fired (`buggified <point>`) and aimed-crash windows and crashes by
    /// moment (`aimed window <moment>`, `aimed crash <moment>`: a crash that started while
    /// the window was open); empty, and left out, in runs without either.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub rare_paths: std::collections::BTreeMap<String, u64>,
}

impl TraceSummary {
    /// Snapshot and membership counts by name (for a campaign's totals).
    pub fn cluster_events(&self) -> [(&'static str, u64); 10] {
        [
            ("snapshots taken", self.snapshots_taken),
            ("snapshots installed", self.snapshots_installed),
            ("members added", self.members_added),
            ("members promoted", self.members_promoted),
            ("members removed", self.members_removed),
            ("leader transfers", self.leader_transfers),
            ("operator steps given up", self.operator_gave_up),
            ("maintenance restarts", self.maintenance_restarts),
            ("maintenance replacements", self.maintenance_replacements),
            ("maintenance actions stopped", self.maintenance_stopped),
        ]
    }
}

pub fn summarize(trace: &Trace, history: &History) -> TraceSummary {
    let mut summary = TraceSummary::default();
    let mut committed = std::collections::BTreeSet::new();
    let mut aimed_window = None;
    for record in trace {
        match &record.event {
            TraceEvent::Member { event, .. } => match event {
                NodeEvent::RoleChanged { role, term, .. } => {
                    summary.max_term = summary.max_term.max(*term);
                    if role == "Leader" {
                        summary.elections += 1;
                    }
                }
                NodeEvent::Applied { index, .. } => {
                    committed.insert(*index);
                }
                NodeEvent::SnapshotTaken { .. } => summary.snapshots_taken += 1,
                NodeEvent::SnapshotInstalled { .. } => summary.snapshots_installed += 1,
                NodeEvent::Buggified { point } => {
                    *summary
                        .rare_paths
                        .entry(format!("buggified {point}"))
                        .or_default() += 1;
                }
                _ => {}
            },
            TraceEvent::Operator { step, .. } => match step {
                OperatorStep::Added { .. } => summary.members_added += 1,
                OperatorStep::Promoted { .. } => summary.members_promoted += 1,
                OperatorStep::Removed { .. } => summary.members_removed += 1,
                OperatorStep::Transferred { .. } => summary.leader_transfers += 1,
                OperatorStep::GaveUp { .. } => summary.operator_gave_up += 1,
                OperatorStep::Skipped { .. } => {}
            },
            TraceEvent::Maintenance { step, .. } => match step {
                MaintenanceStep::Restarted { .. } => summary.maintenance_restarts += 1,
                MaintenanceStep::Replaced { .. } => summary.maintenance_replacements += 1,
                MaintenanceStep::Stopping { .. } => summary.maintenance_stopped += 1,
                _ => {}
            },
            TraceEvent::FaultEnd {
                fault: Fault::AimedCrash { .. },
                ..
            } => aimed_window = None,
            TraceEvent::FaultStart { fault, members } => {
                summary.faults += 1;
                match (fault, aimed_window) {
                    (Fault::AimedCrash { moment, .. }, _) => {
                        aimed_window = Some(*moment);
                        let name = format!("aimed window {moment:?}");
                        *summary.rare_paths.entry(name).or_default() += 1;
                    }
                    (Fault::Crash { .. }, Some(moment)) => {
                        let name = format!("aimed crash {moment:?}");
                        *summary.rare_paths.entry(name).or_default() += 1;
                    }
                    _ => {}
                }
                // A disk fault's member is crashed too: at the start (rot), or at the end
                // (fsync errors, a full disk).
                if matches!(
                    fault,
                    Fault::Crash { .. }
                        | Fault::CrashLeader
                        | Fault::ZoneDown { .. }
                        | Fault::FsyncError { .. }
                        | Fault::DiskFull { .. }
                        | Fault::CorruptSynced { .. }
                        | Fault::DiskReadError { .. }
                        | Fault::AimedCrash { .. }
                ) {
                    summary.crashes += members.len() as u64;
                }
            }
            _ => {}
        }
    }
    summary.entries_committed = committed.len() as u64;
    for op in &history.ops {
        summary.ops += 1;
        match op.outcome {
            faultline_invariants::history::Outcome::Ok(_) => summary.ops_ok += 1,
            faultline_invariants::history::Outcome::Failed(_) => summary.ops_failed += 1,
            faultline_invariants::history::Outcome::Unknown(_) => summary.ops_unknown += 1,
        }
    }
    summary
}
