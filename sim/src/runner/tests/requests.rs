//! Requests a member must refuse without harm: one client's request never takes the cluster
//! down (issue 16: a txn that deletes a key from-key and then puts it with ignore_value
//! crashed every member at apply, and again on every restart).

use faultline_api::{
    Compare, CompareResult, CompareTarget, DeleteRangeRequest, EtcdError, PutRequest, Request,
    RequestOp, Response, TxnRequest,
};
use faultline_invariants::history::Outcome;

use super::{client_outcomes, get, ok, op, put, quiet_plan};
use crate::runner::{simulate, RunOptions};

fn delete_from_key(key: &str) -> RequestOp {
    RequestOp::DeleteRange(DeleteRangeRequest {
        key: key.as_bytes().to_vec(),
        range_end: vec![0],
        prev_kv: false,
    })
}

fn put_ignore_value(key: &str) -> RequestOp {
    RequestOp::Put(PutRequest {
        key: key.as_bytes().to_vec(),
        ignore_value: true,
        ..PutRequest::default()
    })
}

/// A compare that is false on any key (version < 0), so the txn takes its failure branch.
fn never(key: &str) -> Compare {
    Compare {
        key: key.as_bytes().to_vec(),
        range_end: Vec::new(),
        target: CompareTarget::Version(0),
        result: CompareResult::Less,
    }
}

#[test]
fn put_ignore_value_after_a_from_key_delete_is_refused_and_the_cluster_keeps_serving() {
    let flat = Request::Txn(TxnRequest {
        compare: Vec::new(),
        success: vec![delete_from_key("k/0"), put_ignore_value("k/0")],
        failure: Vec::new(),
    });
    // The same, with the delete and the put in two nested txns of the failure branch.
    let nested = Request::Txn(TxnRequest {
        compare: vec![never("k/0")],
        success: Vec::new(),
        failure: vec![
            RequestOp::Txn(TxnRequest {
                compare: Vec::new(),
                success: vec![delete_from_key("k/0")],
                failure: Vec::new(),
            }),
            RequestOp::Txn(TxnRequest {
                compare: vec![never("k/0")],
                success: Vec::new(),
                failure: vec![put_ignore_value("k/0")],
            }),
        ],
    });
    let ops = vec![
        op(500, put("k/0", "v0", 0)),
        op(0, flat),
        op(0, nested),
        op(0, put("k/1", "v1", 0)),
        op(0, get("k/0")),
    ];
    let output = simulate(&quiet_plan(ops, Vec::new()), &RunOptions::default());
    let outcomes = client_outcomes(&output);
    assert_eq!(outcomes.len(), 5, "{outcomes:?}");
    for (request, outcome) in &outcomes[1..3] {
        assert_eq!(
            outcome,
            &Outcome::Failed(EtcdError::KeyNotFound),
            "{request:?}"
        );
    }
    assert!(matches!(ok(&outcomes[3].1), Response::Put(_)));
    let Response::Range(read) = ok(&outcomes[4].1) else {
        panic!("expected a range response, got {:?}", outcomes[4].1);
    };
    assert_eq!(read.kvs.len(), 1, "k/0 is untouched: {read:?}");
    assert_eq!(read.kvs[0].value, b"v0");
    assert!(output.healed_write_succeeded);
}
