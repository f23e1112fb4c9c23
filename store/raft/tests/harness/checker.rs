//! The safety checker: observes nodes and their outputs after every step, never influences
//! them.

use std::collections::BTreeMap;
use std::fmt;

use faultline_raft::{Entry, LogIndex, NodeId, Raft, Role, Term};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub property: &'static str,
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} violated: {}", self.property, self.detail)
    }
}

pub fn violation(property: &'static str, detail: String) -> Result<(), Violation> {
    Err(Violation { property, detail })
}

/// The entry at `index` in a node's in-memory log, if the log still holds it.
pub fn entry_at(raft: &Raft, index: LogIndex) -> Option<&Entry> {
    let snapshot_index = raft.status().snapshot_index;
    if index <= snapshot_index {
        return None;
    }
    raft.log_entries()
        .get((index.0 - snapshot_index.0 - 1) as usize)
}

/// Observes nodes and their outputs; never influences them.
#[derive(Debug, Default)]
pub struct Checker {
    leaders_by_term: BTreeMap<Term, NodeId>,
    /// The committed log as learned from any node's commit index, applied entries or
    /// snapshot contents.
    committed: Vec<Entry>,
    /// (index, term) -> (term at index - 1, data), over every entry ever persisted anywhere.
    /// By induction on the index this is the Log Matching Property.
    entry_identity: BTreeMap<(LogIndex, Term), (Term, Vec<u8>)>,
    /// Per node (and incarnation): how far its commit index has been compared.
    commit_checked: BTreeMap<NodeId, LogIndex>,
    /// Per node (and incarnation): the commit index seen at the previous step.
    last_commit: BTreeMap<NodeId, LogIndex>,
    /// Per (leader, term): how many committed entries were found in its log.
    completeness_checked: BTreeMap<(NodeId, Term), usize>,
}

impl Checker {
    pub fn committed(&self) -> &[Entry] {
        &self.committed
    }

    pub fn leaders_by_term(&self) -> &BTreeMap<Term, NodeId> {
        &self.leaders_by_term
    }

    pub fn node_restarted(&mut self, id: NodeId) {
        self.commit_checked.remove(&id);
        self.last_commit.remove(&id);
    }

    pub fn record_committed(&mut self, by: NodeId, entry: &Entry) -> Result<(), Violation> {
        let position = entry.index.0 as usize - 1;
        match self.committed.get(position) {
            Some(known) if known == entry => Ok(()),
            Some(known) => violation(
                "state machine safety",
                format!("node {by} committed {entry:?} but {known:?} was committed at that index"),
            ),
            None if position == self.committed.len() => {
                self.committed.push(entry.clone());
                Ok(())
            }
            None => violation(
                "state machine safety",
                format!(
                    "node {by} committed index {} with only {} entries known committed",
                    entry.index,
                    self.committed.len()
                ),
            ),
        }
    }

    pub fn record_persisted(
        &mut self,
        by: NodeId,
        prev_term: Term,
        entry: &Entry,
    ) -> Result<(), Violation> {
        let key = (entry.index, entry.term);
        match self.entry_identity.get(&key) {
            Some((known_prev_term, known_data)) => {
                if *known_prev_term != prev_term || *known_data != entry.data {
                    return violation(
                        "log matching",
                        format!(
                            "node {by} persisted index {} term {} after term {prev_term}, \
                             but another log has it after term {known_prev_term} \
                             (same data: {})",
                            entry.index,
                            entry.term,
                            *known_data == entry.data
                        ),
                    );
                }
                Ok(())
            }
            None => {
                self.entry_identity
                    .insert(key, (prev_term, entry.data.clone()));
                Ok(())
            }
        }
    }

    /// Runs after every step.
    pub fn observe(&mut self, nodes: &BTreeMap<NodeId, Raft>) -> Result<(), Violation> {
        for (id, raft) in nodes {
            raft.check_invariants();
            let status = raft.status();
            if status.role == Role::Leader {
                let first = *self.leaders_by_term.entry(status.term).or_insert(*id);
                if first != *id {
                    return violation(
                        "election safety",
                        format!("nodes {first} and {id} both led term {}", status.term),
                    );
                }
            }
            self.check_commit(*id, raft)?;
        }
        self.check_leader_completeness(nodes)
    }

    /// A node's commit index never decreases while it runs, and what it covers is the one
    /// committed log. Entries a snapshot covers are checked through the snapshot's contents
    /// when the node applies it.
    fn check_commit(&mut self, id: NodeId, raft: &Raft) -> Result<(), Violation> {
        let status = raft.status();
        let previous = self.last_commit.insert(id, status.commit);
        if let Some(previous) = previous.filter(|previous| *previous > status.commit) {
            return violation(
                "state machine safety",
                format!(
                    "node {id}'s commit index went back from {previous} to {}",
                    status.commit
                ),
            );
        }
        let checked = self.commit_checked.get(&id).copied().unwrap_or_default();
        let from = checked.max(status.snapshot_index);
        let mut index = from.next();
        while index <= status.commit {
            let entry = entry_at(raft, index).expect("committed entries are in the log");
            self.record_committed(id, entry)?;
            index = index.next();
        }
        self.commit_checked.insert(id, status.commit.max(checked));
        Ok(())
    }

    /// The newest term's leader must hold every committed entry (Raft paper §5.4.3), or a
    /// snapshot that covers it.
    fn check_leader_completeness(
        &mut self,
        nodes: &BTreeMap<NodeId, Raft>,
    ) -> Result<(), Violation> {
        let Some((&newest_term, &leader)) = self.leaders_by_term.last_key_value() else {
            return Ok(());
        };
        let Some(raft) = nodes.get(&leader) else {
            return Ok(());
        };
        let status = raft.status();
        if status.role != Role::Leader || status.term != newest_term {
            return Ok(());
        }
        let checked = self
            .completeness_checked
            .entry((leader, newest_term))
            .or_default();
        for entry in &self.committed[*checked..] {
            let held = if entry.index <= status.snapshot_index {
                // Covered by the snapshot; its last entry identifies the covered prefix.
                entry.index < status.snapshot_index
                    || raft.snapshot().map(|s| s.metadata.term) == Some(entry.term)
            } else {
                entry_at(raft, entry.index) == Some(entry)
            };
            if !held {
                return violation(
                    "leader completeness",
                    format!(
                        "leader {leader} of term {newest_term} lacks committed {entry:?}; \
                         it has {:?}",
                        entry_at(raft, entry.index)
                    ),
                );
            }
        }
        *checked = self.committed.len();
        Ok(())
    }
}
