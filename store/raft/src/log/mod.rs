//! The in-memory replicated log: a snapshot (the compacted prefix) followed by entries, and the
//! watermarks that connect it to the node's storage and state machine.
//!
//! ```text
//!   snapshot | snapshot+1 .. applied ..... commit ......... persisted .... handed_out ..... last
//!   <compacted>|<- applied ->|<- to apply ->|               |<- in a Ready ->|<- pending ->|
//! ```
//! `persisted` and `handed_out` are independent of `commit`/`applied` (a follower may learn
//! that an entry is committed before it has persisted it), so the picture shows one ordering
//! among several. Everything at or below the snapshot index is committed and applied (a
//! snapshot installed from the leader is applied by the node with the Ready that carries it).

use std::collections::BTreeMap;

use crate::conf::ConfState;
use crate::types::{Entry, EntryKind, LogIndex, Snapshot, SnapshotMetadata, Term};

#[derive(Debug)]
pub(crate) struct RaftLog {
    /// The compacted prefix: the log up to `snapshot.metadata.index` (index 0 and term 0, with
    /// empty data, before any compaction). Invariant: snapshot index <= commit.
    snapshot: Snapshot,
    /// `entries[i].index == snapshot index + i + 1`.
    entries: Vec<Entry>,
    /// The configuration-change entries in `entries`, by index, with the configuration each
    /// results in. The configuration in force is the last one (or the snapshot's): a change
    /// takes effect as soon as it is in the log (Raft thesis §4.1).
    confs: BTreeMap<LogIndex, ConfState>,
    /// A snapshot installed from the leader and not yet handed to the node in a `Ready`.
    snapshot_unstable: bool,
    /// Highest index the node confirmed durable through `advance`.
    /// Invariant: snapshot index <= persisted <= handed_out <= last_index.
    persisted: LogIndex,
    /// Highest index given to the node in a `Ready` (persisting or persisted).
    handed_out: LogIndex,
    /// Invariant: commit <= last_index. Never decreases.
    pub(crate) commit: LogIndex,
    /// Highest index given to the node in `Ready::committed_entries` (or `Ready::snapshot`).
    /// Invariant: applied <= applying <= commit, and snapshot index <= applying.
    applying: LogIndex,
    /// Highest index the node confirmed applied through `advance`.
    pub(crate) applied: LogIndex,
}

impl RaftLog {
    /// A log recovered from storage: everything in it is durable already. `entries` may still
    /// hold entries the snapshot covers (storage may drop them lazily); those are skipped,
    /// after checking that the one at the snapshot's index agrees with it.
    pub(crate) fn recovered(snapshot: Snapshot, entries: Vec<Entry>, commit: LogIndex) -> RaftLog {
        let snapshot_index = snapshot.metadata.index;
        if let Some(at_snapshot) = entries.iter().find(|entry| entry.index == snapshot_index) {
            assert_eq!(
                at_snapshot.term, snapshot.metadata.term,
                "recovered entry at the snapshot index {snapshot_index} disagrees with the snapshot"
            );
        }
        let entries: Vec<Entry> = entries
            .into_iter()
            .filter(|entry| entry.index > snapshot_index)
            .collect();
        for (position, entry) in entries.iter().enumerate() {
            assert_eq!(
                entry.index.0,
                snapshot_index.0 + position as u64 + 1,
                "recovered log must be contiguous from just after the snapshot (index {})",
                snapshot_index.next()
            );
        }
        let mut previous_term = snapshot.metadata.term;
        for entry in &entries {
            assert!(
                previous_term <= entry.term,
                "recovered log terms must not decrease"
            );
            previous_term = entry.term;
        }
        let last = LogIndex(snapshot_index.0 + entries.len() as u64);
        // The node persists commit together with (or after) the entries it covers, so a
        // recovered commit beyond the log means storage lost acknowledged writes. A snapshot
        // holds committed state only, so commit is at least its index.
        assert!(
            commit <= last,
            "recovered commit {commit} is beyond the recovered log's last index {last}"
        );
        let commit = commit.max(snapshot_index);
        let confs = conf_entries(&entries).collect();
        RaftLog {
            snapshot,
            entries,
            confs,
            snapshot_unstable: false,
            persisted: last,
            handed_out: last,
            commit,
            // The node restores its state machine from the snapshot before starting Raft.
            applying: snapshot_index,
            applied: snapshot_index,
        }
    }

