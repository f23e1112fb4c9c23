//! The Raft log invariants every WAL record must keep, checked before writing and after reading.

use faultline_raft::{Entry, HardState, LogIndex, NodeId, Term};

use super::format::{LogPoint, SegmentHeader};

/// A broken log invariant. On `save` it is a bug in the caller (a panic); on recovery it makes
/// the record [`WalError::Invalid`](super::WalError::Invalid).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    #[error("term decreases from {from:?} to {to:?}")]
    TermDecreased { from: Term, to: Term },
    #[error("vote in {term:?} changes from {from:?} to {to:?}")]
    VoteChanged {
        term: Term,
        from: Option<NodeId>,
        to: Option<NodeId>,
    },
    #[error("commit decreases from {from:?} to {to:?}")]
    CommitDecreased { from: LogIndex, to: LogIndex },
    #[error("commit {commit:?} is beyond the last index {last:?}")]
    CommitBeyondLog { commit: LogIndex, last: LogIndex },
    #[error("entries start at {first:?}, leaving a gap after the last index {last:?}")]
    Gap { first: LogIndex, last: LogIndex },
    #[error("entry {index:?} follows {prev:?}: entries must be contiguous")]
    NotContiguous { prev: LogIndex, index: LogIndex },
    #[error("entries starting at {first:?} would overwrite committed entries (commit {commit:?})")]
    TruncatesCommitted { first: LogIndex, commit: LogIndex },
    #[error("entry {index:?} has term {term:?}, below the {prev_term:?} of the entry before it")]
    EntryTermDecreased {
        index: LogIndex,
        term: Term,
        prev_term: Term,
    },
    #[error("entries starting at {first:?} lie inside the snapshot at {snapshot:?}")]
    BeforeSnapshot { first: LogIndex, snapshot: LogIndex },
    #[error("snapshot marker at index {index:?} term {term:?} does not move forward from index {snapshot_index:?} term {snapshot_term:?}")]
    MarkerBackwards {
        index: LogIndex,
        term: Term,
        snapshot_index: LogIndex,
        snapshot_term: Term,
    },
    #[error("snapshot marker at {index:?} conflicts with the entries up to {last:?}, but commit is {commit:?}")]
    MarkerDiscardsCommitted {
        index: LogIndex,
        last: LogIndex,
        commit: LogIndex,
    },
    #[error(
        "snapshot marker at {index:?} keeps entries up to {recorded:?}; the log says {expected:?}"
    )]
    MarkerRetainedMismatch {
        index: LogIndex,
        recorded: LogIndex,
        expected: LogIndex,
    },
    #[error("segment header {header} disagrees with the log before it: {log}")]
    HeaderMismatch { header: String, log: String },
}

/// What the log holds, reduced to what checking a new record needs: the hard state, the
/// latest snapshot marker, and the terms of the entries after it.
#[derive(Debug, Clone, Default)]
pub(crate) struct LogShape {
    pub hard_state: HardState,
    /// The latest snapshot marker; (0, 0) before any.
    pub snapshot: LogPoint,
    /// The log holds the entries `start_index + 1 ..= last_index()`. In normal operation
    /// `start_index` is the snapshot's index. Only while recovering from a WAL whose oldest
    /// segments were released can it be later: the entries up to it are gone, until the
    /// marker that covers them is read.
    start_index: LogIndex,
    /// The term at `start_index`; `None` when it is a released entry whose term is unknown.
    start_term: Option<Term>,
    /// `entry_terms[i]` is the term of the entry at index `start_index + 1 + i`.
    entry_terms: Vec<Term>,
}

impl LogShape {
    /// The log as a segment header describes it, when the segments before it are gone.
    pub fn from_header(header: &SegmentHeader) -> LogShape {
        assert!(header.snapshot.index <= header.last.index);
        LogShape {
            hard_state: header.hard_state,
            snapshot: header.snapshot,
            start_index: header.last.index,
            start_term: Some(header.last.term),
            entry_terms: Vec::new(),
        }
    }

