//! Elections and role changes (Raft paper §5.2, thesis §9.6 pre-vote, §6.2 check-quorum).

use super::*;

/// Why a candidate campaigns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Campaign {
    /// Its election timeout ran out (after a pre-vote, if enabled).
    Normal,
    /// The leader asked it to (`TimeoutNow`): no pre-vote, and voters that still hear from
    /// the leader grant it anyway.
    Transfer,
}

impl Raft {
    // ---------------------------------------------------------------------------------------
    // Elections.
    // ---------------------------------------------------------------------------------------

    /// Starts an election (or pre-election) now, as if the election timeout had run out.
    /// A node that may not campaign (see `may_campaign`: a learner, a node not yet added, or
    /// one whose removal it knows committed) never does.
    pub(crate) fn campaign(&mut self) {
        if !self.may_campaign() || self.campaigns_off {
            return;
        }
        if self.config.pre_vote {
            self.become_pre_candidate();
        } else {
            self.become_candidate(Campaign::Normal);
        }
    }

    pub(super) fn handle_pre_vote(
        &mut self,
        from: NodeId,
        term: Term,
        last_index: LogIndex,
        last_term: Term,
    ) {
        // Granting records nothing, so several pre-candidates may all be granted.
        let granted = term > self.term && self.candidate_log_ok(last_index, last_term);
        // A granted answer echoes the proposed term so the pre-candidate can match it to its
        // campaign; a rejection carries our term so a lagging pre-candidate catches up.
        let answer_term = if granted { term } else { self.term };
        self.send(from, answer_term, MessageBody::PreVoteResponse { granted });
    }

    pub(super) fn handle_request_vote(
        &mut self,
        from: NodeId,
        last_index: LogIndex,
        last_term: Term,
    ) {
        // One vote per term (Raft paper §5.2). A follower that already knows this term's
        // leader has no vote to give either: that leader won it.
        let can_vote = self.vote == Some(from) || (self.vote.is_none() && self.leader.is_none());
        let granted = can_vote && self.candidate_log_ok(last_index, last_term);
        if granted {
            self.vote = Some(from);
            // Figure 2: granting a vote resets the election timer.
            self.election_elapsed_ticks = 0;
        }
        self.send(
            from,
            self.term,
            MessageBody::RequestVoteResponse { granted },
        );
    }

    /// Is this planted bug switched on? Always false without the `canaries` feature, so the
    /// compiler drops the buggy branches from a normal build.
    pub(super) fn canary_active(&self, canary: Canary) -> bool {
        cfg!(feature = "canaries") && self.config.canary == Some(canary)
    }

    /// Raft paper §5.4.1: vote only for a candidate whose log is at least as up to date.
    pub(super) fn candidate_log_ok(&self, last_index: LogIndex, last_term: Term) -> bool {
        if self.canary_active(Canary::VoteWithoutLogCheck) {
            // Planted bug: lets a candidate missing committed entries win.
            return true;
        }
        self.log.is_up_to_date(last_index, last_term)
    }

    pub(super) fn handle_pre_vote_response(&mut self, from: NodeId, term: Term, granted: bool) {
        let campaign_term = if granted { self.term.next() } else { self.term };
        if term != campaign_term {
            return; // An answer to an older pre-campaign.
        }
        match self.tally(from, granted) {
            Some(true) => self.become_candidate(Campaign::Normal),
            Some(false) => self.become_follower(self.term, None),
            None => {}
        }
    }

    pub(super) fn handle_vote_response(&mut self, from: NodeId, granted: bool) {
        match self.tally(from, granted) {
            Some(true) => self.become_leader(),
            Some(false) => self.become_follower(self.term, None),
            None => {}
        }
    }

    /// Records a vote; returns `Some(won)` once the outcome is decided. Only the votes of
    /// voters in our configuration count.
    pub(super) fn tally(&mut self, from: NodeId, granted: bool) -> Option<bool> {
        // The first answer counts; a duplicate cannot change it.
        self.votes.entry(from).or_insert(granted);
        let voters = self.voters();
        let needed = quorum(voters.len());
        let counted = |want: bool| {
            self.votes
                .iter()
                .filter(|(id, granted)| **granted == want && voters.contains(id))
                .count()
        };
        let (granted_count, rejected_count) = (counted(true), counted(false));
        if granted_count >= needed {
            Some(true)
        } else if rejected_count >= needed {
            Some(false)
        } else {
            None
        }
    }

    /// We heard from this term's leader (or are it) within the minimum election timeout.
    pub(super) fn in_leader_lease(&self) -> bool {
        self.leader.is_some() && self.election_elapsed_ticks < self.config.election_timeout_ticks
    }

    // ---------------------------------------------------------------------------------------
    // Role changes.
    // ---------------------------------------------------------------------------------------

    pub(super) fn become_follower(&mut self, term: Term, leader: Option<NodeId>) {
        assert!(term >= self.term, "become_follower would lower the term");
        if term > self.term {
            self.term = term;
            self.vote = None;
        }
        self.role = Role::Follower;
        self.leader = leader;
        self.leave_role();
    }

