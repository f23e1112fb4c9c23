//! The timeline's lanes: one per client id of the history. Where clients continue under a new
//! id after an unknown outcome (this project's simulator does; Jepsen gives such a process a
//! new number), an id is one incarnation of a client: the caller may say whose
//! (`ReportMeta::lane_owners`), and the lanes of one client are then drawn together, shaded
//! alike and labelled `client 3 #1`, `client 3 #2`.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::timeline::TimelineOp;

/// Whose incarnation a client id of the history is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaneOwner {
    /// The client as a person names it: `client 3`, `watcher 5`, `final`.
    pub name: String,
    /// Where the client's lanes go, top to bottom (its first id, say).
    pub order: u64,
    /// 1 for the client's first id, 2 after its first unknown outcome, and so on.
    pub incarnation: u32,
}

/// What the page says about a client id when nobody said whose incarnation it is.
fn default_owner(id: u64) -> LaneOwner {
    LaneOwner {
        // The simulator's final-phase client uses the largest id.
        name: if id == u64::MAX {
            "final".to_string()
        } else {
            format!("client {id}")
        },
        order: id,
        incarnation: 1,
    }
}

struct Lane {
    label: String,
    /// Lanes sort by (owner's order, incarnation, id).
    key: (u64, u32, u64),
}

/// The lane of every client id of a history: its label, its place and its owner.
pub(super) struct LaneBook {
    lanes: BTreeMap<u64, Lane>,
    /// Distinct owners (clients), each with one or more incarnations (lanes).
    owners: usize,
}

impl LaneBook {
    pub(super) fn new(ops: &[TimelineOp], owners: &BTreeMap<u64, LaneOwner>) -> LaneBook {
        let ids: BTreeSet<u64> = ops.iter().map(|op| op.client).collect();
        let owner_of = |id: u64| {
            owners
                .get(&id)
                .cloned()
                .unwrap_or_else(|| default_owner(id))
        };
        // `#n` only for a client that has more than one incarnation in this history.
        let mut incarnations: BTreeMap<(u64, String), usize> = BTreeMap::new();
        for &id in &ids {
            let owner = owner_of(id);
            *incarnations.entry((owner.order, owner.name)).or_default() += 1;
        }
        let lanes = ids
            .iter()
            .map(|&id| {
                let owner = owner_of(id);
                let several = incarnations[&(owner.order, owner.name.clone())] > 1;
                let label = if several {
                    format!("{} #{}", owner.name, owner.incarnation)
                } else {
                    owner.name.clone()
                };
                let key = (owner.order, owner.incarnation, id);
                (id, Lane { label, key })
            })
            .collect();
        LaneBook {
            lanes,
            owners: incarnations.len(),
        }
    }

    /// The lane's label: `client 3`, `client 3 #2`, `watcher 5`, `final`.
    pub(super) fn label(&self, id: u64) -> String {
        match self.lanes.get(&id) {
            Some(lane) => lane.label.clone(),
            None => default_owner(id).name,
        }
    }

    /// A client in tables and tooltips: the label, and the history's id when the label does
    /// not show it (`client 3 #2 (id 57)`).
    pub(super) fn describe(&self, id: u64) -> String {
        let label = self.label(id);
        if label == default_owner(id).name {
            label
        } else {
            format!("{label} (id {id})")
        }
    }

    /// The given client ids in lane order, without repeats: each client's incarnations
    /// together, in incarnation order.
    pub(super) fn in_order(&self, ids: impl IntoIterator<Item = u64>) -> Vec<u64> {
        let mut ids: Vec<u64> = ids
            .into_iter()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        ids.sort_by_key(|id| self.key(*id));
        ids
    }

    /// Which client the lane belongs to (lanes of one client share their shading).
    pub(super) fn owner_order(&self, id: u64) -> u64 {
        self.key(id).0
    }

    fn key(&self, id: u64) -> (u64, u32, u64) {
        self.lanes.get(&id).map_or((id, 1, id), |lane| lane.key)
    }

    /// How many clients the history has (each with one or more incarnations).
    pub(super) fn clients(&self) -> usize {
        self.owners
    }

    /// How many lanes: client ids, one per incarnation.
    pub(super) fn incarnations(&self) -> usize {
        self.lanes.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::html::timeline::{OpKind, OpOutcome};

    fn op(id: u64, client: u64) -> TimelineOp {
        TimelineOp {
            id,
            client,
            member: None,
            invoke: id,
            complete: Some(id + 1),
            kind: OpKind::Read,
            outcome: OpOutcome::Ok,
            request: String::new(),
            response: String::new(),
        }
    }

    #[test]
    fn incarnations_of_a_client_are_grouped_and_numbered() {
        // Client 0 continued as 9, then as 12; client 1 never did; 20 is unknown to the caller.
        let ops: Vec<TimelineOp> = [0, 1, 9, 12, 20, u64::MAX]
            .iter()
            .enumerate()
            .map(|(i, c)| op(i as u64, *c))
            .collect();
        let owner = |name: &str, order, incarnation| LaneOwner {
            name: name.to_string(),
            order,
            incarnation,
        };
        let owners: BTreeMap<u64, LaneOwner> = [
            (0, owner("client 0", 0, 1)),
            (9, owner("client 0", 0, 2)),
            (12, owner("client 0", 0, 3)),
            (1, owner("client 1", 1, 1)),
        ]
        .into_iter()
        .collect();
        let book = LaneBook::new(&ops, &owners);
        assert_eq!(
            book.in_order([20, 12, 1, 9, 0, u64::MAX, 9]),
            vec![0, 9, 12, 1, 20, u64::MAX]
        );
        assert_eq!(book.label(9), "client 0 #2");
        assert_eq!(book.label(0), "client 0 #1");
        assert_eq!(
            book.label(1),
            "client 1",
            "a single incarnation has no number"
        );
        assert_eq!(book.label(20), "client 20");
        assert_eq!(book.label(u64::MAX), "final");
        assert_eq!(book.describe(12), "client 0 #3 (id 12)");
        assert_eq!(book.describe(20), "client 20");
        assert_eq!(book.owner_order(12), 0);
        assert_eq!((book.clients(), book.incarnations()), (4, 6));
    }
}
