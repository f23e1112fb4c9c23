//! The Raft state machine: `tick`, `step`, `propose`, `read_index` in; `Ready` out.

use std::collections::BTreeMap;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::log::RaftLog;
use crate::progress::{quorum, quorum_index, Progress};
use crate::read_index::ReadQueue;
use crate::ready::Ready;
use crate::types::{
    AppendResult, Canary, Config, Entry, HardState, LogIndex, Message, MessageBody, NodeId,
    PersistedState, ProposeError, ReadState, Role, SoftState, Status, Term,
};

/// Whether `send_append` sends a message that carries no entries. An empty append still
/// probes the follower's log and carries the leader's commit index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum WhenEmpty {
    Skip,
    Send,
}

/// One Raft peer. See the crate docs for the driving loop.
#[derive(Debug)]
pub struct Raft {
    config: Config,
    term: Term,
    vote: Option<NodeId>,
    /// Invariant: `leader == Some(config.id)` iff `role == Leader`.
    leader: Option<NodeId>,
    role: Role,
    log: RaftLog,
    /// The only source of randomness (election timeouts), seeded by the caller.
    rng: ChaCha8Rng,
    /// Ticks since we last heard from a leader (followers), started a campaign
    /// (candidates), or ran a check-quorum round (leaders).
    election_elapsed_ticks: u64,
    heartbeat_elapsed_ticks: u64,
    /// Drawn from `[election_timeout_ticks, 2 * election_timeout_ticks)` on every role change,
    /// so that split votes do not repeat forever (Raft paper §5.2).
    randomized_election_timeout_ticks: u64,
    /// Votes received in the current (pre-)campaign, including our own.
    votes: BTreeMap<NodeId, bool>,
    /// Leader only: one entry per other voter.
    progress: BTreeMap<NodeId, Progress>,
    /// Leader only: ReadIndex requests waiting for a heartbeat quorum.
    reads: ReadQueue,
    /// Leader only: ReadIndex requests that arrived before the leader committed an entry of
    /// its term; until then its commit index may lag the cluster's (Raft thesis §6.4 step 1).
    reads_before_first_commit: Vec<u64>,
    outbox: Vec<Message>,
    read_states: Vec<ReadState>,
    /// What the previous `Ready` reported, to report only changes.
    reported_soft_state: SoftState,
    reported_hard_state: HardState,
    /// A `Ready` was taken and `advance` has not been called yet.
    ready_outstanding: bool,
}

impl Raft {
    /// Creates a node, fresh (`PersistedState::default()`) or restarting from what storage
    /// recovered. It starts as a follower that knows no leader; applied starts at 0, so the
    /// node re-applies the log up to commit.
    pub fn new(config: Config, persisted: PersistedState, rng_seed: u64) -> Raft {
        config.validate();
        let PersistedState {
            hard_state,
            entries,
        } = persisted;
        let log = RaftLog::recovered(entries, hard_state.commit);
        assert!(
            log.last_term() <= hard_state.term,
            "recovered log has term {} beyond the recovered term {}",
            log.last_term(),
            hard_state.term
        );
        let soft_state = SoftState {
            leader: None,
            role: Role::Follower,
            term: hard_state.term,
        };
        let mut raft = Raft {
            config,
            term: hard_state.term,
            vote: hard_state.vote,
            leader: None,
            role: Role::Follower,
            log,
            rng: ChaCha8Rng::seed_from_u64(rng_seed),
            election_elapsed_ticks: 0,
            heartbeat_elapsed_ticks: 0,
            randomized_election_timeout_ticks: 0,
            votes: BTreeMap::new(),
            progress: BTreeMap::new(),
            reads: ReadQueue::default(),
            reads_before_first_commit: Vec::new(),
            outbox: Vec::new(),
            read_states: Vec::new(),
            reported_soft_state: soft_state,
            reported_hard_state: hard_state,
            ready_outstanding: false,
        };
        raft.reset_timers();
        raft.check_invariants();
        raft
    }

