//! Log replication on both sides and the commit rule (Raft paper §5.3, §5.4.2).

use super::*;

impl Raft {
    // ---------------------------------------------------------------------------------------
    // Replication: follower side.
    // ---------------------------------------------------------------------------------------

    pub(super) fn handle_append(
        &mut self,
        from: NodeId,
        prev_index: LogIndex,
        prev_term: Term,
        entries: &[Entry],
        leader_commit: LogIndex,
    ) {
        let result = if self.log.is_compacted(prev_index) {
            // Our snapshot covers prev: everything up to our commit index is committed, so by
            // Leader Completeness (Raft paper §5.4.3) the leader holds it too. Say how far we
            // match and let the leader continue from there (etcd answers the same way).
            AppendResult::Accepted {
                match_index: self.log.commit,
            }
        } else if self.log.term(prev_index) == Some(prev_term) {
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

    pub(super) fn handle_heartbeat(
        &mut self,
        from: NodeId,
        leader_commit: LogIndex,
        read_ctx: Option<u64>,
    ) {
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

    pub(super) fn handle_append_response(&mut self, from: NodeId, result: AppendResult) {
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
                // A commit can end our leadership (our removal) or `from`'s membership.
                if !self.progress.contains_key(&from) {
                    return;
                }
                if self.transfer_target() == Some(from) {
                    self.maybe_send_timeout_now();
                }
                let progress = &self.progress[&from];
                // Keep the pipeline going; if there is nothing left to send, still tell an
                // idle follower about a commit index it has not seen.
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

    pub(super) fn handle_heartbeat_response(&mut self, from: NodeId, read_ctx: Option<u64>) {
        let last = self.log.last_index();
        let progress = self.progress_mut(from);
        progress.recently_active = true;
        progress.heartbeat_answered(last);
        if progress.next_index <= last {
            self.send_append(from, WhenEmpty::Send);
        }
        if let Some(ctx) = read_ctx {
            let voters = self.log.conf_state().voters.clone();
            let confirmed = self.reads.ack(ctx, from, &voters);
            let round_done = !confirmed.is_empty();
            self.read_states.extend(confirmed);
            if round_done && !self.reads.is_empty() {
                // Requests that arrived while that round was in flight: one round for all
                // of them (etcd's linearizableReadLoop batches reads the same way).
                self.broadcast_heartbeat();
            }
        }
    }

    /// Sends `to` what it needs next, as far as flow control allows: one append (or the
    /// snapshot) while probing, and appends until the in-flight window is full or the log is
    /// exhausted while replicating (etcd fills the window the same way).
    pub(super) fn send_append(&mut self, to: NodeId, when_empty: WhenEmpty) {
        let mut when_empty = when_empty;
        // Bounded: each round fills a window slot, and the window is bounded.
        for _ in 0..=self.limits.max_inflight_appends {
            let carried_entries = self.send_one_append(to, when_empty);
            let progress = &self.progress[&to];
            let more = carried_entries
                && progress.state() == ProgressState::Replicate
                && progress.next_index <= self.log.last_index();
            if !more {
                return;
            }
            when_empty = WhenEmpty::Skip;
        }
    }

    /// Sends one append or the snapshot if flow control allows. Returns whether an append
    /// with entries went out.
    fn send_one_append(&mut self, to: NodeId, when_empty: WhenEmpty) -> bool {
        let max_entries = self.config.max_entries_per_append;
        let commit = self.log.commit;
        let progress = &self.progress[&to];
        if !progress.can_send() {
            return false;
        }
        let prev_log_index = progress.next_index.prev();
        if self.log.is_compacted(prev_log_index) {
            // The follower needs entries we no longer have: only the snapshot can stand in.
            self.send_snapshot(to);
            return false;
        }
        let prev_log_term = self
            .log
            .term(prev_log_index)
            .expect("next_index is at most last_index + 1");
        let entries = self.log.slice(progress.next_index, max_entries);
        if entries.is_empty() && when_empty == WhenEmpty::Skip {
            return false;
        }
        let carried_entries = !entries.is_empty();
        let last_sent = entries.last().map_or(prev_log_index, |entry| entry.index);
        self.progress_mut(to)
            .sent(last_sent, carried_entries, commit);
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
        carried_entries
    }

    /// Sends to every follower we replicate to (voters, learners, and a node whose removal
    /// is not committed yet).
    pub(super) fn broadcast_append(&mut self, when_empty: WhenEmpty) {
        let peers: Vec<NodeId> = self.progress.keys().copied().collect();
        for peer in peers {
            self.send_append(peer, when_empty);
        }
    }

    /// A heartbeat to every follower, carrying the newest pending read's context: a read
    /// confirmation round.
    pub(super) fn broadcast_heartbeat(&mut self) {
        self.heartbeat_round(false);
    }

    /// The periodic heartbeat round (every `heartbeat_interval_ticks`). A follower that got
    /// an append since the last round, carrying what the heartbeat would, is skipped while
    /// no read waits for confirmation: under load appends are the heartbeats, and sending
    /// both was a third of all messages (../shared/notes/profile-2026-12-07.md). etcd sends
    /// both; a follower hears from the leader as often either way.
    pub(super) fn periodic_heartbeat(&mut self) {
        self.heartbeat_round(true);
    }

    fn heartbeat_round(&mut self, periodic: bool) {
        let read_ctx = self.reads.last_ctx();
        let commit = self.log.commit;
        let mut targets: Vec<(NodeId, LogIndex)> = Vec::new();
        for (peer, progress) in &mut self.progress {
            let leader_commit = progress.match_index.min(commit);
            if periodic {
                let skip = read_ctx.is_none() && progress.heartbeat_redundant(leader_commit);
                progress.heartbeat_round_started(skip);
                if skip {
                    continue;
                }
            }
            targets.push((*peer, leader_commit));
        }
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

    /// Commits the highest index held durably by a quorum of the voters in our configuration
    /// (the latest in our log, committed or not), if it is of our term. Learners and removed
    /// nodes never count; neither do we while our own removal is pending.
    pub(super) fn maybe_commit(&mut self) {
        assert_eq!(self.role, Role::Leader);
        let matches: BTreeMap<NodeId, LogIndex> = self
            .voters()
            .iter()
            .map(|voter| {
                let held = if *voter == self.config.id {
                    // Only what `advance` confirmed durable counts for ourselves.
                    self.log.persisted()
                } else {
                    self.progress[voter].match_index
                };
                (*voter, held)
            })
            .collect();
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
        let old_commit = self.log.commit;
        self.log.commit_to(quorum_held);
        self.on_commit_advanced();
        if self.log.last_conf_index() > old_commit {
            self.after_commit_of_conf_change();
        }
    }

    pub(super) fn on_commit_advanced(&mut self) {
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

    pub(super) fn start_read(&mut self, ctx: u64) {
        assert_eq!(self.role, Role::Leader);
        assert!(self.committed_in_current_term());
        let voters = self.voters();
        if voters.len() == 1 && voters.contains(&self.config.id) {
            // We alone are a quorum: nobody else can have been elected.
            self.read_states.push(ReadState {
                ctx,
                index: self.log.commit,
            });
            return;
        }
        let round_in_flight = !self.reads.is_empty();
        if self.reads.push(ctx, self.log.commit, self.config.id) && !round_in_flight {
            // A dedicated round for this request, rather than waiting for the next heartbeat.
            // While a round is in flight, requests wait for it to end and share the next
            // one: a round per request sent a heartbeat to every follower per read (a third
            // of all heartbeats; ../shared/notes/profile-2026-12-07.md).
            self.broadcast_heartbeat();
        }
    }

    pub(super) fn committed_in_current_term(&self) -> bool {
        self.log.term(self.log.commit) == Some(self.term)
    }
}
