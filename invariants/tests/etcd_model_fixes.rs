//! The four shapes where the etcd model disagreed with etcd (and with the store, which the
//! differential test validates against etcd 3.4): each history was wrongly rejected by the old
//! model and is now accepted, and a variant with a wrong response is still rejected.

use faultline_api::*;
use faultline_invariants::check_etcd_history;
use faultline_invariants::history::{History, Outcome};
use faultline_invariants::linearizability::Verdict;

mod common;
use common::*;

const BUDGET: u64 = 1_000_000;

fn put_req(key: &str, value: &str) -> PutRequest {
    PutRequest {
        key: key.as_bytes().to_vec(),
        value: value.as_bytes().to_vec(),
        ..Default::default()
    }
}

fn put(key: &str, value: &str) -> Request {
    Request::Put(put_req(key, value))
}

/// The whole `k/` prefix.
fn prefix() -> RangeRequest {
    RangeRequest {
        key: b"k/".to_vec(),
        range_end: b"k0".to_vec(),
        ..Default::default()
    }
}

fn range_ok(rev: i64, kvs: Vec<KeyValue>, more: bool, count: i64) -> Outcome {
    Outcome::Ok(Response::Range(RangeResponse {
        header: hdr(rev),
        kvs,
        more,
        count,
    }))
}

/// Sequential operations of one client, 10 ms apart: (request, outcome).
fn sequential(ops: Vec<(Request, Outcome)>) -> History {
    History {
        ops: sequential_ops(ops),
        watches: Vec::new(),
    }
}

fn assert_linearizable(h: &History) {
    let v = check_etcd_history(h, BUDGET);
    assert_eq!(v, Verdict::Linearizable, "{v:?}");
}

fn assert_rejected(h: &History) {
    let v = check_etcd_history(h, BUDGET);
    assert!(v.is_not_linearizable(), "expected a violation, got {v:?}");
}

/// Bug 1 (seen: `range k/ limit 1 count_only`): a count-only range has no KVs to truncate, so
/// `more` is false whatever the limit; `count` is still every key.
#[test]
fn count_only_with_a_limit_answers_more_false() {
    let range = Request::Range(RangeRequest {
        limit: 1,
        count_only: true,
        ..prefix()
    });
    let with = |more: bool, count: i64| {
        sequential(vec![
            (put("k/a", "1"), put_ok(2)),
            (put("k/b", "2"), put_ok(3)),
            (range.clone(), range_ok(3, vec![], more, count)),
        ])
    };
    assert_linearizable(&with(false, 2));
    assert_rejected(&with(true, 2));
    assert_rejected(&with(false, 1));
}

/// Bug 2: descending on a non-key target keeps ties in key order (etcd's sort.Reverse over a
/// key-ordered result; the store's stable sort).
#[test]
fn descending_sort_keeps_ties_in_key_order() {
    let range = Request::Range(RangeRequest {
        sort_order: SortOrder::Descend,
        sort_target: SortTarget::Version,
        ..prefix()
    });
    let with = |kvs: Vec<KeyValue>| {
        sequential(vec![
            (put("k/a", "1"), put_ok(2)),
            (put("k/b", "2"), put_ok(3)),
            (put("k/c", "3"), put_ok(4)),
            (put("k/a", "4"), put_ok(5)),
            (range.clone(), range_ok(5, kvs, false, 3)),
        ])
    };
    let a = kv("k/a", "4", 2, 5, 2);
    let b = kv("k/b", "2", 3, 3, 1);
    let c = kv("k/c", "3", 4, 4, 1);
    // Version 2 first, then the version-1 tie in key order.
    assert_linearizable(&with(vec![a.clone(), b.clone(), c.clone()]));
    // The old model's answer: ties reversed.
    assert_rejected(&with(vec![a.clone(), c.clone(), b.clone()]));
    // Not descending at all.
    assert_rejected(&with(vec![b, c, a]));
}

