//! Property tests: the store against a scan-everything reference model (§1-§5, §7, §8),
//! snapshot round trips, and watch replay == live delivery (§6).

use std::collections::BTreeMap;

use faultline_api::*;
use faultline_mvcc::*;
use proptest::prelude::*;

const KEYS: &[&[u8]] = &[b"a", b"b", b"c", b"d", b"e"];

type Write = (i64, Vec<u8>, Option<(Vec<u8>, i64)>);

/// Every write ever made, answered by scanning: no index, no compaction.
#[derive(Clone, Debug, Default)]
struct Model {
    rev: i64,
    compact: i64,
    /// (main revision, key, Some((value, lease)) | None = delete), in order.
    writes: Vec<Write>,
    leases: BTreeMap<i64, i64>,
}

impl Model {
    fn new() -> Model {
        Model {
            rev: 1,
            compact: -1,
            ..Model::default()
        }
    }

    fn kv_at(&self, key: &[u8], rev: i64) -> Option<KeyValue> {
        let mut live: Option<KeyValue> = None;
        for (main, k, w) in &self.writes {
            if *main > rev || k != key {
                continue;
            }
            live = w.as_ref().map(|(value, lease)| KeyValue {
                key: key.to_vec(),
                create_revision: live.as_ref().map_or(*main, |kv| kv.create_revision),
                mod_revision: *main,
                version: live.as_ref().map_or(1, |kv| kv.version + 1),
                value: value.clone(),
                lease: *lease,
            });
        }
        live
    }

    fn all_keys(&self) -> Vec<Vec<u8>> {
        let mut keys: Vec<Vec<u8>> = self.writes.iter().map(|(_, k, _)| k.clone()).collect();
        keys.sort();
        keys.dedup();
        keys
    }

    fn live_in(&self, key: &[u8], end: &[u8], rev: i64) -> Vec<KeyValue> {
        self.all_keys()
            .into_iter()
            .filter(|k| key_in_range(k, key, end))
            .filter_map(|k| self.kv_at(&k, rev))
            .collect()
    }

    fn range(&self, r: &RangeRequest, cur: i64) -> Result<RangeResponse, EtcdError> {
        if r.revision > cur {
            return Err(EtcdError::FutureRev);
        }
        let rev = if r.revision <= 0 { cur } else { r.revision };
        if rev < self.compact {
            return Err(EtcdError::Compacted);
        }
        let mut kvs = self.live_in(&r.key, &r.range_end, rev);
        let count = kvs.len() as i64;
        if r.count_only {
            kvs.clear();
        }
        if r.keys_only {
            kvs.iter_mut().for_each(|kv| kv.value.clear());
        }
        let mut more = false;
        if r.limit > 0 && kvs.len() as i64 > r.limit {
            kvs.truncate(r.limit as usize);
            more = true;
        }
        Ok(RangeResponse {
            header: ResponseHeader {
                revision: cur,
                ..Default::default()
            },
            kvs,
            more,
            count,
        })
    }

    fn compare(&self, c: &Compare) -> bool {
        let kvs = self.live_in(&c.key, &c.range_end, self.rev);
        if kvs.is_empty() {
            return match &c.target {
                CompareTarget::Value(_) => false,
                _ => cmp_one(c, &KeyValue::default()),
            };
        }
        kvs.iter().all(|kv| cmp_one(c, kv))
    }
}

fn cmp_one(c: &Compare, kv: &KeyValue) -> bool {
    let o = match &c.target {
        CompareTarget::Version(v) => kv.version.cmp(v),
        CompareTarget::ModRevision(v) => kv.mod_revision.cmp(v),
        CompareTarget::CreateRevision(v) => kv.create_revision.cmp(v),
        CompareTarget::Lease(v) => kv.lease.cmp(v),
        CompareTarget::Value(v) => kv.value.cmp(v),
    };
    match c.result {
        CompareResult::Equal => o.is_eq(),
        CompareResult::NotEqual => o.is_ne(),
        CompareResult::Greater => o.is_gt(),
        CompareResult::Less => o.is_lt(),
    }
}

fn hdr(revision: i64) -> ResponseHeader {
    ResponseHeader {
        revision,
        ..Default::default()
    }
}

