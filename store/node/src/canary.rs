//! Canaries: re-introducible bugs, one variant each, mapped to the crate that plants them.

use serde::{Deserialize, Serialize};

/// A re-introducible bug, selected at runtime. Its code exists only when the crate is built
/// with the `canaries` feature; asking for one without it is refused at startup.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Canary {
    /// Followers answer linearizable reads from their local, possibly stale, state.
    StaleFollowerRead,
    /// Writes are acknowledged as soon as they are applied, before the WAL is synced
    /// (etcd #14370: a single-node cluster loses an acknowledged write on crash).
    AckBeforeSync,
    /// The leader answers linearizable reads from its local state without a ReadIndex round,
    /// and does not step down when it stops hearing from a quorum (no check-quorum), so a
    /// leader cut off from its peers keeps serving stale reads.
    LeaderLocalRead,
    /// Raft grants votes without the §5.4.1 log check (`faultline_raft::Canary`).
    VoteWithoutLogCheck,
    /// Raft commits an earlier term's entry by counting replicas (§5.4.2, Figure 8).
    CommitOldTerm,
    /// etcd #15271 (watch travelling back in time after a network partition): when the member
    /// learns of a new term (as after a partition, where etcd's member restored a snapshot),
    /// its watch hub resyncs every watcher from its start revision, re-sending old revisions.
    WatchBackInTime,
    /// etcd #18089 (watch dropping an event when compacting on delete): compaction at R also
    /// drops a deletion written exactly at R, so a watch from R misses it.
    WatchDropOnCompactDelete,
    /// etcd #15220 (progress notification not synced with the stream): progress is sent at
    /// the current revision while a watcher still has events to deliver.
    ProgressBeforeEvents,
    /// Issue 16 (etcd 3.4.23 has it too): a txn that deletes a key to the end of the key space
    /// and then puts it with ignore_value/ignore_lease is proposed, and every member panics
    /// applying it, again at each restart (`faultline_mvcc::KvCanary::IgnorePutAfterDelete`).
    IgnorePutAfterDelete,
    /// etcd #17780 (revision decrease after a crash during compaction): a member restoring a
    /// snapshot (at restart, or installing the leader's) takes its revision from the newest
    /// record left after compaction instead of the snapshot's
    /// (`faultline_mvcc::KvCanary::RevisionFromRecords`).
    RevisionFromRecords,
    /// The classic single-server membership bug: a second change while the first is
    /// uncommitted (`faultline_raft::Canary::ConfChangeOnAppendNoGuard`).
    ConfChangeNoGuard,
    /// A follower installs a snapshot older than its commit index
    /// (`faultline_raft::Canary::InstallStaleSnapshot`).
    InstallStaleSnapshot,
    /// A learner promoted before it caught up (`faultline_raft::Canary::PromoteUnreadyLearner`).
    PromoteUnreadyLearner,
    /// Modelled on etcd #18055 (a snapshot file deleted while still needed, when two snapshots
    /// arrive in a short period): a new snapshot is renamed into place before it is durable
    /// and the older ones are purged (`faultline_storage::StorageCanary::PurgeBeforeDurable`).
    SnapshotPurgeBeforeDurable,
    /// etcd #9888 (leases never expire while leaders change): a new leader restarts every
    /// inherited lease at its full TTL, ignoring the lease checkpoints.
    LeaseNoCheckpoint,
    /// A follower acknowledges a keep-alive itself and never passes it on to the leader, so
    /// the lease expires while its client believes it alive.
    KeepAliveNotForwarded,
    /// A lock held by two clients at once: a create-if-absent txn ignores its compare when
    /// the key exists with another lease (`faultline_mvcc::KvCanary::LockCompareIgnored`).
    LockCompareIgnored,
    /// A failed WAL fsync is taken as done and the member goes on, where etcd stops
    /// (etcd #14370's cousin: acknowledged entries are lost at the next power loss)
    /// (`faultline_storage::StorageCanary::IgnoreFsyncError`).
    FsyncErrorIgnored,
    /// Planted in the simulator's maintenance operator, not in the member (the member ignores
    /// it): the operator disrupts without asking the disruption budget and drains a zone's
    /// voters all at once, so planned disruptions stack past what the cluster can lose
    /// (`faultline_sim`'s runner/maintenance.rs).
    MaintenanceIgnoresBudget,
    /// A Ready that only changes the hard state (a vote granted, a new term) is written but
    /// not synced before its messages leave ("the next entries' sync carries it"): a crash
    /// right after a grant loses the vote, and the voter votes again in the same term, for
    /// another candidate (two leaders in one term). Only an aimed crash reaches it.
    VoteNotSynced,
    /// A leader that steps down through check-quorum never campaigns again until it
    /// restarts (it still votes and follows): once every member did, no leader is ever
    /// elected again (`faultline_raft::Canary::NoCampaignAfterStepDown`). A liveness bug.
    NoCampaignAfterStepDown,
    /// Recovery takes a rotted WAL record for a torn tail and cuts the log there (and drops
    /// the later segments) instead of refusing to start: the member comes back without what
    /// it had synced and acknowledged (`faultline_storage::StorageCanary::RotTakenForTornTail`).
    /// Only rot of synced bytes reaches it.
    RotTakenForTornTail,
    /// A leader that has led a quiet cluster for 6 s (no member silent for an election
    /// timeout) answers linearizable ranges from a copy of its key space that only a change
    /// of term refreshes (`core/read_cache.rs`): stale reads. Any fault that deposes the
    /// leader or silences a member masks it; only a swarm-drawn subset without such faults
    /// (or with long quiet spells) reaches it.
    StableLeaderReadCache,
    /// A snapshot's WAL record (its marker, synced) is written before the snapshot file,
    /// where etcd saves the file first ("This makes it possible for the snapshot file to
    /// become orphaned, but prevents a WAL snapshot entry from having no corresponding
    /// snapshot file", etcd's storage.go): a crash while the snapshot is half written leaves
    /// a WAL that starts after a snapshot nobody wrote, and the member refuses to start.
    /// Only an aimed crash (`MidSnapshot`) reaches it.
    MarkerBeforeSnapshot,
}

