//! One test per rule of etcd-semantics.md (section in each test's comment).

use faultline_api::*;
use faultline_mvcc::*;

fn put(key: &str, value: &str) -> PutRequest {
    PutRequest {
        key: key.into(),
        value: value.into(),
        ..PutRequest::default()
    }
}

fn del(key: &str, range_end: &str) -> DeleteRangeRequest {
    DeleteRangeRequest {
        key: key.into(),
        range_end: range_end.into(),
        prev_kv: false,
    }
}

fn get(key: &str) -> RangeRequest {
    RangeRequest {
        key: key.into(),
        ..RangeRequest::default()
    }
}

fn range(key: &str, end: &str) -> RangeRequest {
    RangeRequest {
        key: key.into(),
        range_end: end.into(),
        ..RangeRequest::default()
    }
}

fn cmp(key: &str, result: CompareResult, target: CompareTarget) -> Compare {
    Compare {
        result,
        target,
        key: key.into(),
        range_end: Vec::new(),
    }
}

fn apply(store: &mut KvStore, req: Request) -> Result<Response, EtcdError> {
    let out = store.apply(&req);
    store.check_invariants();
    out
}

fn do_put(store: &mut KvStore, key: &str, value: &str) -> PutResponse {
    match apply(store, Request::Put(put(key, value))).unwrap() {
        Response::Put(r) => r,
        other => panic!("{other:?}"),
    }
}

fn do_del(store: &mut KvStore, key: &str, end: &str) -> DeleteRangeResponse {
    match apply(store, Request::DeleteRange(del(key, end))).unwrap() {
        Response::DeleteRange(r) => r,
        other => panic!("{other:?}"),
    }
}

fn do_txn(store: &mut KvStore, txn: TxnRequest) -> Result<TxnResponse, EtcdError> {
    apply(store, Request::Txn(txn)).map(|r| match r {
        Response::Txn(t) => t,
        other => panic!("{other:?}"),
    })
}

fn keys(resp: &RangeResponse) -> Vec<String> {
    resp.kvs
        .iter()
        .map(|kv| String::from_utf8(kv.key.clone()).unwrap())
        .collect()
}

fn grant(store: &mut KvStore, id: LeaseId, ttl: i64) -> Result<Response, EtcdError> {
    apply(
        store,
        Request::LeaseGrant(LeaseGrantRequest {
            ttl_seconds: ttl,
            id,
        }),
    )
}

fn compact(store: &mut KvStore, rev: Revision) -> Result<Response, EtcdError> {
    apply(
        store,
        Request::Compact(CompactionRequest {
            revision: rev,
            physical: false,
        }),
    )
}

// §1: fresh store at revision 1, compact -1; one revision per put; versions and create revs.
#[test]
fn revisions_versions_generations() {
    let mut s = KvStore::new();
    assert_eq!(s.current_revision(), 1);
    assert_eq!(s.compact_revision(), -1);
    assert_eq!(do_put(&mut s, "a", "1").header.revision, 2);
    assert_eq!(do_put(&mut s, "a", "1").header.revision, 3); // identical value still bumps
    let kv = &s.range(&get("a")).unwrap().kvs[0];
    assert_eq!((kv.create_revision, kv.mod_revision, kv.version), (2, 3, 2));
    assert_eq!(do_del(&mut s, "a", "").header.revision, 4);
    assert!(s.range(&get("a")).unwrap().kvs.is_empty());
    do_put(&mut s, "a", "2");
    let kv = &s.range(&get("a")).unwrap().kvs[0];
    assert_eq!((kv.create_revision, kv.mod_revision, kv.version), (5, 5, 1));
}

// §1/§4: deleting a missing key does not bump; header = current.
#[test]
fn delete_missing_does_not_bump() {
    let mut s = KvStore::new();
    do_put(&mut s, "a", "1");
    let r = do_del(&mut s, "b", "");
    assert_eq!((r.deleted, r.header.revision), (0, 2));
    assert_eq!(s.current_revision(), 2);
    assert!(s.take_events().len() == 1);
}

