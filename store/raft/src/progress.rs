//! What a leader knows about each follower's log (flow control), and quorum arithmetic.
//!
//! Each follower is in one of three states, as in etcd's `tracker` package:
//! - **Probe**: we do not know where its log matches ours. One append at a time; the next
//!   waits for its answer or for the next heartbeat answer (the append may have been lost).
//! - **Replicate**: its log matches ours up to `match_index`. Appends stream without waiting,
//!   `next_index` moves ahead optimistically, and at most `max_inflight_appends` appends that
//!   carry entries may be unacknowledged (each answer frees those it covers).
//! - **Snapshot**: it needs entries we compacted; a snapshot is on its way. Nothing else is
//!   sent until it is acknowledged, or an election timeout passes without that (the snapshot
//!   may have been lost) and we probe again.

use std::collections::{BTreeMap, VecDeque};

use crate::types::{LogIndex, NodeId, ProgressState};

/// The last index of each unacknowledged append that carried entries, oldest first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Inflights {
    last_indexes: VecDeque<LogIndex>,
    max_count: usize,
}

impl Inflights {
    fn new(max_count: usize) -> Inflights {
        assert!(max_count > 0, "max_inflight_appends must be > 0");
        Inflights {
            last_indexes: VecDeque::new(),
            max_count,
        }
    }

    fn is_full(&self) -> bool {
        self.last_indexes.len() >= self.max_count
    }

    fn add(&mut self, last_index: LogIndex) {
        assert!(!self.is_full(), "inflights: sent beyond the bound");
        assert!(
            self.last_indexes
                .back()
                .is_none_or(|last| *last < last_index),
            "inflights: appends go out in index order"
        );
        self.last_indexes.push_back(last_index);
    }

    /// Frees every append the follower acknowledged by matching up to `index`.
    fn free_to(&mut self, index: LogIndex) {
        while self.last_indexes.front().is_some_and(|last| *last <= index) {
            self.last_indexes.pop_front();
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.last_indexes.len()
    }
}

/// How the leader sends entries to one follower (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ReplicationMode {
    Probe {
        waiting: bool,
    },
    Replicate {
        inflights: Inflights,
    },
    Snapshot {
        pending_index: LogIndex,
        elapsed_ticks: u64,
    },
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
    /// `match_index` at the previous heartbeat answer: a replicating follower that made no
    /// progress over a whole heartbeat round while lagging has probably lost appends.
    match_at_last_heartbeat: LogIndex,
    max_inflight_appends: usize,
    /// The follower accepted an append since the last periodic heartbeat round: it heard
    /// from us within the round, as a heartbeat's answer would show.
    accepted_since_heartbeat: bool,
    /// Appends sent since the follower last answered one: 0 means it has seen the newest
    /// commit index we sent it.
    unanswered_appends: u64,
}

impl Progress {
    /// A new leader knows nothing about followers: it starts optimistic, just past its own
    /// log (Raft paper §5.3), and probes backwards on rejection.
    pub(crate) fn new(leader_last_index: LogIndex, max_inflight_appends: usize) -> Progress {
        Progress {
            match_index: LogIndex(0),
            next_index: leader_last_index.next(),
            mode: ReplicationMode::Probe { waiting: false },
            recently_active: false,
            commit_sent: LogIndex(0),
            match_at_last_heartbeat: LogIndex(0),
            max_inflight_appends,
            accepted_since_heartbeat: false,
            unanswered_appends: 0,
        }
    }

    pub(crate) fn state(&self) -> ProgressState {
        match self.mode {
            ReplicationMode::Probe { .. } => ProgressState::Probe,
            ReplicationMode::Replicate { .. } => ProgressState::Replicate,
            ReplicationMode::Snapshot { .. } => ProgressState::Snapshot,
        }
    }

    pub(crate) fn inflight_appends(&self) -> usize {
        match &self.mode {
            ReplicationMode::Replicate { inflights } => inflights.len(),
            _ => 0,
        }
    }

    pub(crate) fn can_send(&self) -> bool {
        match &self.mode {
            ReplicationMode::Probe { waiting } => !waiting,
            ReplicationMode::Replicate { inflights } => !inflights.is_full(),
            ReplicationMode::Snapshot { .. } => false,
        }
    }

    /// Nothing sent is unacknowledged: an append at `next_index` cannot overtake another.
    pub(crate) fn is_idle(&self) -> bool {
        self.next_index == self.match_index.next()
            && !matches!(self.mode, ReplicationMode::Snapshot { .. })
    }

