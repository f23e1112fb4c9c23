//! Snapshots inside a member: restart from a snapshot plus the WAL after it, local log
//! compaction, and installing a snapshot sent by the leader.
//!
//! Write order (storage's crate docs): the snapshot file, then the WAL marker and a sync, then
//! `release_to`, so a power loss anywhere restarts consistently.
//!
//! Local compaction keeps a margin: at `snapshot_threshold_entries` applied entries past the
//! last snapshot the member captures its key space at the applied index, and compacts Raft's
//! log there only once `snapshot_catch_up_entries` more entries are applied (etcd's
//! `SnapshotCatchUpEntries`), so a follower a little behind catches up by entries instead of
//! receiving the whole state.

use faultline_mvcc::{KvStore, LeaseClock, Snapshot as KvSnapshot};
use faultline_raft::{LogIndex, Snapshot, SnapshotMetadata};
use serde::{Deserialize, Serialize};

use std::collections::{BTreeMap, BTreeSet};

use super::{Attributes, DiskFailure, MemberAttrs, NodeCore};
use crate::NodeEvent;

/// What a member's snapshot file holds: Raft's metadata and Raft's snapshot data, which is the
/// bincode of the MVCC state (`faultline_mvcc::Snapshot`, with compaction revision and
/// leases) at `metadata.index`.
#[derive(Serialize, Deserialize)]
pub(crate) struct SnapshotPayload {
    pub metadata: SnapshotMetadata,
    pub data: Vec<u8>,
}

/// The replicated state as Raft carries it in `Snapshot::data`: the MVCC state and the
/// attributes of every member added so far (the configuration itself is in the metadata).
#[derive(Serialize, Deserialize)]
struct StateSnapshot {
    kv: KvSnapshot,
    members: BTreeMap<u64, MemberAttrs>,
    /// IDs of members whose removal was applied (never added again).
    removed_ids: BTreeSet<u64>,
    /// The name and client URLs each member published (`publish.rs`); appended last, so a
    /// snapshot written before publishes existed is the same bytes without it.
    attributes: BTreeMap<u64, Attributes>,
}

/// A snapshot's state as written before members published attributes.
#[derive(Deserialize)]
struct StateSnapshotBeforePublish {
    kv: KvSnapshot,
    members: BTreeMap<u64, MemberAttrs>,
    removed_ids: BTreeSet<u64>,
}

/// The replicated state a snapshot restores.
pub(crate) struct RestoredState {
    pub kv: KvStore,
    pub members: BTreeMap<u64, MemberAttrs>,
    pub removed_ids: BTreeSet<u64>,
    pub attributes: BTreeMap<u64, Attributes>,
}

impl RestoredState {
    /// The state of a member with no snapshot: `kv` and nothing else.
    pub(crate) fn empty(kv: KvStore) -> RestoredState {
        RestoredState {
            kv,
            members: BTreeMap::new(),
            removed_ids: BTreeSet::new(),
            attributes: BTreeMap::new(),
        }
    }
}

pub(crate) fn encode_kv(kv: &KvStore) -> Vec<u8> {
    bincode::serialize(&kv.snapshot()).expect("MVCC snapshots always serialize")
}

fn encode_state(
    kv: &KvStore,
    members: &BTreeMap<u64, MemberAttrs>,
    removed_ids: &BTreeSet<u64>,
    attributes: &BTreeMap<u64, Attributes>,
) -> Vec<u8> {
    bincode::serialize(&StateSnapshot {
        kv: kv.snapshot(),
        members: members.clone(),
        removed_ids: removed_ids.clone(),
        attributes: attributes.clone(),
    })
    .expect("state snapshots always serialize")
}

