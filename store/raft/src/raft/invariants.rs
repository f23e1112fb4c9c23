//! `check_invariants`: what must hold after every input, checked cheaply.

use super::*;
use crate::conf::Membership;

impl Raft {
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
        self.log.conf_state().check();
        if matches!(self.role, Role::PreCandidate | Role::Candidate) {
            assert!(
                self.may_campaign(),
                "node {id}: campaigns without being a voter"
            );
        }
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

    pub(super) fn check_leader_invariants(&self) {
        let id = self.config.id;
        // The no-op appended on election (Raft paper §8) guarantees this.
        assert_eq!(
            self.log.last_term(),
            self.term,
            "node {id}: leader has no entry of its own term"
        );
        // `progress` == `replication_targets()`, compared without building the set (this runs
        // after every Ready of every leader: building two sets was ~2% of a seed).
        let latest = self.log.conf_state();
        let committed = self.log.conf_state_at(self.log.commit);
        let is_target = |peer: NodeId| {
            peer != id
                && (latest.membership(peer) != Membership::NotMember
                    || committed.membership(peer) != Membership::NotMember)
        };
        let covered = latest
            .members()
            .chain(committed.members())
            .all(|peer| peer == id || self.progress.contains_key(&peer));
        assert!(
            covered && self.progress.keys().all(|peer| is_target(*peer)),
            "node {id}: progress must cover exactly the members (and a pending removal): \
             tracked {:?}, targets {:?}",
            self.progress.keys().collect::<Vec<_>>(),
            self.replication_targets()
        );
        // Single-server changes are safe only one at a time (membership.rs, rule 1). Checked
        // once the leader has committed in its term: before that its commit index may lag
        // the cluster's, so a change it inherited may look uncommitted when it is not.
        let pending_changes = self.log.conf_changes_after(self.log.commit);
        assert!(
            pending_changes <= 1 || !self.committed_in_current_term(),
            "node {id}: {pending_changes} uncommitted configuration changes in the leader's \
             log (at most one may be in flight)"
        );
        // A leader that removed itself steps down once the removal commits.
        assert!(
            self.is_voter() || self.log.last_conf_index() > self.log.commit,
            "node {id}: leads without being a voter after its removal committed"
        );
        let last = self.log.last_index();
        for (peer, progress) in &self.progress {
            progress.check();
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
}
