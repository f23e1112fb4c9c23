//! The vocabulary of the crate: identifiers, log entries, messages, configuration and the
//! small value types a node reads back from `Raft`.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::conf::{ConfChange, ConfState, Membership};
pub use crate::ids::{LogIndex, NodeId, Term};

/// One entry of the replicated log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub term: Term,
    pub index: LogIndex,
    /// The application's command. Empty for the no-op entry a new leader appends (Raft paper
    /// §8: it lets the leader commit entries of earlier terms); for a configuration change,
    /// the proposer's context. The node skips empty entries when applying commands.
    pub data: Vec<u8>,
    /// What the entry is: an application command (or the no-op), or a configuration change.
    pub kind: EntryKind,
}

/// What a log entry carries besides `data`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum EntryKind {
    /// An application command in `data` (or, with empty `data`, a new leader's no-op).
    #[default]
    Normal,
    /// A membership change (`data` is the proposer's context for it, opaque to Raft). It takes effect on every server as soon as the
    /// entry is in its log, committed or not (see `Raft::propose_conf_change`), and
    /// `conf_state` is the configuration from this entry on.
    ConfChange {
        change: ConfChange,
        conf_state: ConfState,
    },
}

/// What a snapshot covers: the log up to and including (`index`, `term`), and the
/// configuration in force at `index`.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SnapshotMetadata {
    pub index: LogIndex,
    pub term: Term,
    pub conf_state: ConfState,
}

/// The application's state as of `metadata.index`, which replaces the log up to that index.
/// `data` is opaque to Raft: the application produces it (`Raft::compact`) and restores its
/// state machine from it (`Ready::snapshot`).
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Snapshot {
    pub metadata: SnapshotMetadata,
    pub data: Vec<u8>,
}

impl fmt::Debug for Snapshot {
    /// The data can be large: show its size only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Snapshot")
            .field("metadata", &self.metadata)
            .field("data_bytes", &self.data.len())
            .finish()
    }
}

/// What must be durable before any message that depends on it leaves the node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct HardState {
    pub term: Term,
    pub vote: Option<NodeId>,
    pub commit: LogIndex,
}

/// A message between two Raft peers. `term` is the sender's term, except for pre-vote
/// messages, where it is the term the pre-candidate would campaign in (Raft thesis §9.6).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub from: NodeId,
    pub to: NodeId,
    pub term: Term,
    pub body: MessageBody,
}

/// The kinds of messages. Every request carries what the receiver needs to answer on its own;
/// every response carries enough to be matched against the request without per-request state
/// at the sender (responses can arrive late, twice, or out of order).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MessageBody {
    /// "Would you vote for me in `Message::term`?" Nobody changes state on it (thesis §9.6).
    PreVote {
        last_log_index: LogIndex,
        last_log_term: Term,
    },
    PreVoteResponse {
        granted: bool,
    },
    /// RequestVote RPC (Raft paper §5.2, Figure 2). `leader_transfer` marks a campaign the
    /// leader asked for (`TimeoutNow`): voters that still hear from that leader grant it
    /// anyway, where they would otherwise ignore a vote request during their leader lease.
    RequestVote {
        last_log_index: LogIndex,
        last_log_term: Term,
        leader_transfer: bool,
    },
    RequestVoteResponse {
        granted: bool,
    },
    /// AppendEntries RPC carrying entries (Raft paper §5.3, Figure 2).
    AppendEntries {
        prev_log_index: LogIndex,
        prev_log_term: Term,
        entries: Vec<Entry>,
        leader_commit: LogIndex,
    },
    AppendEntriesResponse {
        result: AppendResult,
    },
    /// An AppendEntries without entries and without the consistency check (as in etcd):
    /// it asserts leadership, resets election timers and carries the commit index, limited by
    /// the leader to what it knows the follower holds. `read_ctx` is the newest pending
    /// ReadIndex context; an answer at the leader's term confirms leadership for it.
    Heartbeat {
        leader_commit: LogIndex,
        read_ctx: Option<u64>,
    },
    HeartbeatResponse {
        read_ctx: Option<u64>,
    },
    /// The leader's snapshot, for a follower whose next entry the leader has compacted away
    /// (Raft paper §7, InstallSnapshot RPC, sent whole rather than in chunks). Answered with an
    /// `AppendEntriesResponse`: `Accepted { match_index }`, the index the follower now holds
    /// the leader's log up to.
    InstallSnapshot {
        snapshot: Snapshot,
    },
    /// Leader transfer (Raft thesis §3.10): the leader tells a caught-up voter to campaign at
    /// once, without waiting for its election timeout or a pre-vote.
    TimeoutNow,
}