    /// The header a segment starting now carries. Panics while the start is unknown (only
    /// possible mid-recovery).
    pub fn header(&self, seq: u64) -> SegmentHeader {
        let last = self.last_index();
        SegmentHeader {
            seq,
            hard_state: self.hard_state,
            snapshot: self.snapshot,
            last: LogPoint {
                index: last,
                term: self.term_at(last).expect("the last term is known"),
            },
        }
    }

    pub fn start_index(&self) -> LogIndex {
        self.start_index
    }

    pub fn last_index(&self) -> LogIndex {
        LogIndex(self.start_index.0 + self.entry_terms.len() as u64)
    }

    /// Whether the entries between the snapshot and the start are missing (released).
    pub fn has_released_gap(&self) -> bool {
        self.start_index != self.snapshot.index
    }

    /// The term of the entry at `index`, if the log knows it.
    pub fn term_at(&self, index: LogIndex) -> Option<Term> {
        if index == self.snapshot.index {
            return Some(self.snapshot.term);
        }
        if index == self.start_index {
            return self.start_term;
        }
        if index < self.start_index || index > self.last_index() {
            return None;
        }
        Some(self.entry_terms[(index.0 - self.start_index.0 - 1) as usize])
    }

    fn check_hard_state(&self, new: &HardState) -> Result<(), Violation> {
        let old = &self.hard_state;
        if new.term < old.term {
            return Err(Violation::TermDecreased {
                from: old.term,
                to: new.term,
            });
        }
        if new.term == old.term && old.vote.is_some() && new.vote != old.vote {
            return Err(Violation::VoteChanged {
                term: old.term,
                from: old.vote,
                to: new.vote,
            });
        }
        if new.commit < old.commit {
            return Err(Violation::CommitDecreased {
                from: old.commit,
                to: new.commit,
            });
        }
        Ok(())
    }

    /// Checks that `entries` may be appended; returns the new last index.
    fn check_entries(&self, entries: &[Entry]) -> Result<LogIndex, Violation> {
        let last = self.last_index();
        let Some(first) = entries.first() else {
            return Ok(last);
        };
        if first.index.0 == 0 || first.index.0 > last.0 + 1 {
            return Err(Violation::Gap {
                first: first.index,
                last,
            });
        }
        if first.index <= self.snapshot.index {
            return Err(Violation::BeforeSnapshot {
                first: first.index,
                snapshot: self.snapshot.index,
            });
        }
        if first.index <= self.hard_state.commit {
            return Err(Violation::TruncatesCommitted {
                first: first.index,
                commit: self.hard_state.commit,
            });
        }
        let mut prev_index = first.index.prev();
        // Unknown only for a released entry while recovering: nothing to compare with.
        let mut prev_term = self.term_at(prev_index).unwrap_or(Term(0));
        for entry in entries {
            if entry.index.0 != prev_index.0 + 1 {
                return Err(Violation::NotContiguous {
                    prev: prev_index,
                    index: entry.index,
                });
            }
            if entry.term < prev_term {
                return Err(Violation::EntryTermDecreased {
                    index: entry.index,
                    term: entry.term,
                    prev_term,
                });
            }
            prev_index = entry.index;
            prev_term = entry.term;
        }
        Ok(prev_index)
    }

    /// Checks that appending a record with `hard_state` and `entries` keeps the log a valid
    /// Raft log. Runs before writing and after reading.
    pub fn check(
        &self,
        hard_state: Option<&HardState>,
        entries: &[Entry],
    ) -> Result<(), Violation> {
        let new = hard_state.unwrap_or(&self.hard_state);
        self.check_hard_state(new)?;
        let last = self.check_entries(entries)?;
        if new.commit > last {
            return Err(Violation::CommitBeyondLog {
                commit: new.commit,
                last,
            });
        }
        Ok(())
    }

