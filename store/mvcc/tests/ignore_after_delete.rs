//! Issue 16: a txn branch that deletes a key (a delete to the end of the key space, `"\0"`)
//! and then puts it with `ignore_value`/`ignore_lease` passed every check and crashed every
//! member at apply (etcd 3.4.23 has the same bug). The store rejects it with etcd's
//! ErrKeyNotFound, before proposal (`KvStore::check_request`) and again at apply, whatever
//! the state and whichever branch would run.

use faultline_api::*;
use faultline_mvcc::*;

fn put(key: &str, value: &str) -> RequestOp {
    RequestOp::Put(PutRequest {
        key: key.into(),
        value: value.into(),
        ..PutRequest::default()
    })
}

fn ignore_value_put(key: &str) -> RequestOp {
    RequestOp::Put(PutRequest {
        key: key.into(),
        ignore_value: true,
        ..PutRequest::default()
    })
}

fn ignore_lease_put(key: &str, value: &str) -> RequestOp {
    RequestOp::Put(PutRequest {
        key: key.into(),
        value: value.into(),
        ignore_lease: true,
        ..PutRequest::default()
    })
}

fn delete_from(key: &str) -> RequestOp {
    RequestOp::DeleteRange(DeleteRangeRequest {
        key: key.into(),
        range_end: vec![0],
        prev_kv: false,
    })
}

fn txn(success: Vec<RequestOp>) -> TxnRequest {
    TxnRequest {
        compare: Vec::new(),
        success,
        failure: Vec::new(),
    }
}

/// A store where "a" exists, so that the ignore_* check against the state before the txn
/// passes (the case etcd and the old store let through).
fn store_with_a() -> KvStore {
    let mut store = KvStore::new();
    store
        .apply(&Request::Txn(txn(vec![put("a", "1")])))
        .expect("put a");
    store.take_events();
    store
}

/// The request of the issue: delete from "a" to the end, then put "a" keeping its value.
fn issue_request() -> Request {
    Request::Txn(txn(vec![delete_from("a"), ignore_value_put("a")]))
}

/// The same with the delete and the put in two nested txns.
fn nested_issue_request() -> Request {
    Request::Txn(txn(vec![
        RequestOp::Txn(txn(vec![delete_from("a")])),
        RequestOp::Txn(txn(vec![ignore_lease_put("a", "2")])),
    ]))
}

/// Applying must answer KeyNotFound and change nothing, on every member alike.
fn assert_rejected_at_apply(request: &Request) {
    let mut member_1 = store_with_a();
    let mut member_2 = store_with_a();
    let before = member_1.clone();
    assert_eq!(member_1.apply(request), Err(EtcdError::KeyNotFound));
    assert_eq!(member_2.apply(request), Err(EtcdError::KeyNotFound));
    member_1.check_invariants();
    assert_eq!(member_1, before, "a rejected request changes nothing");
    assert_eq!(member_1, member_2);
    assert!(member_1.take_events().is_empty());
}

#[test]
fn the_issue_request_is_rejected_before_proposal() {
    let store = store_with_a();
    assert_eq!(
        store.check_request(&issue_request()),
        Err(EtcdError::KeyNotFound)
    );
    // The check is of the request in itself: also on a store where "a" never existed.
    assert_eq!(
        KvStore::new().check_request(&issue_request()),
        Err(EtcdError::KeyNotFound)
    );
}

#[test]
fn the_nested_issue_request_is_rejected_before_proposal() {
    assert_eq!(
        store_with_a().check_request(&nested_issue_request()),
        Err(EtcdError::KeyNotFound)
    );
}

/// As if an older member (without the check) had proposed it and it was committed.
#[test]
fn applying_the_issue_request_is_a_deterministic_error() {
    assert_rejected_at_apply(&issue_request());
    assert_rejected_at_apply(&nested_issue_request());
}

/// The side that cannot run together with the delete does not count: a delete in the then
/// branch of a nested txn and the put in its else branch, or the put before the delete.
#[test]
fn puts_no_earlier_delete_can_reach_are_accepted() {
    let else_side = Request::Txn(txn(vec![RequestOp::Txn(TxnRequest {
        compare: Vec::new(),
        success: vec![delete_from("a")],
        failure: vec![ignore_value_put("a")],
    })]));
    let put_first = Request::Txn(txn(vec![ignore_value_put("a"), delete_from("a")]));
    let below_the_delete = Request::Txn(txn(vec![delete_from("b"), ignore_value_put("a")]));
    for request in [else_side, put_first, below_the_delete] {
        let mut store = store_with_a();
        assert_eq!(store.check_request(&request), Ok(()), "{request:?}");
        store.apply(&request).expect("applies");
        store.check_invariants();
    }
}

/// Either side of an EARLIER nested txn counts (which side runs depends on the state), and a
/// delete before a nested txn reaches the puts inside it.
#[test]
fn every_delete_that_may_run_first_counts() {
    let else_delete_first = Request::Txn(txn(vec![
        RequestOp::Txn(TxnRequest {
            compare: Vec::new(),
            success: Vec::new(),
            failure: vec![delete_from("a")],
        }),
        ignore_lease_put("a", "2"),
    ]));
    let outer_delete_first = Request::Txn(txn(vec![
        delete_from("\0"),
        RequestOp::Txn(txn(vec![RequestOp::Txn(txn(vec![ignore_value_put("a")]))])),
    ]));
    for request in [else_delete_first, outer_delete_first] {
        assert_eq!(
            store_with_a().check_request(&request),
            Err(EtcdError::KeyNotFound),
            "{request:?}"
        );
        assert_rejected_at_apply(&request);
    }
}

/// The canary re-introduces the crash: the check lets the request through, apply panics.
#[cfg(feature = "canaries")]
#[test]
#[should_panic(expected = "canary IgnorePutAfterDelete")]
fn the_canary_brings_the_crash_back() {
    let mut store = store_with_a();
    store.set_canary(Some(KvCanary::IgnorePutAfterDelete));
    assert_eq!(store.check_request(&issue_request()), Ok(()));
    let _ = store.apply(&issue_request());
}

#[cfg(not(feature = "canaries"))]
#[test]
#[should_panic(expected = "built without `canaries`")]
fn the_canary_is_refused_without_the_feature() {
    KvStore::new().set_canary(Some(KvCanary::IgnorePutAfterDelete));
}