// §1: empty key rejected for Range/Put/DeleteRange/Compare.
#[test]
fn empty_key_rejected() {
    let mut s = KvStore::new();
    assert_eq!(
        apply(&mut s, Request::Put(put("", "v"))),
        Err(EtcdError::EmptyKey)
    );
    assert_eq!(
        apply(&mut s, Request::DeleteRange(del("", ""))),
        Err(EtcdError::EmptyKey)
    );
    assert_eq!(s.range(&get("")), Err(EtcdError::EmptyKey));
    let txn = TxnRequest {
        compare: vec![cmp("", CompareResult::Equal, CompareTarget::Version(0))],
        success: vec![],
        failure: vec![],
    };
    assert_eq!(do_txn(&mut s, txn), Err(EtcdError::EmptyKey));
    assert_eq!(s.current_revision(), 1);
}

// §1/§2: range_end forms: empty = one key, "\0" = all >= key, "\0"/"\0" = all, prefix.
#[test]
fn range_end_forms() {
    let mut s = KvStore::new();
    for k in ["a", "ab", "b", "c", "\u{1}"] {
        do_put(&mut s, k, "v");
    }
    assert_eq!(keys(&s.range(&get("a")).unwrap()), ["a"]);
    assert_eq!(
        keys(&s.range(&range("ab", "\0")).unwrap()),
        ["ab", "b", "c"]
    );
    assert_eq!(s.range(&range("\0", "\0")).unwrap().count, 5);
    let prefix = RangeRequest {
        key: b"a".to_vec(),
        range_end: prefix_range_end(b"a"),
        ..RangeRequest::default()
    };
    assert_eq!(keys(&s.range(&prefix).unwrap()), ["a", "ab"]);
    assert!(s.range(&range("c", "a")).unwrap().kvs.is_empty());
}

// §2: historical reads, ErrFutureRev, ErrCompacted, header = current revision.
#[test]
fn historical_reads_and_errors() {
    let mut s = KvStore::new();
    do_put(&mut s, "a", "1"); // 2
    do_put(&mut s, "a", "2"); // 3
    do_put(&mut s, "b", "1"); // 4
    let mut r = get("a");
    r.revision = 2;
    let resp = s.range(&r).unwrap();
    assert_eq!(resp.kvs[0].value, b"1");
    assert_eq!(resp.header.revision, 4);
    r.revision = 5;
    assert_eq!(s.range(&r), Err(EtcdError::FutureRev));
    compact(&mut s, 3).unwrap();
    r.revision = 2;
    assert_eq!(s.range(&r), Err(EtcdError::Compacted));
    r.revision = 3;
    assert_eq!(s.range(&r).unwrap().kvs[0].value, b"2");
    r.revision = -3; // <= 0: latest
    assert_eq!(s.range(&r).unwrap().kvs[0].value, b"2");
}

// §2: limit/more/count, keys_only, count_only, filters don't change count.
#[test]
fn limit_more_count_keys_only_count_only_filters() {
    let mut s = KvStore::new();
    for k in ["a", "b", "c", "d"] {
        do_put(&mut s, k, "v"); // a=2 b=3 c=4 d=5
    }
    let mut r = range("a", "\0");
    r.limit = 2;
    let resp = s.range(&r).unwrap();
    assert_eq!(
        (keys(&resp), resp.more, resp.count),
        (vec!["a".into(), "b".into()], true, 4)
    );
    r.limit = 4;
    assert!(!s.range(&r).unwrap().more);
    r.limit = 0;
    r.keys_only = true;
    let resp = s.range(&r).unwrap();
    assert!(resp
        .kvs
        .iter()
        .all(|kv| kv.value.is_empty() && kv.version == 1));
    r.keys_only = false;
    r.count_only = true;
    let resp = s.range(&r).unwrap();
    assert_eq!((resp.kvs.len(), resp.count, resp.more), (0, 4, false));
    r.count_only = false;
    r.min_mod_revision = 3;
    r.max_mod_revision = 4;
    let resp = s.range(&r).unwrap();
    assert_eq!((keys(&resp), resp.count), (vec!["b".into(), "c".into()], 4));
    r.min_mod_revision = 0;
    r.max_mod_revision = 0;
    r.min_create_revision = 4;
    r.limit = 1;
    let resp = s.range(&r).unwrap();
    assert_eq!(
        (keys(&resp), resp.more, resp.count),
        (vec!["c".into()], true, 4)
    );
    r.max_create_revision = 4;
    let resp = s.range(&r).unwrap();
    assert_eq!((keys(&resp), resp.more), (vec!["c".into()], false));
}