    // ---------------------------------------------------------------------------------------
    // Inputs.
    // ---------------------------------------------------------------------------------------

    /// Advances logical time by one tick.
    pub fn tick(&mut self) {
        self.election_elapsed_ticks += 1;
        match self.role {
            Role::Leader => self.tick_leader(),
            Role::Follower | Role::PreCandidate | Role::Candidate => {
                if self.election_elapsed_ticks >= self.randomized_election_timeout_ticks {
                    self.campaign();
                }
            }
        }
    }

    /// Handles one message from a peer. Messages from earlier terms are answered with our
    /// term where that helps the sender catch up (Raft paper §5.1) and otherwise dropped.
    pub fn step(&mut self, msg: Message) {
        assert_eq!(
            msg.to, self.config.id,
            "message for node {} delivered to node {}",
            msg.to, self.config.id
        );
        assert_ne!(
            msg.from, self.config.id,
            "node {} sent a message to itself",
            msg.from
        );
        if !self.config.voters.contains(&msg.from) {
            // Membership is fixed: a sender outside it is misconfigured, not a peer. Ignoring it
            // keeps a stray process from disrupting the cluster.
            return;
        }
        match msg.term.cmp(&self.term) {
            std::cmp::Ordering::Less => self.answer_stale(&msg),
            std::cmp::Ordering::Greater => {
                if self.enter_higher_term(&msg) {
                    self.dispatch(msg);
                }
            }
            std::cmp::Ordering::Equal => self.dispatch(msg),
        }
    }

    /// Appends `data` to the leader's log. Returns where it will commit, if it commits.
    pub fn propose(&mut self, data: Vec<u8>) -> Result<(Term, LogIndex), ProposeError> {
        // Empty data marks the leader's no-op, which the node does not apply.
        assert!(!data.is_empty(), "proposal data must not be empty");
        if self.role != Role::Leader {
            return Err(ProposeError::NotLeader {
                leader_hint: self.leader,
            });
        }
        let index = self.log.append_new(self.term, data);
        self.broadcast_append(WhenEmpty::Skip);
        Ok((self.term, index))
    }

    /// Starts an etcd-style ReadIndex (Raft thesis §6.4): the result comes back as a
    /// `ReadState` in a later `Ready`, once a quorum has confirmed this leader after the
    /// request arrived. If leadership is lost first, the request is dropped silently; the
    /// caller must time out and retry.
    pub fn read_index(&mut self, ctx: u64) -> Result<(), ProposeError> {
        if self.role != Role::Leader {
            return Err(ProposeError::NotLeader {
                leader_hint: self.leader,
            });
        }
        if !self.committed_in_current_term() {
            if !self.reads_before_first_commit.contains(&ctx) {
                self.reads_before_first_commit.push(ctx);
            }
            return Ok(());
        }
        self.start_read(ctx);
        Ok(())
    }

    // ---------------------------------------------------------------------------------------
    // Outputs.
    // ---------------------------------------------------------------------------------------

    pub fn has_ready(&self) -> bool {
        self.soft_state() != self.reported_soft_state
            || self.hard_state() != self.reported_hard_state
            || self.log.has_unstable()
            || !self.outbox.is_empty()
            || self.log.has_to_apply()
            || !self.read_states.is_empty()
    }

    /// Takes everything pending. See `Ready` for what the node must do with it, in which
    /// order, before calling `advance`.
    pub fn ready(&mut self) -> Ready {
        assert!(
            !self.ready_outstanding,
            "ready() called twice without advance() in between"
        );
        let soft_state = self.soft_state();
        let hard_state = self.hard_state();
        // Unstable entries first, then committed ones: a committed entry is then always either
        // persisted already or in this Ready's `entries`, which the node persists first.
        let entries = self.log.take_unstable();
        let committed_entries = self.log.take_to_apply();
        let ready = Ready {
            soft_state: (soft_state != self.reported_soft_state).then_some(soft_state),
            hard_state: (hard_state != self.reported_hard_state).then_some(hard_state),
            entries,
            messages: std::mem::take(&mut self.outbox),
            committed_entries,
            read_states: std::mem::take(&mut self.read_states),
        };
        self.reported_soft_state = soft_state;
        self.reported_hard_state = hard_state;
        self.ready_outstanding = true;
        ready
    }

