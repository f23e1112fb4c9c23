//! etcd's key space as a sequential specification over `faultline_api` requests and responses
//! (etcd-semantics.md §1-§5, §7, §8).
//!
//! State: store revision, compact revision, every key of a fixed universe (all keys any Put in
//! the history writes, sorted) with value, create/mod revision, version and lease, and the set
//! of leases. Responses are compared field by field, including `header.revision` and every
//! `KeyValue` field; `cluster_id`, `member_id` and `raft_term` are ignored, and so are the
//! headers inside a Txn's responses (etcd says they must not be interpreted) and the TTL of a
//! lease grant (the server may raise it).
//!
//! Revisions prune the search (see `EtcdInput`): a known write's response revision pins its
//! place, a revision produced by a known write can be produced by nobody else, and an
//! unknown-outcome write can only fill a revision nobody else claims.
//!
//! Lease expiry: the server's expiry of a lease is an unknown-outcome revoke of its own
//! (`EtcdInput::expiry`), placed within the window `etcd::expiry` derives from the grant,
//! keep-alives and the cluster's bounds, and required by its deadline when that is enforced
//! (`Model::required`). KeepAlive/TimeToLive are not steps of the model: `etcd::expiry`
//! checks their answers against the windows.
//!
//! Not modelled: Leases/HashKV (excluded from the
//! check), validation errors (failed requests are excluded), ranges at an old revision INSIDE a
//! txn (their KVs are computed from the txn's own view; the workload issues none). Sorting on a
//! target other than the key orders ties by key in both directions, and order NONE with a
//! limit sorts only the first `limit + 1` keys, as etcd does.
//!
//! Files: `state` (the state and input), `key_table` (its key table, shared per chunk), `facts` (what the history shows about keys and
//! leases), `apply` (etcd's semantics of one request), `prune` (rejecting states with the
//! facts, and judging historical reads at the step that makes their revision), `step` (the
//! model as the linearizability search sees it), and here the model's parameters and the
//! response helpers.

mod apply;
mod facts;
mod key_table;
mod prune;
mod state;
mod step;

use faultline_api::{
    LeaseId, Request, Response, ResponseHeader, ResponseOp, Revision, TxnResponse,
};

pub use facts::{KeyFacts, KeyObs, LeaseFacts, LeaseTimeline, ReadsAt};
pub use key_table::{KeyState, KeyTable};
pub(crate) use state::kv_of;
pub use state::{EtcdInput, EtcdState, RangeKind};

/// The etcd key-space model: built by `etcd::prepare` from a history, or by hand (with no
/// facts) as the generators do.
pub struct EtcdModel {
    /// Key universe, sorted.
    pub keys: Vec<Vec<u8>>,
    /// Lease ids that appear anywhere (for grants whose id is unknown).
    pub lease_universe: Vec<LeaseId>,
    /// `claimed[r]`: revision r is produced by a known write or a pinned unknown write.
    pub claimed: Vec<bool>,
    /// Highest revision any response shows; unknown writes beyond it are unobservable.
    pub max_revision: Revision,
    /// Per key: merged revision intervals (a, b] in which responses show the key unmodified
    /// (a read at b saw mod_revision a). An unknown write of that key cannot produce a
    /// revision inside them.
    pub unmodified: std::collections::BTreeMap<Vec<u8>, Vec<(Revision, Revision)>>,
    /// What responses show about each key, used to reject a state as soon as no completion
    /// can match a later observation (`None`: no such pruning, e.g. in generators).
    pub facts: Option<KeyFacts>,
    /// What known responses show about each lease, used the same way (`None`: no pruning).
    pub lease_facts: Option<LeaseFacts>,
    /// The historical reads, judged exactly at the step that makes the revision they read
    /// (`None`: not enforced; see `ReadsAt`).
    pub reads_at: Option<ReadsAt>,
}

impl EtcdModel {
    /// The same model without the facts (`facts`, `lease_facts`, `reads_at`): the same steps, less
    /// pruning.
    pub fn without_facts(&self) -> EtcdModel {
        EtcdModel {
            keys: self.keys.clone(),
            lease_universe: self.lease_universe.clone(),
            claimed: self.claimed.clone(),
            max_revision: self.max_revision,
            unmodified: self.unmodified.clone(),
            facts: None,
            lease_facts: None,
            reads_at: None,
        }
    }
}

/// The single key an unknown request writes, when it writes exactly one.
pub fn single_written_key(req: &Request) -> Option<&[u8]> {
    match req {
        Request::Put(p) => Some(&p.key),
        Request::DeleteRange(d) if d.range_end.is_empty() => Some(&d.key),
        _ => None,
    }
}

pub(crate) fn header(revision: Revision) -> ResponseHeader {
    ResponseHeader {
        revision,
        ..Default::default()
    }
}

/// Zero the fields a check must ignore.
pub fn normalize(resp: &Response) -> Response {
    let mut r = resp.clone();
    normalize_in_place(&mut r);
    r
}

/// `normalize` without a copy.
pub fn normalize_in_place(r: &mut Response) {
    let h = r.header_mut();
    *h = header(h.revision);
    match r {
        Response::Txn(t) => normalize_txn(t),
        Response::LeaseGrant(g) => g.ttl_seconds = 0,
        _ => {}
    }
}

fn normalize_txn(t: &mut TxnResponse) {
    for op in &mut t.responses {
        match op {
            ResponseOp::Range(r) => r.header = ResponseHeader::default(),
            ResponseOp::Put(r) => r.header = ResponseHeader::default(),
            ResponseOp::DeleteRange(r) => r.header = ResponseHeader::default(),
            ResponseOp::Txn(inner) => {
                inner.header = ResponseHeader::default();
                normalize_txn(inner);
            }
        }
    }
}

/// Whether a known response shows that the request changed the store revision.
pub fn response_mutates(req: &Request, resp: &Response) -> Option<bool> {
    fn txn(t: &TxnResponse) -> bool {
        t.responses.iter().any(|op| match op {
            ResponseOp::Put(_) => true,
            ResponseOp::DeleteRange(d) => d.deleted > 0,
            ResponseOp::Txn(inner) => txn(inner),
            ResponseOp::Range(_) => false,
        })
    }
    match (req, resp) {
        (Request::Put(_), _) => Some(true),
        (Request::DeleteRange(_), Response::DeleteRange(d)) => Some(d.deleted > 0),
        (Request::Txn(_), Response::Txn(t)) => Some(txn(t)),
        (Request::LeaseRevoke(_), _) => None,
        _ => Some(false),
    }
}