// §2: sort order/target, NONE with non-key target => ASCEND.
#[test]
fn sorting() {
    let mut s = KvStore::new();
    do_put(&mut s, "a", "3");
    do_put(&mut s, "b", "1");
    do_put(&mut s, "c", "2");
    do_put(&mut s, "b", "1"); // b: mod 5, version 2
    let mut r = range("a", "\0");
    r.sort_target = SortTarget::Value;
    assert_eq!(keys(&s.range(&r).unwrap()), ["b", "c", "a"]); // NONE => ASCEND
    r.sort_order = SortOrder::Descend;
    assert_eq!(keys(&s.range(&r).unwrap()), ["a", "c", "b"]);
    r.sort_target = SortTarget::Key;
    assert_eq!(keys(&s.range(&r).unwrap()), ["c", "b", "a"]);
    r.sort_target = SortTarget::Mod;
    r.sort_order = SortOrder::Ascend;
    assert_eq!(keys(&s.range(&r).unwrap()), ["a", "c", "b"]);
    r.sort_target = SortTarget::Version;
    r.sort_order = SortOrder::Descend;
    assert_eq!(keys(&s.range(&r).unwrap()), ["b", "a", "c"]); // ties keep key order
    r.sort_target = SortTarget::Create;
    r.limit = 1;
    let resp = s.range(&r).unwrap();
    assert_eq!((keys(&resp), resp.more), (vec!["c".into()], true)); // sort before limit
}

// §3: prev_kv, ignore_value, ignore_lease, their errors; lease replace/detach.
#[test]
fn put_options() {
    let mut s = KvStore::new();
    let mut p = put("a", "1");
    p.prev_kv = true;
    assert_eq!(
        apply(&mut s, Request::Put(p.clone())).unwrap(),
        Response::Put(PutResponse {
            header: ResponseHeader {
                revision: 2,
                ..Default::default()
            },
            prev_kv: None
        })
    );
    p.value = b"2".to_vec();
    let Response::Put(r) = apply(&mut s, Request::Put(p)).unwrap() else {
        panic!()
    };
    assert_eq!(r.prev_kv.unwrap().value, b"1");

    let mut bad = put("a", "x");
    bad.ignore_value = true;
    assert_eq!(
        apply(&mut s, Request::Put(bad)),
        Err(EtcdError::ValueProvided)
    );
    let mut bad = put("a", "");
    bad.ignore_lease = true;
    bad.lease = 5;
    assert_eq!(
        apply(&mut s, Request::Put(bad)),
        Err(EtcdError::LeaseProvided)
    );
    let mut missing = put("zz", "");
    missing.ignore_value = true;
    assert_eq!(
        apply(&mut s, Request::Put(missing)),
        Err(EtcdError::KeyNotFound)
    );
    let mut no_lease = put("a", "v");
    no_lease.lease = 5;
    assert_eq!(
        apply(&mut s, Request::Put(no_lease.clone())),
        Err(EtcdError::LeaseNotFound)
    );
    assert_eq!(s.current_revision(), 3);

    grant(&mut s, 5, 100).unwrap();
    apply(&mut s, Request::Put(no_lease)).unwrap(); // attach, rev 4
    let mut iv = put("a", "");
    iv.ignore_value = true;
    apply(&mut s, Request::Put(iv)).unwrap(); // rev 5: keeps value "v", lease -> 0 (replaced)
    let kv = s.range(&get("a")).unwrap().kvs[0].clone();
    assert_eq!(
        (kv.value.as_slice(), kv.lease, kv.version),
        (&b"v"[..], 0, 4)
    );
    let ttl = s.lease_time_to_live(&LeaseTimeToLiveRequest { id: 5, keys: true });
    assert!(ttl.keys.is_empty());

    let mut with = put("a", "w");
    with.lease = 5;
    apply(&mut s, Request::Put(with)).unwrap();
    let mut il = put("a", "z");
    il.ignore_lease = true;
    apply(&mut s, Request::Put(il)).unwrap();
    let kv = s.range(&get("a")).unwrap().kvs[0].clone();
    assert_eq!((kv.value.as_slice(), kv.lease), (&b"z"[..], 5));
}

