//! The Raft state machine: `tick`, `step`, `propose`, `read_index` in; `Ready` out.

mod election;
mod invariants;
mod membership;
mod replication;
mod snapshot;
mod transfer;

use std::collections::{BTreeMap, BTreeSet};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use election::Campaign;

use crate::conf::{ConfChange, ConfChangeError, ConfChangeType, ConfState};
use crate::log::RaftLog;
use crate::progress::{quorum, quorum_index, Progress};
use crate::read_index::ReadQueue;
use crate::ready::Ready;
use crate::types::{
    AppendResult, Canary, Config, Entry, EntryKind, HardState, Limits, LogIndex, Message,
    MessageBody, NodeId, PeerProgress, PersistedState, ProgressState, ProposeError, ReadState,
    Role, Snapshot, SnapshotMetadata, SoftState, Status, Term, TransferError,
};

/// Whether `send_append` sends a message that carries no entries. An empty append still
/// probes the follower's log and carries the leader's commit index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum WhenEmpty {
    Skip,
    Send,
}

/// One Raft peer. See the crate docs for the driving loop.
#[derive(Debug)]
pub struct Raft {
    config: Config,
    limits: Limits,
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
    /// Leader only: the leader transfer in progress, if any.
    transfer: Option<transfer::Transfer>,
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
    /// Set only by the no-campaign-after-step-down canary: this node never campaigns again.
    campaigns_off: bool,
}

impl Raft {
    /// Creates a node, fresh (`PersistedState::default()`) or restarting from what storage
    /// recovered, without a snapshot. It starts as a follower that knows no leader; applied
    /// starts at 0, so the node re-applies the log up to commit.
    pub fn new(config: Config, persisted: PersistedState, rng_seed: u64) -> Raft {
        Raft::recover(config, Limits::default(), None, persisted, rng_seed)
    }

