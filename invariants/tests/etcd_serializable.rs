//! Serializable (stale) reads are checked exactly against the state at their header revision
//! in the same linearization as everything else: stale is allowed, wrong is not.

use faultline_api::*;
use faultline_invariants::check_etcd_history;
use faultline_invariants::history::{History, Operation, Outcome};
use faultline_invariants::linearizability::Verdict;

mod common;
use common::*;

const BUDGET: u64 = 1_000_000;
const MS: u64 = 1_000_000;

fn stale_prefix(revision: i64, limit: i64) -> Request {
    Request::Range(RangeRequest {
        key: b"k/".to_vec(),
        range_end: b"k0".to_vec(),
        serializable: true,
        revision,
        limit,
        ..Default::default()
    })
}

fn range_ok(rev: i64, kvs: Vec<KeyValue>, more: bool, count: i64) -> Outcome {
    Outcome::Ok(Response::Range(RangeResponse {
        header: hdr(rev),
        kvs,
        more,
        count,
    }))
}

/// Writes a=1 (2), b=2 (3), a=3 (4) by client 0; then client 1's serializable read, invoked
/// after every write completed.
fn with_read(request: Request, outcome: Outcome) -> History {
    let writes = vec![
        (put("k/a", "1"), put_ok(2)),
        (put("k/b", "2"), put_ok(3)),
        (put("k/a", "3"), put_ok(4)),
    ];
    let mut ops: Vec<Operation> = sequential_ops(writes);
    ops.push(Operation {
        id: 3,
        client: 1,
        member: Some(3),
        invoke_ns: 50 * MS,
        complete_ns: 55 * MS,
        request,
        outcome,
    });
    History {
        ops,
        watches: vec![],
    }
}

#[test]
fn a_stale_but_correct_serializable_read_passes() {
    // A member still at revision 3: a=1, b=2.
    let h = with_read(
        stale_prefix(0, 0),
        range_ok(
            3,
            vec![kv("k/a", "1", 2, 2, 1), kv("k/b", "2", 3, 3, 1)],
            false,
            2,
        ),
    );
    assert_eq!(check_etcd_history(&h, BUDGET), Verdict::Linearizable);
    // With a limit: more and count as at revision 3.
    let h = with_read(
        stale_prefix(0, 1),
        range_ok(3, vec![kv("k/a", "1", 2, 2, 1)], true, 2),
    );
    assert_eq!(check_etcd_history(&h, BUDGET), Verdict::Linearizable);
    // At revision 2 (only a=1), the member even further behind.
    let h = with_read(
        stale_prefix(0, 0),
        range_ok(2, vec![kv("k/a", "1", 2, 2, 1)], false, 1),
    );
    assert_eq!(check_etcd_history(&h, BUDGET), Verdict::Linearizable);
}

#[test]
fn a_serializable_read_that_does_not_match_its_revision_is_caught() {
    for outcome in [
        // Header 3 but a's value of revision 4.
        range_ok(
            3,
            vec![kv("k/a", "3", 2, 4, 2), kv("k/b", "2", 3, 3, 1)],
            false,
            2,
        ),
        // Header 3 but b missing.
        range_ok(3, vec![kv("k/a", "1", 2, 2, 1)], false, 1),
        // Right KVs, wrong count.
        range_ok(
            3,
            vec![kv("k/a", "1", 2, 2, 1), kv("k/b", "2", 3, 3, 1)],
            false,
            3,
        ),
        // A revision that never existed.
        range_ok(9, vec![], false, 0),
    ] {
        let h = with_read(stale_prefix(0, 0), outcome.clone());
        let v = check_etcd_history(&h, BUDGET);
        assert!(v.is_not_linearizable(), "{outcome:?} passed: {v:?}");
    }
    // With a limit: `more` wrong.
    let h = with_read(
        stale_prefix(0, 1),
        range_ok(3, vec![kv("k/a", "1", 2, 2, 1)], false, 2),
    );
    assert!(check_etcd_history(&h, BUDGET).is_not_linearizable());
}

#[test]
fn a_serializable_read_at_an_old_revision_is_checked_at_that_revision() {
    // Read at revision 2 served by a member at revision 4.
    let ok = with_read(
        stale_prefix(2, 0),
        range_ok(4, vec![kv("k/a", "1", 2, 2, 1)], false, 1),
    );
    assert_eq!(check_etcd_history(&ok, BUDGET), Verdict::Linearizable);
    let wrong = with_read(
        stale_prefix(2, 0),
        range_ok(
            4,
            vec![kv("k/a", "1", 2, 2, 1), kv("k/b", "2", 3, 3, 1)],
            false,
            2,
        ),
    );
    assert!(check_etcd_history(&wrong, BUDGET).is_not_linearizable());
}
