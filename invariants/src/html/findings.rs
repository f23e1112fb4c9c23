//! What the verdict names: the operations to highlight (and why) and the longest prefix.

use std::collections::{BTreeMap, BTreeSet};

use crate::linearizability::Report;

/// Why an operation is highlighted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Role {
    /// Cannot be placed after the longest prefix, is a stale read, or contradicts the order.
    Failing,
    /// The earlier operation that shows a read was stale.
    Witness,
}

pub(super) struct Findings {
    pub roles: BTreeMap<u64, Role>,
    pub prefix: BTreeSet<u64>,
}

impl Findings {
    pub(super) fn of(report: Option<&Report>) -> Findings {
        let mut roles = BTreeMap::new();
        let mut prefix = BTreeSet::new();
        if let Some(r) = report {
            for s in &r.stale_reads {
                roles.entry(s.earlier.id).or_insert(Role::Witness);
            }
            // Failing wins over witness: an operation can be both.
            for s in &r.stale_reads {
                roles.insert(s.op.id, Role::Failing);
            }
            for u in &r.unplaceable {
                roles.insert(u.id, Role::Failing);
            }
            for m in &r.mismatches {
                roles.insert(m.op.id, Role::Failing);
            }
            prefix.extend(r.longest_prefix.iter().copied());
        }
        Findings { roles, prefix }
    }
}

/// The operations the window is centred on: the first one that cannot be placed (the one
/// whose return forced the decision), else the first stale read and the operation that proves
/// it stale, else the first contradicting response.
pub(super) fn primary_failure(report: &Report) -> Vec<u64> {
    if let Some(u) = report.unplaceable.first() {
        return vec![u.id];
    }
    if let Some(s) = report.stale_reads.first() {
        return vec![s.op.id, s.earlier.id];
    }
    report.mismatches.iter().take(1).map(|m| m.op.id).collect()
}