// §4: delete range with prev_kv, sub-revisions in key order, events.
#[test]
fn delete_range_prev_kv() {
    let mut s = KvStore::new();
    for k in ["a", "b", "c"] {
        do_put(&mut s, k, k);
    }
    s.take_events();
    let mut d = del("a", "c");
    d.prev_kv = true;
    let Response::DeleteRange(r) = apply(&mut s, Request::DeleteRange(d)).unwrap() else {
        panic!()
    };
    assert_eq!((r.deleted, r.header.revision, r.prev_kvs.len()), (2, 5, 2));
    let events = s.take_events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].0, 5);
    let ev: Vec<_> = events[0]
        .1
        .iter()
        .map(|e| (e.kind, e.kv.key.clone()))
        .collect();
    assert_eq!(
        ev,
        vec![
            (EventType::Delete, b"a".to_vec()),
            (EventType::Delete, b"b".to_vec())
        ]
    );
    assert_eq!(events[0].1[0].kv.mod_revision, 5);
    assert_eq!(events[0].1[0].kv.version, 0);
}

// §5: compares on every target, VALUE on missing key is false, missing => zero KV.
#[test]
fn compares() {
    let mut s = KvStore::new();
    do_put(&mut s, "a", "m"); // 2
    let check = |s: &mut KvStore, c: Compare| -> bool {
        let txn = TxnRequest {
            compare: vec![c],
            success: vec![],
            failure: vec![],
        };
        do_txn(s, txn).unwrap().succeeded
    };
    use CompareResult::*;
    use CompareTarget::*;
    assert!(check(&mut s, cmp("a", Equal, Version(1))));
    assert!(check(&mut s, cmp("a", Greater, CreateRevision(1))));
    assert!(check(&mut s, cmp("a", Less, ModRevision(3))));
    assert!(check(&mut s, cmp("a", NotEqual, Value(b"n".to_vec()))));
    assert!(check(&mut s, cmp("a", Greater, Value(b"a".to_vec()))));
    assert!(check(&mut s, cmp("a", Equal, Lease(0))));
    assert!(check(&mut s, cmp("zz", Equal, Version(0))));
    assert!(check(&mut s, cmp("zz", Equal, ModRevision(0))));
    assert!(!check(&mut s, cmp("zz", NotEqual, Value(b"x".to_vec()))));
    assert!(!check(&mut s, cmp("zz", Equal, Value(Vec::new()))));
    // range compares: every key must satisfy
    do_put(&mut s, "b", "m"); // 3
    let mut c = cmp("a", Equal, Value(b"m".to_vec()));
    c.range_end = b"c".to_vec();
    assert!(check(&mut s, c.clone()));
    c.target = Version(1);
    assert!(check(&mut s, c.clone()));
    c.target = ModRevision(2);
    assert!(!check(&mut s, c.clone()));
    c.key = b"x".to_vec();
    c.range_end = b"z".to_vec();
    c.target = ModRevision(0);
    assert!(check(&mut s, c.clone())); // no key: zero KV
    c.target = Value(Vec::new());
    assert!(!check(&mut s, c));
    assert_eq!(s.current_revision(), 3); // read-only txns don't bump
}

