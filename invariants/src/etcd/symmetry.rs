//! Pass: symmetry classes. Unknown writes no response can tell apart (same request up to a
//! value nobody can observe) form a class, of which the search tries one member per level
//! (`Model::interchangeable_class`).

use std::collections::{BTreeMap, BTreeSet};

use faultline_api::{key_in_range, CompareTarget, Request, RequestOp, SortTarget, TxnRequest};

use super::observations::observations;
use super::requests::takes_part;
use crate::history::{History, Outcome};

/// What makes two unknown writes interchangeable: (kind, key, range_end, lease, ignore_lease,
/// ignore_value, value), where the value is `None` when no response can show it.
type ClassKey = (u8, Vec<u8>, Vec<u8>, i64, bool, bool, Option<Vec<u8>>);

/// Which written values the history can observe, for the symmetry reduction
/// (`Model::interchangeable_class`). A put's value is observable when a known response
/// or a watch event shows that (key, value), when some request compares or sorts the key by
/// value, or when an `ignore_value` put may carry it into a later revision.
pub(super) struct SymmetryClasses<'h> {
    observed: BTreeSet<(&'h [u8], &'h [u8])>,
    /// (key, range_end) of every value compare and every range sorted by value.
    value_sensitive: Vec<(Vec<u8>, Vec<u8>)>,
    ignore_value_keys: Vec<Vec<u8>>,
    /// Dense ids of the classes handed out so far, in order of first use.
    ids: BTreeMap<ClassKey, u64>,
}

impl<'h> SymmetryClasses<'h> {
    pub(super) fn new(history: &'h History, ignore_value_keys: &[Vec<u8>]) -> Self {
        fn walk(ops: &[RequestOp], out: &mut Vec<(Vec<u8>, Vec<u8>)>) {
            for op in ops {
                match op {
                    RequestOp::Range(r) if r.sort_target == SortTarget::Value => {
                        out.push((r.key.clone(), r.range_end.clone()))
                    }
                    RequestOp::Txn(t) => txn(t, out),
                    _ => {}
                }
            }
        }
        fn txn(t: &TxnRequest, out: &mut Vec<(Vec<u8>, Vec<u8>)>) {
            for c in &t.compare {
                if matches!(c.target, CompareTarget::Value(_)) {
                    out.push((c.key.clone(), c.range_end.clone()));
                }
            }
            walk(&t.success, out);
            walk(&t.failure, out);
        }
        let mut observed = BTreeSet::new();
        let mut value_sensitive = Vec::new();
        for op in &history.ops {
            // Every request counts here, included or not: this only ever makes fewer writes
            // interchangeable.
            match &op.request {
                Request::Range(r) if r.sort_target == SortTarget::Value => {
                    value_sensitive.push((r.key.clone(), r.range_end.clone()))
                }
                Request::Txn(t) => txn(t, &mut value_sensitive),
                _ => {}
            }
            if let (true, Outcome::Ok(resp)) = (takes_part(op), &op.outcome) {
                let mut obs = Vec::new();
                observations(&op.request, resp, &mut obs);
                observed.extend(
                    obs.into_iter()
                        .map(|(kv, _)| (kv.key.as_slice(), kv.value.as_slice())),
                );
            }
        }
        // What watch events show (event and prev_kv values) tells writes apart too when the
        // search takes the watches as facts; counted always, which only makes fewer writes
        // interchangeable. Without it, two unknown puts of a key were one class, the search
        // tried only one order of them, and a prev_kv showing the other order was blamed on
        // the watch (etcd-delete seed 322).
        for e in history
            .watches
            .iter()
            .flat_map(|w| &w.responses)
            .flat_map(|r| &r.response.events)
        {
            for kv in std::iter::once(&e.kv).chain(&e.prev_kv) {
                observed.insert((kv.key.as_slice(), kv.value.as_slice()));
            }
        }
        SymmetryClasses {
            observed,
            value_sensitive,
            ignore_value_keys: ignore_value_keys.to_vec(),
            ids: BTreeMap::new(),
        }
    }

    fn value_observable(&self, key: &[u8], value: &[u8]) -> bool {
        self.ignore_value_keys.iter().any(|k| k == key)
            || self
                .value_sensitive
                .iter()
                .any(|(k, e)| key_in_range(key, k, e))
            || self.observed.contains(&(key, value))
    }

    /// The class id of an unknown, unpinned write, if it has one: ids are dense, in order of
    /// first use.
    pub(super) fn class_id(&mut self, req: &Request) -> Option<u64> {
        let key = self.key(req)?;
        let next = self.ids.len() as u64;
        Some(*self.ids.entry(key).or_insert(next))
    }

    /// The class of an unknown, unpinned write, if it has one (plain puts and deletes).
    fn key(&self, req: &Request) -> Option<ClassKey> {
        match req {
            Request::Put(p) => Some((
                0,
                p.key.clone(),
                Vec::new(),
                p.lease,
                p.ignore_lease,
                p.ignore_value,
                self.value_observable(&p.key, &p.value)
                    .then(|| p.value.clone()),
            )),
            Request::DeleteRange(d) => {
                Some((1, d.key.clone(), d.range_end.clone(), 0, false, false, None))
            }
            // The model ignores a grant's TTL (the server may raise it, and expiry is not
            // modelled), so grants of one id change the state identically; so do revokes of
            // one id.
            Request::LeaseGrant(g) if g.id != 0 => {
                Some((2, Vec::new(), Vec::new(), g.id, false, false, None))
            }
            Request::LeaseRevoke(r) => Some((3, Vec::new(), Vec::new(), r.id, false, false, None)),
            _ => None,
        }
    }
}
