//! Pass: historical reads. `reads_at` collects them for the search, which judges each at the
//! step that makes the revision it reads (`models::etcd::ReadsAt`), so the linearization found
//! agrees with every one whenever any linearization does. `check_historical` judges them
//! against a linearization afterwards: the linearization of a search without them (to name
//! the reads no linearization satisfies), and as a cross-check of the search with them. There
//! the linearization is stepped through the model, keeping each key's state after every
//! change, and every historical read is compared with the store at its revision.

use faultline_api::{Request, Response, Revision};
use std::collections::BTreeMap;

use super::requests::takes_part;
use crate::describe::{describe_response, summarize};
use crate::history::{History, Operation, Outcome};
use crate::linearizability::{Mismatch, Model, Op};
use crate::models::etcd::{EtcdInput, EtcdModel, KeyState, KeyTable, RangeKind, ReadsAt};

/// The historical reads taking part in the search: ranges at a revision (> 0) with a known
/// response. (Ranges at a revision inside a txn are not modelled; see `models::etcd`.)
pub(super) fn reads_at(history: &History) -> ReadsAt {
    let mut reads = ReadsAt::default();
    for op in history.ops.iter().filter(|op| takes_part(op)) {
        if let (Request::Range(r), Outcome::Ok(Response::Range(rr))) = (&op.request, &op.outcome) {
            if r.revision > 0 {
                reads.add(r, rr);
            }
        }
    }
    reads
}

/// The historical reads of `order` (indices into `ops`) that do not match the store at their
/// revision.
pub(super) fn check_historical(
    model: &EtcdModel,
    ops: &[Op<EtcdInput, Response>],
    order: &[usize],
    by_id: &BTreeMap<u64, &Operation>,
) -> Vec<Mismatch> {
    // The facts only prune; the linearization found steps without them to the same states.
    let model = &model.without_facts();
    // Per key: (revision, state) after every change.
    let mut key_hist: Vec<Vec<(Revision, Option<KeyState>)>> = vec![Vec::new(); model.keys.len()];
    let mut states = model.init();
    let mut mismatches = Vec::new();
    for &i in order {
        let op = &ops[i];
        let before = states[0].clone();
        let mut next: Vec<_> = states
            .iter()
            .flat_map(|s| model.step(s, &op.input, op.output.as_ref()))
            .collect();
        next.sort();
        next.dedup();
        if next.is_empty() {
            // Cannot happen for a linearization the search produced.
            break;
        }
        states = next;
        let after = &states[0];
        // Only the chunks a step changed are compared (`KeyTable::changes`).
        for (k, _, a) in before.keys.changes(&after.keys) {
            key_hist[k].push((after.revision, a.clone()));
        }
        let (Request::Range(r), Some(Response::Range(actual))) = (&op.input.request, &op.output)
        else {
            continue;
        };
        let Ok(RangeKind::Historical) = model
            .apply(&before, &op.input.request, None)
            .map(|(_, _, kind)| kind)
        else {
            continue;
        };
        let view: KeyTable = key_hist
            .iter()
            .map(|h| {
                let n = h.partition_point(|(rev, _)| *rev <= r.revision);
                if n == 0 {
                    None
                } else {
                    h[n - 1].1.clone()
                }
            })
            .collect();
        let expected = model.range_on(&view, r, actual.header.revision);
        if expected != *actual {
            let hop = by_id[&op.id];
            mismatches.push(Mismatch {
                op: summarize(hop),
                expected: describe_response(&Response::Range(expected)),
                explanation: format!(
                    "a read at revision {} does not match the store at that revision",
                    r.revision
                ),
            });
        }
    }
    mismatches
}