// §5: ops run in order; later reads see earlier writes; one revision; headers.
#[test]
fn txn_reads_own_writes_one_revision() {
    let mut s = KvStore::new();
    do_put(&mut s, "a", "0"); // 2
    let txn = TxnRequest {
        compare: vec![cmp(
            "a",
            CompareResult::Equal,
            CompareTarget::Value(b"0".to_vec()),
        )],
        success: vec![
            RequestOp::Range(get("a")),
            RequestOp::Put(put("a", "1")),
            RequestOp::Range(get("a")),
            RequestOp::Put(put("b", "1")),
            RequestOp::DeleteRange(del("zz", "")),
        ],
        failure: vec![],
    };
    let r = do_txn(&mut s, txn).unwrap();
    assert!(r.succeeded);
    assert_eq!(r.header.revision, 3);
    assert_eq!(s.current_revision(), 3);
    let ResponseOp::Range(r0) = &r.responses[0] else {
        panic!()
    };
    assert_eq!(
        (r0.kvs[0].value.as_slice(), r0.header.revision),
        (&b"0"[..], 2)
    );
    let ResponseOp::Range(r2) = &r.responses[2] else {
        panic!()
    };
    assert_eq!(r2.kvs[0].value, b"1");
    assert_eq!(r2.kvs[0].mod_revision, 3);
    assert_eq!(r2.header.revision, 3);
    let ResponseOp::DeleteRange(d) = &r.responses[4] else {
        panic!()
    };
    assert_eq!((d.deleted, d.header.revision), (0, 3));
    let events = s.take_events();
    let ev = &events.last().unwrap().1;
    assert_eq!(events.last().unwrap().0, 3);
    assert_eq!(ev.len(), 2);
    assert_eq!(
        (ev[0].kv.key.as_slice(), ev[1].kv.key.as_slice()),
        (&b"a"[..], &b"b"[..])
    );
    // failing branch that only reads: no bump
    let txn = TxnRequest {
        compare: vec![cmp("a", CompareResult::Equal, CompareTarget::Version(9))],
        success: vec![RequestOp::Put(put("a", "x"))],
        failure: vec![RequestOp::Range(get("a"))],
    };
    let r = do_txn(&mut s, txn).unwrap();
    assert!(!r.succeeded);
    assert_eq!(r.header.revision, 3);
    assert_eq!(s.current_revision(), 3);
}

// §5: nested txns: compares against pre-txn state, inner headers zero, one revision.
#[test]
fn nested_txn() {
    let mut s = KvStore::new();
    let inner = TxnRequest {
        compare: vec![cmp("a", CompareResult::Equal, CompareTarget::Version(0))],
        success: vec![RequestOp::Put(put("b", "then"))],
        failure: vec![RequestOp::Put(put("b", "else"))],
    };
    let outer = TxnRequest {
        compare: vec![],
        success: vec![RequestOp::Put(put("a", "1")), RequestOp::Txn(inner)],
        failure: vec![],
    };
    let r = do_txn(&mut s, outer).unwrap();
    assert_eq!(r.header.revision, 2);
    let ResponseOp::Txn(inner_resp) = &r.responses[1] else {
        panic!()
    };
    // "a" did not exist before the txn, so the inner compare (version == 0) held.
    assert!(inner_resp.succeeded);
    assert_eq!(inner_resp.header.revision, 0);
    assert_eq!(s.range(&get("b")).unwrap().kvs[0].value, b"then");
    assert_eq!(s.range(&get("b")).unwrap().kvs[0].mod_revision, 2);
}