    /// The node has done what `ready` asked: entries and hard state are durable, committed
    /// entries applied.
    pub fn advance(&mut self, ready: &Ready) {
        assert!(self.ready_outstanding, "advance() without a ready()");
        self.ready_outstanding = false;
        if let Some(last) = ready.entries.last() {
            self.log.stable_to(last);
            if self.role == Role::Leader {
                // The leader counts only its durable entries (Raft paper §10.2.1 allows
                // writing in parallel, but then the leader must not count itself early).
                self.maybe_commit();
            }
        }
        if let Some(last) = ready.committed_entries.last() {
            self.log.applied_to(last.index);
        }
    }

    pub fn status(&self) -> Status {
        Status {
            id: self.config.id,
            role: self.role,
            term: self.term,
            leader: self.leader,
            commit: self.log.commit,
            applied: self.log.applied,
            last_index: self.log.last_index(),
            last_term: self.log.last_term(),
            vote: self.vote,
        }
    }

    /// The whole in-memory log from index 1, including entries not yet persisted. For
    /// checkers (log matching, leader completeness) and debugging; the node uses `Ready`.
    pub fn log_entries(&self) -> &[Entry] {
        self.log.entries()
    }

    /// Panics with a description of the first broken invariant. Cheap enough to run after
    /// every step in simulation.
    pub fn check_invariants(&self) {
        self.log.check_invariants();
        let id = self.config.id;
        assert!(
            self.log.last_term() <= self.term,
            "node {id}: last log term {} > current term {}",
            self.log.last_term(),
            self.term
        );
        assert!(
            self.reported_hard_state.term <= self.term,
            "node {id}: term went backwards"
        );
        assert_eq!(
            self.leader == Some(id),
            self.role == Role::Leader,
            "node {id}: role {} but leader {:?}",
            self.role,
            self.leader
        );
        if matches!(self.role, Role::Candidate | Role::Leader) {
            assert_eq!(
                self.vote,
                Some(id),
                "node {id}: {} without self-vote",
                self.role
            );
        }
        let timeout = self.config.election_timeout_ticks;
        assert!(
            (timeout..2 * timeout).contains(&self.randomized_election_timeout_ticks),
            "node {id}: randomized election timeout out of range"
        );
        if self.role == Role::Leader {
            self.check_leader_invariants();
        } else {
            assert!(
                self.progress.is_empty(),
                "node {id}: non-leader tracks progress"
            );
            assert!(self.reads.is_empty(), "node {id}: non-leader holds reads");
            assert!(
                self.reads_before_first_commit.is_empty(),
                "node {id}: non-leader holds reads"
            );
        }
    }

    fn check_leader_invariants(&self) {
        let id = self.config.id;
        // The no-op appended on election (Raft paper §8) guarantees this.
        assert_eq!(
            self.log.last_term(),
            self.term,
            "node {id}: leader has no entry of its own term"
        );
        assert_eq!(
            self.progress.len() + 1,
            self.config.voters.len(),
            "node {id}: progress must cover every other voter"
        );
        let last = self.log.last_index();
        for (peer, progress) in &self.progress {
            assert!(
                progress.match_index <= last,
                "node {id}: peer {peer} matches beyond our log"
            );
            assert!(
                progress.next_index <= last.next(),
                "node {id}: peer {peer} next beyond our log"
            );
        }
        self.reads.check_invariants(self.log.commit);
        if !self.reads.is_empty() {
            assert!(
                self.committed_in_current_term(),
                "node {id}: reads confirmed before committing in term"
            );
        }
    }

