//! Membership changes: one server at a time, effective as soon as the change is in a log.
//!
//! # Which scheme, and why it is safe
//! We use the single-server changes of Ongaro's thesis §4.1 (also the Raft paper §6's
//! alternative to joint consensus), not joint consensus. A change adds or removes one voter
//! (or a learner, which never counts), so any majority of the old voters and any majority of
//! the new ones share a server: two leaders of one term cannot be elected by the two
//! configurations, and an entry committed under one is on a majority of the other.
//!
//! Each server uses the latest configuration in its log, committed or not (thesis §4.1):
//! the leader counts the new voters from the moment it appends the change, followers from
//! the moment they append it, and a server whose log loses the entry (a conflicting append
//! from a newer leader truncates it) falls back to the configuration before it
//! (`RaftLog::conf_state`). Two rules keep adjacent configurations the only ones that can
//! meet:
//! 1. **At most one change in flight**: the leader refuses a change while its log holds one
//!    that is not committed (`ConfChangeError::ChangePending`). Two uncommitted changes could
//!    differ from the committed configuration by two servers, whose majorities need not
//!    overlap. `check_invariants` asserts this on every leader that has committed in its
//!    term (before that, its commit index may lag behind changes that did commit).
//! 2. **No change before the leader's first commit in its term**
//!    (`ConfChangeError::NotCommittedInTerm`): the fix for the bug Ongaro reported on
//!    raft-dev in 2015 (thesis errata). Without it a new leader can append a change on top of
//!    a configuration whose own change, by an earlier leader, never commits; the two changes
//!    then each differ from their common base by one server but from each other by two, and
//!    a leader elected by the first can overwrite entries committed under the second.
//!    Committing an entry of its own term first means every change below it is committed.
//!
//! Etcd applies changes when they are applied instead, and then needs the same one-at-a-time
//! rule (its `pendingConfIndex`); effective-on-append keeps every server's view a function of
//! its log alone, which is what the checks (and snapshots, which record the configuration at
//! their index) rely on.
//!
//! # Learners and promotion
//! Learners receive the log (and snapshots) like voters but never vote, are never asked for
//! votes, and never count in a commit, ReadIndex or check-quorum majority. Promoting one grows
//! the quorum at once, so it is refused while the learner's match index lags the leader's
//! last index by more than `Limits::promote_max_lag_entries` (etcd refuses to promote a
//! learner that is not ready likewise): otherwise a single voter failure right after the
//! promotion would leave no majority able to commit until the learner caught up.
//!
//! # Removed members
//! A node removed from the configuration stops campaigning once it knows the removal
//! committed (`Raft::may_campaign`: until then it may still campaign, counting the votes of
//! the new configuration only, which lets a removal complete when its leader failed). The leader keeps replicating to it until
//! the removal commits, so it usually learns of its removal, and then sends it one last
//! heartbeat carrying the commit index. A removed node that missed all of this (it was cut
//! off) keeps campaigning with its stale configuration, but cannot win: a majority of the
//! new configuration holds the committed removal, so its log is behind theirs (Raft paper
//! §5.4.1). It can still raise terms and depose a leader (thesis §4.2.3); pre-vote (its
//! pre-votes fail the same log check, so its term never rises) and check-quorum (followers
//! with a live leader ignore its vote requests) stop that, and a deployment with membership
//! changes should enable both. A leader removing itself keeps leading (without counting
//! itself) until the removal commits, then steps down.

use super::*;

impl Raft {
    /// The configuration in force: the latest in this node's log, committed or not.
    pub fn conf_state(&self) -> &ConfState {
        self.log.conf_state()
    }

    /// Proposes a single-server membership change. On success it is in the leader's log at
    /// the returned index and already in force on the leader (see the module docs of
    /// `membership.rs` for the scheme and why it is safe); it is committed once
    /// `Ready::committed_entries` carries an entry at that index and term (an entry whose
    /// `kind` is `EntryKind::ConfChange`; its `data` is `context`, the application's
    /// description of the change, such as the new member's address: etcd's
    /// `ConfChange.Context`).
    ///
    /// What the node does with committed changes: nothing is required for Raft, which has
    /// already switched; a node connects to added members (the leader starts sending to them
    /// at once, so the transport must know their addresses by then) and stops when it sees its
    /// own removal committed (`status().membership == Membership::NotMember`). A new member
    /// is started empty with the cluster's bootstrap voters as `Config::voters` (it is not
    /// among them) and learns the configuration from the leader's log or snapshot.
    pub fn propose_conf_change(
        &mut self,
        change: ConfChange,
        context: Vec<u8>,
    ) -> Result<(Term, LogIndex), ConfChangeError> {
        if self.role != Role::Leader {
            return Err(ConfChangeError::NotLeader {
                leader_hint: self.leader,
            });
        }
        self.check_conf_change_allowed()?;
        let conf_state = self.log.conf_state().apply(change)?;
        if change.change_type == ConfChangeType::PromoteLearner {
            self.check_learner_caught_up(change.node)?;
        }
        let kind = EntryKind::ConfChange { change, conf_state };
        let index = self.log.append_new(self.term, context, kind);
        self.sync_progress();
        self.broadcast_append(WhenEmpty::Skip);
        // The quorum may have shrunk (a removed laggard): what the rest hold may commit now.
        self.maybe_commit();
        Ok((self.term, index))
    }