    /// Called on an AppendEntries or heartbeat at our term: its sender is this term's leader.
    pub(super) fn follow(&mut self, leader: NodeId) {
        if self.role != Role::Follower {
            // Raft paper §5.2: a candidate that hears from a leader of its term steps down.
            self.become_follower(self.term, Some(leader));
        }
        assert!(
            self.leader.is_none() || self.leader == Some(leader),
            "election safety: node {} sees leaders {:?} and {leader} in term {}",
            self.config.id,
            self.leader,
            self.term
        );
        self.leader = Some(leader);
        self.election_elapsed_ticks = 0;
    }

    pub(super) fn become_pre_candidate(&mut self) {
        assert_ne!(self.role, Role::Leader);
        assert!(self.may_campaign(), "only a voter campaigns");
        self.role = Role::PreCandidate;
        // A pre-candidate has given up on the old leader but keeps its term and vote.
        self.leader = None;
        self.leave_role();
        self.votes.insert(self.config.id, true);
        self.request_votes(self.term.next(), |last_log_index, last_log_term| {
            MessageBody::PreVote {
                last_log_index,
                last_log_term,
            }
        });
        if self.tally(self.config.id, true) == Some(true) {
            self.become_candidate(Campaign::Normal);
        }
    }

    pub(super) fn become_candidate(&mut self, campaign: Campaign) {
        assert_ne!(self.role, Role::Leader);
        assert!(self.may_campaign(), "only a voter campaigns");
        self.term = self.term.next();
        self.vote = Some(self.config.id);
        self.role = Role::Candidate;
        self.leader = None;
        self.leave_role();
        self.votes.insert(self.config.id, true);
        let leader_transfer = campaign == Campaign::Transfer;
        self.request_votes(self.term, |last_log_index, last_log_term| {
            MessageBody::RequestVote {
                last_log_index,
                last_log_term,
                leader_transfer,
            }
        });
        if self.tally(self.config.id, true) == Some(true) {
            self.become_leader();
        }
    }

    pub(super) fn request_votes(
        &mut self,
        term: Term,
        body: impl Fn(LogIndex, Term) -> MessageBody,
    ) {
        let (last_index, last_term) = (self.log.last_index(), self.log.last_term());
        for peer in self.vote_peers() {
            self.send(peer, term, body(last_index, last_term));
        }
    }

    pub(super) fn become_leader(&mut self) {
        assert_eq!(
            self.role,
            Role::Candidate,
            "only a candidate becomes leader"
        );
        assert_eq!(self.vote, Some(self.config.id));
        self.role = Role::Leader;
        self.leader = Some(self.config.id);
        self.leave_role();
        // Raft paper §8: an entry of our own term lets us commit everything before it
        // (§5.4.2 forbids committing earlier terms' entries by counting replicas).
        self.log
            .append_new(self.term, Vec::new(), EntryKind::Normal);
        // Every follower starts at the no-op, so the first append carries it and probes at
        // our previous last entry (Raft paper §5.3).
        self.sync_progress();
        self.broadcast_append(WhenEmpty::Send);
    }

    /// Clears everything that belongs to the role we are leaving.
    pub(super) fn leave_role(&mut self) {
        self.votes.clear();
        self.progress.clear();
        self.reads.clear();
        self.reads_before_first_commit.clear();
        self.transfer = None;
        self.reset_timers();
    }

    pub(super) fn reset_timers(&mut self) {
        self.election_elapsed_ticks = 0;
        self.heartbeat_elapsed_ticks = 0;
        let timeout = self.config.election_timeout_ticks;
        self.randomized_election_timeout_ticks = self.rng.random_range(timeout..2 * timeout);
    }

    pub(super) fn tick_leader(&mut self) {
        self.heartbeat_elapsed_ticks += 1;
        if self.election_elapsed_ticks >= self.config.election_timeout_ticks {
            self.election_elapsed_ticks = 0;
            if self.config.check_quorum && !self.quorum_recently_active() {
                // Raft thesis §6.2: a leader cut off from a quorum stops serving, so clients
                // retry elsewhere instead of waiting on a leader that cannot commit.
                self.become_follower(self.term, None);
                if self.canary_active(Canary::NoCampaignAfterStepDown) {
                    // Planted bug: the deposed leader's campaigns stay switched off.
                    self.campaigns_off = true;
                }
                return;
            }
            for progress in self.progress.values_mut() {
                progress.recently_active = false;
            }
        }
        let timeout = self.config.election_timeout_ticks;
        for progress in self.progress.values_mut() {
            progress.tick(timeout);
        }
        self.tick_transfer();
        if self.heartbeat_elapsed_ticks >= self.config.heartbeat_interval_ticks {
            self.heartbeat_elapsed_ticks = 0;
            self.periodic_heartbeat();
        }
    }

    /// Have a quorum of voters (ourselves included, if we vote) been heard from since the
    /// last check? Learners and removed nodes do not count.
    pub(super) fn quorum_recently_active(&self) -> bool {
        let voters = self.voters();
        let active = voters
            .iter()
            .filter(|id| {
                **id == self.config.id || self.progress.get(id).is_some_and(|p| p.recently_active)
            })
            .count();
        active >= quorum(voters.len())
    }
}