    /// Applies a record that passed [`LogShape::check`].
    pub fn apply(&mut self, hard_state: Option<&HardState>, entries: &[Entry]) {
        if let Some(hs) = hard_state {
            self.hard_state = *hs;
        }
        if let Some(first) = entries.first() {
            let prev = first.index.prev();
            if prev < self.start_index {
                // Overwrites released entries (recovery only): the log now starts at `prev`.
                assert!(prev >= self.snapshot.index);
                self.start_term = self.term_at(prev);
                self.start_index = prev;
                self.entry_terms.clear();
            } else {
                self.entry_terms
                    .truncate((prev.0 - self.start_index.0) as usize);
            }
            self.entry_terms.extend(entries.iter().map(|e| e.term));
        }
        debug_assert!(self.hard_state.commit <= self.last_index());
    }

    /// Checks a snapshot marker at `at`; returns the last index the log keeps after it: the
    /// current last if the log holds the entry at `at` (so the entries after it stay), else
    /// `at.index` (the log is empty after the snapshot). `None` if that cannot be known
    /// because the entry at `at` was released (recovery only).
    pub fn check_marker(&self, at: LogPoint) -> Result<Option<LogIndex>, Violation> {
        let old = self.snapshot;
        if at.index < old.index
            || at.term < old.term
            || (at.index == old.index && at.term != old.term)
        {
            return Err(Violation::MarkerBackwards {
                index: at.index,
                term: at.term,
                snapshot_index: old.index,
                snapshot_term: old.term,
            });
        }
        let last = self.last_index();
        if at.index > last {
            return Ok(Some(at.index)); // a follower jumping ahead: nothing of its log stays
        }
        let Some(term) = self.term_at(at.index) else {
            return Ok(None);
        };
        if term == at.term {
            return Ok(Some(last));
        }
        // The log conflicts with the snapshot: every entry from `at.index` on goes, which is
        // only legal if none of them is committed.
        if self.hard_state.commit >= at.index {
            return Err(Violation::MarkerDiscardsCommitted {
                index: at.index,
                last,
                commit: self.hard_state.commit,
            });
        }
        Ok(Some(at.index))
    }

    /// Checks a marker read back with the `retained_last` it was written with.
    pub fn check_recorded_marker(
        &self,
        at: LogPoint,
        retained_last: LogIndex,
    ) -> Result<(), Violation> {
        let expected = match self.check_marker(at)? {
            Some(expected) => expected,
            // The entry at `at` was released: the marker either emptied the log, or kept the
            // entries after it, some of them released too (a later marker must cover them).
            None if retained_last == at.index || retained_last == self.last_index() => {
                return Ok(())
            }
            None => self.last_index(),
        };
        if retained_last != expected {
            return Err(Violation::MarkerRetainedMismatch {
                index: at.index,
                recorded: retained_last,
                expected,
            });
        }
        Ok(())
    }

    /// Applies a marker that passed its check.
    pub fn apply_marker(&mut self, at: LogPoint, retained_last: LogIndex) {
        self.snapshot = at;
        if retained_last > at.index && at.index < self.start_index {
            // Keeps entries that were released (recovery only): the gap stays open.
            assert_eq!(retained_last, self.last_index());
            return;
        }
        if retained_last > at.index {
            assert_eq!(retained_last, self.last_index());
            let dropped = (at.index.0 - self.start_index.0) as usize;
            self.entry_terms.drain(..dropped);
        } else {
            self.entry_terms.clear();
        }
        self.start_index = at.index;
        self.start_term = Some(at.term);
        debug_assert!(!self.has_released_gap());
    }

    /// Checks the header of a segment that follows others against the log they hold.
    pub fn check_header(&self, header: &SegmentHeader) -> Result<(), Violation> {
        let last = self.last_index();
        let log = SegmentHeader {
            seq: header.seq,
            hard_state: self.hard_state,
            snapshot: self.snapshot,
            last: LogPoint {
                index: last,
                // Unknown only right after released entries; the index alone must agree.
                term: self.term_at(last).unwrap_or(header.last.term),
            },
        };
        if *header != log {
            return Err(Violation::HeaderMismatch {
                header: format!("{header:?}"),
                log: format!("{log:?}"),
            });
        }
        Ok(())
    }
}
