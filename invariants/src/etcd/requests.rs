//! What the requests of a history do, as the passes need it: which operations take part in
//! the search, the key and lease universe, the writers of each (key, value), and which keys a
//! request may put or delete.

use std::collections::BTreeMap;

use faultline_api::{key_in_range, PutRequest, Request, RequestOp, Response};

use crate::history::{History, Operation, Outcome};

/// Whether a request is part of the KV model (KeepAlive, TimeToLive, Leases and HashKV are
/// not).
pub(super) fn is_kv_or_lease(req: &Request) -> bool {
    matches!(
        req,
        Request::Range(_)
            | Request::Put(_)
            | Request::DeleteRange(_)
            | Request::Txn(_)
            | Request::Compact(_)
            | Request::LeaseGrant(_)
            | Request::LeaseRevoke(_)
    )
}

/// Whether an operation takes part in the search: known KV and lease operations, and unknown
/// writes other than compactions (failed operations never took effect; unknown reads and
/// compactions can explain no response).
pub(super) fn takes_part(op: &Operation) -> bool {
    if !is_kv_or_lease(&op.request) {
        return false;
    }
    match &op.outcome {
        Outcome::Failed(_) => false,
        Outcome::Ok(_) => true,
        Outcome::Unknown(_) => op.request.is_write() && !matches!(op.request, Request::Compact(_)),
    }
}

/// The keys and leases a history names, and who wrote what.
pub(super) struct Universe<'h> {
    /// Every key any put writes, sorted.
    pub keys: Vec<Vec<u8>>,
    /// Every lease id any request or grant response names, sorted.
    pub leases: Vec<i64>,
    /// Keys some `ignore_value` put writes (their values may travel to later revisions), sorted.
    pub ignore_value_keys: Vec<Vec<u8>>,
    /// (key, value) -> the operations (indices) that may have written it.
    pub writers: BTreeMap<(&'h [u8], &'h [u8]), Vec<usize>>,
    /// Key -> every lease a put of it attaches (any outcome), sorted: only a revoke of one of
    /// them can delete the key (`may_delete_key`).
    pub key_leases: KeyLeases,
}

/// Key -> the leases any put of it attaches, sorted.
pub(super) type KeyLeases = BTreeMap<Vec<u8>, Vec<i64>>;

impl<'h> Universe<'h> {
    pub(super) fn of(history: &'h History) -> Self {
        let mut u = Universe {
            keys: Vec::new(),
            leases: Vec::new(),
            ignore_value_keys: Vec::new(),
            writers: BTreeMap::new(),
            key_leases: BTreeMap::new(),
        };
        for (i, op) in history.ops.iter().enumerate() {
            for p in request_puts(&op.request) {
                if u.keys.last() != Some(&p.key) {
                    u.keys.push(p.key.clone()); // sorted and deduplicated below
                }
                if p.lease != 0 {
                    u.leases.push(p.lease);
                    u.key_leases.entry(p.key.clone()).or_default().push(p.lease);
                }
                if p.ignore_value {
                    u.ignore_value_keys.push(p.key.clone());
                } else if !matches!(op.outcome, Outcome::Failed(_)) {
                    u.writers
                        .entry((p.key.as_slice(), p.value.as_slice()))
                        .or_default()
                        .push(i);
                }
            }
            match (&op.request, &op.outcome) {
                (Request::LeaseGrant(g), _) if g.id != 0 => u.leases.push(g.id),
                (Request::LeaseRevoke(r), _) => u.leases.push(r.id),
                _ => {}
            }
            if let (Request::LeaseGrant(_), Outcome::Ok(Response::LeaseGrant(g))) =
                (&op.request, &op.outcome)
            {
                u.leases.push(g.id);
            }
        }
        for v in [&mut u.keys, &mut u.ignore_value_keys] {
            v.sort();
            v.dedup();
        }
        u.leases.sort();
        u.leases.dedup();
        for l in u.key_leases.values_mut() {
            l.sort_unstable();
            l.dedup();
        }
        u
    }