    pub(crate) fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    /// The last index the snapshot covers (0 before any compaction).
    pub(crate) fn snapshot_index(&self) -> LogIndex {
        self.snapshot.metadata.index
    }

    pub(crate) fn last_index(&self) -> LogIndex {
        LogIndex(self.snapshot_index().0 + self.entries.len() as u64)
    }

    pub(crate) fn last_term(&self) -> Term {
        self.entries
            .last()
            .map_or(self.snapshot.metadata.term, |entry| entry.term)
    }

    /// The configuration in force: the last one in the log, or the snapshot's.
    pub(crate) fn conf_state(&self) -> &ConfState {
        self.confs
            .values()
            .next_back()
            .unwrap_or(&self.snapshot.metadata.conf_state)
    }

    /// The configuration in force at `index` (at or after the snapshot).
    pub(crate) fn conf_state_at(&self, index: LogIndex) -> &ConfState {
        assert!(
            index >= self.snapshot_index(),
            "no configuration below the snapshot"
        );
        self.confs
            .range(..=index)
            .next_back()
            .map_or(&self.snapshot.metadata.conf_state, |(_, conf)| conf)
    }

    /// The index of the last configuration change in the log (the snapshot's index if none
    /// follows it).
    pub(crate) fn last_conf_index(&self) -> LogIndex {
        self.confs
            .keys()
            .next_back()
            .copied()
            .unwrap_or(self.snapshot_index())
    }

    /// Configuration changes in the log after `index`.
    pub(crate) fn conf_changes_after(&self, index: LogIndex) -> usize {
        self.confs.range(index.next()..).count()
    }

    pub(crate) fn persisted(&self) -> LogIndex {
        self.persisted
    }

    /// The term of the entry at `index`: the snapshot answers for its own index (index 0 has
    /// term 0); `None` for compacted indexes below it and beyond the log.
    pub(crate) fn term(&self, index: LogIndex) -> Option<Term> {
        let snapshot_index = self.snapshot_index();
        if index == snapshot_index {
            return Some(self.snapshot.metadata.term);
        }
        self.position(index)
            .and_then(|position| self.entries.get(position))
            .map(|entry| entry.term)
    }

    /// Is `index` below the snapshot, so only the snapshot can stand for it?
    pub(crate) fn is_compacted(&self, index: LogIndex) -> bool {
        index < self.snapshot_index()
    }

    /// Position in `entries` of the entry at `index`, if `index` lies after the snapshot.
    fn position(&self, index: LogIndex) -> Option<usize> {
        (index > self.snapshot_index()).then(|| (index.0 - self.snapshot_index().0 - 1) as usize)
    }

    /// The entries after the snapshot.
    pub(crate) fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Entries in `[from, from + max_count)`, clipped to the log. `from` must lie after the
    /// snapshot.
    pub(crate) fn slice(&self, from: LogIndex, max_count: usize) -> Vec<Entry> {
        let start = self
            .position(from)
            .expect("slice starts after the snapshot");
        if start >= self.entries.len() {
            return Vec::new();
        }
        let end = self.entries.len().min(start.saturating_add(max_count));
        self.entries[start..end].to_vec()
    }

    /// Is a log ending at (`last_index`, `last_term`) at least as up to date as ours?
    /// Raft paper §5.4.1: compare last terms first, then lengths.
    pub(crate) fn is_up_to_date(&self, last_index: LogIndex, last_term: Term) -> bool {
        (last_term, last_index) >= (self.last_term(), self.last_index())
    }

    /// The largest index `<= index` whose term is `<= term`, looking no lower than the
    /// snapshot (whose term is the lowest we know). Used on both sides of the reject hint to
    /// skip whole terms while backtracking. An `index` below the snapshot comes back as is.
    pub(crate) fn find_conflict_by_term(&self, index: LogIndex, term: Term) -> LogIndex {
        let mut probe = index.min(self.last_index());
        // Bounded by the log length: each step moves one index down.
        while probe > self.snapshot_index() {
            let probe_term = self.term(probe).expect("probe is within the log");
            if probe_term <= term {
                break;
            }
            probe = probe.prev();
        }
        probe
    }

    /// A leader's own append. Returns the new entry's index.
    pub(crate) fn append_new(&mut self, term: Term, data: Vec<u8>, kind: EntryKind) -> LogIndex {
        assert!(
            term >= self.last_term(),
            "leader appends never lower the last term"
        );
        let index = self.last_index().next();
        if let EntryKind::ConfChange { conf_state, .. } = &kind {
            self.confs.insert(index, conf_state.clone());
        }
        self.entries.push(Entry {
            term,
            index,
            data,
            kind,
        });
        index
    }