/// How a follower answered an AppendEntries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AppendResult {
    /// The follower's log matches the leader's up to `match_index`.
    Accepted { match_index: LogIndex },
    /// The consistency check at `rejected_prev_index` failed. The hint lets the leader skip a
    /// whole term per round trip instead of one index (Raft paper §5.3, last paragraphs):
    /// `hint_index` is the largest index `<= rejected_prev_index` in the follower's log whose
    /// term is `<= ` the leader's `prev_log_term`, and `hint_term` is its term.
    Rejected {
        rejected_prev_index: LogIndex,
        hint_index: LogIndex,
        hint_term: Term,
    },
}

/// Static configuration of one Raft instance. No `Default`: every field changes safety or
/// liveness, so callers spell each one out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    pub id: NodeId,
    /// The bootstrap configuration: the voters before any membership change. Every member of
    /// a cluster passes the same list; it applies until the log (or a snapshot) holds a
    /// configuration. A node that joins later passes the same list without being in it, and
    /// learns the current configuration from the leader.
    pub voters: Vec<NodeId>,
    /// Followers wait a random number of ticks in `[t, 2t)` before campaigning (Raft paper
    /// §5.2); also the check-quorum period and the follower's leader lease.
    pub election_timeout_ticks: u64,
    pub heartbeat_interval_ticks: u64,
    /// Campaign in a pre-vote phase first, so a node that was partitioned away does not
    /// disrupt the cluster with a higher term when it comes back (Raft thesis §9.6).
    pub pre_vote: bool,
    /// A leader steps down if it has not heard from a quorum within an election timeout, and
    /// followers that have a live leader ignore vote requests (Raft thesis §6.2, §4.2.3).
    pub check_quorum: bool,
    pub max_entries_per_append: usize,
    /// A planted safety bug to switch on (simulation and tests only). `Raft::new` refuses
    /// `Some` unless the crate is built with the `canaries` feature, so a normal build can
    /// never run one.
    pub canary: Option<Canary>,
}

/// Bounds that shape replication and membership changes but not safety, so they have a
/// `Default` (unlike `Config`). Passed to `Raft::recover`; `Raft::new` uses the defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Per follower in the replicate state: at most this many appends carrying entries may
    /// be unacknowledged (etcd's `MaxInflightMsgs`). Bounds the leader's outgoing queue and
    /// what a slow follower has to absorb.
    pub max_inflight_appends: usize,
    /// A learner may be promoted to voter only when its match index is within this many
    /// entries of the leader's last index (see `ConfChangeError::LearnerNotCaughtUp`).
    pub promote_max_lag_entries: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_inflight_appends: 64,
            promote_max_lag_entries: 16,
        }
    }
}

impl Limits {
    /// Panics on bounds that cannot work; called by `Raft::recover`.
    pub fn validate(&self) {
        assert!(
            self.max_inflight_appends > 0,
            "limits: max_inflight_appends must be > 0"
        );
    }
}

/// A re-introducible Raft safety bug (a canary), proving that the checkers catch it. The
/// variants always exist (so configs and seed files can name them); the buggy code paths are
/// compiled only with the `canaries` cargo feature.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Canary {
    /// Grant votes without the up-to-date check of the Raft paper §5.4.1: a candidate that
    /// misses committed entries can win and overwrite them.
    VoteWithoutLogCheck,
    /// Commit any entry replicated on a quorum, even one of an earlier term (Raft paper
    /// §5.4.2, Figure 8): a later leader can overwrite it.
    CommitOldTerm,
    /// Membership changes take effect on append, but the leader accepts a second change while
    /// the first is uncommitted, and a change before its first commit in its term: the
    /// classic single-server-change bug (Ongaro, raft-dev 2015; thesis errata). Two
    /// configurations two servers apart can then elect leaders with disjoint majorities.
    ConfChangeOnAppendNoGuard,
    /// A follower installs a snapshot older than its commit index, truncating entries it
    /// already knew committed and rolling its state machine back.
    InstallStaleSnapshot,
    /// A learner is promoted to voter before it has caught up (etcd refuses this): the quorum
    /// grows by a node that holds nothing yet.
    PromoteUnreadyLearner,
    /// A leader that steps down through check-quorum never campaigns again (it still votes
    /// and follows) until it restarts: a liveness bug, no safety one.
    NoCampaignAfterStepDown,
}