    /// Records that an append went out with entries up to `last_sent` (`carried_entries`
    /// false for an append that only probes or carries the commit index) and `commit`.
    pub(crate) fn sent(&mut self, last_sent: LogIndex, carried_entries: bool, commit: LogIndex) {
        self.commit_sent = self.commit_sent.max(commit);
        self.unanswered_appends += 1;
        match &mut self.mode {
            ReplicationMode::Probe { waiting } => *waiting = true,
            ReplicationMode::Replicate { inflights } => {
                self.next_index = self.next_index.max(last_sent.next());
                if carried_entries {
                    inflights.add(last_sent);
                }
            }
            ReplicationMode::Snapshot { .. } => panic!("progress: append sent while snapshotting"),
        }
    }

    /// Records that our snapshot up to `index` went out: wait for its acknowledgement.
    pub(crate) fn sent_snapshot(&mut self, index: LogIndex, commit: LogIndex) {
        assert!(
            index >= self.match_index,
            "progress: snapshot behind the match"
        );
        self.commit_sent = self.commit_sent.max(commit);
        self.mode = ReplicationMode::Snapshot {
            pending_index: index,
            elapsed_ticks: 0,
        };
    }

    /// The follower holds our log up to `index`. Returns whether anything was learned.
    pub(crate) fn accepted(&mut self, index: LogIndex) -> bool {
        self.accepted_since_heartbeat = true;
        self.unanswered_appends = 0;
        let learned = index > self.match_index;
        if learned {
            self.match_index = index;
        }
        self.next_index = self.next_index.max(index.next());
        match &mut self.mode {
            ReplicationMode::Probe { .. } => self.become_replicate(),
            ReplicationMode::Replicate { inflights } => inflights.free_to(index),
            // Only an answer covering the snapshot ends the wait; an older one is a late
            // answer to an append sent before it.
            ReplicationMode::Snapshot { pending_index, .. } => {
                if index >= *pending_index {
                    self.become_replicate();
                }
            }
        }
        self.check();
        learned
    }

    fn become_replicate(&mut self) {
        self.next_index = self.match_index.next();
        self.mode = ReplicationMode::Replicate {
            inflights: Inflights::new(self.max_inflight_appends),
        };
    }