/// The state in a snapshot's data; `canary` is this member's store canary (not replicated
/// state: set again on every restore).
pub(crate) fn decode_state(data: &[u8], canary: Option<faultline_mvcc::KvCanary>) -> RestoredState {
    let snapshot: StateSnapshot = bincode::deserialize(data).unwrap_or_else(|_| {
        // Written before publishes existed: no member has attributes yet (each publishes
        // again when it starts).
        let old: StateSnapshotBeforePublish =
            bincode::deserialize(data).expect("a snapshot's data holds a serialized state");
        StateSnapshot {
            kv: old.kv,
            members: old.members,
            removed_ids: old.removed_ids,
            attributes: BTreeMap::new(),
        }
    });
    RestoredState {
        kv: KvStore::restore_with_canary(snapshot.kv, canary),
        members: snapshot.members,
        removed_ids: snapshot.removed_ids,
        attributes: snapshot.attributes,
    }
}

/// Raft's snapshot from a snapshot file's payload.
pub(crate) fn decode_payload(payload: &[u8]) -> Snapshot {
    let SnapshotPayload { metadata, data } =
        bincode::deserialize(payload).expect("a snapshot file holds a serialized payload");
    Snapshot { metadata, data }
}

fn encode_payload(snapshot: &Snapshot) -> Vec<u8> {
    bincode::serialize(&SnapshotPayload {
        metadata: snapshot.metadata.clone(),
        data: snapshot.data.clone(),
    })
    .expect("payloads always serialize")
}

/// A capture of the key space at `index`, waiting for the catch-up margin before it compacts.
pub(crate) struct PendingCompaction {
    pub index: LogIndex,
    pub data: Vec<u8>,
}

impl NodeCore {
    /// After applying (and `advance`): capture the key space when the threshold is reached,
    /// and compact once the margin after a capture is applied.
    pub(super) fn maybe_compact(&mut self) -> Result<(), DiskFailure> {
        let threshold = self.config.snapshot_threshold_entries;
        if threshold == 0 {
            return Ok(());
        }
        let last = self.raft_snapshot_index();
        if self.pending_compaction.is_none() && self.applied.0 >= last.0 + threshold {
            self.pending_compaction = Some(PendingCompaction {
                index: self.applied,
                data: encode_state(
                    &self.kv,
                    &self.address_book,
                    &self.removed_ids,
                    &self.publishing.applied,
                ),
            });
        }
        let due = self.pending_compaction.as_ref().is_some_and(|pending| {
            self.applied.0 >= pending.index.0 + self.config.snapshot_catch_up_entries
        });
        if !due {
            if !self.buggify_snapshot_early(last) {
                return Ok(());
            }
            // BUGGIFY: compact now (the capture waiting for its margin, or one taken now).
            if self.pending_compaction.is_none() {
                self.pending_compaction = Some(PendingCompaction {
                    index: self.applied,
                    data: encode_state(
                        &self.kv,
                        &self.address_book,
                        &self.removed_ids,
                        &self.publishing.applied,
                    ),
                });
            }
        }
        let PendingCompaction { index, data } = self.pending_compaction.take().expect("due");
        if index <= last {
            return Ok(()); // a leader's snapshot overtook it
        }
        // Raft computes the metadata (term and configuration at `index`). Nothing leaves the
        // member between this call and the file being durable (all synchronous), and a crash
        // before the file leaves the WAL untouched, so this is the storage order in effect.
        self.raft.compact(index, data);
        let snapshot = self.raft.snapshot().expect("just compacted").clone();
        self.persist_snapshot(&snapshot)?;
        if self.halted {
            return Ok(()); // an aimed crash at `MidSnapshot`
        }
        self.wal
            .release_to(index)
            .map_err(|e| DiskFailure::new("WAL release after a snapshot", e))?;
        self.observer.on_event(
            self.config.id,
            NodeEvent::SnapshotTaken {
                index: index.0,
                term: snapshot.metadata.term.0,
                wal_bytes: self.wal.len_bytes(),
                wal_segments: self.wal.segment_files().len() as u64,
                log_entries: self.raft.log_entries().len() as u64,
            },
        );
        Ok(())
    }

    fn raft_snapshot_index(&self) -> LogIndex {
        self.raft
            .snapshot()
            .map_or(LogIndex(0), |s| s.metadata.index)
    }

