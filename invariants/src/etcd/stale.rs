//! Pass: stale reads. A direct pre-check, independent of the search, so it holds even when the
//! search runs out of budget.

use faultline_api::{Request, Revision};

use super::requests::is_kv_or_lease;
use crate::describe::summarize;
use crate::history::{History, Outcome};
use crate::linearizability::{StaleKind, StaleRead};
use crate::models::etcd::response_mutates;

/// Every linearizable read whose header revision is below the revision of an operation that
/// completed before the read was invoked, and every other linearizable operation whose
/// revision went backwards that way (a known write must even see a higher one). Serializable
/// reads may be stale, so they are only used as the earlier operation.
pub fn find_stale_reads(history: &History) -> Vec<StaleRead> {
    // Completed operations with a revision, by completion time.
    let mut done: Vec<(u64, Revision, usize)> = history
        .ops
        .iter()
        .enumerate()
        .filter_map(|(i, op)| match &op.outcome {
            Outcome::Ok(r) if is_kv_or_lease(&op.request) && r.header().revision > 0 => {
                Some((op.complete_ns, r.header().revision, i))
            }
            _ => None,
        })
        .collect();
    done.sort();
    // Prefix maximum of the revision (and which op had it).
    let mut best: Vec<(Revision, usize)> = Vec::with_capacity(done.len());
    for &(_, rev, i) in &done {
        let prev = best.last().copied();
        best.push(match prev {
            Some((r, j)) if r >= rev => (r, j),
            _ => (rev, i),
        });
    }
    let mut found = Vec::new();
    for op in &history.ops {
        let Outcome::Ok(resp) = &op.outcome else {
            continue;
        };
        if !is_kv_or_lease(&op.request) {
            continue;
        }
        let kind = match &op.request {
            Request::Range(r) if r.serializable => continue,
            Request::Range(_) => StaleKind::StaleRead,
            _ => StaleKind::RevisionRegression,
        };
        let rev = resp.header().revision;
        // Operations that completed strictly before this one was invoked.
        let n = done.partition_point(|&(t, _, _)| t < op.invoke_ns);
        if n == 0 {
            continue;
        }
        let (max_rev, j) = best[n - 1];
        let mutating = response_mutates(&op.request, resp) == Some(true);
        let stale = if mutating {
            rev <= max_rev
        } else {
            rev < max_rev
        };
        if stale {
            let earlier = &history.ops[j];
            found.push(StaleRead {
                kind,
                op: summarize(op),
                op_revision: rev,
                earlier: summarize(earlier),
                earlier_revision: max_rev,
            });
        }
    }
    found
}
