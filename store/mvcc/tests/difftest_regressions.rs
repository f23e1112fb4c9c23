//! Regressions found by the differential test against real etcd 3.4 (difftest/): each test is
//! one store bug that etcd disagreed with, fixed in the store.

use faultline_api::*;
use faultline_mvcc::*;

fn put(store: &mut KvStore, key: &str, value: &str) {
    store
        .apply(&Request::Put(PutRequest {
            key: key.into(),
            value: value.into(),
            ..PutRequest::default()
        }))
        .expect("put");
}

fn txn_range_at(revision: Revision) -> Request {
    Request::Txn(TxnRequest {
        compare: vec![],
        success: vec![RequestOp::Range(RangeRequest {
            key: "a".into(),
            revision,
            ..RangeRequest::default()
        })],
        failure: vec![],
    })
}

// etcd's checkRange skips only revision 0: a negative revision in a txn's range is compared
// with the compact revision like any other, so after a compaction it is ErrCompacted (etcd
// 3.4.23 answered ErrCompacted where the store used to read the latest revision).
#[test]
fn negative_range_revision_in_txn_is_compacted_after_compaction() {
    let mut store = KvStore::new();
    put(&mut store, "a", "1");
    put(&mut store, "a", "2");
    // Before any compaction (compact revision -1), -1 is not below it: latest is read.
    let before = store.read(&txn_range_at(-1)).expect("readable");
    let Response::Txn(t) = before else {
        panic!("txn response")
    };
    let ResponseOp::Range(r) = &t.responses[0] else {
        panic!("range response")
    };
    assert_eq!(r.kvs[0].value, b"2".to_vec());
    assert_eq!(store.read(&txn_range_at(-2)), Err(EtcdError::Compacted));

    store
        .apply(&Request::Compact(CompactionRequest {
            revision: 2,
            physical: false,
        }))
        .expect("compact");
    assert_eq!(store.read(&txn_range_at(-1)), Err(EtcdError::Compacted));
    // A write txn checks the same way, before anything executes.
    let write = Request::Txn(TxnRequest {
        compare: vec![],
        success: vec![
            RequestOp::Put(PutRequest {
                key: "b".into(),
                ..PutRequest::default()
            }),
            RequestOp::Range(RangeRequest {
                key: "a".into(),
                revision: -1,
                ..RangeRequest::default()
            }),
        ],
        failure: vec![],
    });
    let rev = store.current_revision();
    assert_eq!(store.apply(&write), Err(EtcdError::Compacted));
    assert_eq!(store.current_revision(), rev);
    // Outside a txn a negative revision still means "latest".
    let plain = store.range(&RangeRequest {
        key: "a".into(),
        revision: -1,
        ..RangeRequest::default()
    });
    assert_eq!(plain.expect("latest").kvs[0].value, b"2".to_vec());
}

// etcd's checkIntervals builds a delete's interval literally: with range end "\0" it is the
// empty interval, so a put under it in the same branch is NOT ErrDuplicateKey (etcd 3.4.23
// ran such a txn: the delete removed every key from its start, then the put wrote its key).
#[test]
fn put_under_a_delete_to_the_end_is_not_a_duplicate_key() {
    let mut store = KvStore::new();
    put(&mut store, "a", "1");
    put(&mut store, "b", "1");
    let txn = Request::Txn(TxnRequest {
        compare: vec![],
        success: vec![
            RequestOp::DeleteRange(DeleteRangeRequest {
                key: "a".into(),
                range_end: vec![0],
                prev_kv: false,
            }),
            RequestOp::Put(PutRequest {
                key: "b".into(),
                value: "2".into(),
                ..PutRequest::default()
            }),
        ],
        failure: vec![],
    });
    let Response::Txn(t) = store.apply(&txn).expect("not a duplicate key") else {
        panic!("txn response")
    };
    assert_eq!(t.header.revision, 4);
    let ResponseOp::DeleteRange(d) = &t.responses[0] else {
        panic!("delete response")
    };
    assert_eq!(d.deleted, 2);
    let all = store
        .range(&RangeRequest {
            key: vec![0],
            range_end: vec![0],
            ..RangeRequest::default()
        })
        .expect("range");
    assert_eq!(all.kvs.len(), 1);
    assert_eq!(all.kvs[0].key, b"b".to_vec());
    assert_eq!(all.kvs[0].version, 1);
    assert_eq!(all.kvs[0].create_revision, 4);
    // A bounded delete range still conflicts with a put inside it.
    let bounded = Request::Txn(TxnRequest {
        compare: vec![],
        success: vec![
            RequestOp::DeleteRange(DeleteRangeRequest {
                key: "a".into(),
                range_end: "c".into(),
                prev_kv: false,
            }),
            RequestOp::Put(PutRequest {
                key: "b".into(),
                ..PutRequest::default()
            }),
        ],
        failure: vec![],
    });
    assert_eq!(store.apply(&bounded), Err(EtcdError::DuplicateKey));
}