    /// The snapshot file, then the WAL marker, synced. Between the two lies the `MidSnapshot`
    /// moment of aimed crashes: when the observer halts the member there, nothing more is
    /// written (the caller sees `self.halted`).
    pub(super) fn persist_snapshot(&mut self, snapshot: &Snapshot) -> Result<(), DiskFailure> {
        let SnapshotMetadata { index, term, .. } = snapshot.metadata;
        if self.canary_active(crate::Canary::MarkerBeforeSnapshot) {
            return self.canary_persist_marker_first(snapshot);
        }
        self.snapshots
            .save(index, term, &encode_payload(snapshot))
            .map_err(|e| DiskFailure::new("snapshot file write", e))?;
        if self.halt_mid_snapshot(index, term) {
            return Ok(());
        }
        self.wal
            .save_snapshot_marker(index, term)
            .map_err(|e| DiskFailure::new("WAL snapshot marker write", e))?;
        self.wal.sync().map_err(|e| DiskFailure::new("WAL sync", e))
    }

    /// A snapshot from the leader, already durable: replace the key space, rebuild the lease
    /// clock, move every watcher to catch up from the restored store.
    pub(super) fn install_snapshot(&mut self, snapshot: &Snapshot) {
        let index = snapshot.metadata.index;
        assert!(
            index > self.applied,
            "a leader's snapshot lies beyond what this member applied"
        );
        let canary = self.config.canary.and_then(crate::Canary::kv_canary);
        let restored = decode_state(&snapshot.data, canary);
        self.removed_ids = restored.removed_ids;
        self.kv = restored.kv;
        // The leader's committed view wins over what this member saw appended.
        self.address_book.extend(restored.members);
        self.publishing.applied = restored.attributes;
        self.applied_conf = snapshot.metadata.conf_state.clone();
        assert!(self.kv.take_events().is_empty());
        self.applied = index;
        self.pending_compaction = None;
        // Leases: the store's set, with fresh expiries (only a leader runs them, and a member
        // installing a leader's snapshot is a follower).
        let mut lease_clock = LeaseClock::new();
        lease_clock.sync(&self.kv.leases(), self.clock.now_ms());
        self.lease_clock = lease_clock;
        self.revoking.clear();
        // Only a leader holds these, and a member installing a snapshot is a follower.
        self.fail_keep_alives_awaiting_revoke(self.not_leader());
        // Watchers continue from their own next revision, replayed from the restored store's
        // history (or canceled with its compact revision): none goes back in time or skips.
        let outputs = self.hub.resync(&self.kv);
        self.deliver_watch(outputs);
        // Our proposals at or below the snapshot may or may not be the entries it covers.
        let covered: Vec<LogIndex> = self
            .pending_writes
            .range(..=index)
            .map(|(&i, _)| i)
            .collect();
        for i in covered {
            let write = self.pending_writes.remove(&i).expect("listed above");
            write.waiter.fail(faultline_api::EtcdError::LeaderChanged);
        }
        self.observer.on_event(
            self.config.id,
            NodeEvent::SnapshotInstalled {
                index: index.0,
                term: snapshot.metadata.term.0,
                revision: self.kv.current_revision(),
            },
        );
    }

    /// The marker-before-snapshot canary: the WAL's marker, synced, then the file.
    fn canary_persist_marker_first(&mut self, snapshot: &Snapshot) -> Result<(), DiskFailure> {
        let SnapshotMetadata { index, term, .. } = snapshot.metadata;
        self.wal
            .save_snapshot_marker(index, term)
            .map_err(|e| DiskFailure::new("WAL snapshot marker write", e))?;
        self.wal
            .sync()
            .map_err(|e| DiskFailure::new("WAL sync", e))?;
        if self.halt_mid_snapshot(index, term) {
            return Ok(());
        }
        self.snapshots
            .save(index, term, &encode_payload(snapshot))
            .map_err(|e| DiskFailure::new("snapshot file write", e))
    }
}
