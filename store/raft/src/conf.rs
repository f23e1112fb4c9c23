//! Cluster membership as data: the configuration (`ConfState`), a single-server change to it
//! (`ConfChange`), and the rules a change must follow to be valid at all. When a change may
//! be proposed (one at a time, after the leader's first commit in its term, a learner only
//! once caught up) is decided in `raft/membership.rs`.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ids::{LogIndex, NodeId};

/// The cluster's membership: who votes, and who only receives the log (learners never vote
/// and never count in a quorum). Replicated state: the log carries every change with the
/// configuration it results in, and a snapshot carries the configuration as of its last
/// entry. Invariant: `voters` is non-empty and disjoint from `learners`.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ConfState {
    pub voters: BTreeSet<NodeId>,
    pub learners: BTreeSet<NodeId>,
}

impl ConfState {
    /// A configuration of voters only.
    pub fn with_voters(voters: impl IntoIterator<Item = NodeId>) -> ConfState {
        ConfState {
            voters: voters.into_iter().collect(),
            learners: BTreeSet::new(),
        }
    }

    pub fn is_voter(&self, id: NodeId) -> bool {
        self.voters.contains(&id)
    }

    pub fn is_learner(&self, id: NodeId) -> bool {
        self.learners.contains(&id)
    }

    /// Voters and learners, in id order.
    pub fn members(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.voters.union(&self.learners).copied()
    }

    pub fn membership(&self, id: NodeId) -> Membership {
        if self.is_voter(id) {
            Membership::Voter
        } else if self.is_learner(id) {
            Membership::Learner
        } else {
            Membership::NotMember
        }
    }

    /// The configuration after `change`, or why the change does not apply to this one.
    pub fn apply(&self, change: ConfChange) -> Result<ConfState, ConfChangeError> {
        let node = change.node;
        let mut next = self.clone();
        match change.change_type {
            ConfChangeType::AddVoter => match self.membership(node) {
                Membership::Voter => return Err(ConfChangeError::AlreadyVoter { node }),
                // Growing the quorum with a node that has nothing would stall commits until it
                // caught up: a learner joins the voters only through PromoteLearner.
                Membership::Learner => return Err(ConfChangeError::IsLearner { node }),
                Membership::NotMember => {
                    next.voters.insert(node);
                }
            },
            ConfChangeType::AddLearner => match self.membership(node) {
                Membership::NotMember => {
                    next.learners.insert(node);
                }
                Membership::Voter => return Err(ConfChangeError::AlreadyVoter { node }),
                Membership::Learner => return Err(ConfChangeError::AlreadyLearner { node }),
            },
            ConfChangeType::PromoteLearner => {
                if !next.learners.remove(&node) {
                    return Err(ConfChangeError::NotLearner { node });
                }
                next.voters.insert(node);
            }
            ConfChangeType::RemoveNode => match self.membership(node) {
                Membership::Voter if self.voters.len() == 1 => {
                    return Err(ConfChangeError::LastVoter { node })
                }
                Membership::Voter => {
                    next.voters.remove(&node);
                }
                Membership::Learner => {
                    next.learners.remove(&node);
                }
                Membership::NotMember => return Err(ConfChangeError::NotMember { node }),
            },
        }
        next.check();
        Ok(next)
    }

    /// Panics on a configuration that cannot work.
    pub(crate) fn check(&self) {
        assert!(!self.voters.is_empty(), "configuration without voters");
        assert!(
            self.voters.is_disjoint(&self.learners),
            "a node is both voter and learner: {self:?}"
        );
    }
}

/// One node's place in a configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Membership {
    Voter,
    Learner,
    NotMember,
}

impl fmt::Display for Membership {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Membership::Voter => "voter",
            Membership::Learner => "learner",
            Membership::NotMember => "not-member",
        };
        f.write_str(name)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConfChangeType {
    /// A new node joins as a voter at once (the quorum grows before it has any entries).
    AddVoter,
    /// A new node joins as a learner: it receives the log but neither votes nor counts.
    AddLearner,
    /// A learner becomes a voter; refused until it has caught up with the leader.
    PromoteLearner,
    /// A voter or learner leaves.
    RemoveNode,
}

/// A single-server membership change (Raft thesis §4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfChange {
    pub change_type: ConfChangeType,
    pub node: NodeId,
}

impl fmt::Display for ConfChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = match self.change_type {
            ConfChangeType::AddVoter => "add-voter",
            ConfChangeType::AddLearner => "add-learner",
            ConfChangeType::PromoteLearner => "promote",
            ConfChangeType::RemoveNode => "remove",
        };
        write!(f, "{verb} {}", self.node)
    }
}