    /// A follower's append after a successful consistency check at `prev_index` (at or after
    /// the snapshot). Entries that already match are kept (a late duplicate must not truncate
    /// newer entries, Raft paper Figure 2 receiver rule 3); from the first conflict on, our log
    /// is replaced. Returns the index of the last entry of the append, now in our log.
    pub(crate) fn append_from_leader(&mut self, prev_index: LogIndex, new: &[Entry]) -> LogIndex {
        assert!(
            prev_index >= self.snapshot_index(),
            "append below the snapshot"
        );
        for (offset, entry) in new.iter().enumerate() {
            assert_eq!(
                entry.index.0,
                prev_index.0 + offset as u64 + 1,
                "append entries must be contiguous after prev"
            );
            match self.term(entry.index) {
                Some(existing) if existing == entry.term => continue,
                Some(_) => {
                    // Raft paper §5.4: committed entries are on every future leader's log, so a
                    // conflict below commit means a safety bug somewhere.
                    assert!(
                        entry.index > self.commit,
                        "conflicting entry at {} would overwrite committed prefix (commit {})",
                        entry.index,
                        self.commit
                    );
                    self.truncate_from(entry.index);
                    self.extend(&new[offset..]);
                }
                None => self.extend(&new[offset..]),
            }
            break;
        }
        LogIndex(prev_index.0 + new.len() as u64)
    }

    fn extend(&mut self, new: &[Entry]) {
        self.confs.extend(conf_entries(new));
        self.entries.extend_from_slice(new);
    }

    /// Drops entries at `index` and above. The watermarks follow: what was persisted or handed
    /// out there is gone, and the next `Ready` re-sends from `index` so the node truncates its
    /// storage too.
    fn truncate_from(&mut self, index: LogIndex) {
        assert!(index > self.commit, "never truncate committed entries");
        let position = self
            .position(index)
            .expect("committed prefix covers the snapshot");
        self.entries.truncate(position);
        // A change that leaves the log stops being in force (thesis §4.1).
        self.confs.split_off(&index);
        let new_last = self.last_index();
        self.persisted = self.persisted.min(new_last);
        self.handed_out = self.handed_out.min(new_last);
    }

    pub(crate) fn commit_to(&mut self, index: LogIndex) {
        assert!(
            index <= self.last_index(),
            "commit {index} beyond last index"
        );
        if index > self.commit {
            self.commit = index;
        }
    }

    /// Replaces the prefix up to `index` (applied by the node) with the node's snapshot `data`
    /// of its state machine at `index`; the snapshot records the configuration in force there.
    /// Entries after `index` stay.
    pub(crate) fn compact(&mut self, index: LogIndex, data: Vec<u8>) {
        assert!(
            index > self.snapshot_index(),
            "compaction moves the snapshot forward"
        );
        assert!(
            index <= self.applied,
            "compact at {index} beyond the applied index {}",
            self.applied
        );
        let term = self.term(index).expect("index is within the log");
        let conf_state = self.conf_state_at(index).clone();
        let snapshot = Snapshot {
            metadata: SnapshotMetadata {
                index,
                term,
                conf_state,
            },
            data,
        };
        let keep_from = self
            .position(index)
            .expect("index is after the old snapshot")
            + 1;
        self.entries.drain(..keep_from);
        self.confs = self.confs.split_off(&index.next());
        self.snapshot = snapshot;
        // Everything up to `index` was applied, so persisted (or it could not have been).
        self.persisted = self.persisted.max(index);
        self.handed_out = self.handed_out.max(index);
    }

    /// Replaces the whole log with a snapshot from the leader that lies beyond our commit
    /// index (Raft paper §7: discard the entire log). The node persists and applies it with
    /// the next `Ready`, before sending the answer that acknowledges it.
    pub(crate) fn restore(&mut self, snapshot: Snapshot) {
        let index = snapshot.metadata.index;
        assert!(
            index > self.commit,
            "restoring snapshot {index} at or below commit {} would drop committed entries",
            self.commit
        );
        self.restore_unchecked(snapshot);
    }