impl Canary {
    pub const ALL: [Canary; 24] = [
        Canary::StaleFollowerRead,
        Canary::AckBeforeSync,
        Canary::LeaderLocalRead,
        Canary::VoteWithoutLogCheck,
        Canary::CommitOldTerm,
        Canary::WatchBackInTime,
        Canary::WatchDropOnCompactDelete,
        Canary::ProgressBeforeEvents,
        Canary::IgnorePutAfterDelete,
        Canary::RevisionFromRecords,
        Canary::ConfChangeNoGuard,
        Canary::InstallStaleSnapshot,
        Canary::PromoteUnreadyLearner,
        Canary::SnapshotPurgeBeforeDurable,
        Canary::LeaseNoCheckpoint,
        Canary::KeepAliveNotForwarded,
        Canary::LockCompareIgnored,
        Canary::FsyncErrorIgnored,
        Canary::MaintenanceIgnoresBudget,
        Canary::VoteNotSynced,
        Canary::NoCampaignAfterStepDown,
        Canary::RotTakenForTornTail,
        Canary::StableLeaderReadCache,
        Canary::MarkerBeforeSnapshot,
    ];

    /// The name used on the command line and in seed files.
    pub fn name(self) -> &'static str {
        match self {
            Canary::StaleFollowerRead => "stale-follower-read",
            Canary::AckBeforeSync => "ack-before-sync",
            Canary::LeaderLocalRead => "leader-local-read",
            Canary::VoteWithoutLogCheck => "vote-without-log-check",
            Canary::CommitOldTerm => "commit-old-term",
            Canary::WatchBackInTime => "watch-back-in-time",
            Canary::WatchDropOnCompactDelete => "watch-drop-on-compact-delete",
            Canary::ProgressBeforeEvents => "progress-before-events",
            Canary::IgnorePutAfterDelete => "ignore-put-after-delete",
            Canary::RevisionFromRecords => "revision-from-records",
            Canary::ConfChangeNoGuard => "conf-change-no-guard",
            Canary::InstallStaleSnapshot => "install-stale-snapshot",
            Canary::PromoteUnreadyLearner => "promote-unready-learner",
            Canary::SnapshotPurgeBeforeDurable => "snapshot-purge-before-durable",
            Canary::LeaseNoCheckpoint => "lease-no-checkpoint",
            Canary::KeepAliveNotForwarded => "keep-alive-not-forwarded",
            Canary::LockCompareIgnored => "lock-compare-ignored",
            Canary::FsyncErrorIgnored => "fsync-error-ignored",
            Canary::MaintenanceIgnoresBudget => "maintenance-ignores-budget",
            Canary::VoteNotSynced => "vote-not-synced",
            Canary::NoCampaignAfterStepDown => "no-campaign-after-step-down",
            Canary::RotTakenForTornTail => "rot-taken-for-torn-tail",
            Canary::StableLeaderReadCache => "stable-leader-read-cache",
            Canary::MarkerBeforeSnapshot => "marker-before-snapshot",
        }
    }

    /// The Raft-level bug this canary plants, if it lives in `faultline_raft`.
    pub fn raft_canary(self) -> Option<faultline_raft::Canary> {
        match self {
            Canary::VoteWithoutLogCheck => Some(faultline_raft::Canary::VoteWithoutLogCheck),
            Canary::CommitOldTerm => Some(faultline_raft::Canary::CommitOldTerm),
            Canary::ConfChangeNoGuard => Some(faultline_raft::Canary::ConfChangeOnAppendNoGuard),
            Canary::InstallStaleSnapshot => Some(faultline_raft::Canary::InstallStaleSnapshot),
            Canary::PromoteUnreadyLearner => Some(faultline_raft::Canary::PromoteUnreadyLearner),
            Canary::NoCampaignAfterStepDown => {
                Some(faultline_raft::Canary::NoCampaignAfterStepDown)
            }
            _ => None,
        }
    }

    /// The watch-hub bug this canary plants, if it lives in `faultline_mvcc::WatchHub`.
    pub fn watch_canary(self) -> Option<faultline_mvcc::WatchCanary> {
        match self {
            Canary::WatchBackInTime => Some(faultline_mvcc::WatchCanary::BackInTime),
            Canary::ProgressBeforeEvents => Some(faultline_mvcc::WatchCanary::ProgressBeforeEvents),
            _ => None,
        }
    }

    /// The key-space bug this canary plants, if it lives in `faultline_mvcc::KvStore`.
    pub fn kv_canary(self) -> Option<faultline_mvcc::KvCanary> {
        match self {
            Canary::IgnorePutAfterDelete => Some(faultline_mvcc::KvCanary::IgnorePutAfterDelete),
            Canary::RevisionFromRecords => Some(faultline_mvcc::KvCanary::RevisionFromRecords),
            Canary::LockCompareIgnored => Some(faultline_mvcc::KvCanary::LockCompareIgnored),
            _ => None,
        }
    }

    /// The storage bug this canary plants, if it lives in `faultline_storage`.
    pub fn storage_canary(self) -> Option<faultline_storage::StorageCanary> {
        match self {
            Canary::SnapshotPurgeBeforeDurable => {
                Some(faultline_storage::StorageCanary::PurgeBeforeDurable)
            }
            Canary::FsyncErrorIgnored => Some(faultline_storage::StorageCanary::IgnoreFsyncError),
            Canary::RotTakenForTornTail => {
                Some(faultline_storage::StorageCanary::RotTakenForTornTail)
            }
            _ => None,
        }
    }

    pub fn from_name(name: &str) -> Option<Canary> {
        Canary::ALL.into_iter().find(|c| c.name() == name)
    }
}
