//! etcd's semantics of one request on a state (etcd-semantics.md §1-§5, §7, §8): ranges with
//! their sort, limit and filters, puts, deletes, txns (compares on one read view), compaction,
//! lease grants and revokes.

use std::cmp::Ordering;
use std::rc::Rc;

use faultline_api::{
    key_in_range, CompactionRequest, CompactionResponse, Compare, CompareResult, CompareTarget,
    DeleteRangeRequest, DeleteRangeResponse, EtcdError, KeyValue, LeaseGrantRequest,
    LeaseGrantResponse, LeaseId, LeaseRevokeRequest, LeaseRevokeResponse, PutRequest, PutResponse,
    RangeRequest, RangeResponse, Request, RequestOp, Response, ResponseHeader, ResponseOp,
    Revision, SortOrder, SortTarget, TxnRequest, TxnResponse,
};

use super::{header, kv_of, EtcdModel, EtcdState, KeyState, KeyTable, RangeKind};

type Res<T> = Result<T, EtcdError>;

impl EtcdModel {
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
    pub fn range_on(&self, keys: &KeyTable, req: &RangeRequest, rev: Revision) -> RangeResponse {
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
        let mut kvs = self.read_range(keys, req, &live);
        sort_range(&mut kvs, req);
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

    /// The KVs of the live keys `live` a range reads, after its min/max filters, in key
    /// order. etcd's applier asks mvcc for every key only when an explicit sort order or a
    /// min/max filter needs them all; otherwise it reads `limit + 1` keys in key order (the
    /// extra one decides `more`) and sorts just those. So order NONE with a non-key target and
    /// a limit sorts a key-ordered prefix, not the whole range.
    fn read_range(&self, keys: &KeyTable, req: &RangeRequest, live: &[usize]) -> Vec<KeyValue> {
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
        kvs
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
        *st.keys.slot_mut(id) = Some(new);
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
            if st.keys[id].is_none() {
                continue;
            }
            if let Some(old) = st.keys.slot_mut(id).take() {
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
            Request::Compact(c) => Response::Compact(self.compact(st, &mut next, c)?),
            Request::LeaseGrant(g) => Response::LeaseGrant(self.grant(st, &mut next, g, grant_id)?),
            Request::LeaseRevoke(r) => Response::LeaseRevoke(self.revoke(&mut next, r, rev)?),
            // Not part of the KV model (excluded before checking).
            _ => return Err(EtcdError::InvalidSortOption),
        };
        Ok((next, resp, kind))
    }

    /// A compaction (no new revision).
    fn compact(
        &self,
        st: &EtcdState,
        next: &mut EtcdState,
        c: &CompactionRequest,
    ) -> Res<CompactionResponse> {
        if c.revision <= st.compact_revision {
            return Err(EtcdError::Compacted);
        }
        if c.revision > st.revision {
            return Err(EtcdError::FutureRev);
        }
        next.compact_revision = c.revision;
        Ok(CompactionResponse {
            header: header(st.revision),
        })
    }

    /// A lease grant (no new revision); `grant_id` is the id when the server picks it.
    fn grant(
        &self,
        st: &EtcdState,
        next: &mut EtcdState,
        g: &LeaseGrantRequest,
        grant_id: Option<LeaseId>,
    ) -> Res<LeaseGrantResponse> {
        let id = if g.id != 0 {
            g.id
        } else {
            grant_id.ok_or(EtcdError::LeaseNotFound)?
        };
        match next.leases.binary_search(&id) {
            Ok(_) => return Err(EtcdError::LeaseExist),
            Err(pos) => Rc::make_mut(&mut next.leases).insert(pos, id),
        }
        Ok(LeaseGrantResponse {
            header: header(st.revision),
            id,
            ttl_seconds: 0,
        })
    }

    /// A lease revoke: the lease and its keys go; a new revision when keys went.
    fn revoke(
        &self,
        next: &mut EtcdState,
        r: &LeaseRevokeRequest,
        rev: Revision,
    ) -> Res<LeaseRevokeResponse> {
        let pos = next
            .leases
            .binary_search(&r.id)
            .map_err(|_| EtcdError::LeaseNotFound)?;
        Rc::make_mut(&mut next.leases).remove(pos);
        if next.keys.remove_where(|k| k.lease == r.id) {
            next.revision = rev;
        }
        Ok(LeaseRevokeResponse {
            header: header(next.revision),
        })
    }
}

/// Sort a range's KVs by its target and order. Ties on the target keep key order in BOTH
/// directions: etcd sorts the key-ordered mvcc result with `sort.Sort` / `sort.Reverse`, whose
/// insertion sort (the small inputs etcd sorts) never swaps equal elements. Keys are unique,
/// so the key tie-break makes the order total.
fn sort_range(kvs: &mut [KeyValue], req: &RangeRequest) {
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
    match order {
        SortOrder::None | SortOrder::Ascend => {
            kvs.sort_by(|a, b| target_cmp(a, b).then_with(|| a.key.cmp(&b.key)))
        }
        SortOrder::Descend => kvs.sort_by(|a, b| target_cmp(b, a).then_with(|| a.key.cmp(&b.key))),
    }
}