/// The model's answer to a flat (non-nested) request; state updated on success.
fn model_apply(m: &mut Model, req: &Request) -> Result<Response, EtcdError> {
    match req {
        Request::Put(p) => model_put(m, p).map(Response::Put),
        Request::DeleteRange(d) => Ok(Response::DeleteRange(model_delete(m, d))),
        Request::Txn(t) => model_txn(m, t).map(Response::Txn),
        Request::Compact(c) => model_compact(m, c).map(Response::Compact),
        Request::LeaseGrant(g) => model_lease_grant(m, g).map(Response::LeaseGrant),
        Request::LeaseRevoke(r) => model_lease_revoke(m, r).map(Response::LeaseRevoke),
        _ => unreachable!(),
    }
}

fn model_put(m: &mut Model, p: &PutRequest) -> Result<PutResponse, EtcdError> {
    if p.lease != 0 && !m.leases.contains_key(&p.lease) {
        return Err(EtcdError::LeaseNotFound);
    }
    let prev = m.kv_at(&p.key, m.rev);
    m.rev += 1;
    m.writes
        .push((m.rev, p.key.clone(), Some((p.value.clone(), p.lease))));
    Ok(PutResponse {
        header: hdr(m.rev),
        prev_kv: if p.prev_kv { prev } else { None },
    })
}

fn model_delete(m: &mut Model, d: &DeleteRangeRequest) -> DeleteRangeResponse {
    let prevs = m.live_in(&d.key, &d.range_end, m.rev);
    if !prevs.is_empty() {
        m.rev += 1;
        for kv in &prevs {
            m.writes.push((m.rev, kv.key.clone(), None));
        }
    }
    DeleteRangeResponse {
        header: hdr(m.rev),
        deleted: prevs.len() as i64,
        prev_kvs: if d.prev_kv { prevs } else { Vec::new() },
    }
}

/// Duplicate keys (flat): two puts on a key, or a put inside a delete range.
fn txn_duplicate_keys(t: &TxnRequest) -> Result<(), EtcdError> {
    for ops in [&t.success, &t.failure] {
        let puts: Vec<&Vec<u8>> = ops
            .iter()
            .filter_map(|o| match o {
                RequestOp::Put(p) => Some(&p.key),
                _ => None,
            })
            .collect();
        for (i, k) in puts.iter().enumerate() {
            let twice = puts[i + 1..].contains(k);
            let deleted = ops.iter().any(|o| match o {
                // etcd's interval tree reads a "\0" range end as an empty interval.
                RequestOp::DeleteRange(d) => {
                    d.range_end.as_slice() != [0] && key_in_range(k, &d.key, &d.range_end)
                }
                _ => false,
            });
            if twice || deleted {
                return Err(EtcdError::DuplicateKey);
            }
        }
    }
    Ok(())
}

/// The chosen branch's checks before execution: leases of puts, then range revisions.
fn txn_branch_checks(m: &Model, ops: &[RequestOp]) -> Result<(), EtcdError> {
    for op in ops {
        if let RequestOp::Put(p) = op {
            if p.lease != 0 && !m.leases.contains_key(&p.lease) {
                return Err(EtcdError::LeaseNotFound);
            }
        }
    }
    for op in ops {
        if let RequestOp::Range(r) = op {
            if r.revision > m.rev {
                return Err(EtcdError::FutureRev);
            }
            // etcd's checkRange: only revision 0 skips the compaction check.
            if r.revision != 0 && r.revision < m.compact {
                return Err(EtcdError::Compacted);
            }
        }
    }
    Ok(())
}