    /// The unknown write taking part that alone may have written `value` to `key`, if any:
    /// whatever shows that (key, value) pins it. Keys written with `ignore_value` have none
    /// (a value there may be carried over from an earlier revision).
    pub(super) fn sole_unknown_writer(
        &self,
        history: &History,
        key: &[u8],
        value: &[u8],
    ) -> Option<usize> {
        if self
            .ignore_value_keys
            .binary_search_by(|k| k.as_slice().cmp(key))
            .is_ok()
        {
            return None;
        }
        match self.writers.get(&(key, value))?.as_slice() {
            &[w] if history.ops[w].is_unknown() && takes_part(&history.ops[w]) => Some(w),
            _ => None,
        }
    }
}

fn collect_puts<'a>(ops: &'a [RequestOp], out: &mut Vec<&'a PutRequest>) {
    for op in ops {
        match op {
            RequestOp::Put(p) => out.push(p),
            RequestOp::Txn(t) => {
                collect_puts(&t.success, out);
                collect_puts(&t.failure, out);
            }
            _ => {}
        }
    }
}

/// Every put of a request, in both branches of a txn.
pub(super) fn request_puts(req: &Request) -> Vec<&PutRequest> {
    let mut out = Vec::new();
    match req {
        Request::Put(p) => out.push(p),
        Request::Txn(t) => {
            collect_puts(&t.success, &mut out);
            collect_puts(&t.failure, &mut out);
        }
        _ => {}
    }
    out
}

/// The leases the puts of a request attach (0s left out).
pub(super) fn put_leases(req: &Request) -> impl Iterator<Item = i64> + '_ {
    request_puts(req)
        .into_iter()
        .map(|p| p.lease)
        .filter(|&l| l != 0)
}

/// Every put of a request with its branch (`None`: top level, `Some(true)`: success branch of
/// the top-level txn, `Some(false)`: failure branch; nested txns count as their parent's).
pub(super) fn branch_puts(req: &Request) -> Vec<(&[u8], Option<bool>)> {
    fn walk<'a>(
        ops: &'a [RequestOp],
        branch: Option<bool>,
        out: &mut Vec<(&'a [u8], Option<bool>)>,
    ) {
        for op in ops {
            match op {
                RequestOp::Put(p) => out.push((&p.key, branch)),
                RequestOp::Txn(t) => {
                    walk(&t.success, branch, out);
                    walk(&t.failure, branch, out);
                }
                _ => {}
            }
        }
    }
    let mut out = Vec::new();
    match req {
        Request::Put(p) => out.push((p.key.as_slice(), None)),
        Request::Txn(t) => {
            walk(&t.success, Some(true), &mut out);
            walk(&t.failure, Some(false), &mut out);
        }
        _ => {}
    }
    out
}

/// Whether a request may delete `key`: a delete range covering it anywhere, or a revoke of a
/// lease some put of the key attaches (`key_leases`; a revoke deletes only the keys attached to
/// its lease, and a key is attached only by a put with that lease: one with `ignore_lease`
/// keeps the lease an earlier put attached).
pub(super) fn may_delete_key(req: &Request, key: &[u8], key_leases: &KeyLeases) -> bool {
    fn walk(ops: &[RequestOp], key: &[u8]) -> bool {
        ops.iter().any(|op| match op {
            RequestOp::DeleteRange(d) => key_in_range(key, &d.key, &d.range_end),
            RequestOp::Txn(t) => walk(&t.success, key) || walk(&t.failure, key),
            _ => false,
        })
    }
    match req {
        Request::DeleteRange(d) => key_in_range(key, &d.key, &d.range_end),
        Request::Txn(t) => walk(&t.success, key) || walk(&t.failure, key),
        Request::LeaseRevoke(r) => key_leases
            .get(key)
            .is_some_and(|l| l.binary_search(&r.id).is_ok()),
        _ => false,
    }
}
