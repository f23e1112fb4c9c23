//! The in-memory replicated log and its watermarks.
//!
//! ```text
//!   1 ......... applied ..... commit ......... persisted .... handed_out ..... last
//!   |<- applied ->|<- to apply ->|               |<- in a Ready ->|<- pending ->|
//! ```
//! `persisted` and `handed_out` are independent of `commit`/`applied` (a follower may learn
//! that an entry is committed before it has persisted it), so the picture shows one ordering
//! among several.

use crate::types::{Entry, LogIndex, Term};

/// The whole log from index 1 (there is no compaction yet), plus the watermarks that connect
/// it to the node's storage and state machine.
#[derive(Debug)]
pub(crate) struct RaftLog {
    /// `entries[i].index == i + 1`.
    entries: Vec<Entry>,
    /// Highest index the node confirmed durable through `advance`.
    /// Invariant: persisted <= handed_out <= last_index.
    persisted: LogIndex,
    /// Highest index given to the node in a `Ready` (persisting or persisted).
    handed_out: LogIndex,
    /// Invariant: commit <= last_index. Never decreases.
    pub(crate) commit: LogIndex,
    /// Highest index given to the node in `Ready::committed_entries`.
    /// Invariant: applied <= applying <= commit.
    applying: LogIndex,
    /// Highest index the node confirmed applied through `advance`.
    pub(crate) applied: LogIndex,
}

impl RaftLog {
    /// A log recovered from storage: everything in it is durable already.
    pub(crate) fn recovered(entries: Vec<Entry>, commit: LogIndex) -> RaftLog {
        for (position, entry) in entries.iter().enumerate() {
            assert_eq!(
                entry.index.0,
                position as u64 + 1,
                "recovered log must be contiguous from index 1"
            );
        }
        for pair in entries.windows(2) {
            assert!(
                pair[0].term <= pair[1].term,
                "recovered log terms must not decrease"
            );
        }
        let last = LogIndex(entries.len() as u64);
        // The node persists commit together with (or after) the entries it covers, so a
        // recovered commit beyond the log means storage lost acknowledged writes.
        assert!(
            commit <= last,
            "recovered commit {commit} is beyond the recovered log's last index {last}"
        );
        RaftLog {
            entries,
            persisted: last,
            handed_out: last,
            commit,
            applying: LogIndex(0),
            applied: LogIndex(0),
        }
    }

    pub(crate) fn last_index(&self) -> LogIndex {
        LogIndex(self.entries.len() as u64)
    }

    pub(crate) fn last_term(&self) -> Term {
        self.entries.last().map_or(Term(0), |entry| entry.term)
    }

    pub(crate) fn persisted(&self) -> LogIndex {
        self.persisted
    }

    /// The term of the entry at `index`; index 0 has term 0; `None` beyond the log.
    pub(crate) fn term(&self, index: LogIndex) -> Option<Term> {
        if index.0 == 0 {
            return Some(Term(0));
        }
        self.entries
            .get(index.0 as usize - 1)
            .map(|entry| entry.term)
    }