impl Config {
    /// Panics on a configuration that cannot work; called by `Raft::new`.
    pub fn validate(&self) {
        assert!(!self.voters.is_empty(), "config: voters must not be empty");
        assert!(
            cfg!(feature = "canaries") || self.canary.is_none(),
            "config: canary {:?} requested, but faultline-raft was built without the \
             `canaries` feature",
            self.canary
        );
        let mut sorted = self.voters.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), self.voters.len(), "config: duplicate voters");
        assert!(
            self.heartbeat_interval_ticks > 0,
            "config: heartbeat interval must be > 0"
        );
        // A heartbeat must fit into an election timeout at least once or followers campaign
        // against a healthy leader.
        assert!(
            self.election_timeout_ticks > self.heartbeat_interval_ticks,
            "config: election_timeout_ticks ({}) must exceed heartbeat_interval_ticks ({})",
            self.election_timeout_ticks,
            self.heartbeat_interval_ticks
        );
        assert!(
            self.max_entries_per_append > 0,
            "config: max_entries_per_append must be > 0"
        );
    }
}

/// What storage recovered after a crash: the last persisted hard state and the persisted log,
/// contiguous from index 1, or (with `Raft::recover`) from just after the recovered
/// snapshot. A fresh node passes `PersistedState::default()`.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PersistedState {
    pub hard_state: HardState,
    pub entries: Vec<Entry>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    Follower,
    PreCandidate,
    Candidate,
    Leader,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Role::Follower => "follower",
            Role::PreCandidate => "pre-candidate",
            Role::Candidate => "candidate",
            Role::Leader => "leader",
        };
        f.write_str(name)
    }
}

/// Volatile state that a node may want to report (who leads, in which term).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SoftState {
    pub leader: Option<NodeId>,
    pub role: Role,
    pub term: Term,
}

/// A confirmed ReadIndex request: once the node has applied up to `index`, it may serve the
/// read tagged `ctx` from its state machine, and the read is linearizable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadState {
    pub ctx: u64,
    pub index: LogIndex,
}

/// A snapshot of the instance, for logs, metrics and checkers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    pub id: NodeId,
    pub role: Role,
    pub term: Term,
    pub leader: Option<NodeId>,
    pub commit: LogIndex,
    pub applied: LogIndex,
    pub last_index: LogIndex,
    pub last_term: Term,
    pub vote: Option<NodeId>,
    /// The last index covered by the snapshot (0 before any compaction): the log holds
    /// entries from `snapshot_index + 1` on.
    pub snapshot_index: LogIndex,
    /// This node's place in the configuration in force (the latest in its log). A node
    /// that is not a voter never campaigns; one that finds itself `NotMember` after a
    /// committed removal of itself should stop (see `Raft::propose_conf_change`).
    pub membership: Membership,
}

/// A follower's replication state as the leader sees it (see `Raft::progress`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProgressState {
    /// Where the follower's log matches ours is unknown: one append at a time.
    Probe,
    /// Appends stream, up to `Limits::max_inflight_appends` unacknowledged.
    Replicate,
    /// A snapshot is on its way; nothing else is sent until it is acknowledged.
    Snapshot,
}

impl fmt::Display for ProgressState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            ProgressState::Probe => "probe",
            ProgressState::Replicate => "replicate",
            ProgressState::Snapshot => "snapshot",
        };
        f.write_str(name)
    }
}

/// What the leader knows about one follower, for status reports and checkers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerProgress {
    pub id: NodeId,
    pub match_index: LogIndex,
    pub next_index: LogIndex,
    pub state: ProgressState,
    /// Unacknowledged appends that carried entries (replicate state only).
    pub inflight_appends: usize,
    /// Heard from since the last check-quorum round.
    pub recently_active: bool,
}

/// Why `Raft::transfer_leader` was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TransferError {
    /// Only the leader hands leadership over; `leader_hint` is the leader this node believes
    /// in.
    NotLeader { leader_hint: Option<NodeId> },
    /// Only a voter of the configuration can become leader.
    NotVoter { node: NodeId },
}

impl fmt::Display for TransferError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransferError::NotLeader { leader_hint } => {
                write!(f, "not the leader (leader hint {leader_hint:?})")
            }
            TransferError::NotVoter { node } => write!(f, "node {node} is not a voter"),
        }
    }
}

impl std::error::Error for TransferError {}

/// Why a proposal or a read was refused. Not an assertion: losing leadership is normal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProposeError {
    /// Only the leader accepts proposals and reads. `leader_hint` is the leader this node
    /// believes in, if any; the caller decides whether to redirect. A leader handing
    /// leadership over (`Raft::transfer_leader`) refuses proposals the same way, naming the
    /// transfer's target, which is about to lead.
    NotLeader { leader_hint: Option<NodeId> },
}

impl fmt::Display for ProposeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProposeError::NotLeader {
                leader_hint: Some(leader),
            } => write!(f, "not the leader (leader is probably node {leader})"),
            ProposeError::NotLeader { leader_hint: None } => {
                write!(f, "not the leader (leader unknown)")
            }
        }
    }
}

impl std::error::Error for ProposeError {}