/// Why a configuration change was refused. Not an assertion: the caller retries later or
/// elsewhere.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConfChangeError {
    /// Only the leader accepts changes; `leader_hint` is the leader this node believes in.
    NotLeader {
        leader_hint: Option<NodeId>,
    },
    /// The leader is handing leadership to `to` and accepts no changes meanwhile.
    TransferInProgress {
        to: NodeId,
    },
    /// The leader has not yet committed an entry of its own term. Until it has, its log may
    /// end in a configuration change of an earlier leader that never commits, and a change
    /// on top of it could form a majority disjoint from the other side's (the single-server
    /// change bug described by Ongaro in 2015, fixed in the thesis errata).
    NotCommittedInTerm,
    /// The change at `index` is not committed yet: one change at a time.
    ChangePending {
        index: LogIndex,
    },
    AlreadyVoter {
        node: NodeId,
    },
    AlreadyLearner {
        node: NodeId,
    },
    /// `node` is a learner: promote it rather than adding it as a voter.
    IsLearner {
        node: NodeId,
    },
    NotLearner {
        node: NodeId,
    },
    NotMember {
        node: NodeId,
    },
    /// The configuration would be left without voters.
    LastVoter {
        node: NodeId,
    },
    /// The learner's log lags too far behind the leader's to join the quorum without
    /// stalling commits (etcd refuses to promote an unready learner likewise).
    LearnerNotCaughtUp {
        node: NodeId,
        match_index: LogIndex,
        leader_last_index: LogIndex,
    },
}

impl fmt::Display for ConfChangeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfChangeError::NotLeader { leader_hint } => {
                write!(f, "not the leader (leader hint {leader_hint:?})")
            }
            ConfChangeError::TransferInProgress { to } => {
                write!(f, "leadership is being transferred to node {to}")
            }
            ConfChangeError::NotCommittedInTerm => {
                write!(f, "the leader has not committed an entry of its term yet")
            }
            ConfChangeError::ChangePending { index } => {
                write!(f, "the change at index {index} is not committed yet")
            }
            ConfChangeError::AlreadyVoter { node } => write!(f, "node {node} is a voter already"),
            ConfChangeError::AlreadyLearner { node } => {
                write!(f, "node {node} is a learner already")
            }
            ConfChangeError::IsLearner { node } => {
                write!(f, "node {node} is a learner: promote it instead")
            }
            ConfChangeError::NotLearner { node } => write!(f, "node {node} is not a learner"),
            ConfChangeError::NotMember { node } => write!(f, "node {node} is not a member"),
            ConfChangeError::LastVoter { node } => {
                write!(f, "node {node} is the last voter")
            }
            ConfChangeError::LearnerNotCaughtUp {
                node,
                match_index,
                leader_last_index,
            } => write!(
                f,
                "learner {node} is not caught up (match {match_index}, leader's last index \
                 {leader_last_index})"
            ),
        }
    }
}

impl std::error::Error for ConfChangeError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(change_type: ConfChangeType, node: u64) -> ConfChange {
        ConfChange {
            change_type,
            node: NodeId(node),
        }
    }

    #[test]
    fn single_server_changes_apply_and_refuse() {
        let start = ConfState::with_voters([NodeId(1), NodeId(2)]);
        let with_learner = start.apply(change(ConfChangeType::AddLearner, 3)).unwrap();
        assert_eq!(with_learner.membership(NodeId(3)), Membership::Learner);
        assert_eq!(
            with_learner.apply(change(ConfChangeType::AddVoter, 3)),
            Err(ConfChangeError::IsLearner { node: NodeId(3) })
        );
        let promoted = with_learner
            .apply(change(ConfChangeType::PromoteLearner, 3))
            .unwrap();
        assert_eq!(promoted.voters.len(), 3);
        assert!(promoted.learners.is_empty());
        assert_eq!(
            promoted.apply(change(ConfChangeType::PromoteLearner, 3)),
            Err(ConfChangeError::NotLearner { node: NodeId(3) })
        );
        let removed = promoted
            .apply(change(ConfChangeType::RemoveNode, 1))
            .unwrap();
        assert_eq!(removed.membership(NodeId(1)), Membership::NotMember);
        let last = ConfState::with_voters([NodeId(1)]);
        assert_eq!(
            last.apply(change(ConfChangeType::RemoveNode, 1)),
            Err(ConfChangeError::LastVoter { node: NodeId(1) })
        );
        assert_eq!(
            last.apply(change(ConfChangeType::RemoveNode, 9)),
            Err(ConfChangeError::NotMember { node: NodeId(9) })
        );
    }
}