    pub(crate) fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Entries in `[from, from + max_count)`, clipped to the log.
    pub(crate) fn slice(&self, from: LogIndex, max_count: usize) -> Vec<Entry> {
        assert!(from.0 >= 1, "slice starts at index 1 or later");
        let start = from.0 as usize - 1;
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

    /// The largest index `<= index` whose term is `<= term` (0 if none). Used on both sides of
    /// the reject hint to skip whole terms while backtracking.
    pub(crate) fn find_conflict_by_term(&self, index: LogIndex, term: Term) -> LogIndex {
        let mut probe = index.min(self.last_index());
        // Bounded by the log length: each step moves one index down.
        while probe.0 > 0 {
            let probe_term = self.term(probe).expect("probe is within the log");
            if probe_term <= term {
                break;
            }
            probe = probe.prev();
        }
        probe
    }

    /// A leader's own append. Returns the new entry's index.
    pub(crate) fn append_new(&mut self, term: Term, data: Vec<u8>) -> LogIndex {
        assert!(
            term >= self.last_term(),
            "leader appends never lower the last term"
        );
        let index = self.last_index().next();
        self.entries.push(Entry { term, index, data });
        index
    }

    /// A follower's append after a successful consistency check at `prev_index`. Entries that
    /// already match are kept (a late duplicate must not truncate newer entries, Raft paper
    /// Figure 2 receiver rule 3); from the first conflict on, our log is replaced.
    /// Returns the index of the last entry of the append, now in our log.
    pub(crate) fn append_from_leader(&mut self, prev_index: LogIndex, new: &[Entry]) -> LogIndex {
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
                    self.entries.extend_from_slice(&new[offset..]);
                }
                None => self.entries.extend_from_slice(&new[offset..]),
            }
            break;
        }
        LogIndex(prev_index.0 + new.len() as u64)
    }

    /// Drops entries at `index` and above. The watermarks follow: what was persisted or handed
    /// out there is gone, and the next `Ready` re-sends from `index` so the node truncates its
    /// storage too.
    fn truncate_from(&mut self, index: LogIndex) {
        assert!(index.0 >= 1);
        assert!(index > self.commit, "never truncate committed entries");
        self.entries.truncate(index.0 as usize - 1);
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

    pub(crate) fn has_unstable(&self) -> bool {
        self.handed_out < self.last_index()
    }

    /// Entries not yet given to the node for persisting; marks them handed out.
    pub(crate) fn take_unstable(&mut self) -> Vec<Entry> {
        let from = self.handed_out.0 as usize;
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
        let from = self.applying.0 as usize;
        let to = self.commit.0 as usize;
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
        assert!(self.applying <= self.commit, "log: applying > commit");
        assert!(self.applied <= self.applying, "log: applied > applying");
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

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(index: u64, term: u64) -> Entry {
        Entry {
            term: Term(term),
            index: LogIndex(index),
            data: vec![index as u8],
        }
    }

    #[test]
    fn find_conflict_by_term_skips_whole_terms() {
        let log = RaftLog::recovered(
            vec![
                entry(1, 1),
                entry(2, 1),
                entry(3, 3),
                entry(4, 3),
                entry(5, 5),
            ],
            LogIndex(0),
        );
        assert_eq!(log.find_conflict_by_term(LogIndex(5), Term(4)), LogIndex(4));
        assert_eq!(log.find_conflict_by_term(LogIndex(5), Term(2)), LogIndex(2));
        assert_eq!(log.find_conflict_by_term(LogIndex(9), Term(9)), LogIndex(5));
        assert_eq!(log.find_conflict_by_term(LogIndex(5), Term(0)), LogIndex(0));
    }

    #[test]
    fn duplicate_append_does_not_truncate() {
        let mut log = RaftLog::recovered(vec![entry(1, 1), entry(2, 1), entry(3, 1)], LogIndex(0));
        let last = log.append_from_leader(LogIndex(0), &[entry(1, 1)]);
        assert_eq!(last, LogIndex(1));
        assert_eq!(log.last_index(), LogIndex(3));
    }

    #[test]
    fn conflicting_append_truncates_and_resets_watermarks() {
        let mut log = RaftLog::recovered(vec![entry(1, 1), entry(2, 1), entry(3, 1)], LogIndex(1));
        let last = log.append_from_leader(LogIndex(1), &[entry(2, 2)]);
        assert_eq!(last, LogIndex(2));
        assert_eq!(log.last_index(), LogIndex(2));
        assert_eq!(log.term(LogIndex(2)), Some(Term(2)));
        assert_eq!(log.persisted(), LogIndex(1));
        assert_eq!(log.take_unstable(), vec![entry(2, 2)]);
        log.check_invariants();
    }

    #[test]
    #[should_panic(expected = "beyond the recovered log")]
    fn recovered_commit_beyond_log_panics() {
        RaftLog::recovered(vec![entry(1, 1)], LogIndex(2));
    }
}
