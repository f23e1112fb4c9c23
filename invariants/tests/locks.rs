//! The leader-election lock checker (`lock::check_locks`): two clients that believed they
//! held one lock at once are caught; holders one after the other are not.

mod common;

use common::hdr;
use faultline_api::*;
use faultline_invariants::history::{History, Operation, Outcome};
use faultline_invariants::lock::{campaign_shape, check_locks};

const MS: u64 = 1_000_000;
const KEY: &[u8] = b"election/leader";

/// (client, invoke ms, complete ms, request, outcome).
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
        watches: vec![],
    }
}

fn grant(id: i64) -> (Request, Outcome) {
    (
        Request::LeaseGrant(LeaseGrantRequest { ttl_seconds: 2, id }),
        Outcome::Ok(Response::LeaseGrant(LeaseGrantResponse {
            header: hdr(1),
            id,
            ttl_seconds: 2,
        })),
    )
}

fn campaign(lease: i64, target: CompareTarget, succeeded: bool) -> (Request, Outcome) {
    let txn = TxnRequest {
        compare: vec![Compare {
            result: CompareResult::Equal,
            target,
            key: KEY.to_vec(),
            range_end: vec![],
        }],
        success: vec![RequestOp::Put(PutRequest {
            key: KEY.to_vec(),
            value: format!("candidate-{lease}").into_bytes(),
            lease,
            ..Default::default()
        })],
        failure: vec![RequestOp::Range(RangeRequest {
            key: KEY.to_vec(),
            ..Default::default()
        })],
    };
    (
        Request::Txn(txn),
        Outcome::Ok(Response::Txn(TxnResponse {
            header: hdr(2),
            succeeded,
            responses: vec![],
        })),
    )
}

fn won(lease: i64) -> (Request, Outcome) {
    campaign(lease, CompareTarget::CreateRevision(0), true)
}

fn keep_alive(id: i64) -> (Request, Outcome) {
    (
        Request::LeaseKeepAlive(LeaseKeepAliveRequest { id }),
        Outcome::Ok(Response::LeaseKeepAlive(LeaseKeepAliveResponse {
            header: hdr(2),
            id,
            ttl_seconds: 2,
        })),
    )
}

fn resign(id: i64) -> (Request, Outcome) {
    (
        Request::LeaseRevoke(LeaseRevokeRequest { id }),
        Outcome::Ok(Response::LeaseRevoke(LeaseRevokeResponse {
            header: hdr(3),
        })),
    )
}

/// Client 1 holds lease 1 (granted at 0 ms, campaign won at 10 ms), then `tail`.
fn first_holder_then(tail: Vec<(u64, u64, u64, (Request, Outcome))>) -> History {
    let mut ops = vec![(1, 0, 1, grant(1)), (1, 10, 11, won(1))];
    ops.extend(tail);
    history(
        ops.into_iter()
            .map(|(c, a, b, (req, out))| (c, a, b, req, out))
            .collect(),
    )
}

#[test]
fn two_overlapping_holders_are_caught() {
    // Client 1's validity lasts until 0 + 2 s / 1.1 = 1.82 s; client 2 wins at 1 s.
    let h = first_holder_then(vec![(2, 900, 901, grant(2)), (2, 1000, 1001, won(2))]);
    let v = check_locks(&h, 10);
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!((v[0].first.client, v[0].second.client), (1, 2));
    assert_eq!((v[0].first.campaign_op, v[0].second.campaign_op), (1, 3));
    let text = v[0].to_string();
    assert!(
        text.contains("client 1") && text.contains("client 2"),
        "{text}"
    );
    // A keep-alive acknowledged at 1.5 s extends client 1's belief past client 2's win at 2 s.
    let h = first_holder_then(vec![
        (1, 1500, 1501, keep_alive(1)),
        (2, 1900, 1901, grant(2)),
        (2, 2000, 2001, campaign(2, CompareTarget::Version(0), true)),
    ]);
    assert_eq!(check_locks(&h, 10).len(), 1);
}

/// A clock beyond the bound while the first holder's lease lived (from its grant at 0 ms to
/// the second win at 1 s) excuses the overlap; one before the grant or after the win does not.
#[test]
fn a_clock_beyond_the_bound_excuses_an_overlap_only_while_the_lease_lived() {
    let h = first_holder_then(vec![(2, 900, 901, grant(2)), (2, 1000, 1001, won(2))]);
    let [v] = check_locks(&h, 10).try_into().expect("one overlap");
    assert_eq!(v.first.lease_from_ns, 0);
    assert!(v.excused_by_clock(&[(500 * MS, 600 * MS)]));
    assert!(v.excused_by_clock(&[(1001 * MS, 2000 * MS)]));
    assert!(!v.excused_by_clock(&[(1002 * MS, 2000 * MS)]));
    assert!(!v.excused_by_clock(&[]));
}

#[test]
fn sequential_holders_pass() {
    // After client 1's validity ran out (no keep-alive).
    let h = first_holder_then(vec![(2, 1900, 1901, grant(2)), (2, 2000, 2001, won(2))]);
    assert_eq!(check_locks(&h, 10), vec![]);
    // After client 1 resigned.
    let h = first_holder_then(vec![
        (1, 500, 501, resign(1)),
        (2, 600, 601, grant(2)),
        (2, 700, 701, won(2)),
    ]);
    assert_eq!(check_locks(&h, 10), vec![]);
    // A lost campaign believes nothing.
    let h = first_holder_then(vec![
        (2, 600, 601, grant(2)),
        (
            2,
            700,
            701,
            campaign(2, CompareTarget::CreateRevision(0), false),
        ),
    ]);
    assert_eq!(check_locks(&h, 10), vec![]);
    // A keep-alive after the validity lapsed does not bring the belief back.
    let h = first_holder_then(vec![
        (1, 1900, 1901, keep_alive(1)),
        (2, 1950, 1951, grant(2)),
        (2, 2000, 2001, won(2)),
    ]);
    assert_eq!(check_locks(&h, 10), vec![]);
}

#[test]
fn a_key_other_writes_touch_is_no_lock() {
    let delete = (
        Request::DeleteRange(DeleteRangeRequest {
            key: b"election/".to_vec(),
            range_end: b"election0".to_vec(),
            prev_kv: false,
        }),
        Outcome::Ok(Response::DeleteRange(DeleteRangeResponse {
            header: hdr(3),
            deleted: 1,
            prev_kvs: vec![],
        })),
    );
    let h = first_holder_then(vec![
        (3, 500, 501, delete),
        (2, 900, 901, grant(2)),
        (2, 1000, 1001, won(2)),
    ]);
    assert_eq!(check_locks(&h, 10), vec![]);
}

#[test]
fn only_the_campaign_shape_counts() {
    let (Request::Txn(t), _) = won(1) else {
        unreachable!()
    };
    assert_eq!(campaign_shape(&t), Some((KEY, 1)));
    let (Request::Txn(cas), _) = campaign(1, CompareTarget::ModRevision(5), true) else {
        unreachable!()
    };
    assert_eq!(
        campaign_shape(&cas),
        None,
        "a guarded update is no campaign"
    );
    let mut no_lease = t.clone();
    if let RequestOp::Put(p) = &mut no_lease.success[0] {
        p.lease = 0;
    }
    assert_eq!(campaign_shape(&no_lease), None);
}