    /// The two rules that keep single-server changes safe (module docs).
    fn check_conf_change_allowed(&self) -> Result<(), ConfChangeError> {
        if let Some(to) = self.transfer_target() {
            return Err(ConfChangeError::TransferInProgress { to });
        }
        if self.canary_active(Canary::ConfChangeOnAppendNoGuard) {
            // Planted bug: a second change while the first is pending, or a change before the
            // leader's first commit in its term (Ongaro, 2015).
            return Ok(());
        }
        if !self.committed_in_current_term() {
            return Err(ConfChangeError::NotCommittedInTerm);
        }
        let last_conf_index = self.log.last_conf_index();
        if last_conf_index > self.log.commit {
            return Err(ConfChangeError::ChangePending {
                index: last_conf_index,
            });
        }
        Ok(())
    }

    fn check_learner_caught_up(&self, node: NodeId) -> Result<(), ConfChangeError> {
        if self.canary_active(Canary::PromoteUnreadyLearner) {
            // Planted bug: the quorum grows by a node that may hold nothing yet.
            return Ok(());
        }
        let match_index = self
            .progress
            .get(&node)
            .map_or(LogIndex(0), |p| p.match_index);
        let leader_last_index = self.log.last_index();
        if match_index.0 + self.limits.promote_max_lag_entries < leader_last_index.0 {
            return Err(ConfChangeError::LearnerNotCaughtUp {
                node,
                match_index,
                leader_last_index,
            });
        }
        Ok(())
    }

    /// Leader only: replicate to exactly the members of the configuration in force, plus a
    /// member of the committed configuration whose removal is still pending (so that it
    /// learns of it). A node new here starts probing at our last entry (the no-op of a new
    /// leader, or the change that added it), so the next append carries that entry. A node
    /// dropped here gets a farewell.
    pub(super) fn sync_progress(&mut self) {
        assert_eq!(self.role, Role::Leader);
        let wanted = self.replication_targets();
        let dropped: Vec<NodeId> = self
            .progress
            .keys()
            .filter(|id| !wanted.contains(id))
            .copied()
            .collect();
        for node in dropped {
            let progress = self.progress.remove(&node).expect("tracked");
            self.send_farewell(node, progress.match_index);
        }
        let before_last = self.log.last_index().prev();
        let max_inflight = self.limits.max_inflight_appends;
        for node in wanted {
            self.progress
                .entry(node)
                .or_insert_with(|| Progress::new(before_last, max_inflight));
        }
    }

    /// The last message to a node whose removal committed: the entries after what it holds
    /// (up to `max_entries_per_append`) with the commit index, so that it can learn that its
    /// removal is committed and stop. Best effort, outside flow control: nothing follows it.
    fn send_farewell(&mut self, node: NodeId, match_index: LogIndex) {
        let Some(prev_log_term) = self.log.term(match_index) else {
            return; // Compacted: it would need the snapshot; it stays unaware.
        };
        let entries = self
            .log
            .slice(match_index.next(), self.config.max_entries_per_append);
        let last_sent = entries.last().map_or(match_index, |entry| entry.index);
        self.send(
            node,
            self.term,
            MessageBody::AppendEntries {
                prev_log_index: match_index,
                prev_log_term,
                entries,
                leader_commit: self.log.commit.min(last_sent),
            },
        );
    }

    /// Who a leader replicates to (see `sync_progress`).
    pub(super) fn replication_targets(&self) -> BTreeSet<NodeId> {
        let committed = self.log.conf_state_at(self.log.commit);
        self.log
            .conf_state()
            .members()
            .chain(committed.members())
            .filter(|id| *id != self.config.id)
            .collect()
    }

    /// Leader only, after the commit index moved: a committed removal stops replication to
    /// the removed node, and a leader that removed itself steps down (thesis §4.2.2).
    pub(super) fn after_commit_of_conf_change(&mut self) {
        if self.role != Role::Leader || self.log.last_conf_index() > self.log.commit {
            return;
        }
        self.sync_progress();
        if !self.is_voter() {
            self.hand_over_after_removal();
            self.become_follower(self.term, None);
        }
    }

    /// May we campaign? A voter of our configuration may; so may a node that the latest
    /// configuration in its log removes while that removal is not known committed, provided
    /// it votes in the configuration before it. Its election still needs a majority of the new
    /// configuration (`tally` counts only those voters), so the usual proof holds; and without
    /// this, a removal whose leader failed before it committed could never complete when the
    /// remaining voters lack the entry: a two-voter cluster whose leader removed itself
    /// leaves a lone voter that needs the old leader's vote, which its older log cannot get.
    pub(super) fn may_campaign(&self) -> bool {
        if self.is_voter() {
            return true;
        }
        self.log.last_conf_index() > self.log.commit
            && self
                .log
                .conf_state_at(self.log.commit)
                .is_voter(self.config.id)
    }

    /// Are we a voter in our configuration?
    pub(super) fn is_voter(&self) -> bool {
        self.log.conf_state().is_voter(self.config.id)
    }

    pub(super) fn voters(&self) -> &BTreeSet<NodeId> {
        &self.log.conf_state().voters
    }

    /// The voters to ask for (pre-)votes: every voter but us.
    pub(super) fn vote_peers(&self) -> Vec<NodeId> {
        let id = self.config.id;
        self.voters()
            .iter()
            .copied()
            .filter(|peer| *peer != id)
            .collect()
    }
}