/// Bug 3: every compare of a nested txn is evaluated against the state before the whole txn
/// (etcd's compareToPath; the store's `plan`), not after the outer txn's earlier ops.
#[test]
fn nested_txn_compares_see_the_state_before_the_txn() {
    let nested = TxnRequest {
        // k/a is absent before the txn (version 0), though the outer op creates it first.
        compare: vec![Compare {
            result: CompareResult::Equal,
            target: CompareTarget::Version(0),
            key: b"k/a".to_vec(),
            range_end: vec![],
        }],
        success: vec![RequestOp::Put(put_req("k/b", "then"))],
        failure: vec![RequestOp::Put(put_req("k/c", "else"))],
    };
    let txn = Request::Txn(TxnRequest {
        compare: vec![],
        success: vec![
            RequestOp::Put(put_req("k/a", "outer")),
            RequestOp::Txn(nested),
        ],
        failure: vec![],
    });
    let inner_put = ResponseOp::Put(PutResponse::default());
    let with = |nested_succeeded: bool, read: Vec<KeyValue>| {
        sequential(vec![
            (
                txn.clone(),
                Outcome::Ok(Response::Txn(TxnResponse {
                    header: hdr(2),
                    succeeded: true,
                    responses: vec![
                        inner_put.clone(),
                        ResponseOp::Txn(TxnResponse {
                            header: ResponseHeader::default(),
                            succeeded: nested_succeeded,
                            responses: vec![inner_put.clone()],
                        }),
                    ],
                })),
            ),
            (Request::Range(prefix()), {
                let n = read.len() as i64;
                range_ok(2, read, false, n)
            }),
        ])
    };
    let a = kv("k/a", "outer", 2, 2, 1);
    assert_linearizable(&with(true, vec![a.clone(), kv("k/b", "then", 2, 2, 1)]));
    // The old model's answer: the nested compare saw the outer put and took the else branch.
    assert_rejected(&with(false, vec![a.clone(), kv("k/c", "else", 2, 2, 1)]));
    // A response claiming the then branch whose write is not there.
    assert_rejected(&with(true, vec![a, kv("k/c", "else", 2, 2, 1)]));
}

/// Bug 3, the prefix form the workload generates: a nested compare over a whole range sees
/// none of the keys the outer txn deleted.
#[test]
fn nested_range_compare_ignores_the_outer_delete() {
    let nested = TxnRequest {
        // Every key of the prefix has version > 0: true before the txn (k/a exists).
        compare: vec![Compare {
            result: CompareResult::Greater,
            target: CompareTarget::Version(0),
            key: b"k/".to_vec(),
            range_end: b"k0".to_vec(),
        }],
        success: vec![RequestOp::Put(put_req("k/b", "then"))],
        failure: vec![RequestOp::Put(put_req("k/c", "else"))],
    };
    let txn = Request::Txn(TxnRequest {
        compare: vec![],
        success: vec![
            RequestOp::DeleteRange(DeleteRangeRequest {
                key: b"k/a".to_vec(),
                range_end: vec![],
                prev_kv: false,
            }),
            RequestOp::Txn(nested),
        ],
        failure: vec![],
    });
    let with = |nested_succeeded: bool| {
        sequential(vec![
            (put("k/a", "1"), put_ok(2)),
            (
                txn.clone(),
                Outcome::Ok(Response::Txn(TxnResponse {
                    header: hdr(3),
                    succeeded: true,
                    responses: vec![
                        ResponseOp::DeleteRange(DeleteRangeResponse {
                            header: ResponseHeader::default(),
                            deleted: 1,
                            prev_kvs: vec![],
                        }),
                        ResponseOp::Txn(TxnResponse {
                            header: ResponseHeader::default(),
                            succeeded: nested_succeeded,
                            responses: vec![ResponseOp::Put(PutResponse::default())],
                        }),
                    ],
                })),
            ),
        ])
    };
    assert_linearizable(&with(true));
    assert_rejected(&with(false));
}

/// Bug 4: order NONE with a non-key target and a limit: etcd reads `limit + 1` keys in key
/// order and sorts only those (ascending on the target), then truncates to the limit.
#[test]
fn unordered_sort_target_with_limit_sorts_only_the_first_keys() {
    let range = Request::Range(RangeRequest {
        limit: 1,
        sort_order: SortOrder::None,
        sort_target: SortTarget::Value,
        ..prefix()
    });
    let with = |kvs: Vec<KeyValue>, more: bool| {
        sequential(vec![
            (put("k/a", "3"), put_ok(2)),
            (put("k/b", "2"), put_ok(3)),
            (put("k/c", "1"), put_ok(4)),
            (put("k/d", "0"), put_ok(5)),
            (range.clone(), range_ok(5, kvs, more, 4)),
        ])
    };
    // k/a and k/b are read; the smaller value of the two is k/b.
    assert_linearizable(&with(vec![kv("k/b", "2", 3, 3, 1)], true));
    // The old model's answer: the smallest value of all keys.
    assert_rejected(&with(vec![kv("k/d", "0", 5, 5, 1)], true));
    assert_rejected(&with(vec![kv("k/b", "2", 3, 3, 1)], false));
    // An explicit ASCEND reads every key: then the smallest value of all is right.
    let ascend = Request::Range(RangeRequest {
        limit: 1,
        sort_order: SortOrder::Ascend,
        sort_target: SortTarget::Value,
        ..prefix()
    });
    let mut h = with(vec![], true);
    h.ops[4].request = ascend;
    h.ops[4].outcome = range_ok(5, vec![kv("k/d", "0", 5, 5, 1)], true, 4);
    assert_linearizable(&h);
    h.ops[4].outcome = range_ok(5, vec![kv("k/b", "2", 3, 3, 1)], true, 4);
    assert_rejected(&h);
}