// §5: ErrTooManyOps, ErrDuplicateKey rules.
#[test]
fn txn_validation() {
    let mut s = KvStore::new();
    let many = TxnRequest {
        compare: vec![],
        success: (0..129)
            .map(|i| RequestOp::Range(get(&format!("k{i}"))))
            .collect(),
        failure: vec![],
    };
    assert_eq!(do_txn(&mut s, many), Err(EtcdError::TooManyOps));
    let ok128 = TxnRequest {
        compare: vec![],
        success: (0..128)
            .map(|i| RequestOp::Put(put(&format!("k{i}"), "v")))
            .collect(),
        failure: vec![],
    };
    assert!(do_txn(&mut s, ok128).is_ok());
    assert_eq!(s.current_revision(), 2);
    // a nested txn gets the budget its parent leaves: 128 - 100 = 28 ops
    let nested = |n: usize| TxnRequest {
        compare: vec![],
        success: (0..100)
            .map(|i| RequestOp::Range(get(&format!("k{i}"))))
            .chain(std::iter::once(RequestOp::Txn(TxnRequest {
                compare: vec![],
                success: (0..n)
                    .map(|i| RequestOp::Range(get(&format!("n{i}"))))
                    .collect(),
                failure: vec![],
            })))
            .collect(),
        failure: vec![],
    };
    assert!(do_txn(&mut s, nested(27)).is_ok()); // parent has 101 ops: 27 left
    assert_eq!(do_txn(&mut s, nested(28)), Err(EtcdError::TooManyOps));
    let dup = |success: Vec<RequestOp>| TxnRequest {
        compare: vec![],
        success,
        failure: vec![],
    };
    assert_eq!(
        do_txn(
            &mut s,
            dup(vec![
                RequestOp::Put(put("a", "1")),
                RequestOp::Put(put("a", "2"))
            ])
        ),
        Err(EtcdError::DuplicateKey)
    );
    assert_eq!(
        do_txn(
            &mut s,
            dup(vec![
                RequestOp::Put(put("b", "1")),
                RequestOp::DeleteRange(del("a", "c"))
            ])
        ),
        Err(EtcdError::DuplicateKey)
    );
    // two overlapping deletes are fine
    assert!(do_txn(
        &mut s,
        dup(vec![
            RequestOp::DeleteRange(del("a", "c")),
            RequestOp::DeleteRange(del("b", ""))
        ])
    )
    .is_ok());
    // then/else of one nested txn may reuse a key
    let nested = TxnRequest {
        compare: vec![],
        success: vec![RequestOp::Put(put("x", "1"))],
        failure: vec![RequestOp::Put(put("x", "2"))],
    };
    assert!(do_txn(&mut s, dup(vec![RequestOp::Txn(nested.clone())])).is_ok());
    // but not with an outer put
    assert_eq!(
        do_txn(
            &mut s,
            dup(vec![RequestOp::Txn(nested), RequestOp::Put(put("x", "3"))])
        ),
        Err(EtcdError::DuplicateKey)
    );
    // the rule applies to the failure branch too, even when it is not chosen
    let bad_failure = TxnRequest {
        compare: vec![],
        success: vec![],
        failure: vec![RequestOp::Put(put("a", "1")), RequestOp::Put(put("a", "2"))],
    };
    assert_eq!(do_txn(&mut s, bad_failure), Err(EtcdError::DuplicateKey));
}

// §5: missing lease in the chosen branch fails the whole txn before execution; ranges at
// future/compacted revisions fail it too; a missing lease in the other branch does not matter.
#[test]
fn txn_prechecks() {
    let mut s = KvStore::new();
    do_put(&mut s, "a", "1"); // 2
    let mut leased = put("b", "1");
    leased.lease = 42;
    let txn = TxnRequest {
        compare: vec![],
        success: vec![
            RequestOp::Put(put("a", "2")),
            RequestOp::Put(leased.clone()),
        ],
        failure: vec![],
    };
    assert_eq!(do_txn(&mut s, txn), Err(EtcdError::LeaseNotFound));
    assert_eq!(s.current_revision(), 2);
    assert!(s.take_events().len() == 1);
    let txn = TxnRequest {
        compare: vec![cmp("a", CompareResult::Equal, CompareTarget::Version(1))],
        success: vec![RequestOp::Put(put("a", "2"))],
        failure: vec![RequestOp::Put(leased)],
    };
    assert!(do_txn(&mut s, txn).unwrap().succeeded);
    let mut future = get("a");
    future.revision = 4;
    let txn = TxnRequest {
        compare: vec![],
        success: vec![RequestOp::Put(put("c", "1")), RequestOp::Range(future)],
        failure: vec![],
    };
    assert_eq!(do_txn(&mut s, txn), Err(EtcdError::FutureRev));
    compact(&mut s, 3).unwrap();
    let mut old = get("a");
    old.revision = 2;
    let txn = TxnRequest {
        compare: vec![],
        success: vec![RequestOp::Put(put("c", "1")), RequestOp::Range(old)],
        failure: vec![],
    };
    assert_eq!(do_txn(&mut s, txn), Err(EtcdError::Compacted));
    assert_eq!(s.current_revision(), 3);
}

