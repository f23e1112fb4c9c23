//! What a leader knows about each follower's log, and quorum arithmetic.

use std::collections::BTreeMap;

use crate::types::{LogIndex, NodeId};

/// How the leader sends entries to one follower.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ReplicationMode {
    /// We do not know where the follower's log matches ours: send one append at a time and
    /// wait for its answer (or the next heartbeat round) before sending the next.
    Probe { waiting: bool },
    /// The follower's log matches up to `match_index`: stream appends without waiting,
    /// advancing `next_index` optimistically.
    Replicate,
}

#[derive(Clone, Debug)]
pub(crate) struct Progress {
    /// Highest index known to be durably replicated on the follower.
    /// Invariant: match_index < next_index.
    pub(crate) match_index: LogIndex,
    /// Next index to send.
    pub(crate) next_index: LogIndex,
    pub(crate) mode: ReplicationMode,
    /// Heard from this follower since the last check-quorum round.
    pub(crate) recently_active: bool,
    /// The leader commit index carried by the last append sent, to know whether the follower
    /// still needs to hear about a newer one.
    pub(crate) commit_sent: LogIndex,
}

impl Progress {
    /// A new leader knows nothing about followers: it starts optimistic, just past its own
    /// log (Raft paper §5.3), and probes backwards on rejection.
    pub(crate) fn new(leader_last_index: LogIndex) -> Progress {
        Progress {
            match_index: LogIndex(0),
            next_index: leader_last_index.next(),
            mode: ReplicationMode::Probe { waiting: false },
            recently_active: false,
            commit_sent: LogIndex(0),
        }
    }

    pub(crate) fn can_send(&self) -> bool {
        !matches!(self.mode, ReplicationMode::Probe { waiting: true })
    }

    /// Nothing sent is unacknowledged: an append at `next_index` cannot overtake another.
    pub(crate) fn is_idle(&self) -> bool {
        self.next_index == self.match_index.next()
    }

    /// Records that entries up to `last_sent` went out, with `commit`.
    pub(crate) fn sent(&mut self, last_sent: LogIndex, commit: LogIndex) {
        self.commit_sent = self.commit_sent.max(commit);
        match self.mode {
            ReplicationMode::Probe { .. } => self.mode = ReplicationMode::Probe { waiting: true },
            ReplicationMode::Replicate => {
                self.next_index = self.next_index.max(last_sent.next());
            }
        }
    }

    /// The follower holds our log up to `index`. Returns whether anything was learned.
    pub(crate) fn accepted(&mut self, index: LogIndex) -> bool {
        let learned = index > self.match_index;
        if learned {
            self.match_index = index;
        }
        self.next_index = self.next_index.max(index.next());
        self.mode = ReplicationMode::Replicate;
        self.check();
        learned
    }

    /// The follower rejected an append whose prev was `rejected_prev_index`; `next_guess` is
    /// where the hint says to try next. Returns false for a stale rejection (answering an
    /// append sent before we had moved on), which must not move `next_index` backwards.
    pub(crate) fn rejected(&mut self, rejected_prev_index: LogIndex, next_guess: LogIndex) -> bool {
        // The follower answered for `match_index` only after persisting it, and only a leader
        // of a later term could make it drop those entries: a rejection at or below it is old.
        if rejected_prev_index <= self.match_index {
            return false;
        }
        // While probing, only the answer to the one outstanding probe counts.
        if matches!(self.mode, ReplicationMode::Probe { .. })
            && rejected_prev_index != self.next_index.prev()
        {
            return false;
        }
        // Move strictly below the rejected prev so backtracking always makes progress, but
        // never below what is known to match.
        self.next_index = next_guess
            .min(rejected_prev_index)
            .max(self.match_index.next());
        self.mode = ReplicationMode::Probe { waiting: false };
        self.check();
        true
    }

    /// A heartbeat answer: the follower is alive, so a paused probe may go out again. A
    /// replicating follower that still lags may have lost appends; fall back to probing just
    /// past what is known to match so the leader resends (bounded: once per heartbeat).
    pub(crate) fn heartbeat_answered(&mut self, leader_last_index: LogIndex) {
        match self.mode {
            ReplicationMode::Probe { .. } => self.mode = ReplicationMode::Probe { waiting: false },
            ReplicationMode::Replicate => {
                if self.match_index < leader_last_index {
                    self.next_index = self.match_index.next();
                    self.mode = ReplicationMode::Probe { waiting: false };
                }
            }
        }
        self.check();
    }

    fn check(&self) {
        assert!(
            self.match_index < self.next_index,
            "progress: match_index {} must be below next_index {}",
            self.match_index,
            self.next_index
        );
    }
}

/// The number of votes that make a majority of `voter_count`.
pub(crate) fn quorum(voter_count: usize) -> usize {
    assert!(voter_count > 0);
    voter_count / 2 + 1
}

/// The highest index that a quorum of voters holds, given each voter's match index.
pub(crate) fn quorum_index(matches: &BTreeMap<NodeId, LogIndex>) -> LogIndex {
    let mut sorted: Vec<LogIndex> = matches.values().copied().collect();
    // Descending: the quorum-th largest is held by at least a quorum.
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    sorted[quorum(sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quorum_sizes() {
        assert_eq!(quorum(1), 1);
        assert_eq!(quorum(2), 2);
        assert_eq!(quorum(3), 2);
        assert_eq!(quorum(4), 3);
        assert_eq!(quorum(5), 3);
    }

    #[test]
    fn quorum_index_is_the_majority_minimum() {
        let matches: BTreeMap<NodeId, LogIndex> = [(1, 5), (2, 3), (3, 9), (4, 1), (5, 3)]
            .into_iter()
            .map(|(id, index)| (NodeId(id), LogIndex(index)))
            .collect();
        assert_eq!(quorum_index(&matches), LogIndex(3));
    }

    #[test]
    fn stale_rejection_is_ignored() {
        let mut progress = Progress::new(LogIndex(10));
        assert!(progress.accepted(LogIndex(8)));
        // Rejection of an append whose prev (4) is already known to match: stale.
        assert!(!progress.rejected(LogIndex(4), LogIndex(2)));
        assert_eq!(progress.next_index, LogIndex(11));
        // A real rejection above match moves next strictly below the rejected prev.
        assert!(progress.rejected(LogIndex(10), LogIndex(12)));
        assert_eq!(progress.next_index, LogIndex(10));
        assert!(!progress.can_send() || progress.mode == ReplicationMode::Probe { waiting: false });
    }
}
