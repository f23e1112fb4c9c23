//! Unknown lease grants that only unknown writes need (new-leader-cuts seed 44): the checker
//! dropped such a grant as "needed by nobody", so the unknown put with that lease could never
//! apply, and a linearizable history failed.

mod common;

use common::{hdr, put};
use faultline_api::*;
use faultline_invariants::etcd::check_etcd_history;
use faultline_invariants::history::{History, Operation, Outcome};
use faultline_invariants::linearizability::Verdict;

const MS: u64 = 1_000_000;
const BUDGET: u64 = 100_000;

/// (client, invoke ms, complete ms, request, outcome)
fn history(ops: Vec<(u64, u64, u64, Request, Outcome)>) -> History {
    History {
        ops: ops
            .into_iter()
            .enumerate()
            .map(|(i, (client, a, b, request, outcome))| Operation {
                id: i as u64,
                client,
                member: Some(1),
                invoke_ns: a * MS,
                complete_ns: b * MS,
                request,
                outcome,
            })
            .collect(),
        watches: Vec::new(),
    }
}

fn unknown() -> Outcome {
    Outcome::Unknown("leader changed".to_string())
}

fn grant(id: i64) -> Request {
    Request::LeaseGrant(LeaseGrantRequest {
        ttl_seconds: 7200,
        id,
    })
}

fn put_with_lease(key: &str, value: &str, lease: i64) -> Request {
    let Request::Put(mut p) = put(key, value) else {
        unreachable!()
    };
    p.lease = lease;
    Request::Put(p)
}

/// A count-only read: it shows that the key exists, not which lease it has.
fn count(key: &str) -> Request {
    Request::Range(RangeRequest {
        key: key.as_bytes().to_vec(),
        count_only: true,
        ..Default::default()
    })
}

fn count_ok(revision: i64, count: i64) -> Outcome {
    Outcome::Ok(Response::Range(RangeResponse {
        header: hdr(revision),
        kvs: vec![],
        more: false,
        count,
    }))
}

#[test]
fn an_unknown_grant_needed_only_by_an_unknown_put_is_kept() {
    let h = history(vec![
        (0, 0, 10, grant(5), unknown()),
        (1, 20, 30, put_with_lease("a", "x", 5), unknown()),
        (2, 100, 110, count("a"), count_ok(2, 1)),
    ]);
    assert_eq!(check_etcd_history(&h, BUDGET), Verdict::Linearizable);
}

/// The other side: without any grant of the lease, the put cannot have applied.
#[test]
fn an_unknown_put_with_a_lease_nobody_granted_cannot_apply() {
    let h = history(vec![
        (1, 20, 30, put_with_lease("a", "x", 5), unknown()),
        (2, 100, 110, count("a"), count_ok(2, 1)),
    ]);
    assert!(matches!(
        check_etcd_history(&h, BUDGET),
        Verdict::NotLinearizable(_)
    ));
}

/// And a grant that comes too late (invoked after the read returned) cannot help.
#[test]
fn an_unknown_grant_cannot_apply_before_its_invocation() {
    let h = history(vec![
        (1, 20, 30, put_with_lease("a", "x", 5), unknown()),
        (2, 100, 110, count("a"), count_ok(2, 1)),
        (0, 200, 210, grant(5), unknown()),
    ]);
    assert!(matches!(
        check_etcd_history(&h, BUDGET),
        Verdict::NotLinearizable(_)
    ));
}
