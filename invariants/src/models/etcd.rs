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
//! Not modelled: lease expiry (histories must use TTLs longer than the run, as etcd's
//! robustness tests do with 7200 s), KeepAlive/TimeToLive/Leases/HashKV (excluded from the
//! check), validation errors (failed requests are excluded), ranges at an old revision INSIDE a
//! txn (their KVs are computed from the txn's own view; the workload issues none). Sorting on a
//! target other than the key orders ties by key in both directions, and order NONE with a
//! limit sorts only the first `limit + 1` keys, as etcd does.

use std::cmp::Ordering;
use std::rc::Rc;

use faultline_api::{
    key_in_range, Compare, CompareResult, CompareTarget, DeleteRangeRequest, DeleteRangeResponse,
    EtcdError, KeyValue, LeaseId, PutRequest, PutResponse, RangeRequest, RangeResponse, Request,
    RequestOp, Response, ResponseHeader, ResponseOp, Revision, SortOrder, SortTarget, TxnRequest,
    TxnResponse,
};

use crate::linearizability::Model;

/// One live key.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyState {
    pub value: Rc<[u8]>,
    pub create_revision: Revision,
    pub mod_revision: Revision,
    pub version: i64,
    pub lease: LeaseId,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EtcdState {
    pub revision: Revision,
    pub compact_revision: Revision,
    /// Indexed like `EtcdModel::keys`; `None` = absent.
    pub keys: Vec<Option<KeyState>>,
    /// Sorted.
    pub leases: Vec<LeaseId>,
    /// Tags (`EtcdInput::lease_op_tag`) of the unknown-outcome lease grants and revokes
    /// applied so far, sorted. Bookkeeping for `LeaseFacts` (which of them are still
    /// available). It follows from which operations were decided and whether each was applied
    /// or dropped, most of which the search's memo key (the set of decided operations) already
    /// tells, so it seldom splits a memo entry.
    pub unknown_lease_ops_applied: Vec<u32>,
}

/// An operation as the model sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EtcdInput {
    pub request: Request,
    /// For known outcomes: whether the response shows a new revision (`None`: cannot tell,
    /// LeaseRevoke).
    pub mutating: Option<bool>,
    /// For unknown outcomes: the revision this write must produce, when a response observed
    /// one of its (unique) values.
    pub pin: Option<Revision>,
    /// A serializable read: compared with the state at its header revision.
    pub serializable: bool,
    /// When the operation was invoked: unknown writes that are candidates for the same
    /// revision are tried newest first (the write that filled a revision was most likely
    /// invoked shortly before it).
    pub invoke_ns: u64,
    /// For unknown, unpinned writes: a class of writes no response can tell apart (same
    /// request up to a value nobody observes; see `Model::interchangeable_class`).
    pub class: Option<u64>,
    /// For unknown lease grants (with an id) and revokes taking part in the search: a tag
    /// unique to the operation, recorded in `EtcdState::unknown_lease_ops_applied` when it
    /// is applied (see `LeaseFacts`).
    pub lease_op_tag: Option<u32>,
}

/// The etcd key-space model. Build it with `EtcdModel::new`.
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
}

/// Per-lease facts established by known responses, indexed like `EtcdModel::lease_universe`.
///
/// Why: a lease grant does not change the revision, so revisions say nothing about when an
/// unknown-outcome grant happened. When the search guesses wrong (say it grants a lease to
/// let an unknown put with that lease fill a free revision), the lease exists for the rest of
/// the branch, and the mistake shows only at the next known grant of that id, thousands of
/// levels later, after the search has backtracked over every guess in between.
/// `EtcdModel::leases_feasible` instead rejects the state as soon as the lease set changes:
///
/// * A lease present in a state at revision r must be revoked before every known operation
///   that needs it absent (a successful grant of it) at a state revision above r. Only
///   revokes remove leases (expiry is not modelled), so the first revoke after now is
///   either a known revoke of it whose header lies in [r, a + 1] (a: the lowest such
///   grant's revision) or an unknown revoke of it that has not been applied yet and was
///   invoked before every one of those grants completed.
/// * Symmetrically, a lease absent at revision r must be granted before every known
///   operation that needs it present (a put with it, a revoke of it, a current read showing a
///   key attached to it: in the model a key's lease always exists) above r: a known grant
///   with header in [r, a + 1], an unknown grant not applied yet invoked before all those
///   operations completed, or an unknown grant whose id the server picks.
///
/// Each requirement is recorded at the lowest state revision at which its operation can be
/// applied, so a requirement above the current revision is certainly still ahead (revisions
/// never decrease). Every rule is a necessary condition for any completion of the state, so
/// pruning never turns a linearizable history into a failure.
#[derive(Clone, Debug, Default)]
pub struct LeaseFacts {
    pub leases: Vec<LeaseTimeline>,
    /// Some unknown grant leaves the id to the server, so any absent lease may be granted.
    pub unknown_grant_of_any_id: bool,
}

