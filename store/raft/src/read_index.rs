//! The leader's queue of ReadIndex requests waiting for a quorum to confirm its leadership
//! (Raft thesis §6.4).

use std::collections::BTreeSet;

use crate::progress::quorum;
use crate::types::{LogIndex, NodeId, ReadState};

#[derive(Debug)]
struct PendingRead {
    ctx: u64,
    /// The leader's commit index when the request arrived: a read served at or after it sees
    /// every write that completed before the request.
    index: LogIndex,
    /// Voters (including the leader) that answered a heartbeat carrying `ctx`.
    acks: BTreeSet<NodeId>,
}

/// Requests in arrival order. A quorum ack for a request confirms every earlier one too: the
/// heartbeat for it was sent after they were queued, so leadership was confirmed at a time
/// after each of them arrived.
#[derive(Debug, Default)]
pub(crate) struct ReadQueue {
    pending: Vec<PendingRead>,
}

impl ReadQueue {
    /// Queues a request. Returns false if `ctx` is already pending: the node retried, and the
    /// one ReadState that comes back answers both.
    pub(crate) fn push(&mut self, ctx: u64, index: LogIndex, leader: NodeId) -> bool {
        if self.pending.iter().any(|read| read.ctx == ctx) {
            return false;
        }
        self.pending.push(PendingRead {
            ctx,
            index,
            acks: BTreeSet::from([leader]),
        });
        true
    }

    /// The context to put on the next heartbeat round: the newest, which confirms all.
    pub(crate) fn last_ctx(&self) -> Option<u64> {
        self.pending.last().map(|read| read.ctx)
    }

    /// Records an ack and returns the requests it confirms (possibly none), oldest first.
    /// Only acks of `voters` count towards their majority (the leader's own too: a leader
    /// whose removal is pending does not count itself).
    pub(crate) fn ack(
        &mut self,
        ctx: u64,
        from: NodeId,
        voters: &BTreeSet<NodeId>,
    ) -> Vec<ReadState> {
        let Some(position) = self.pending.iter().position(|read| read.ctx == ctx) else {
            // Answer to a request already confirmed, or from an earlier term.
            return Vec::new();
        };
        let acks = &mut self.pending[position].acks;
        acks.insert(from);
        if acks.intersection(voters).count() < quorum(voters.len()) {
            return Vec::new();
        }
        self.pending
            .drain(..=position)
            .map(|read| ReadState {
                ctx: read.ctx,
                index: read.index,
            })
            .collect()
    }

    /// Forgets all requests: leadership is lost and none of them can be confirmed any more.
    /// The node times them out and retries elsewhere.
    pub(crate) fn clear(&mut self) {
        self.pending.clear();
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Indexes never decrease along the queue (commit never decreases).
    pub(crate) fn check_invariants(&self, commit: LogIndex) {
        for pair in self.pending.windows(2) {
            assert!(
                pair[0].index <= pair[1].index,
                "read queue: indexes decrease"
            );
        }
        if let Some(last) = self.pending.last() {
            assert!(last.index <= commit, "read queue: read index beyond commit");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quorum_ack_confirms_earlier_requests() {
        let mut queue = ReadQueue::default();
        assert!(queue.push(1, LogIndex(3), NodeId(1)));
        assert!(queue.push(2, LogIndex(4), NodeId(1)));
        assert!(!queue.push(2, LogIndex(4), NodeId(1)));
        let voters: BTreeSet<NodeId> = (1..=5).map(NodeId).collect();
        assert!(queue.ack(2, NodeId(2), &voters).is_empty());
        assert!(
            queue.ack(2, NodeId(9), &voters).is_empty(),
            "a non-voter does not count"
        );
        let confirmed = queue.ack(2, NodeId(3), &voters);
        assert_eq!(
            confirmed,
            vec![
                ReadState {
                    ctx: 1,
                    index: LogIndex(3)
                },
                ReadState {
                    ctx: 2,
                    index: LogIndex(4)
                },
            ]
        );
        assert!(queue.is_empty());
        assert!(queue.ack(1, NodeId(2), &voters).is_empty());
    }
}
