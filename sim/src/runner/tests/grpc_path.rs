//! The simulator's requests take etcd's gRPC service layer (faultline-grpc's service impls,
//! the code faultline-server runs for real clients), and the store's errors come back
//! through the status round trip as the same `EtcdError`.

use faultline_api::{EtcdError, RangeRequest, Request};
use faultline_grpc::wire::{served, Method};
use faultline_invariants::history::Outcome;

use super::{client_outcomes, get, ok, op, put, quiet_plan};
use crate::runner::{simulate, RunOptions};

#[test]
fn clients_final_checks_and_errors_go_through_the_grpc_services() {
    let future = Request::Range(RangeRequest {
        key: b"k/0".to_vec(),
        revision: 1_000,
        ..RangeRequest::default()
    });
    let ops = vec![
        op(500, put("k/0", "v0", 0)),
        op(0, get("k/0")),
        op(0, future),
        op(0, put("k/1", "v1", 12_345)),
    ];
    let before = served();
    let output = simulate(&quiet_plan(ops, Vec::new()), &RunOptions::default());
    let after = served();
    let count = |method| after.get(&method).unwrap_or(&0) - before.get(&method).unwrap_or(&0);

    let outcomes = client_outcomes(&output);
    assert_eq!(outcomes.len(), 4, "{outcomes:?}");
    ok(&outcomes[0].1);
    ok(&outcomes[1].1);
    // Errors travel as etcd's gRPC statuses and are read back as the store's errors.
    assert_eq!(outcomes[2].1, Outcome::Failed(EtcdError::FutureRev));
    assert_eq!(outcomes[3].1, Outcome::Failed(EtcdError::LeaseNotFound));

    // Every client request was served by the service impls (a NotLeader answer followed to
    // the leader is served twice), and so were the final phase's Status, MemberList and
    // HashKV calls.
    assert!(count(Method::Put) >= 2, "{after:?}");
    assert!(count(Method::Range) >= 2, "{after:?}");
    assert!(count(Method::Status) >= 1, "{after:?}");
    assert!(count(Method::MemberList) >= 1, "{after:?}");
    assert!(count(Method::HashKv) >= 1, "{after:?}");
}