/// The facts of one lease (see `LeaseFacts`).
#[derive(Clone, Debug, Default)]
pub struct LeaseTimeline {
    /// Known operations that need the lease present: (lowest state revision at which they
    /// apply, completion time ns, the smallest completion time of this entry and every later
    /// one), sorted.
    pub present_needed: Vec<(Revision, u64, u64)>,
    /// Known grants, which need the lease absent, in the same form.
    pub absent_needed: Vec<(Revision, u64, u64)>,
    /// Header revisions of known grants and of known revokes, sorted.
    pub known_grants: Vec<Revision>,
    pub known_revokes: Vec<Revision>,
    /// Unknown grants and revokes taking part in the search: (invocation ns, tag), sorted.
    pub unknown_grants: Vec<(u64, u32)>,
    pub unknown_revokes: Vec<(u64, u32)>,
}

impl LeaseTimeline {
    /// Sort the needs and fill in their suffix minima of completion time.
    pub fn finish(&mut self) {
        for needs in [&mut self.present_needed, &mut self.absent_needed] {
            needs.sort_unstable();
            let mut min_ret = u64::MAX;
            for e in needs.iter_mut().rev() {
                min_ret = min_ret.min(e.1);
                e.2 = min_ret;
            }
        }
        for v in [&mut self.known_grants, &mut self.known_revokes] {
            v.sort_unstable();
        }
        for v in [&mut self.unknown_grants, &mut self.unknown_revokes] {
            v.sort_unstable();
        }
    }

    /// Whether the lease, `present` or not in a state at revision `r` whose applied unknown
    /// lease operations are `applied`, can still meet every later known requirement.
    fn feasible(&self, present: bool, r: Revision, applied: &[u32], any_id_grant: bool) -> bool {
        let (needs, known_flips, unknown_flips) = if present {
            (
                &self.absent_needed,
                &self.known_revokes,
                &self.unknown_revokes,
            )
        } else {
            if any_id_grant {
                return true;
            }
            (
                &self.present_needed,
                &self.known_grants,
                &self.unknown_grants,
            )
        };
        let i = needs.partition_point(|e| e.0 <= r);
        let Some(&(a, _, deadline_ns)) = needs.get(i) else {
            return true;
        };
        // A known operation that flips the lease may lie between now and the first need.
        let lo = known_flips.partition_point(|&h| h < r);
        if known_flips.get(lo).is_some_and(|&h| h <= a + 1) {
            return true;
        }
        // Otherwise an unknown one not applied yet, invoked before every need completed.
        unknown_flips
            .iter()
            .take_while(|(call, _)| *call < deadline_ns)
            .any(|(_, tag)| applied.binary_search(tag).is_err())
    }
}

/// The state of one key at one revision, as a response showed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyObs {
    Absent,
    Present {
        create_revision: Revision,
        mod_revision: Revision,
        version: i64,
        lease: LeaseId,
        /// `None` when the response omitted values (keys_only).
        value: Option<Vec<u8>>,
    },
}

/// Per-key facts established by known responses, indexed like `EtcdModel::keys`.
///
/// Why: in an etcd history almost every revision is claimed by a known write, so the search
/// is only ever unsure which unknown write filled a revision nobody claims. A wrong choice
/// shows only at the next observation of the key, often thousands of steps later, and the
/// memo cannot merge the branches (their sets of decided operations differ). Counting lets
/// `EtcdModel::feasible` reject the wrong choice at once: between now (revision r) and the
/// next observation of a key in the same generation, the key's version must grow by exactly
/// the number of puts in (r, mod_revision], which is at least the known puts there and at
/// most what the revisions there can hold. Every rule is a necessary condition for any
/// complete linearization, so pruning never turns a linearizable history into a failure.
#[derive(Clone, Debug, Default)]
pub struct KeyFacts {
    /// Observations per key, sorted by revision.
    pub obs: Vec<Vec<(Revision, KeyObs)>>,
    /// Per key: claimed revisions whose writer certainly puts the key (sorted).
    pub definite_puts: Vec<Vec<Revision>>,
    /// Per key: claimed revisions whose writer may put the key, once per possible put.
    pub may_put: Vec<Vec<Revision>>,
    /// Per key: claimed revisions whose writer may delete the key.
    pub may_delete: Vec<Vec<Revision>>,
    /// Revisions no known write claims (sorted): any unclaimed writer may produce them.
    pub unclaimed: Vec<Revision>,
    /// Per key: the most puts of the key one unclaimed writer can make.
    pub unclaimed_max_puts: Vec<i64>,
    /// Per key: whether some unclaimed writer may delete the key.
    pub unclaimed_may_delete: Vec<bool>,
}