    // ---------------------------------------------------------------------------------------
    // Term handling and dispatch.
    // ---------------------------------------------------------------------------------------

    /// A message from a higher term. Returns whether to go on and handle it at our (possibly
    /// new) term.
    fn enter_higher_term(&mut self, msg: &Message) -> bool {
        match msg.body {
            // Raft thesis §9.6: a server that heard from a live leader within the minimum
            // election timeout grants no pre-vote.
            MessageBody::PreVote { .. } if self.in_leader_lease() => false,
            // Thesis §4.2.3: with check-quorum, leaders step down when cut off, so followers
            // can safely also ignore real vote requests (and their terms) during the lease.
            // This keeps a server that was partitioned away from deposing a healthy leader.
            MessageBody::RequestVote { .. }
                if self.config.check_quorum && self.in_leader_lease() =>
            {
                false
            }
            // Pre-vote neither changes terms nor records anything (thesis §9.6).
            MessageBody::PreVote { .. } => true,
            // A granted pre-vote is tagged with the term we would campaign in, not a term
            // anyone is in; a rejection carries the rejecter's real term, which we adopt below.
            MessageBody::PreVoteResponse { granted: true } => true,
            MessageBody::AppendEntries { .. } | MessageBody::Heartbeat { .. } => {
                self.become_follower(msg.term, Some(msg.from));
                true
            }
            _ => {
                self.become_follower(msg.term, None);
                true
            }
        }
    }

    fn answer_stale(&mut self, msg: &Message) {
        let body = match msg.body {
            // Tell an old leader about the new term so that it steps down.
            MessageBody::AppendEntries { .. } | MessageBody::Heartbeat { .. } => {
                MessageBody::HeartbeatResponse { read_ctx: None }
            }
            MessageBody::PreVote { .. } => MessageBody::PreVoteResponse { granted: false },
            MessageBody::RequestVote { .. } => MessageBody::RequestVoteResponse { granted: false },
            // A late answer to something we asked in an earlier term: nothing to learn.
            _ => return,
        };
        self.send(msg.from, self.term, body);
    }

    /// The one `match` on (role, message) at the current term.
    fn dispatch(&mut self, msg: Message) {
        let Message {
            from, term, body, ..
        } = msg;
        match (self.role, body) {
            (
                _,
                MessageBody::PreVote {
                    last_log_index,
                    last_log_term,
                },
            ) => self.handle_pre_vote(from, term, last_log_index, last_log_term),
            (
                _,
                MessageBody::RequestVote {
                    last_log_index,
                    last_log_term,
                },
            ) => self.handle_request_vote(from, last_log_index, last_log_term),
            (Role::PreCandidate, MessageBody::PreVoteResponse { granted }) => {
                self.handle_pre_vote_response(from, term, granted)
            }
            (Role::Candidate, MessageBody::RequestVoteResponse { granted }) => {
                self.handle_vote_response(from, granted)
            }
            (Role::Leader, MessageBody::AppendEntries { .. } | MessageBody::Heartbeat { .. }) => {
                panic!(
                    "election safety: node {} and node {from} both lead term {}",
                    self.config.id, self.term
                )
            }
            (
                _,
                MessageBody::AppendEntries {
                    prev_log_index,
                    prev_log_term,
                    entries,
                    leader_commit,
                },
            ) => {
                self.follow(from);
                self.handle_append(from, prev_log_index, prev_log_term, &entries, leader_commit)
            }
            (
                _,
                MessageBody::Heartbeat {
                    leader_commit,
                    read_ctx,
                },
            ) => {
                self.follow(from);
                self.handle_heartbeat(from, leader_commit, read_ctx)
            }
            (Role::Leader, MessageBody::AppendEntriesResponse { result }) => {
                self.handle_append_response(from, result)
            }
            (Role::Leader, MessageBody::HeartbeatResponse { read_ctx }) => {
                self.handle_heartbeat_response(from, read_ctx)
            }
            // Answers to a campaign or a leadership we have since left: nothing to do.
            (
                _,
                MessageBody::PreVoteResponse { .. }
                | MessageBody::RequestVoteResponse { .. }
                | MessageBody::AppendEntriesResponse { .. }
                | MessageBody::HeartbeatResponse { .. },
            ) => {}
        }
    }

