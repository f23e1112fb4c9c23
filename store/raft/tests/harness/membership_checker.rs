//! Checks of membership changes that need more than the nodes' in-memory state:
//! - commit quorum: whenever a leader's commit index advances, a majority of the voters of
//!   its configuration hold the committed entry on disk (so learners, removed members and
//!   anyone else outside the configuration never made up the majority);
//! - promotion readiness: a leader promotes a learner only while the learner's match index
//!   is within `Limits::promote_max_lag_entries` of the entry before the promotion.

use std::collections::BTreeMap;

use faultline_raft::{
    ConfChangeType, Entry, EntryKind, Limits, LogIndex, NodeId, Raft, Role, Term,
};

use super::{checker::entry_at, violation, Disk, Violation};

#[derive(Debug, Default)]
pub struct MembershipChecker {
    /// Per (leader, term): the commit index already checked (at first, the commit index the
    /// leader was elected with).
    commit_checked: BTreeMap<(NodeId, Term), LogIndex>,
    /// Per (leader, term): the last log index already scanned for promotions.
    promotions_checked: BTreeMap<(NodeId, Term), LogIndex>,
}

/// Does `disk` durably hold the entry (`index`, `term`), itself or inside its snapshot?
fn holds(disk: &Disk, index: LogIndex, term: Term) -> bool {
    let snapshot_index = disk
        .snapshot
        .as_ref()
        .map_or(LogIndex(0), |s| s.metadata.index);
    if index <= snapshot_index {
        return true;
    }
    let position = (index.0 - snapshot_index.0 - 1) as usize;
    disk.persisted
        .entries
        .get(position)
        .is_some_and(|entry| entry.term == term)
}

impl MembershipChecker {
    pub fn observe(
        &mut self,
        nodes: &BTreeMap<NodeId, Raft>,
        disks: &BTreeMap<NodeId, Disk>,
        limits: Limits,
    ) -> Result<(), Violation> {
        for (id, raft) in nodes {
            let status = raft.status();
            if status.role != Role::Leader {
                continue;
            }
            self.check_commit_quorum(*id, raft, disks)?;
            self.check_promotions(*id, raft, limits)?;
        }
        Ok(())
    }

    fn check_commit_quorum(
        &mut self,
        leader: NodeId,
        raft: &Raft,
        disks: &BTreeMap<NodeId, Disk>,
    ) -> Result<(), Violation> {
        let status = raft.status();
        // A new leader inherits its commit index: only what it commits itself is checked.
        let checked = self
            .commit_checked
            .entry((leader, status.term))
            .or_insert(status.commit);
        if status.commit <= *checked || status.commit <= status.snapshot_index {
            return Ok(());
        }
        *checked = status.commit;
        let term = entry_at(raft, status.commit)
            .expect("commit is in the log")
            .term;
        let voters = &raft.conf_state().voters;
        let holding: Vec<NodeId> = voters
            .iter()
            .copied()
            .filter(|voter| {
                disks
                    .get(voter)
                    .is_some_and(|d| holds(d, status.commit, term))
            })
            .collect();
        if holding.len() * 2 <= voters.len() {
            return violation(
                "commit quorum",
                format!(
                    "leader {leader} committed index {} (term {term}) held on disk by voters \
                     {holding:?} only, of {voters:?}",
                    status.commit
                ),
            );
        }
        Ok(())
    }

    fn check_promotions(
        &mut self,
        leader: NodeId,
        raft: &Raft,
        limits: Limits,
    ) -> Result<(), Violation> {
        let status = raft.status();
        let scanned = self
            .promotions_checked
            .entry((leader, status.term))
            .or_default();
        let from = (*scanned).max(status.snapshot_index);
        let new: Vec<&Entry> = raft
            .log_entries()
            .iter()
            .filter(|entry| entry.index > from && entry.term == status.term)
            .collect();
        *scanned = status.last_index;
        for entry in new {
            let EntryKind::ConfChange { change, .. } = &entry.kind else {
                continue;
            };
            if change.change_type != ConfChangeType::PromoteLearner {
                continue;
            }
            let progress = raft.progress();
            let match_index = progress
                .iter()
                .find(|p| p.id == change.node)
                .map_or(LogIndex(0), |p| p.match_index);
            if match_index.0 + limits.promote_max_lag_entries < entry.index.0 - 1 {
                return violation(
                    "promotion readiness",
                    format!(
                        "leader {leader} promoted learner {} at index {} while the learner \
                         matched only up to {match_index}",
                        change.node, entry.index
                    ),
                );
            }
        }
        Ok(())
    }
}