fn model_txn(m: &mut Model, t: &TxnRequest) -> Result<TxnResponse, EtcdError> {
    txn_duplicate_keys(t)?;
    let ok = t.compare.iter().all(|c| m.compare(c));
    let ops = if ok { &t.success } else { &t.failure };
    txn_branch_checks(m, ops)?;
    let begin = m.rev;
    let mut changed = false;
    let mut responses = Vec::new();
    for op in ops {
        let view = if changed { begin + 1 } else { begin };
        responses.push(match op {
            RequestOp::Range(r) => ResponseOp::Range(m.range(r, view).unwrap()),
            RequestOp::Put(p) => {
                let prev = m.kv_at(&p.key, view);
                m.writes
                    .push((begin + 1, p.key.clone(), Some((p.value.clone(), p.lease))));
                changed = true;
                ResponseOp::Put(PutResponse {
                    header: hdr(begin + 1),
                    prev_kv: if p.prev_kv { prev } else { None },
                })
            }
            RequestOp::DeleteRange(d) => {
                let prevs = m.live_in(&d.key, &d.range_end, view);
                for kv in &prevs {
                    m.writes.push((begin + 1, kv.key.clone(), None));
                }
                changed |= !prevs.is_empty();
                ResponseOp::DeleteRange(DeleteRangeResponse {
                    header: hdr(if changed { begin + 1 } else { begin }),
                    deleted: prevs.len() as i64,
                    prev_kvs: if d.prev_kv { prevs } else { Vec::new() },
                })
            }
            RequestOp::Txn(_) => unreachable!("flat txns only"),
        });
    }
    if changed {
        m.rev += 1;
    }
    Ok(TxnResponse {
        header: hdr(m.rev),
        succeeded: ok,
        responses,
    })
}

fn model_compact(m: &mut Model, c: &CompactionRequest) -> Result<CompactionResponse, EtcdError> {
    if c.revision <= m.compact {
        return Err(EtcdError::Compacted);
    }
    if c.revision > m.rev {
        return Err(EtcdError::FutureRev);
    }
    m.compact = c.revision;
    Ok(CompactionResponse { header: hdr(m.rev) })
}

fn model_lease_grant(
    m: &mut Model,
    g: &LeaseGrantRequest,
) -> Result<LeaseGrantResponse, EtcdError> {
    if m.leases.contains_key(&g.id) {
        return Err(EtcdError::LeaseExist);
    }
    let ttl = g.ttl_seconds.max(MIN_LEASE_TTL_SECONDS_DEFAULT);
    m.leases.insert(g.id, ttl);
    Ok(LeaseGrantResponse {
        header: hdr(m.rev),
        id: g.id,
        ttl_seconds: ttl,
    })
}

fn model_lease_revoke(
    m: &mut Model,
    r: &LeaseRevokeRequest,
) -> Result<LeaseRevokeResponse, EtcdError> {
    if m.leases.remove(&r.id).is_none() {
        return Err(EtcdError::LeaseNotFound);
    }
    let doomed: Vec<KeyValue> = m
        .live_in(b"\0", b"\0", m.rev)
        .into_iter()
        .filter(|kv| kv.lease == r.id)
        .collect();
    if !doomed.is_empty() {
        m.rev += 1;
        for kv in doomed {
            m.writes.push((m.rev, kv.key, None));
        }
    }
    Ok(LeaseRevokeResponse { header: hdr(m.rev) })
}

fn key() -> impl Strategy<Value = Vec<u8>> {
    prop::sample::select(KEYS).prop_map(|k| k.to_vec())
}

fn range_end() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => Just(Vec::new()),
        1 => Just(vec![0]),
        2 => prop::sample::select(KEYS).prop_map(|k| k.to_vec()),
        1 => Just(b"c\xff".to_vec()),
    ]
}

fn put_req() -> impl Strategy<Value = PutRequest> {
    (
        key(),
        0u8..4,
        prop_oneof![3 => Just(0i64), 1 => 1i64..4],
        any::<bool>(),
    )
        .prop_map(|(key, v, lease, prev_kv)| PutRequest {
            key,
            value: vec![b'0' + v],
            lease,
            prev_kv,
            ..PutRequest::default()
        })
}

fn del_req() -> impl Strategy<Value = DeleteRangeRequest> {
    (key(), range_end(), any::<bool>()).prop_map(|(key, range_end, prev_kv)| DeleteRangeRequest {
        key,
        range_end,
        prev_kv,
    })
}

fn range_req() -> impl Strategy<Value = RangeRequest> {
    (key(), range_end(), -1i64..25, 0i64..3, 0u8..6).prop_map(
        |(key, range_end, revision, limit, flags)| RangeRequest {
            key,
            range_end,
            revision,
            limit,
            keys_only: flags == 1,
            count_only: flags == 2,
            ..RangeRequest::default()
        },
    )
}