/// Entries of a sorted list in (a, b].
fn count_in(sorted: &[Revision], a: Revision, b: Revision) -> i64 {
    if b <= a {
        return 0;
    }
    (sorted.partition_point(|&x| x <= b) - sorted.partition_point(|&x| x <= a)) as i64
}

impl KeyFacts {
    fn most_puts_in(&self, k: usize, a: Revision, b: Revision) -> i64 {
        count_in(&self.may_put[k], a, b)
            + count_in(&self.unclaimed, a, b) * self.unclaimed_max_puts[k]
    }

    fn may_delete_in(&self, k: usize, a: Revision, b: Revision) -> bool {
        count_in(&self.may_delete[k], a, b) > 0
            || (self.unclaimed_may_delete[k] && count_in(&self.unclaimed, a, b) > 0)
    }

    /// Whether key `k` in state `ks` at revision `r` can still become what its next
    /// observation shows.
    fn key_feasible(&self, k: usize, ks: Option<&KeyState>, r: Revision) -> bool {
        let obs = &self.obs[k];
        let i = obs.partition_point(|(at, _)| *at < r);
        let Some((at, o)) = obs.get(i) else {
            return true;
        };
        debug_assert!(*at >= r);
        match (o, ks) {
            (KeyObs::Absent, None) => true,
            // Present now, absent at `at`: a delete must fit in (r, at].
            (KeyObs::Absent, Some(_)) => self.may_delete_in(k, r, *at),
            (
                KeyObs::Present {
                    create_revision,
                    mod_revision,
                    version,
                    lease,
                    value,
                },
                ks,
            ) => {
                if *mod_revision <= r {
                    // Unchanged from mod_revision to `at`, and r lies in between.
                    ks.is_some_and(|s| {
                        s.create_revision == *create_revision
                            && s.mod_revision == *mod_revision
                            && s.version == *version
                            && s.lease == *lease
                            && value.as_ref().is_none_or(|v| *s.value == **v)
                    })
                } else if *create_revision <= r {
                    // Same generation, modified in (r, mod_revision] by exactly
                    // `version - s.version` puts and no delete.
                    let Some(s) = ks else { return false };
                    if s.create_revision != *create_revision {
                        return false;
                    }
                    let need = *version - s.version;
                    need >= 1
                        && need >= count_in(&self.definite_puts[k], r, *mod_revision)
                        && need <= self.most_puts_in(k, r, *mod_revision)
                } else {
                    // A new generation starts at create_revision: a live key must be deleted
                    // before it.
                    ks.is_none() || self.may_delete_in(k, r, *create_revision - 1)
                }
            }
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

type Res<T> = Result<T, EtcdError>;

fn kv_of(key: &[u8], ks: &KeyState) -> KeyValue {
    KeyValue {
        key: key.to_vec(),
        create_revision: ks.create_revision,
        mod_revision: ks.mod_revision,
        version: ks.version,
        value: ks.value.to_vec(),
        lease: ks.lease,
    }
}

fn header(revision: Revision) -> ResponseHeader {
    ResponseHeader {
        revision,
        ..Default::default()
    }
}

/// Zero the fields a check must ignore.
pub fn normalize(resp: &Response) -> Response {
    let mut r = resp.clone();
    let h = r.header_mut();
    *h = header(h.revision);
    match &mut r {
        Response::Txn(t) => normalize_txn(t),
        Response::LeaseGrant(g) => g.ttl_seconds = 0,
        _ => {}
    }
    r
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

impl EtcdModel {
    /// Whether every lease that `next` (reached from `before`) adds or removes can still meet
    /// the known operations that need it present or absent (see `LeaseFacts`).
    pub fn leases_feasible(&self, before: &EtcdState, next: &EtcdState) -> bool {
        let Some(f) = &self.lease_facts else {
            return true;
        };
        if before.leases == next.leases {
            return true;
        }
        let changed = |id: &LeaseId, present: bool| -> bool {
            let Ok(l) = self.lease_universe.binary_search(id) else {
                return true;
            };
            f.leases[l].feasible(
                present,
                next.revision,
                &next.unknown_lease_ops_applied,
                f.unknown_grant_of_any_id,
            )
        };
        next.leases
            .iter()
            .filter(|id| before.leases.binary_search(id).is_err())
            .all(|id| changed(id, true))
            && before
                .leases
                .iter()
                .filter(|id| next.leases.binary_search(id).is_err())
                .all(|id| changed(id, false))
    }

    /// Whether every key of `next` (reached from `before`) can still match its next
    /// observation (see `KeyFacts`). Small key universes check every key, which also catches
    /// a key whose last chance to be written has just passed; large ones check only the keys
    /// that changed, to keep a step cheap (less pruning, never less exact).
    pub fn feasible(&self, before: &EtcdState, next: &EtcdState) -> bool {
        const CHECK_ALL_KEYS_MAX: usize = 256;
        let Some(f) = &self.facts else { return true };
        debug_assert_eq!(f.obs.len(), next.keys.len());
        let all = next.keys.len() <= CHECK_ALL_KEYS_MAX;
        next.keys
            .iter()
            .zip(before.keys.iter())
            .enumerate()
            .all(|(k, (ks, old))| {
                (!all && ks == old) || f.key_feasible(k, ks.as_ref(), next.revision)
            })
    }

    /// Whether the step `before` -> `after` (to revision `rev`) changes a key that responses or
    /// watches show unmodified at `rev` (any key a txn wrote, not only a single written key).
    fn modifies_unmodified(&self, before: &EtcdState, after: &EtcdState, rev: Revision) -> bool {
        !self.unmodified.is_empty()
            && before
                .keys
                .iter()
                .zip(&after.keys)
                .enumerate()
                .any(|(k, (a, b))| a != b && self.is_unmodified(&self.keys[k], rev))
    }

    /// Whether responses show `key` unmodified at revision `rev`.
    pub fn is_unmodified(&self, key: &[u8], rev: Revision) -> bool {
        let Some(iv) = self.unmodified.get(key) else {
            return false;
        };
        let i = iv.partition_point(|&(a, _)| a < rev);
        i > 0 && iv[i - 1].1 >= rev
    }

    /// Index range of universe keys in etcd's range [key, range_end).
    pub(crate) fn key_ids(&self, key: &[u8], range_end: &[u8]) -> std::ops::Range<usize> {
        let lo = self.keys.partition_point(|k| k.as_slice() < key);
        let hi = if range_end.is_empty() {
            if self.keys.get(lo).map(|k| k.as_slice()) == Some(key) {
                lo + 1
            } else {
                lo
            }
        } else if range_end == [0] {
            self.keys.len()
        } else {
            self.keys.partition_point(|k| k.as_slice() < range_end)
        };
        lo..hi.max(lo)
    }

    pub(crate) fn key_id(&self, key: &[u8]) -> Option<usize> {
        self.keys.binary_search_by(|k| k.as_slice().cmp(key)).ok()
    }

    /// Evaluate a range over `keys` (the view) for a response with header revision `rev`.
    pub fn range_on(
        &self,
        keys: &[Option<KeyState>],
        req: &RangeRequest,
        rev: Revision,
    ) -> RangeResponse {
        // `count` is every live key of the range, whatever the limit and filters.
        let live: Vec<usize> = self
            .key_ids(&req.key, &req.range_end)
            .filter(|&id| keys[id].is_some())
            .collect();
        let count = live.len() as i64;
        if req.count_only {
            // etcd's mvcc answers a count-only range with no KVs at all, so there is nothing
            // for the limit to truncate: `more` stays false (etcd v3.4/v3.6 applier Range).
            return RangeResponse {
                header: header(rev),
                kvs: Vec::new(),
                more: false,
                count,
            };
        }
        // etcd's applier asks mvcc for every key only when an explicit sort order or a
        // min/max filter needs them all; otherwise it reads `limit + 1` keys in key order
        // (the extra one decides `more`) and sorts just those. So order NONE with a non-key
        // target and a limit sorts a key-ordered prefix, not the whole range.
        let reads_all = req.sort_order != SortOrder::None
            || req.min_mod_revision != 0
            || req.max_mod_revision != 0
            || req.min_create_revision != 0
            || req.max_create_revision != 0;
        let read_max = if !reads_all && req.limit > 0 {
            usize::try_from(req.limit)
                .unwrap_or(usize::MAX)
                .saturating_add(1)
        } else {
            usize::MAX
        };
        let mut kvs = Vec::new();
        for &id in live.iter().take(read_max) {
            let ks = keys[id].as_ref().expect("filtered to live keys");
            debug_assert!(key_in_range(&self.keys[id], &req.key, &req.range_end));
            let keep = (req.min_mod_revision == 0 || ks.mod_revision >= req.min_mod_revision)
                && (req.max_mod_revision == 0 || ks.mod_revision <= req.max_mod_revision)
                && (req.min_create_revision == 0 || ks.create_revision >= req.min_create_revision)
                && (req.max_create_revision == 0 || ks.create_revision <= req.max_create_revision);
            if keep {
                kvs.push(kv_of(&self.keys[id], ks));
            }
        }
        let order = match (req.sort_target, req.sort_order) {
            (SortTarget::Key, o) => o,
            (_, SortOrder::None) => SortOrder::Ascend,
            (_, o) => o,
        };
        let target_cmp = |a: &KeyValue, b: &KeyValue| -> Ordering {
            match req.sort_target {
                SortTarget::Key => a.key.cmp(&b.key),
                SortTarget::Version => a.version.cmp(&b.version),
                SortTarget::Create => a.create_revision.cmp(&b.create_revision),
                SortTarget::Mod => a.mod_revision.cmp(&b.mod_revision),
                SortTarget::Value => a.value.cmp(&b.value),
            }
        };
        // Ties on the target keep key order in BOTH directions: etcd sorts the key-ordered
        // mvcc result with `sort.Sort` / `sort.Reverse`, whose insertion sort (the small
        // inputs etcd sorts) never swaps equal elements. Keys are unique, so the key
        // tie-break makes the order total.
        match order {
            SortOrder::None | SortOrder::Ascend => {
                kvs.sort_by(|a, b| target_cmp(a, b).then_with(|| a.key.cmp(&b.key)))
            }
            SortOrder::Descend => {
                kvs.sort_by(|a, b| target_cmp(b, a).then_with(|| a.key.cmp(&b.key)))
            }
        }
        let mut more = false;
        if req.limit > 0 && kvs.len() > req.limit as usize {
            kvs.truncate(req.limit as usize);
            more = true;
        }
        if req.keys_only {
            for kv in &mut kvs {
                kv.value.clear();
            }
        }
        RangeResponse {
            header: header(rev),
            kvs,
            more,
            count,
        }
    }

    fn check_range_revision(&self, st: &EtcdState, req: &RangeRequest) -> Res<RangeKind> {
        if req.key.is_empty() {
            return Err(EtcdError::EmptyKey);
        }
        if req.revision > st.revision {
            return Err(EtcdError::FutureRev);
        }
        if req.revision > 0 && req.revision < st.compact_revision {
            return Err(EtcdError::Compacted);
        }
        if req.revision > 0 && req.revision < st.revision {
            Ok(RangeKind::Historical)
        } else {
            Ok(RangeKind::Current)
        }
    }

    fn put(&self, st: &mut EtcdState, req: &PutRequest, rev: Revision) -> Res<PutResponse> {
        if req.key.is_empty() {
            return Err(EtcdError::EmptyKey);
        }
        if req.ignore_value && !req.value.is_empty() {
            return Err(EtcdError::ValueProvided);
        }
        if req.ignore_lease && req.lease != 0 {
            return Err(EtcdError::LeaseProvided);
        }
        if req.lease != 0 && st.leases.binary_search(&req.lease).is_err() {
            return Err(EtcdError::LeaseNotFound);
        }
        let id = self
            .key_id(&req.key)
            .expect("every put key is in the universe");
        let old = st.keys[id].clone();
        if (req.ignore_value || req.ignore_lease) && old.is_none() {
            return Err(EtcdError::KeyNotFound);
        }
        let new = KeyState {
            value: match (&old, req.ignore_value) {
                (Some(o), true) => o.value.clone(),
                _ => Rc::from(req.value.as_slice()),
            },
            create_revision: old.as_ref().map_or(rev, |o| o.create_revision),
            mod_revision: rev,
            version: old.as_ref().map_or(1, |o| o.version + 1),
            lease: match (&old, req.ignore_lease) {
                (Some(o), true) => o.lease,
                _ => req.lease,
            },
        };
        st.keys[id] = Some(new);
        Ok(PutResponse {
            header: header(rev),
            prev_kv: if req.prev_kv {
                old.map(|o| kv_of(&req.key, &o))
            } else {
                None
            },
        })
    }

    fn delete(&self, st: &mut EtcdState, req: &DeleteRangeRequest) -> Res<DeleteRangeResponse> {
        if req.key.is_empty() {
            return Err(EtcdError::EmptyKey);
        }
        let mut deleted = 0;
        let mut prev_kvs = Vec::new();
        for id in self.key_ids(&req.key, &req.range_end) {
            if let Some(old) = st.keys[id].take() {
                deleted += 1;
                if req.prev_kv {
                    prev_kvs.push(kv_of(&self.keys[id], &old));
                }
            }
        }
        Ok(DeleteRangeResponse {
            header: ResponseHeader::default(),
            deleted,
            prev_kvs,
        })
    }

    fn compare(&self, st: &EtcdState, c: &Compare) -> bool {
        let eval = |ks: Option<&KeyState>| -> bool {
            let ord = match (&c.target, ks) {
                (CompareTarget::Value(_), None) => return false,
                (CompareTarget::Value(v), Some(k)) => k.value.as_ref().cmp(v.as_slice()),
                (CompareTarget::Version(v), k) => k.map_or(0, |k| k.version).cmp(v),
                (CompareTarget::CreateRevision(v), k) => k.map_or(0, |k| k.create_revision).cmp(v),
                (CompareTarget::ModRevision(v), k) => k.map_or(0, |k| k.mod_revision).cmp(v),
                (CompareTarget::Lease(v), k) => k.map_or(0, |k| k.lease).cmp(v),
            };
            match c.result {
                CompareResult::Equal => ord == Ordering::Equal,
                CompareResult::Greater => ord == Ordering::Greater,
                CompareResult::Less => ord == Ordering::Less,
                CompareResult::NotEqual => ord != Ordering::Equal,
            }
        };
        let live: Vec<&KeyState> = self
            .key_ids(&c.key, &c.range_end)
            .filter_map(|id| st.keys[id].as_ref())
            .collect();
        if live.is_empty() {
            eval(None)
        } else {
            live.into_iter().all(|k| eval(Some(k)))
        }
    }

    /// Execute a txn on `st` (the working state); writes use revision `rev`. Returns the
    /// response and whether anything changed.
    ///
    /// `pre` is the state before the whole (outermost) txn: etcd decides every compare of the
    /// chosen path, nested txns included, on one read view taken before anything executes
    /// (`compareToPath` in etcd's apply.go, 3.4 and 3.6), and checks the chosen path's puts
    /// (`checkPut`: lease exists, ignore_value/ignore_lease need the key) and ranges
    /// (`checkRange`: any revision but 0 must lie in [compact, current]) against that same
    /// view. A nested txn's compares therefore do NOT see the outer txn's earlier writes.
    fn txn(
        &self,
        pre: &EtcdState,
        st: &mut EtcdState,
        t: &TxnRequest,
        rev: Revision,
    ) -> Res<(TxnResponse, bool)> {
        debug_assert_eq!(
            pre.revision, st.revision,
            "the working state keeps the old revision"
        );
        let succeeded = t.compare.iter().all(|c| self.compare(pre, c));
        let ops = if succeeded { &t.success } else { &t.failure };
        let mut changed = false;
        let mut responses = Vec::with_capacity(ops.len());
        for op in ops {
            responses.push(match op {
                RequestOp::Range(r) => {
                    // Inside a txn, reads see the txn's earlier writes.
                    let view_rev = if changed { rev } else { st.revision };
                    if r.key.is_empty() {
                        return Err(EtcdError::EmptyKey);
                    }
                    if r.revision != 0 && r.revision > pre.revision {
                        return Err(EtcdError::FutureRev);
                    }
                    if r.revision != 0 && r.revision < pre.compact_revision {
                        return Err(EtcdError::Compacted);
                    }
                    ResponseOp::Range(self.range_on(&st.keys, r, view_rev))
                }
                RequestOp::Put(p) => {
                    let exists_before =
                        self.key_id(&p.key).is_some_and(|id| pre.keys[id].is_some());
                    if (p.ignore_value || p.ignore_lease) && !exists_before {
                        return Err(EtcdError::KeyNotFound);
                    }
                    changed = true;
                    ResponseOp::Put(self.put(st, p, rev)?)
                }
                RequestOp::DeleteRange(d) => {
                    let resp = self.delete(st, d)?;
                    changed |= resp.deleted > 0;
                    ResponseOp::DeleteRange(resp)
                }
                RequestOp::Txn(inner) => {
                    let (resp, c) = self.txn(pre, st, inner, rev)?;
                    changed |= c;
                    ResponseOp::Txn(resp)
                }
            });
        }
        Ok((
            TxnResponse {
                header: ResponseHeader::default(),
                succeeded,
                responses,
            },
            changed,
        ))
    }

    /// Apply a request. `grant_id` is the lease id a grant creates when the request leaves it
    /// to the server. Historical ranges return `Historical` (only their header is checkable
    /// here).
    pub fn apply(
        &self,
        st: &EtcdState,
        req: &Request,
        grant_id: Option<LeaseId>,
    ) -> Res<(EtcdState, Response, RangeKind)> {
        let mut next = st.clone();
        let rev = st.revision + 1;
        let mut kind = RangeKind::Current;
        let resp = match req {
            Request::Range(r) => {
                kind = self.check_range_revision(st, r)?;
                let resp = match kind {
                    RangeKind::Current => self.range_on(&st.keys, r, st.revision),
                    RangeKind::Historical => RangeResponse {
                        header: header(st.revision),
                        ..Default::default()
                    },
                };
                Response::Range(resp)
            }
            Request::Put(p) => {
                let resp = self.put(&mut next, p, rev)?;
                next.revision = rev;
                Response::Put(resp)
            }
            Request::DeleteRange(d) => {
                let mut resp = self.delete(&mut next, d)?;
                if resp.deleted > 0 {
                    next.revision = rev;
                }
                resp.header = header(next.revision);
                Response::DeleteRange(resp)
            }
            Request::Txn(t) => {
                let (mut resp, changed) = self.txn(st, &mut next, t, rev)?;
                if changed {
                    next.revision = rev;
                }
                resp.header = header(next.revision);
                Response::Txn(resp)
            }
            Request::Compact(c) => {
                if c.revision <= st.compact_revision {
                    return Err(EtcdError::Compacted);
                }
                if c.revision > st.revision {
                    return Err(EtcdError::FutureRev);
                }
                next.compact_revision = c.revision;
                Response::Compact(faultline_api::CompactionResponse {
                    header: header(st.revision),
                })
            }
            Request::LeaseGrant(g) => {
                let id = if g.id != 0 {
                    g.id
                } else {
                    grant_id.ok_or(EtcdError::LeaseNotFound)?
                };
                match next.leases.binary_search(&id) {
                    Ok(_) => return Err(EtcdError::LeaseExist),
                    Err(pos) => next.leases.insert(pos, id),
                }
                Response::LeaseGrant(faultline_api::LeaseGrantResponse {
                    header: header(st.revision),
                    id,
                    ttl_seconds: 0,
                })
            }
            Request::LeaseRevoke(r) => {
                let pos = next
                    .leases
                    .binary_search(&r.id)
                    .map_err(|_| EtcdError::LeaseNotFound)?;
                next.leases.remove(pos);
                let mut changed = false;
                for k in next.keys.iter_mut() {
                    if k.as_ref().is_some_and(|k| k.lease == r.id) {
                        *k = None;
                        changed = true;
                    }
                }
                if changed {
                    next.revision = rev;
                }
                Response::LeaseRevoke(faultline_api::LeaseRevokeResponse {
                    header: header(next.revision),
                })
            }
            // Not part of the KV model (excluded before checking).
            _ => return Err(EtcdError::InvalidSortOption),
        };
        Ok((next, resp, kind))
    }
}

/// Whether a range was served from the current state or a historical revision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeKind {
    Current,
    Historical,
}

impl Model for EtcdModel {
    type State = EtcdState;
    type Input = EtcdInput;
    type Output = Response;

    fn name(&self) -> String {
        "etcd".to_string()
    }

    fn init(&self) -> Vec<EtcdState> {
        vec![EtcdState {
            revision: 1,
            compact_revision: -1,
            keys: vec![None; self.keys.len()],
            leases: vec![],
            unknown_lease_ops_applied: vec![],
        }]
    }

    fn step(&self, st: &EtcdState, input: &EtcdInput, output: Option<&Response>) -> Vec<EtcdState> {
        // Revision checks first: they reject almost every wrong candidate in O(1).
        if let Some(resp) = output {
            let h = resp.header().revision;
            let ok = match input.mutating {
                Some(true) => h == st.revision + 1,
                Some(false) => h == st.revision,
                None => h == st.revision || h == st.revision + 1,
            };
            if !ok {
                return vec![];
            }
        } else if let Some(pin) = input.pin {
            if pin != st.revision + 1 {
                return vec![];
            }
        }
        match output {
            Some(actual) => {
                let grant = match actual {
                    Response::LeaseGrant(g) => Some(g.id),
                    _ => None,
                };
                let Ok((next, expected, kind)) = self.apply(st, &input.request, grant) else {
                    return vec![];
                };
                let matches = match kind {
                    RangeKind::Historical => actual.header().revision == expected.header().revision,
                    RangeKind::Current => normalize(&expected) == *actual,
                };
                if matches
                    && (next == *st
                        || (self.feasible(st, &next) && self.leases_feasible(st, &next)))
                {
                    vec![next]
                } else {
                    vec![]
                }
            }
            None => {
                let grants: Vec<Option<LeaseId>> = match &input.request {
                    Request::LeaseGrant(g) if g.id == 0 => self
                        .lease_universe
                        .iter()
                        .filter(|l| st.leases.binary_search(l).is_err())
                        .map(|l| Some(*l))
                        .collect(),
                    _ => vec![None],
                };
                let mut out = Vec::new();
                for grant in grants {
                    let Ok((mut next, _, _)) = self.apply(st, &input.request, grant) else {
                        continue;
                    };
                    if next == *st {
                        continue; // a no-op: the same as never happening
                    }
                    if let Some(tag) = input.lease_op_tag {
                        let applied = &mut next.unknown_lease_ops_applied;
                        if let Err(pos) = applied.binary_search(&tag) {
                            applied.insert(pos, tag);
                        }
                    }
                    if next.revision != st.revision {
                        let r = next.revision;
                        let allowed = match input.pin {
                            Some(pin) => pin == r,
                            None => {
                                r <= self.max_revision
                                    && !self.claimed.get(r as usize).copied().unwrap_or(false)
                                    && !self.modifies_unmodified(st, &next, r)
                            }
                        };
                        if !allowed {
                            continue;
                        }
                    } else if input.pin.is_some() {
                        continue;
                    }
                    if !self.feasible(st, &next) || !self.leases_feasible(st, &next) {
                        continue;
                    }
                    out.push(next);
                }
                out
            }
        }
    }

    fn order_hint(&self, input: &EtcdInput, output: Option<&Response>) -> i64 {
        match (output, input.pin) {
            (Some(resp), _) => {
                let h = resp.header().revision;
                match input.mutating {
                    Some(false) => 2 * h,
                    _ => 2 * h - 1,
                }
            }
            (None, Some(pin)) => 2 * pin - 1,
            (None, None) => i64::MAX - (input.invoke_ns >> 1) as i64,
        }
    }

    fn quick_reject(&self, st: &EtcdState, input: &EtcdInput, output: Option<&Response>) -> bool {
        match output {
            Some(resp) => {
                let h = resp.header().revision;
                match input.mutating {
                    Some(true) => h != st.revision + 1,
                    Some(false) => h != st.revision,
                    None => h != st.revision && h != st.revision + 1,
                }
            }
            None => match (input.pin, &input.request) {
                (Some(pin), _) => pin != st.revision + 1,
                // `apply` fails on a grant of an existing lease and a revoke of a missing one.
                (None, Request::LeaseGrant(g)) if g.id != 0 => {
                    st.leases.binary_search(&g.id).is_ok()
                }
                (None, Request::LeaseRevoke(r)) => st.leases.binary_search(&r.id).is_err(),
                (None, Request::LeaseGrant(_)) => false,
                // Only lease operations can change the state without a new revision; any
                // other unknown write must produce the next revision, which must be free.
                (None, _) => {
                    st.revision + 1 > self.max_revision
                        || self
                            .claimed
                            .get((st.revision + 1) as usize)
                            .copied()
                            .unwrap_or(false)
                }
            },
        }
    }

    fn progress(&self, st: &EtcdState) -> i64 {
        st.revision
    }

    fn latest_progress(&self, input: &EtcdInput, output: Option<&Response>) -> Option<i64> {
        // Mirrors the revision check at the top of `step`.
        let h = output?.header().revision;
        Some(match input.mutating {
            Some(true) => h - 1,
            Some(false) | None => h,
        })
    }

    fn interchangeable_class(&self, input: &EtcdInput, output: Option<&Response>) -> Option<u64> {
        output.is_none().then_some(input.class).flatten()
    }

    fn may_be_lazy(&self, input: &EtcdInput, output: Option<&Response>) -> bool {
        output.is_none()
            && input.pin.is_none()
            && matches!(&input.request, Request::LeaseGrant(g) if g.id != 0)
            || output.is_none() && matches!(&input.request, Request::LeaseRevoke(_))
    }

    fn lazy_resource(
        &self,
        input: &EtcdInput,
        output: Option<&Response>,
        before: &EtcdState,
        after: &EtcdState,
    ) -> Option<u64> {
        // Only the lease set changed (no key, no revision): nothing but operations naming
        // this lease can tell when it happened.
        if output.is_some() || before.revision != after.revision || before.keys != after.keys {
            return None;
        }
        match &input.request {
            Request::LeaseGrant(g) if g.id != 0 => Some(g.id as u64),
            Request::LeaseRevoke(r) => Some(r.id as u64),
            _ => None,
        }
    }

    fn resources(&self, input: &EtcdInput) -> Vec<u64> {
        // Lease ids an operation reads: puts naming a lease (or keeping one, ignore_lease:
        // any lease), grants (which need the id absent; a grant without id may pick any)
        // and revokes.
        fn txn_leases(ops: &[RequestOp], out: &mut Vec<i64>, any: &mut bool) {
            for op in ops {
                match op {
                    RequestOp::Put(p) => {
                        *any |= p.ignore_lease;
                        if p.lease != 0 {
                            out.push(p.lease);
                        }
                    }
                    RequestOp::Txn(t) => {
                        txn_leases(&t.success, out, any);
                        txn_leases(&t.failure, out, any);
                    }
                    _ => {}
                }
            }
        }
        let mut out = Vec::new();
        let mut any = false;
        match &input.request {
            Request::Put(p) => txn_leases(&[RequestOp::Put(p.clone())], &mut out, &mut any),
            Request::Txn(t) => {
                txn_leases(&t.success, &mut out, &mut any);
                txn_leases(&t.failure, &mut out, &mut any);
            }
            Request::LeaseGrant(g) if g.id != 0 => out.push(g.id),
            Request::LeaseGrant(_) => any = true,
            Request::LeaseRevoke(r) => out.push(r.id),
            _ => {}
        }
        if any {
            out.extend(self.lease_universe.iter().copied());
        }
        let mut out: Vec<u64> = out.into_iter().map(|l| l as u64).collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    fn describe_input(&self, input: &EtcdInput) -> String {
        crate::etcd::describe_request(&input.request)
    }

    fn describe_output(&self, output: Option<&Response>) -> String {
        match output {
            Some(r) => crate::etcd::describe_response(r),
            None => "unknown outcome".to_string(),
        }
    }

    fn describe_state(&self, st: &EtcdState) -> String {
        let keys: Vec<String> = st
            .keys
            .iter()
            .enumerate()
            .filter_map(|(i, k)| {
                k.as_ref()
                    .map(|k| crate::etcd::describe_kv(&kv_of(&self.keys[i], k)))
            })
            .collect();
        format!(
            "revision {}, compact revision {}, keys [{}], leases {:?}",
            st.revision,
            st.compact_revision,
            keys.join(", "),
            st.leases
        )
    }
}