// Once a txn may delete a key to the end of the key space and re-create it in the same
// revision (see above), compaction at that revision must keep both records, or a watch from
// the compact revision loses the deletion (found by the property test after the fix above).
#[test]
fn compaction_at_a_delete_and_recreate_revision_keeps_both_events() {
    let mut store = KvStore::new();
    put(&mut store, "c", "0"); // rev 2
    put(&mut store, "a", "0"); // rev 3
    let txn = Request::Txn(TxnRequest {
        compare: vec![],
        success: vec![
            RequestOp::DeleteRange(DeleteRangeRequest {
                key: "a".into(),
                range_end: vec![0],
                prev_kv: false,
            }),
            RequestOp::Put(PutRequest {
                key: "c".into(),
                value: "1".into(),
                ..PutRequest::default()
            }),
        ],
        failure: vec![],
    });
    store.apply(&txn).expect("txn"); // rev 4: delete a, delete c, put c
    store
        .apply(&Request::Compact(CompactionRequest {
            revision: 4,
            physical: false,
        }))
        .expect("compact");
    store.check_invariants();
    let history = store
        .history(4, 4, false)
        .expect("history from the compact revision");
    let events: Vec<(Vec<u8>, EventType)> = history[0]
        .1
        .iter()
        .map(|e| (e.kv.key.clone(), e.kind))
        .collect();
    assert_eq!(
        events,
        vec![
            (b"a".to_vec(), EventType::Delete),
            (b"c".to_vec(), EventType::Delete),
            (b"c".to_vec(), EventType::Put),
        ]
    );
    let c = store
        .range(&RangeRequest {
            key: "c".into(),
            ..RangeRequest::default()
        })
        .expect("range");
    assert_eq!((c.kvs[0].version, c.kvs[0].create_revision), (1, 4));
}

// etcd reads every key before sorting only for an explicit sort order (or a min/max filter);
// a sort target with order NONE and a limit sorts the first limit + 1 keys in key order
// (etcd 3.4.23 answered a limit-3 range sorted by create revision that way).
#[test]
fn sort_target_without_order_sorts_only_the_first_limit_plus_one_keys() {
    let mut store = KvStore::new();
    put(&mut store, "d", "x"); // create 2
    put(&mut store, "c", "x"); // create 3
    put(&mut store, "b", "x"); // create 4
    put(&mut store, "a", "x"); // create 5
    let request = |sort_order| RangeRequest {
        key: "a".into(),
        range_end: "z".into(),
        limit: 2,
        sort_order,
        sort_target: SortTarget::Create,
        ..RangeRequest::default()
    };
    let keys = |r: RangeResponse| -> Vec<Vec<u8>> { r.kvs.into_iter().map(|kv| kv.key).collect() };
    // Order NONE: keys a, b, c are read, sorted ascending by create (c 3, b 4, a 5), cut to 2.
    let none = store.range(&request(SortOrder::None)).expect("range");
    assert_eq!((none.count, none.more), (4, true));
    assert_eq!(keys(none), vec![b"c".to_vec(), b"b".to_vec()]);
    // An explicit ASCEND reads everything first: d (2) and c (3).
    let ascend = store.range(&request(SortOrder::Ascend)).expect("range");
    assert_eq!((ascend.count, ascend.more), (4, true));
    assert_eq!(keys(ascend), vec![b"d".to_vec(), b"c".to_vec()]);
}

// A watch event's prev_kv is the key at mod_revision - 1 (etcd reads it there), also for live
// events: a key put and then deleted in one txn has a DELETE event without prev_kv (etcd
// 3.4.23; the store used to attach the in-txn put), exactly as a replay from history gives.
#[test]
fn live_event_prev_kv_is_the_key_before_the_txn() {
    let mut store = KvStore::new();
    put(&mut store, "a", "0"); // rev 2
    store.take_events();
    let txn = Request::Txn(TxnRequest {
        compare: vec![],
        success: vec![
            RequestOp::Put(PutRequest {
                key: "c".into(),
                value: "1".into(),
                ..PutRequest::default()
            }),
            RequestOp::DeleteRange(DeleteRangeRequest {
                key: "a".into(),
                range_end: vec![0],
                prev_kv: true,
            }),
        ],
        failure: vec![],
    });
    let Response::Txn(t) = store.apply(&txn).expect("txn") else {
        panic!("txn response")
    };
    // The delete's own response still sees the in-txn put (and a) as previous values.
    let ResponseOp::DeleteRange(d) = &t.responses[1] else {
        panic!("delete response")
    };
    assert_eq!(d.prev_kvs.len(), 2);
    let live = store.take_events();
    let replay = store.history(3, 3, true).expect("history");
    assert_eq!(live, replay);
    let events = &live[0].1;
    let summary: Vec<(Vec<u8>, EventType, bool)> = events
        .iter()
        .map(|e| (e.kv.key.clone(), e.kind, e.prev_kv.is_some()))
        .collect();
    assert_eq!(
        summary,
        vec![
            (b"c".to_vec(), EventType::Put, false),
            (b"a".to_vec(), EventType::Delete, true),
            (b"c".to_vec(), EventType::Delete, false),
        ]
    );
}