    fn become_probe(&mut self) {
        self.next_index = self.match_index.next();
        self.mode = ReplicationMode::Probe { waiting: false };
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
        match self.mode {
            // While probing, only the answer to the one outstanding probe counts.
            ReplicationMode::Probe { .. } if rejected_prev_index != self.next_index.prev() => {
                return false;
            }
            // A late answer to an append sent before the snapshot.
            ReplicationMode::Snapshot { .. } => return false,
            _ => {}
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
    /// replicating follower that lags and made no progress since the previous heartbeat
    /// answer has probably lost appends (or their answers): probe just past what is known to
    /// match so the leader resends (bounded: once per heartbeat round).
    pub(crate) fn heartbeat_answered(&mut self, leader_last_index: LogIndex) {
        let stalled = self.match_index == self.match_at_last_heartbeat;
        self.match_at_last_heartbeat = self.match_index;
        match self.mode {
            ReplicationMode::Probe { .. } => self.mode = ReplicationMode::Probe { waiting: false },
            ReplicationMode::Replicate { .. } => {
                if self.match_index < leader_last_index && stalled {
                    self.become_probe();
                }
            }
            ReplicationMode::Snapshot { .. } => {}
        }
        self.check();
    }

    /// Whether this round's periodic heartbeat would tell the follower nothing: it is
    /// replicating, it accepted an append since the last round (so it heard from us within
    /// the round, as a heartbeat's answer would show), and it answered every append since,
    /// the last of which carried the commit index the heartbeat would (`leader_commit`). A
    /// probing, snapshotting or silent follower always gets its heartbeat: its answer is what
    /// resumes a paused probe or finds lost appends. (Judged by answers, not by sends: on a
    /// lossy network a sent append proves nothing, and skipping on sends let followers go a
    /// round unheard and start elections: lossy-leader-churn got 7 unknowns in 27 seeds.)
    pub(crate) fn heartbeat_redundant(&self, leader_commit: LogIndex) -> bool {
        matches!(self.mode, ReplicationMode::Replicate { .. })
            && self.accepted_since_heartbeat
            && self.unanswered_appends == 0
            && self.commit_sent >= leader_commit
    }

    /// A periodic heartbeat round starts.
    pub(crate) fn heartbeat_round_started(&mut self, skipped: bool) {
        self.accepted_since_heartbeat = false;
        if skipped {
            // The follower's acceptance stands in for a heartbeat answer (see
            // `heartbeat_answered`): it made progress or had nothing to take.
            self.match_at_last_heartbeat = self.match_index;
        }
    }

    /// One leader tick. A snapshot unacknowledged for `timeout_ticks` was probably lost:
    /// probe again (which sends the snapshot again if it is still needed).
    pub(crate) fn tick(&mut self, timeout_ticks: u64) {
        if let ReplicationMode::Snapshot { elapsed_ticks, .. } = &mut self.mode {
            *elapsed_ticks += 1;
            if *elapsed_ticks >= timeout_ticks {
                self.become_probe();
            }
        }
    }

    pub(crate) fn check(&self) {
        assert!(
            self.match_index < self.next_index,
            "progress: match_index {} must be below next_index {}",
            self.match_index,
            self.next_index
        );
        if let ReplicationMode::Replicate { inflights } = &self.mode {
            assert!(
                inflights.len() <= self.max_inflight_appends,
                "progress: more appends in flight than allowed"
            );
            if let Some(last) = inflights.last_indexes.back() {
                assert!(
                    *last < self.next_index,
                    "progress: in-flight append beyond next_index"
                );
            }
        }
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
        let mut progress = Progress::new(LogIndex(10), 4);
        assert!(progress.accepted(LogIndex(8)));
        // Rejection of an append whose prev (4) is already known to match: stale.
        assert!(!progress.rejected(LogIndex(4), LogIndex(2)));
        assert_eq!(progress.next_index, LogIndex(9));
        // A real rejection above match moves next strictly below the rejected prev.
        assert!(progress.rejected(LogIndex(10), LogIndex(12)));
        assert_eq!(progress.next_index, LogIndex(10));
        assert_eq!(progress.mode, ReplicationMode::Probe { waiting: false });
    }

    #[test]
    fn replicate_stops_at_the_inflight_bound_and_acks_free_slots() {
        let mut progress = Progress::new(LogIndex(0), 2);
        progress.accepted(LogIndex(0));
        assert_eq!(progress.state(), ProgressState::Replicate);
        progress.sent(LogIndex(3), true, LogIndex(0));
        progress.sent(LogIndex(6), true, LogIndex(0));
        assert!(!progress.can_send(), "two appends in flight");
        // An append without entries (commit only) takes no slot, but none may go out now.
        assert_eq!(progress.inflight_appends(), 2);
        progress.accepted(LogIndex(3));
        assert!(progress.can_send());
        assert_eq!(progress.inflight_appends(), 1);
        progress.accepted(LogIndex(6));
        assert_eq!(progress.inflight_appends(), 0);
        assert!(progress.is_idle());
    }

    #[test]
    fn snapshot_waits_for_its_ack_or_times_out() {
        let mut progress = Progress::new(LogIndex(20), 4);
        progress.sent_snapshot(LogIndex(15), LogIndex(15));
        assert_eq!(progress.state(), ProgressState::Snapshot);
        assert!(!progress.can_send());
        assert!(
            !progress.rejected(LogIndex(19), LogIndex(3)),
            "late rejection"
        );
        progress.accepted(LogIndex(2));
        assert_eq!(progress.state(), ProgressState::Snapshot, "older ack");
        progress.accepted(LogIndex(15));
        assert_eq!(progress.state(), ProgressState::Replicate);
        assert_eq!(progress.next_index, LogIndex(16));
        progress.sent_snapshot(LogIndex(18), LogIndex(18));
        for _ in 0..9 {
            progress.tick(10);
        }
        assert_eq!(progress.state(), ProgressState::Snapshot);
        progress.tick(10);
        assert_eq!(progress.state(), ProgressState::Probe, "lost snapshot");
        assert_eq!(progress.next_index, LogIndex(16));
    }

    #[test]
    fn a_stalled_replicating_follower_falls_back_to_probe() {
        let mut progress = Progress::new(LogIndex(0), 8);
        progress.accepted(LogIndex(0));
        progress.sent(LogIndex(5), true, LogIndex(0));
        progress.accepted(LogIndex(2));
        progress.heartbeat_answered(LogIndex(5));
        assert_eq!(
            progress.state(),
            ProgressState::Replicate,
            "progress since start"
        );
        progress.heartbeat_answered(LogIndex(5));
        assert_eq!(
            progress.state(),
            ProgressState::Probe,
            "stalled for a round"
        );
        assert_eq!(progress.next_index, LogIndex(3));
    }
}