// §7: compaction errors; state at R readable; older versions dropped; tombstone handling.
#[test]
fn compaction() {
    let mut s = KvStore::new();
    do_put(&mut s, "a", "1"); // 2
    do_put(&mut s, "a", "2"); // 3
    do_put(&mut s, "b", "1"); // 4
    do_del(&mut s, "b", ""); // 5
    do_put(&mut s, "c", "1"); // 6
    do_del(&mut s, "c", ""); // 7
    assert_eq!(compact(&mut s, 8), Err(EtcdError::FutureRev));
    let Response::Compact(r) = compact(&mut s, 6).unwrap() else {
        panic!()
    };
    assert_eq!(r.header.revision, 7);
    assert_eq!(s.current_revision(), 7);
    assert_eq!(compact(&mut s, 6), Err(EtcdError::Compacted));
    assert_eq!(compact(&mut s, 5), Err(EtcdError::Compacted));
    // a@3 kept, b's tombstone@5 dropped, c@6 kept, c's tombstone@7 kept
    assert_eq!(s.stored_revisions(), 3);
    let mut at6 = range("a", "\0");
    at6.revision = 6;
    assert_eq!(keys(&s.range(&at6).unwrap()), ["a", "c"]);
    at6.revision = 5;
    assert_eq!(s.range(&at6), Err(EtcdError::Compacted));
    let h = s.hash_kv(0).unwrap();
    assert_eq!((h.compact_revision, h.hash_revision), (6, 7));
    assert_eq!(s.hash_kv(5), Err(EtcdError::Compacted));
    assert_eq!(s.hash_kv(8), Err(EtcdError::FutureRev));
    // compacting at a tombstone's own revision keeps it for watchers (see crate docs)
    compact(&mut s, 7).unwrap();
    assert_eq!(
        s.history(7, 7, false).unwrap()[0].1[0].kind,
        EventType::Delete
    );
    assert!(s.range(&get("c")).unwrap().kvs.is_empty());
}

// §7/§1: a fresh store may compact revision 0 once (compact starts at -1).
#[test]
fn compact_fresh_store() {
    let mut s = KvStore::new();
    assert!(compact(&mut s, 0).is_ok());
    assert_eq!(s.compact_revision(), 0);
    assert_eq!(compact(&mut s, 0), Err(EtcdError::Compacted));
    assert!(compact(&mut s, 1).is_ok());
    assert_eq!(compact(&mut s, 2), Err(EtcdError::FutureRev));
}

