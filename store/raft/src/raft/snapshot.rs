//! Log compaction and snapshots (Raft paper §7).
//!
//! The application snapshots its state machine at an applied index and hands the bytes to
//! `Raft::compact`, which drops the log up to there. A leader whose log no longer holds the
//! entry a follower needs next sends its latest snapshot instead (`InstallSnapshot`); the
//! follower installs it only if it lies beyond its commit index, so a snapshot never takes away
//! an entry the follower already knows committed (a late or duplicated snapshot message is
//! answered, not installed).

use super::*;

impl Raft {
    /// Compacts the log up to `index` with `data`, the application's snapshot of its state
    /// machine after applying `index` (opaque to Raft). `index` must be applied already
    /// (`status().applied`); an `index` at or below the current snapshot is ignored.
    ///
    /// What the node does, in order: 1. persist the snapshot durably (index, term and
    /// configuration from `snapshot()` afterwards, or the ones it computes itself, plus
    /// `data`); 2. call `compact`; 3. from then on it may drop persisted entries up to `index`,
    /// and must pass the snapshot to `Raft::recover` after a restart. Raft keeps the latest
    /// snapshot in memory to send to followers that fall behind it.
    pub fn compact(&mut self, index: LogIndex, data: Vec<u8>) {
        if index <= self.log.snapshot_index() {
            return;
        }
        self.log.compact(index, data);
        self.check_invariants();
    }

    /// A snapshot from the leader of our term.
    pub(super) fn handle_snapshot(&mut self, from: NodeId, snapshot: Snapshot) {
        let SnapshotMetadata { index, term, .. } = snapshot.metadata;
        let match_index = if index <= self.log.commit
            && self.canary_active(Canary::InstallStaleSnapshot)
            && index < self.log.commit
        {
            // Planted bug: install it anyway, dropping committed entries after it.
            self.log.restore_unchecked(snapshot);
            index
        } else if index <= self.log.commit {
            // Older than what we know committed: installing it would truncate committed
            // entries and roll the state machine back. Just say how far we are.
            self.log.commit
        } else if self.log.term(index) == Some(term) {
            // Our log holds the snapshot's last entry, so by Log Matching it holds everything
            // the snapshot covers: commit up to it and keep the log (and what follows it,
            // which the leader's next append checks as usual).
            self.log.commit_to(index);
            index
        } else {
            self.log.restore(snapshot);
            index
        };
        self.send(
            from,
            self.term,
            MessageBody::AppendEntriesResponse {
                result: AppendResult::Accepted { match_index },
            },
        );
    }

    /// Sends our latest snapshot to a follower whose next entry we compacted away.
    pub(super) fn send_snapshot(&mut self, to: NodeId) {
        let snapshot = self.log.snapshot().clone();
        assert!(
            snapshot.metadata.index > LogIndex(0),
            "a compacted index implies a snapshot"
        );
        let commit = self.log.commit;
        self.progress_mut(to)
            .sent_snapshot(snapshot.metadata.index, commit);
        self.send(to, self.term, MessageBody::InstallSnapshot { snapshot });
    }
}
