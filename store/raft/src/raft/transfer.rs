//! Leader transfer (Raft thesis §3.10, etcd's MoveLeader).
//!
//! The leader stops accepting proposals and configuration changes, brings the target's log up
//! to its own last index, then sends it `TimeoutNow`. The target campaigns at once, skipping
//! pre-vote, and its vote requests carry `leader_transfer`, so voters in their leader lease
//! (check-quorum) grant them anyway; the old leader steps down on the higher term like any
//! follower. Its log is as up to date as anyone's, so it wins unless a vote is lost. If no
//! leader change happens within an election timeout, the transfer is abandoned and the leader
//! serves again.
//!
//! Safety does not depend on any of this: the target's election is an ordinary election
//! (one vote per voter per term, the log check of §5.4.1). Only the lease is bypassed, and
//! only at the request of the leader the lease protects.

use super::*;

/// A transfer in progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Transfer {
    to: NodeId,
    elapsed_ticks: u64,
    /// `TimeoutNow` went out; it is sent once per transfer.
    timeout_now_sent: bool,
}

impl Raft {
    /// Asks the leader to hand leadership to voter `to`. `Ok` means the transfer started (or
    /// was already under way, or `to` is this leader): watch `status().leader` to see it
    /// complete. Until it completes or is abandoned (after an election timeout), proposals are
    /// refused with `ProposeError::NotLeader { leader_hint: Some(to) }` and configuration
    /// changes with `ConfChangeError::TransferInProgress`. A second transfer to another target
    /// replaces the first.
    pub fn transfer_leader(&mut self, to: NodeId) -> Result<(), TransferError> {
        if self.role != Role::Leader {
            return Err(TransferError::NotLeader {
                leader_hint: self.leader,
            });
        }
        if to == self.config.id {
            return Ok(());
        }
        if !self.log.conf_state().is_voter(to) {
            return Err(TransferError::NotVoter { node: to });
        }
        if self.transfer_target() == Some(to) {
            return Ok(());
        }
        self.transfer = Some(Transfer {
            to,
            elapsed_ticks: 0,
            timeout_now_sent: false,
        });
        self.send_append(to, WhenEmpty::Send);
        self.maybe_send_timeout_now();
        Ok(())
    }

    /// The node leadership is being handed to, if a transfer is in progress.
    pub(super) fn transfer_target(&self) -> Option<NodeId> {
        self.transfer.map(|transfer| transfer.to)
    }

    /// Once the target holds our whole log, tell it to campaign.
    pub(super) fn maybe_send_timeout_now(&mut self) {
        let Some(transfer) = self.transfer else {
            return;
        };
        let caught_up = self
            .progress
            .get(&transfer.to)
            .is_some_and(|progress| progress.match_index == self.log.last_index());
        if caught_up && !transfer.timeout_now_sent {
            self.transfer = Some(Transfer {
                timeout_now_sent: true,
                ..transfer
            });
            self.send(transfer.to, self.term, MessageBody::TimeoutNow);
        }
    }

    /// Leader tick: abandon a transfer that has not completed within an election timeout.
    pub(super) fn tick_transfer(&mut self) {
        let Some(transfer) = &mut self.transfer else {
            return;
        };
        transfer.elapsed_ticks += 1;
        if transfer.elapsed_ticks >= self.config.election_timeout_ticks {
            self.transfer = None;
        }
    }

    /// `TimeoutNow` from our leader: campaign now, if we may.
    pub(super) fn handle_timeout_now(&mut self) {
        if self.may_campaign() {
            self.become_candidate(Campaign::Transfer);
        }
    }

    /// A leader whose removal committed hands over to the most up-to-date voter, so the
    /// cluster need not wait for an election timeout.
    pub(super) fn hand_over_after_removal(&mut self) {
        let last = self.log.last_index();
        let successor = self
            .voters()
            .iter()
            .filter(|voter| {
                self.progress
                    .get(voter)
                    .is_some_and(|progress| progress.match_index == last)
            })
            .min()
            .copied();
        if let Some(successor) = successor {
            self.send(successor, self.term, MessageBody::TimeoutNow);
        }
    }
}