    // ---------------------------------------------------------------------------------------
    // Elections.
    // ---------------------------------------------------------------------------------------

    /// Starts an election (or pre-election) now, as if the election timeout had run out.
    pub(crate) fn campaign(&mut self) {
        if self.config.pre_vote {
            self.become_pre_candidate();
        } else {
            self.become_candidate();
        }
    }

    fn handle_pre_vote(&mut self, from: NodeId, term: Term, last_index: LogIndex, last_term: Term) {
        // Granting records nothing, so several pre-candidates may all be granted.
        let granted = term > self.term && self.candidate_log_ok(last_index, last_term);
        // A granted answer echoes the proposed term so the pre-candidate can match it to its
        // campaign; a rejection carries our term so a lagging pre-candidate catches up.
        let answer_term = if granted { term } else { self.term };
        self.send(from, answer_term, MessageBody::PreVoteResponse { granted });
    }

    fn handle_request_vote(&mut self, from: NodeId, last_index: LogIndex, last_term: Term) {
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
    fn canary_active(&self, canary: Canary) -> bool {
        cfg!(feature = "canaries") && self.config.canary == Some(canary)
    }

    /// Raft paper §5.4.1: vote only for a candidate whose log is at least as up to date.
    fn candidate_log_ok(&self, last_index: LogIndex, last_term: Term) -> bool {
        if self.canary_active(Canary::VoteWithoutLogCheck) {
            // Planted bug: lets a candidate missing committed entries win.
            return true;
        }
        self.log.is_up_to_date(last_index, last_term)
    }

    fn handle_pre_vote_response(&mut self, from: NodeId, term: Term, granted: bool) {
        let campaign_term = if granted { self.term.next() } else { self.term };
        if term != campaign_term {
            return; // An answer to an older pre-campaign.
        }
        match self.tally(from, granted) {
            Some(true) => self.become_candidate(),
            Some(false) => self.become_follower(self.term, None),
            None => {}
        }
    }

    fn handle_vote_response(&mut self, from: NodeId, granted: bool) {
        match self.tally(from, granted) {
            Some(true) => self.become_leader(),
            Some(false) => self.become_follower(self.term, None),
            None => {}
        }
    }

    /// Records a vote; returns `Some(won)` once the outcome is decided.
    fn tally(&mut self, from: NodeId, granted: bool) -> Option<bool> {
        // The first answer counts; a duplicate cannot change it.
        self.votes.entry(from).or_insert(granted);
        let needed = quorum(self.config.voters.len());
        let granted_count = self.votes.values().filter(|granted| **granted).count();
        let rejected_count = self.votes.len() - granted_count;
        if granted_count >= needed {
            Some(true)
        } else if rejected_count >= needed {
            Some(false)
        } else {
            None
        }
    }

    /// We heard from this term's leader (or are it) within the minimum election timeout.
    fn in_leader_lease(&self) -> bool {
        self.leader.is_some() && self.election_elapsed_ticks < self.config.election_timeout_ticks
    }

    // ---------------------------------------------------------------------------------------
    // Role changes.
    // ---------------------------------------------------------------------------------------

    fn become_follower(&mut self, term: Term, leader: Option<NodeId>) {
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
    fn follow(&mut self, leader: NodeId) {
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

    fn become_pre_candidate(&mut self) {
        assert_ne!(self.role, Role::Leader);
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
            self.become_candidate();
        }
    }

    fn become_candidate(&mut self) {
        assert_ne!(self.role, Role::Leader);
        self.term = self.term.next();
        self.vote = Some(self.config.id);
        self.role = Role::Candidate;
        self.leader = None;
        self.leave_role();
        self.votes.insert(self.config.id, true);
        self.request_votes(self.term, |last_log_index, last_log_term| {
            MessageBody::RequestVote {
                last_log_index,
                last_log_term,
            }
        });
        if self.tally(self.config.id, true) == Some(true) {
            self.become_leader();
        }
    }

    fn request_votes(&mut self, term: Term, body: impl Fn(LogIndex, Term) -> MessageBody) {
        let (last_index, last_term) = (self.log.last_index(), self.log.last_term());
        for peer in self.peers() {
            self.send(peer, term, body(last_index, last_term));
        }
    }

    fn become_leader(&mut self) {
        assert_eq!(
            self.role,
            Role::Candidate,
            "only a candidate becomes leader"
        );
        assert_eq!(self.vote, Some(self.config.id));
        self.role = Role::Leader;
        self.leader = Some(self.config.id);
        self.leave_role();
        // next = last + 1 before the no-op, so the first append carries the no-op and probes
        // at our previous last entry (Raft paper §5.3).
        let last = self.log.last_index();
        self.progress = self
            .peers()
            .map(|peer| (peer, Progress::new(last)))
            .collect();
        // Raft paper §8: an entry of our own term lets us commit everything before it
        // (§5.4.2 forbids committing earlier terms' entries by counting replicas).
        self.log.append_new(self.term, Vec::new());
        self.broadcast_append(WhenEmpty::Send);
    }

    /// Clears everything that belongs to the role we are leaving.
    fn leave_role(&mut self) {
        self.votes.clear();
        self.progress.clear();
        self.reads.clear();
        self.reads_before_first_commit.clear();
        self.reset_timers();
    }

    fn reset_timers(&mut self) {
        self.election_elapsed_ticks = 0;
        self.heartbeat_elapsed_ticks = 0;
        let timeout = self.config.election_timeout_ticks;
        self.randomized_election_timeout_ticks = self.rng.random_range(timeout..2 * timeout);
    }

    fn tick_leader(&mut self) {
        self.heartbeat_elapsed_ticks += 1;
        if self.election_elapsed_ticks >= self.config.election_timeout_ticks {
            self.election_elapsed_ticks = 0;
            if self.config.check_quorum && !self.quorum_recently_active() {
                // Raft thesis §6.2: a leader cut off from a quorum stops serving, so clients
                // retry elsewhere instead of waiting on a leader that cannot commit.
                self.become_follower(self.term, None);
                return;
            }
            for progress in self.progress.values_mut() {
                progress.recently_active = false;
            }
        }
        if self.heartbeat_elapsed_ticks >= self.config.heartbeat_interval_ticks {
            self.heartbeat_elapsed_ticks = 0;
            self.broadcast_heartbeat();
        }
    }

    fn quorum_recently_active(&self) -> bool {
        let active_peers = self.progress.values().filter(|p| p.recently_active).count();
        active_peers + 1 >= quorum(self.config.voters.len())
    }

    // ---------------------------------------------------------------------------------------
    // Replication: follower side.
    // ---------------------------------------------------------------------------------------

    fn handle_append(
        &mut self,
        from: NodeId,
        prev_index: LogIndex,
        prev_term: Term,
        entries: &[Entry],
        leader_commit: LogIndex,
    ) {
        let result = if self.log.term(prev_index) == Some(prev_term) {
            let last_new = self.log.append_from_leader(prev_index, entries);
            // Figure 2 receiver rule 5: commit only what this append proved we hold; entries
            // past `last_new` may still be stale leftovers of an older term.
            self.log.commit_to(leader_commit.min(last_new));
            AppendResult::Accepted {
                match_index: last_new,
            }
        } else {
            let hint_index = self.log.find_conflict_by_term(prev_index, prev_term);
            let hint_term = self.log.term(hint_index).expect("hint is within the log");
            debug_assert!(
                hint_index <= prev_index,
                "hint must not lie above the rejected prev"
            );
            AppendResult::Rejected {
                rejected_prev_index: prev_index,
                hint_index,
                hint_term,
            }
        };
        self.send(
            from,
            self.term,
            MessageBody::AppendEntriesResponse { result },
        );
    }

    fn handle_heartbeat(&mut self, from: NodeId, leader_commit: LogIndex, read_ctx: Option<u64>) {
        // The leader caps a heartbeat's commit at what it knows we hold durably, and only a
        // leader of a later term could have made us drop that.
        assert!(
            leader_commit <= self.log.last_index(),
            "node {}: heartbeat commit {leader_commit} beyond last index {}",
            self.config.id,
            self.log.last_index()
        );
        self.log.commit_to(leader_commit);
        self.send(from, self.term, MessageBody::HeartbeatResponse { read_ctx });
    }

    // ---------------------------------------------------------------------------------------
    // Replication: leader side.
    // ---------------------------------------------------------------------------------------

    fn handle_append_response(&mut self, from: NodeId, result: AppendResult) {
        self.progress_mut(from).recently_active = true;
        match result {
            AppendResult::Accepted { match_index } => {
                assert!(
                    match_index <= self.log.last_index(),
                    "peer {from} claims to match index {match_index} beyond the leader's log"
                );
                if self.progress_mut(from).accepted(match_index) {
                    self.maybe_commit();
                }
                // Keep the pipeline going; if there is nothing left to send, still tell an
                // idle follower about a commit index it has not seen.
                let progress = &self.progress[&from];
                let when_empty = if progress.is_idle() && progress.commit_sent < self.log.commit {
                    WhenEmpty::Send
                } else {
                    WhenEmpty::Skip
                };
                self.send_append(from, when_empty);
            }
            AppendResult::Rejected {
                rejected_prev_index,
                hint_index,
                hint_term,
            } => {
                // Skip every entry of ours whose term the follower cannot have at that index.
                let next_guess = self.log.find_conflict_by_term(hint_index, hint_term).next();
                if self
                    .progress_mut(from)
                    .rejected(rejected_prev_index, next_guess)
                {
                    self.send_append(from, WhenEmpty::Send);
                }
            }
        }
    }

    fn handle_heartbeat_response(&mut self, from: NodeId, read_ctx: Option<u64>) {
        let last = self.log.last_index();
        let progress = self.progress_mut(from);
        progress.recently_active = true;
        progress.heartbeat_answered(last);
        if progress.next_index <= last {
            self.send_append(from, WhenEmpty::Send);
        }
        if let Some(ctx) = read_ctx {
            let needed = quorum(self.config.voters.len());
            let confirmed = self.reads.ack(ctx, from, needed);
            self.read_states.extend(confirmed);
        }
    }

    fn send_append(&mut self, to: NodeId, when_empty: WhenEmpty) {
        let max_entries = self.config.max_entries_per_append;
        let commit = self.log.commit;
        let progress = &self.progress[&to];
        if !progress.can_send() {
            return;
        }
        let prev_log_index = progress.next_index.prev();
        let prev_log_term = self
            .log
            .term(prev_log_index)
            .expect("next_index is at most last_index + 1");
        let entries = self.log.slice(progress.next_index, max_entries);
        if entries.is_empty() && when_empty == WhenEmpty::Skip {
            return;
        }
        let last_sent = entries.last().map_or(prev_log_index, |entry| entry.index);
        self.progress_mut(to).sent(last_sent, commit);
        self.send(
            to,
            self.term,
            MessageBody::AppendEntries {
                prev_log_index,
                prev_log_term,
                entries,
                leader_commit: commit,
            },
        );
    }

    fn broadcast_append(&mut self, when_empty: WhenEmpty) {
        for peer in self.peers() {
            self.send_append(peer, when_empty);
        }
    }

    fn broadcast_heartbeat(&mut self) {
        let read_ctx = self.reads.last_ctx();
        let commit = self.log.commit;
        let targets: Vec<(NodeId, LogIndex)> = self
            .progress
            .iter()
            .map(|(peer, progress)| (*peer, progress.match_index.min(commit)))
            .collect();
        for (peer, leader_commit) in targets {
            self.send(
                peer,
                self.term,
                MessageBody::Heartbeat {
                    leader_commit,
                    read_ctx,
                },
            );
        }
    }

    /// Commits the highest index held durably by a quorum, if it is of our term.
    fn maybe_commit(&mut self) {
        assert_eq!(self.role, Role::Leader);
        let mut matches: BTreeMap<NodeId, LogIndex> = self
            .progress
            .iter()
            .map(|(peer, progress)| (*peer, progress.match_index))
            .collect();
        // Only what `advance` confirmed durable counts for ourselves.
        matches.insert(self.config.id, self.log.persisted());
        let quorum_held = quorum_index(&matches);
        if quorum_held <= self.log.commit {
            return;
        }
        let of_current_term = self.log.term(quorum_held) == Some(self.term);
        // Raft paper §5.4.2 and Figure 8: an entry of an earlier term on a quorum can still be
        // overwritten by a later leader; only counting replicas of our own term is safe.
        if !of_current_term && !self.canary_active(Canary::CommitOldTerm) {
            return;
        }
        self.log.commit_to(quorum_held);
        self.on_commit_advanced();
    }

    fn on_commit_advanced(&mut self) {
        if self.committed_in_current_term() && !self.reads_before_first_commit.is_empty() {
            let waiting = std::mem::take(&mut self.reads_before_first_commit);
            for ctx in waiting {
                self.start_read(ctx);
            }
        }
        // Tell caught-up followers about the new commit now rather than at the next heartbeat.
        // Followers with appends in flight learn it from the next append: an empty append past
        // their acknowledged prefix could overtake those appends and be rejected spuriously.
        let caught_up: Vec<NodeId> = self
            .progress
            .iter()
            .filter(|(_, progress)| progress.is_idle())
            .map(|(peer, _)| *peer)
            .collect();
        for peer in caught_up {
            self.send_append(peer, WhenEmpty::Send);
        }
    }

    fn start_read(&mut self, ctx: u64) {
        assert_eq!(self.role, Role::Leader);
        assert!(self.committed_in_current_term());
        if self.config.voters.len() == 1 {
            // We alone are a quorum: nobody else can have been elected.
            self.read_states.push(ReadState {
                ctx,
                index: self.log.commit,
            });
            return;
        }
        if self.reads.push(ctx, self.log.commit, self.config.id) {
            // A dedicated round for this request, rather than waiting for the next heartbeat.
            self.broadcast_heartbeat();
        }
    }

    fn committed_in_current_term(&self) -> bool {
        self.log.term(self.log.commit) == Some(self.term)
    }

    // ---------------------------------------------------------------------------------------
    // Helpers.
    // ---------------------------------------------------------------------------------------

    fn peers(&self) -> impl Iterator<Item = NodeId> + 'static {
        let id = self.config.id;
        let voters = self.config.voters.clone();
        voters.into_iter().filter(move |peer| *peer != id)
    }

    fn progress_mut(&mut self, peer: NodeId) -> &mut Progress {
        self.progress
            .get_mut(&peer)
            .expect("leader tracks every voter")
    }

    fn send(&mut self, to: NodeId, term: Term, body: MessageBody) {
        debug_assert_ne!(to, self.config.id);
        self.outbox.push(Message {
            from: self.config.id,
            to,
            term,
            body,
        });
    }

    fn soft_state(&self) -> SoftState {
        SoftState {
            leader: self.leader,
            role: self.role,
            term: self.term,
        }
    }

    fn hard_state(&self) -> HardState {
        HardState {
            term: self.term,
            vote: self.vote,
            commit: self.log.commit,
        }
    }

    #[cfg(test)]
    pub(crate) fn randomized_election_timeout_ticks(&self) -> u64 {
        self.randomized_election_timeout_ticks
    }
}
