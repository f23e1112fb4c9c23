//! The moments an aimed crash hits (issue 13): the observer hears of each ([`Moment`]) inside
//! the member's task, and may halt the member there, as a crash at that instant would. Only a
//! simulator asks; the default observer answers `Continue` and nothing changes.

use faultline_raft::{AppendResult, LogIndex, Message, MessageBody, Ready, Term};

use crate::{Canary, Moment, MomentAction};

use super::NodeCore;

impl NodeCore {
    /// The WAL holds this Ready's hard state and entries, not yet synced. True when the
    /// observer halts the member here: the sync never happens, nothing of the Ready is
    /// applied or sent (a power loss then decides what the unsynced tail keeps).
    pub(super) fn halt_before_sync(&mut self, ready: &Ready) -> bool {
        let moment = Moment::BeforeSync {
            term: self.term.0,
            last_index: ready.entries.last().map_or(0, |entry| entry.index.0),
        };
        self.halt_at(moment)
    }

    /// This Ready's messages may leave (their state is durable). True when the observer
    /// halts the member right after them, at a vote granted or an append acknowledged: the
    /// messages leave, and the member does nothing more.
    pub(super) fn halt_after_answers(&mut self, messages: &[Message]) -> bool {
        let mut halt = false;
        for message in messages {
            let moment = match &message.body {
                MessageBody::RequestVoteResponse { granted: true } => Moment::VoteGranted {
                    term: message.term.0,
                    candidate: message.to.0,
                },
                MessageBody::AppendEntriesResponse {
                    result: AppendResult::Accepted { match_index },
                } => Moment::AppendAcked {
                    term: message.term.0,
                    leader: message.to.0,
                    index: match_index.0,
                },
                _ => continue,
            };
            // Every moment is told, even after a halt: the observer counts what it saw.
            halt |= self.halt_at(moment);
        }
        halt
    }

    /// The snapshot at `index` is half written: its file is durable, the WAL's marker not
    /// yet written. True when the observer halts the member here.
    pub(super) fn halt_mid_snapshot(&mut self, index: LogIndex, term: Term) -> bool {
        self.halt_at(Moment::MidSnapshot {
            index: index.0,
            term: term.0,
        })
    }

    fn halt_at(&mut self, moment: Moment) -> bool {
        let action = self.observer.on_moment(self.config.id, moment);
        if action == MomentAction::Halt {
            tracing::debug!(member = self.config.id, "halted at {moment:?}");
            self.halted = true;
        }
        self.halted
    }

    /// The vote-not-synced canary: a Ready that only changes the hard state (a vote, a new
    /// term) is written but not synced; the next Ready with entries syncs it along.
    pub(super) fn canary_skips_sync(&self, ready: &Ready) -> bool {
        self.canary_active(Canary::VoteNotSynced)
            && ready.entries.is_empty()
            && ready.snapshot.is_none()
    }
}