fn compare() -> impl Strategy<Value = Compare> {
    let target = prop_oneof![
        (0i64..4).prop_map(CompareTarget::Version),
        (0i64..20).prop_map(CompareTarget::ModRevision),
        (0i64..20).prop_map(CompareTarget::CreateRevision),
        (0i64..3).prop_map(CompareTarget::Lease),
        (0u8..4).prop_map(|v| CompareTarget::Value(vec![b'0' + v])),
    ];
    let result = prop::sample::select(
        &[
            CompareResult::Equal,
            CompareResult::NotEqual,
            CompareResult::Greater,
            CompareResult::Less,
        ][..],
    );
    let end = prop_oneof![3 => Just(Vec::new()), 1 => range_end()];
    (key(), end, target, result).prop_map(|(key, range_end, target, result)| Compare {
        result,
        target,
        key,
        range_end,
    })
}

fn op() -> impl Strategy<Value = RequestOp> {
    prop_oneof![
        3 => put_req().prop_map(RequestOp::Put),
        1 => del_req().prop_map(RequestOp::DeleteRange),
        2 => range_req().prop_map(RequestOp::Range),
    ]
}

#[derive(Clone, Debug)]
enum Step {
    Apply(Request),
    Read(RangeRequest),
    Watch(WatchCreateRequest),
}

fn step() -> impl Strategy<Value = Step> {
    let txn = (
        prop::collection::vec(compare(), 0..3),
        prop::collection::vec(op(), 0..4),
        prop::collection::vec(op(), 0..3),
    )
        .prop_map(|(compare, success, failure)| TxnRequest {
            compare,
            success,
            failure,
        });
    let watch = (key(), range_end(), 0i64..25, any::<bool>()).prop_map(|(key, range_end, s, p)| {
        WatchCreateRequest {
            key,
            range_end,
            start_revision: s,
            prev_kv: p,
            ..WatchCreateRequest::default()
        }
    });
    prop_oneof![
        6 => put_req().prop_map(|p| Step::Apply(Request::Put(p))),
        2 => del_req().prop_map(|d| Step::Apply(Request::DeleteRange(d))),
        4 => txn.prop_map(|t| Step::Apply(Request::Txn(t))),
        1 => (0i64..25).prop_map(|r| Step::Apply(Request::Compact(CompactionRequest { revision: r, physical: false }))),
        1 => (1i64..4, 0i64..5).prop_map(|(id, ttl)| Step::Apply(Request::LeaseGrant(LeaseGrantRequest { ttl_seconds: ttl, id }))),
        1 => (1i64..4).prop_map(|id| Step::Apply(Request::LeaseRevoke(LeaseRevokeRequest { id }))),
        3 => range_req().prop_map(Step::Read),
        1 => watch.prop_map(Step::Watch),
    ]
}

/// A watcher's view: every (revision, key, kind, value) received, in order.
type Seen = Vec<(i64, Vec<u8>, EventType, Vec<u8>)>;