    /// `restore` without its guard: only the `InstallStaleSnapshot` canary calls this directly.
    pub(crate) fn restore_unchecked(&mut self, snapshot: Snapshot) {
        let index = snapshot.metadata.index;
        self.entries.clear();
        self.confs.clear();
        self.snapshot = snapshot;
        self.snapshot_unstable = true;
        // Covered by the snapshot, which the node persists before anyone hears of it.
        self.persisted = index;
        self.handed_out = index;
        self.commit = index;
        self.applying = index;
        self.applied = self.applied.min(index);
    }

    pub(crate) fn has_unstable(&self) -> bool {
        self.snapshot_unstable || self.handed_out < self.last_index()
    }

    /// The snapshot to persist and apply, if one was installed since the last `Ready`.
    pub(crate) fn take_unstable_snapshot(&mut self) -> Option<Snapshot> {
        std::mem::take(&mut self.snapshot_unstable).then(|| self.snapshot.clone())
    }

    /// Entries not yet given to the node for persisting; marks them handed out.
    pub(crate) fn take_unstable(&mut self) -> Vec<Entry> {
        let from = self
            .position(self.handed_out.next())
            .expect("handed_out is at or after the snapshot");
        let unstable = self.entries[from..].to_vec();
        self.handed_out = self.last_index();
        unstable
    }

    /// The node made `last` durable. Ignored if `last` was truncated away after the Ready was
    /// taken: by the Log Matching Property an entry with the same index and term is the same
    /// entry, so a term check tells whether the persisted prefix is still ours.
    pub(crate) fn stable_to(&mut self, last: &Entry) {
        if self.term(last.index) == Some(last.term) && last.index <= self.handed_out {
            self.persisted = self.persisted.max(last.index);
        }
    }

    pub(crate) fn has_to_apply(&self) -> bool {
        self.applying < self.commit
    }

    /// Committed entries not yet given to the node for applying; marks them as applying.
    /// All of them are persisted or in the same Ready's `entries` (which the node persists
    /// first), because unstable entries are always handed out in the same Ready.
    pub(crate) fn take_to_apply(&mut self) -> Vec<Entry> {
        let from = self
            .position(self.applying.next())
            .expect("applying is at or after the snapshot");
        let to = from + (self.commit.0 - self.applying.0) as usize;
        let committed = self.entries[from..to].to_vec();
        self.applying = self.commit;
        committed
    }

    pub(crate) fn applied_to(&mut self, index: LogIndex) {
        assert!(
            index <= self.applying,
            "applied {index} was never handed out"
        );
        assert!(index >= self.applied, "applied index moves forward only");
        self.applied = index;
    }

    /// Panics on a broken watermark or log-shape invariant. Cheap: O(1) plus the tail.
    pub(crate) fn check_invariants(&self) {
        let last = self.last_index();
        let snapshot_index = self.snapshot_index();
        assert!(
            snapshot_index <= self.persisted,
            "log: snapshot beyond persisted"
        );
        assert!(
            self.persisted <= self.handed_out,
            "log: persisted > handed_out"
        );
        assert!(self.handed_out <= last, "log: handed_out > last_index");
        assert!(
            self.commit <= last,
            "log: commit {} > last_index {last}",
            self.commit
        );
        assert!(
            snapshot_index <= self.commit,
            "log: snapshot {snapshot_index} beyond commit {}",
            self.commit
        );
        assert!(self.applying <= self.commit, "log: applying > commit");
        assert!(
            snapshot_index <= self.applying,
            "log: snapshot beyond what was handed out to apply"
        );
        assert!(self.applied <= self.applying, "log: applied > applying");
        if let Some(first) = self.entries.first() {
            assert_eq!(
                first.index,
                snapshot_index.next(),
                "log: first entry does not follow the snapshot"
            );
            assert!(
                first.term >= self.snapshot.metadata.term,
                "log: term decreases after the snapshot"
            );
        }
        if let Some(entry) = self.entries.last() {
            assert_eq!(
                entry.index, last,
                "log: last entry index does not match length"
            );
        }
        if let [.., before, after] = self.entries.as_slice() {
            assert!(before.term <= after.term, "log: terms decrease at the tail");
        }
    }
}

/// The configuration changes among `entries`, with the configuration each results in.
fn conf_entries(entries: &[Entry]) -> impl Iterator<Item = (LogIndex, ConfState)> + '_ {
    entries.iter().filter_map(|entry| match &entry.kind {
        EntryKind::ConfChange { conf_state, .. } => Some((entry.index, conf_state.clone())),
        EntryKind::Normal => None,
    })
}

#[cfg(test)]
mod tests;