    /// Creates a node from everything storage recovered: the latest snapshot (if the node
    /// ever compacted its log or installed one from a leader) and the hard state and entries
    /// persisted after it (entries the snapshot covers are skipped). The node restores its
    /// state machine from `snapshot.data` before calling this; applied starts at the
    /// snapshot's index, and the node re-applies the log from there up to commit.
    pub fn recover(
        config: Config,
        limits: Limits,
        snapshot: Option<Snapshot>,
        persisted: PersistedState,
        rng_seed: u64,
    ) -> Raft {
        config.validate();
        limits.validate();
        let PersistedState {
            hard_state,
            entries,
        } = persisted;
        let snapshot = snapshot.unwrap_or_else(|| Snapshot {
            metadata: SnapshotMetadata {
                index: LogIndex(0),
                term: Term(0),
                conf_state: ConfState::with_voters(config.voters.iter().copied()),
            },
            data: Vec::new(),
        });
        let log = RaftLog::recovered(snapshot, entries, hard_state.commit);
        assert!(
            log.last_term() <= hard_state.term,
            "recovered log has term {} beyond the recovered term {}",
            log.last_term(),
            hard_state.term
        );
        // A recovered snapshot may carry a commit index beyond the persisted one.
        let hard_state = HardState {
            commit: log.commit,
            ..hard_state
        };
        let soft_state = SoftState {
            leader: None,
            role: Role::Follower,
            term: hard_state.term,
        };
        let mut raft = Raft {
            config,
            limits,
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
            transfer: None,
            reads: ReadQueue::default(),
            reads_before_first_commit: Vec::new(),
            outbox: Vec::new(),
            read_states: Vec::new(),
            reported_soft_state: soft_state,
            reported_hard_state: hard_state,
            ready_outstanding: false,
            campaigns_off: false,
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
        // Messages from nodes outside our configuration are handled like any other: a node
        // that joins learns the configuration from the leader's log, so it must follow a
        // leader it does not know yet, and a candidate's votes are counted against the
        // candidate's own configuration. What keeps a removed node from disrupting the
        // cluster is documented in `membership.rs`.
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
        if let Some(to) = self.transfer_target() {
            // Leadership is about to move: new entries would only delay the target.
            return Err(ProposeError::NotLeader {
                leader_hint: Some(to),
            });
        }
        let index = self.log.append_new(self.term, data, EntryKind::Normal);
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
        // A snapshot installed from the leader comes first: it replaces the log before them.
        let snapshot = self.log.take_unstable_snapshot();
        let entries = self.log.take_unstable();
        let committed_entries = self.log.take_to_apply();
        let ready = Ready {
            soft_state: (soft_state != self.reported_soft_state).then_some(soft_state),
            hard_state: (hard_state != self.reported_hard_state).then_some(hard_state),
            snapshot,
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
        if let Some(snapshot) = &ready.snapshot {
            self.log.applied_to(snapshot.metadata.index);
        }
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
            snapshot_index: self.log.snapshot_index(),
            membership: self.log.conf_state().membership(self.config.id),
        }
    }

    /// The in-memory log after the snapshot (from `status().snapshot_index + 1`), including
    /// entries not yet persisted. For checkers (log matching, leader completeness) and
    /// debugging; the node uses `Ready`.
    pub fn log_entries(&self) -> &[Entry] {
        self.log.entries()
    }

    /// What the leader knows about each follower (voters and learners), in id order; empty
    /// unless this node leads.
    pub fn progress(&self) -> Vec<PeerProgress> {
        self.progress
            .iter()
            .map(|(id, progress)| PeerProgress {
                id: *id,
                match_index: progress.match_index,
                next_index: progress.next_index,
                state: progress.state(),
                inflight_appends: progress.inflight_appends(),
                recently_active: progress.recently_active,
            })
            .collect()
    }

    /// The latest snapshot (compacted by this node or installed from a leader), or `None`
    /// before the first one. The node keeps its own durable copy; this is the one Raft sends.
    pub fn snapshot(&self) -> Option<&Snapshot> {
        let snapshot = self.log.snapshot();
        (snapshot.metadata.index > LogIndex(0)).then_some(snapshot)
    }

    // ---------------------------------------------------------------------------------------
    // Term handling and dispatch.
    // ---------------------------------------------------------------------------------------

    /// A message from a higher term. Returns whether to go on and handle it at our (possibly
    /// new) term.
    pub(super) fn enter_higher_term(&mut self, msg: &Message) -> bool {
        match msg.body {
            // Raft thesis §9.6: a server that heard from a live leader within the minimum
            // election timeout grants no pre-vote.
            MessageBody::PreVote { .. } if self.in_leader_lease() => false,
            // Thesis §4.2.3: with check-quorum, leaders step down when cut off, so followers
            // can safely also ignore real vote requests (and their terms) during the lease.
            // This keeps a server that was partitioned away from deposing a healthy leader.
            // A campaign the leader asked for (leader transfer) is the exception.
            MessageBody::RequestVote {
                leader_transfer: false,
                ..
            } if self.config.check_quorum && self.in_leader_lease() => false,
            // Pre-vote neither changes terms nor records anything (thesis §9.6).
            MessageBody::PreVote { .. } => true,
            // A granted pre-vote is tagged with the term we would campaign in, not a term
            // anyone is in; a rejection carries the rejecter's real term, which we adopt below.
            MessageBody::PreVoteResponse { granted: true } => true,
            MessageBody::AppendEntries { .. }
            | MessageBody::Heartbeat { .. }
            | MessageBody::InstallSnapshot { .. }
            | MessageBody::TimeoutNow => {
                self.become_follower(msg.term, Some(msg.from));
                true
            }
            _ => {
                self.become_follower(msg.term, None);
                true
            }
        }
    }

    pub(super) fn answer_stale(&mut self, msg: &Message) {
        let body = match msg.body {
            // Tell an old leader about the new term so that it steps down.
            MessageBody::AppendEntries { .. }
            | MessageBody::Heartbeat { .. }
            | MessageBody::InstallSnapshot { .. } => {
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
    pub(super) fn dispatch(&mut self, msg: Message) {
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
                    ..
                },
            ) => self.handle_request_vote(from, last_log_index, last_log_term),
            (Role::PreCandidate, MessageBody::PreVoteResponse { granted }) => {
                self.handle_pre_vote_response(from, term, granted)
            }
            (Role::Candidate, MessageBody::RequestVoteResponse { granted }) => {
                self.handle_vote_response(from, granted)
            }
            (
                Role::Leader,
                MessageBody::AppendEntries { .. }
                | MessageBody::Heartbeat { .. }
                | MessageBody::InstallSnapshot { .. }
                | MessageBody::TimeoutNow,
            ) => {
                panic!(
                    "election safety: node {} and node {from} both lead term {}",
                    self.config.id, self.term
                )
            }
            (
                _,
                body @ (MessageBody::AppendEntries { .. }
                | MessageBody::Heartbeat { .. }
                | MessageBody::InstallSnapshot { .. }
                | MessageBody::TimeoutNow),
            ) => {
                self.follow(from);
                self.handle_from_leader(from, body)
            }
            // An answer from a node we no longer replicate to (removed since).
            (
                Role::Leader,
                MessageBody::AppendEntriesResponse { .. } | MessageBody::HeartbeatResponse { .. },
            ) if !self.progress.contains_key(&from) => {}
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

    /// A message only the leader of our term sends, which we now follow.
    fn handle_from_leader(&mut self, from: NodeId, body: MessageBody) {
        match body {
            MessageBody::AppendEntries {
                prev_log_index,
                prev_log_term,
                entries,
                leader_commit,
            } => self.handle_append(from, prev_log_index, prev_log_term, &entries, leader_commit),
            MessageBody::Heartbeat {
                leader_commit,
                read_ctx,
            } => self.handle_heartbeat(from, leader_commit, read_ctx),
            MessageBody::InstallSnapshot { snapshot } => self.handle_snapshot(from, snapshot),
            MessageBody::TimeoutNow => self.handle_timeout_now(),
            other => unreachable!("not a leader's message: {other:?}"),
        }
    }

    // ---------------------------------------------------------------------------------------
    // Helpers.
    // ---------------------------------------------------------------------------------------

    pub(super) fn progress_mut(&mut self, peer: NodeId) -> &mut Progress {
        self.progress
            .get_mut(&peer)
            .expect("leader tracks every voter")
    }

    pub(super) fn send(&mut self, to: NodeId, term: Term, body: MessageBody) {
        debug_assert_ne!(to, self.config.id);
        self.outbox.push(Message {
            from: self.config.id,
            to,
            term,
            body,
        });
    }

    pub(super) fn soft_state(&self) -> SoftState {
        SoftState {
            leader: self.leader,
            role: self.role,
            term: self.term,
        }
    }

    pub(super) fn hard_state(&self) -> HardState {
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