fn record(seen: &mut BTreeMap<(u64, i64), (Seen, bool)>, stream: u64, r: &WatchResponse) {
    if r.canceled {
        if let Some(entry) = seen.get_mut(&(stream, r.watch_id)) {
            entry.1 = true;
        }
        return;
    }
    if r.created {
        seen.insert((stream, r.watch_id), (Vec::new(), false));
        return;
    }
    let entry = seen.get_mut(&(stream, r.watch_id)).expect("created first");
    // atomic: a response never starts with the revision the previous one ended with
    if let (Some(last), Some(first)) = (entry.0.last(), r.events.first()) {
        assert!(first.kv.mod_revision > last.0, "ordered and atomic");
    }
    for e in &r.events {
        entry.0.push((
            e.kv.mod_revision,
            e.kv.key.clone(),
            e.kind,
            e.kv.value.clone(),
        ));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    /// Store == model on every response; invariants hold; snapshot round-trips; watchers get
    /// exactly the events of their range from their start revision, whether replayed or live.
    #[test]
    fn store_matches_model(steps in prop::collection::vec(step(), 1..60)) {
        let mut store = KvStore::new();
        let mut model = Model::new();
        let mut hub = WatchHub::new(WatchHubOptions { max_revisions_per_response: 3, ..WatchHubOptions::etcd_defaults() }, &store);
        let mut all_events: Vec<(i64, Event)> = Vec::new();
        let mut watches: BTreeMap<(u64, i64), (WatchCreateRequest, i64)> = BTreeMap::new();
        let mut seen: BTreeMap<(u64, i64), (Seen, bool)> = BTreeMap::new();
        for (i, step) in steps.iter().enumerate() {
            match step {
                Step::Apply(req) => {
                    let got = store.apply(req);
                    let want = model_apply(&mut model, req);
                    prop_assert_eq!(&got, &want, "step {}: {:?}", i, req);
                    store.check_invariants();
                    let events = store.take_events();
                    for (rev, evs) in &events {
                        for e in evs {
                            all_events.push((*rev, e.clone()));
                        }
                    }
                    for out in hub.on_events(&store, &events) {
                        record(&mut seen, out.stream, &out.response);
                    }
                }
                Step::Read(r) => {
                    prop_assert_eq!(store.range(r), model.range(r, model.rev), "step {}: {:?}", i, r);
                }
                Step::Watch(w) => {
                    let stream = i as u64 % 3;
                    let out = hub.create(&store, stream, w);
                    let id = out[0].watch_id;
                    let start = if w.start_revision == 0 { store.current_revision() + 1 } else { w.start_revision };
                    for r in &out {
                        record(&mut seen, stream, r);
                    }
                    if !out[0].canceled {
                        watches.insert((stream, id), (w.clone(), start));
                    }
                    if !out[0].canceled && w.start_revision > 0 && w.start_revision < store.compact_revision() {
                        prop_assert!(out.last().unwrap().canceled);
                        prop_assert_eq!(out.last().unwrap().compact_revision, store.compact_revision());
                    }
                }
            }
        }
        prop_assert_eq!(store.current_revision(), model.rev);
        prop_assert_eq!(store.compact_revision(), model.compact);
        // every key's state at every readable revision
        for rev in model.compact.max(1)..=model.rev {
            for k in KEYS {
                let got = store.range(&RangeRequest { key: k.to_vec(), revision: rev, ..Default::default() }).unwrap();
                prop_assert_eq!(got.kvs.first().cloned(), model.kv_at(k, rev));
            }
        }
        // snapshot round trip and hash agreement
        let restored = KvStore::restore(store.snapshot());
        prop_assert_eq!(&restored, &store);
        prop_assert_eq!(restored.hash_kv(0), store.hash_kv(0));
        // watches: exactly the live events in range from start (unless canceled by compaction)
        for (id, (w, start)) in &watches {
            let (got, canceled) = &seen[id];
            if *canceled {
                prop_assert!(*start < store.compact_revision());
                continue;
            }
            let want: Seen = all_events
                .iter()
                .filter(|(rev, e)| *rev >= *start && key_in_range(&e.kv.key, &w.key, &w.range_end))
                .map(|(rev, e)| (*rev, e.kv.key.clone(), e.kind, e.kv.value.clone()))
                .collect();
            prop_assert_eq!(got, &want, "watch {:?} from {}", w, start);
        }
        // replay now == live history from the compact revision (or 1) on
        let from = store.compact_revision().max(1);
        let replay = store.history(from, store.current_revision(), false).unwrap();
        let replayed: Vec<(i64, Vec<u8>, EventType)> = replay
            .iter()
            .flat_map(|(rev, evs)| evs.iter().map(move |e| (*rev, e.kv.key.clone(), e.kind)))
            .collect();
        let live: Vec<(i64, Vec<u8>, EventType)> = all_events
            .iter()
            .filter(|(rev, _)| *rev >= from)
            .map(|(rev, e)| (*rev, e.kv.key.clone(), e.kind))
            .collect();
        prop_assert_eq!(replayed, live);
    }

    /// Without compaction, replayed events equal the live ones including prev_kv.
    #[test]
    fn replay_equals_live_with_prev_kv(ops in prop::collection::vec(prop_oneof![
        3 => put_req().prop_map(|mut p| { p.lease = 0; Request::Put(p) }),
        1 => del_req().prop_map(Request::DeleteRange),
    ], 1..40)) {
        let mut store = KvStore::new();
        let mut live = Vec::new();
        for req in &ops {
            store.apply(req).unwrap();
            live.extend(store.take_events());
        }
        prop_assert_eq!(store.history(1, store.current_revision(), true).unwrap(), live);
    }
}
