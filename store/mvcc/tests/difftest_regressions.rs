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