// §8: grant errors, min TTL, revoke deletes attached keys in one revision in key order.
#[test]
fn leases() {
    let mut s = KvStore::new();
    let Response::LeaseGrant(g) = grant(&mut s, 7, 1).unwrap() else {
        panic!()
    };
    assert_eq!((g.id, g.ttl_seconds, g.header.revision), (7, 2, 1)); // raised to min TTL 2
    assert_eq!(grant(&mut s, 7, 10), Err(EtcdError::LeaseExist));
    assert_eq!(
        grant(&mut s, 8, MAX_LEASE_TTL_SECONDS + 1),
        Err(EtcdError::LeaseTtlTooLarge)
    );
    assert!(grant(&mut s, 8, MAX_LEASE_TTL_SECONDS).is_ok());
    for k in ["c", "a", "b"] {
        let mut p = put(k, "v");
        p.lease = 7;
        apply(&mut s, Request::Put(p)).unwrap();
    }
    do_put(&mut s, "b", "unleased"); // detaches b (rev 5)
    do_del(&mut s, "c", ""); // detaches c (rev 6)
    let mut p = put("d", "v");
    p.lease = 7;
    apply(&mut s, Request::Put(p)).unwrap(); // rev 7
    let ttl = s.lease_time_to_live(&LeaseTimeToLiveRequest { id: 7, keys: true });
    assert_eq!(ttl.keys, vec![b"a".to_vec(), b"d".to_vec()]);
    s.take_events();
    let Response::LeaseRevoke(r) =
        apply(&mut s, Request::LeaseRevoke(LeaseRevokeRequest { id: 7 })).unwrap()
    else {
        panic!()
    };
    assert_eq!(r.header.revision, 8);
    let events = s.take_events();
    assert_eq!(events.len(), 1);
    let deleted: Vec<_> = events[0].1.iter().map(|e| e.kv.key.clone()).collect();
    assert_eq!(deleted, vec![b"a".to_vec(), b"d".to_vec()]);
    assert_eq!(
        apply(&mut s, Request::LeaseRevoke(LeaseRevokeRequest { id: 7 })),
        Err(EtcdError::LeaseNotFound)
    );
    // revoke of a lease with no keys: no revision
    apply(&mut s, Request::LeaseRevoke(LeaseRevokeRequest { id: 8 })).unwrap();
    assert_eq!(s.current_revision(), 8);
    let Ok(Response::LeaseLeases(l)) = s.read(&Request::LeaseLeases) else {
        panic!()
    };
    assert!(l.leases.is_empty());
    let ttl = s.lease_time_to_live(&LeaseTimeToLiveRequest { id: 7, keys: true });
    assert_eq!(ttl.ttl_seconds, -1);
}

// §8: min TTL from the election timeout.
#[test]
fn min_ttl_option() {
    assert_eq!(
        StoreOptions::for_election_timeout_ms(1000).min_lease_ttl_seconds,
        2
    );
    assert_eq!(
        StoreOptions::for_election_timeout_ms(3000).min_lease_ttl_seconds,
        5
    );
    let mut s = KvStore::with_options(StoreOptions::for_election_timeout_ms(4000));
    let Response::LeaseGrant(g) = grant(&mut s, 1, 3).unwrap() else {
        panic!()
    };
    assert_eq!(g.ttl_seconds, 6);
}

// Snapshot round trip, and hash equality of equal histories.
#[test]
fn snapshot_round_trip() {
    let mut s = KvStore::new();
    grant(&mut s, 3, 50).unwrap();
    let mut p = put("x", "1");
    p.lease = 3;
    apply(&mut s, Request::Put(p)).unwrap();
    do_put(&mut s, "y", "1");
    do_del(&mut s, "y", "");
    compact(&mut s, 3).unwrap();
    let restored = KvStore::restore(s.snapshot());
    assert_eq!(restored, s);
    assert_eq!(restored.hash_kv(0), s.hash_kv(0));
    let snapshot: Snapshot = s.snapshot();
    assert_eq!(KvStore::restore(snapshot.clone()).snapshot(), snapshot);
}

// read(): header of reads is the current revision; read-only txn served locally.
#[test]
fn read_requests() {
    let mut s = KvStore::new();
    do_put(&mut s, "a", "1");
    let txn = TxnRequest {
        compare: vec![],
        success: vec![RequestOp::Range(get("a"))],
        failure: vec![],
    };
    let Ok(Response::Txn(t)) = s.read(&Request::Txn(txn)) else {
        panic!()
    };
    assert_eq!(t.header.revision, 2);
    let Ok(Response::HashKv(h)) = s.read(&Request::HashKv(HashKvRequest { revision: 0 })) else {
        panic!()
    };
    assert_eq!((h.hash_revision, h.compact_revision), (2, -1));
}

#[test]
#[should_panic]
fn apply_range_panics() {
    let mut s = KvStore::new();
    let _ = s.apply(&Request::Range(get("a")));
}
