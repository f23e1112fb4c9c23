//! Unknown-outcome lease grants and revokes, which change no revision: when they must be
//! linearized, when they must not, and that the lease pruning (`LeaseFacts`), the lazy placement
//! of lease steps and the symmetry of same-id lease operations never change a verdict.

mod common;

use common::{hdr, put};
use faultline_api::*;
use faultline_invariants::etcd::check_etcd_history;
use faultline_invariants::history::{History, Operation, Outcome};
use faultline_invariants::linearizability::Verdict;

const MS: u64 = 1_000_000;
const BUDGET: u64 = 100_000;

/// (client, invoke ms, complete ms, request, outcome); each op its own client unless given.
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
    Outcome::Unknown("request timed out".to_string())
}

fn grant(id: i64) -> Request {
    Request::LeaseGrant(LeaseGrantRequest {
        ttl_seconds: 7200,
        id,
    })
}

fn grant_ok(revision: i64, id: i64) -> Outcome {
    Outcome::Ok(Response::LeaseGrant(LeaseGrantResponse {
        header: hdr(revision),
        id,
        ttl_seconds: 7200,
    }))
}

fn revoke(id: i64) -> Request {
    Request::LeaseRevoke(LeaseRevokeRequest { id })
}

fn revoke_ok(revision: i64) -> Outcome {
    Outcome::Ok(Response::LeaseRevoke(LeaseRevokeResponse {
        header: hdr(revision),
    }))
}

fn put_with_lease(key: &str, value: &str, lease: i64) -> Request {
    let Request::Put(mut p) = put(key, value) else {
        unreachable!()
    };
    p.lease = lease;
    Request::Put(p)
}

fn put_ok(revision: i64) -> Outcome {
    Outcome::Ok(Response::Put(PutResponse {
        header: hdr(revision),
        prev_kv: None,
    }))
}

/// A count-only read: it shows that the key exists, not its value or lease.
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

fn linearizable(h: &History) -> bool {
    match check_etcd_history(h, BUDGET) {
        Verdict::Linearizable => true,
        Verdict::NotLinearizable(_) => false,
        Verdict::Unknown { reason } => panic!("no verdict within the budget: {reason}"),
    }
}

// ---------------------------------------------------------------------------------------------
// A second known grant of an id needs a revoke in between.

/// grant(5), then an unknown revoke, then grant(5) again: the revoke must have happened.
#[test]
fn an_unknown_revoke_is_placed_between_two_known_grants() {
    let h = history(vec![
        (0, 0, 10, grant(5), grant_ok(1, 5)),
        (1, 20, 30, revoke(5), unknown()),
        (2, 40, 50, grant(5), grant_ok(1, 5)),
    ]);
    assert!(linearizable(&h));
}

/// Without the unknown revoke, the second grant of the same id is impossible.
#[test]
fn two_known_grants_of_one_id_without_a_revoke_are_rejected() {
    let h = history(vec![
        (0, 0, 10, grant(5), grant_ok(1, 5)),
        (2, 40, 50, grant(5), grant_ok(1, 5)),
    ]);
    assert!(!linearizable(&h));
}

/// An unknown revoke takes effect at most once: three known grants need two revokes.
#[test]
fn one_unknown_revoke_cannot_serve_two_regrants() {
    let one = history(vec![
        (0, 0, 10, grant(5), grant_ok(1, 5)),
        (1, 5, 100, revoke(5), unknown()),
        (2, 40, 50, grant(5), grant_ok(1, 5)),
        (3, 60, 70, grant(5), grant_ok(1, 5)),
    ]);
    assert!(!linearizable(&one));
    let two = history(vec![
        (0, 0, 10, grant(5), grant_ok(1, 5)),
        (1, 5, 100, revoke(5), unknown()),
        (4, 5, 100, revoke(5), unknown()),
        (2, 40, 50, grant(5), grant_ok(1, 5)),
        (3, 60, 70, grant(5), grant_ok(1, 5)),
    ]);
    assert!(linearizable(&two));
}

/// An unknown revoke invoked after the second grant completed cannot come before it.
#[test]
fn an_unknown_revoke_cannot_take_effect_before_its_invocation() {
    let h = history(vec![
        (0, 0, 10, grant(5), grant_ok(1, 5)),
        (2, 40, 50, grant(5), grant_ok(1, 5)),
        (1, 60, 70, revoke(5), unknown()),
    ]);
    assert!(!linearizable(&h));
}

// ---------------------------------------------------------------------------------------------
// A known use of a lease after a known revoke needs a grant in between.

/// grant, revoke (no keys: revision 1), then a put with the lease: an unknown grant between.
#[test]
fn an_unknown_grant_is_placed_between_a_revoke_and_a_use() {
    let h = history(vec![
        (0, 0, 10, grant(5), grant_ok(1, 5)),
        (0, 20, 30, revoke(5), revoke_ok(1)),
        (1, 25, 200, grant(5), unknown()),
        (2, 40, 50, put_with_lease("a", "x", 5), put_ok(2)),
    ]);
    assert!(linearizable(&h));
}

/// The same, with the unknown grant invoked after the put completed: rejected.
#[test]
fn an_unknown_grant_invoked_after_the_use_cannot_serve_it() {
    let h = history(vec![
        (0, 0, 10, grant(5), grant_ok(1, 5)),
        (0, 20, 30, revoke(5), revoke_ok(1)),
        (2, 40, 50, put_with_lease("a", "x", 5), put_ok(2)),
        (1, 60, 200, grant(5), unknown()),
    ]);
    assert!(!linearizable(&h));
}

// ---------------------------------------------------------------------------------------------
// An unknown grant that an unknown put would need to fill a free revision (the pattern that made
// the 100,000-operation benchmark run out of budget): the lease would then exist until a later
// known grant of the same id, which needs it absent.

/// Ops: grant(5) at 1; put a with lease 5 at 2; revoke(5) at 3 (deletes a); an unknown
/// grant(5) and an unknown put b with lease 5; a read showing b exists at 4 (someone put b);
/// a known grant(5) at `regrant_revision`. `others` are added to the middle.
fn regrant_after_filler(
    others: Vec<(u64, u64, u64, Request, Outcome)>,
    regrant_revision: i64,
) -> History {
    let mut ops = vec![
        (0, 0, 10, grant(5), grant_ok(1, 5)),
        (0, 20, 30, put_with_lease("a", "1", 5), put_ok(2)),
        (0, 40, 50, revoke(5), revoke_ok(3)),
        (1, 60, 70, grant(5), unknown()),
        (2, 60, 70, put_with_lease("b", "x", 5), unknown()),
    ];
    ops.extend(others);
    ops.push((4, 100, 110, count("b"), count_ok(4, 1)));
    ops.push((0, 120, 130, grant(5), grant_ok(regrant_revision, 5)));
    history(ops)
}

/// Another unknown put of b without a lease can fill revision 4: linearizable, and the unknown
/// grant must not be linearized.
#[test]
fn a_filler_that_needs_no_lease_is_found() {
    let h = regrant_after_filler(vec![(3, 60, 70, put("b", "y"), unknown())], 4);
    assert!(linearizable(&h));
}

/// Only the leased put can fill revision 4, so lease 5 exists at the known grant: rejected.
#[test]
fn a_lease_granted_for_a_filler_blocks_a_later_known_grant() {
    let h = regrant_after_filler(vec![], 4);
    assert!(!linearizable(&h));
}

/// With an unknown revoke invoked in time (it deletes b, producing revision 5), grant, put,
/// revoke, grant works again.
#[test]
fn an_unknown_revoke_in_time_reopens_the_id() {
    let h = regrant_after_filler(vec![(5, 80, 90, revoke(5), unknown())], 5);
    assert!(linearizable(&h));
}

/// The same revoke invoked after the known grant completed is too late.
#[test]
fn an_unknown_revoke_too_late_does_not_reopen_the_id() {
    let h = regrant_after_filler(vec![(5, 140, 150, revoke(5), unknown())], 5);
    assert!(!linearizable(&h));
}

// ---------------------------------------------------------------------------------------------
// Lazy lease steps and same-id symmetry.

/// Many unknown grants and revokes of one id around known grants: every known grant needs the
/// lease absent, and the revokes are few. Exactly as many known re-grants as unknown revokes
/// is linearizable; one more re-grant is not (the search must still conclude within budget).
#[test]
fn many_unknown_lease_operations_of_one_id() {
    let build = |regrants: u64| {
        let mut ops = vec![(0, 0, 10, grant(5), grant_ok(1, 5))];
        for i in 0..6 {
            ops.push((10 + i, 5, 1000, grant(5), unknown()));
        }
        for i in 0..3 {
            ops.push((20 + i, 5, 1000, revoke(5), unknown()));
        }
        for i in 0..regrants {
            let t = 100 + 20 * i;
            ops.push((1, t, t + 10, grant(5), grant_ok(1, 5)));
        }
        history(ops)
    };
    assert!(linearizable(&build(3)));
    assert!(!linearizable(&build(4)));
}

// ---------------------------------------------------------------------------------------------
// Differential: the lease pruning never changes a verdict.

/// Generated histories with leases and many unknown outcomes, as generated (linearizable) and
/// with unknown revokes or unknown grants removed (which can make them non-linearizable): the
/// search with
/// `LeaseFacts` and the search without them must agree.
#[test]
fn lease_pruning_agrees_with_the_plain_search() {
    use faultline_invariants::etcd::prepare;
    use faultline_invariants::linearizability::{check, TimeUnit};
    use faultline_invariants::testkit::{generate_etcd_history, GenOptions};
    let mut rejected = 0;
    for seed in 0..60 {
        let mut o = GenOptions::benchmark(seed);
        o.ops = 400;
        o.clients = 6;
        o.keys = 4;
        o.unknown_percent = 25;
        let generated = generate_etcd_history(&o);
        let without = |grants: bool| {
            let mut h = generated.clone();
            for op in &mut h.ops {
                let lease_op = match op.request {
                    Request::LeaseGrant(_) => grants,
                    Request::LeaseRevoke(_) => !grants,
                    _ => false,
                };
                if lease_op && op.is_unknown() {
                    op.outcome = Outcome::Failed(EtcdError::LeaseNotFound);
                }
            }
            h
        };
        let (without_revokes, without_grants) = (without(false), without(true));
        for (h, must_pass) in [
            (&generated, true),
            (&without_revokes, false),
            (&without_grants, false),
        ] {
            let p = prepare(h);
            let with = check(&p.model, &p.ops, 1_000_000, TimeUnit::Nanoseconds);
            let mut plain = p.model;
            plain.lease_facts = None;
            let without = check(&plain, &p.ops, 1_000_000, TimeUnit::Nanoseconds);
            assert!(!with.is_unknown() && !without.is_unknown(), "seed {seed}");
            assert_eq!(
                with.is_linearizable(),
                without.is_linearizable(),
                "seed {seed}"
            );
            if must_pass {
                assert!(with.is_linearizable(), "seed {seed}: {with}");
            } else if !with.is_linearizable() {
                rejected += 1;
            }
        }
    }
    // The mutation must produce some violations, or the comparison shows little.
    assert!(rejected > 0);
}

// Unknown lease grants that only unknown writes need (new-leader-cuts seed 44): the checker
// dropped such a grant as "needed by nobody", so the unknown put with that lease could never
// apply, and a linearizable history failed.

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

// ---------------------------------------------------------------------------------------------
// A put with ignore_lease keeps its key's lease and reads no other: lazy lease steps commute
// with it (lossy-leader-churn seed 0 ran out of its budget while it counted as reading every
// lease).

fn put_keeping_lease(key: &str, value: &str) -> Request {
    let Request::Put(mut p) = put(key, value) else {
        unreachable!()
    };
    p.ignore_lease = true;
    Request::Put(p)
}

fn range(key: &str) -> Request {
    Request::Range(RangeRequest {
        key: key.as_bytes().to_vec(),
        ..Default::default()
    })
}

fn range_ok(revision: i64, kvs: Vec<KeyValue>) -> Outcome {
    let count = kvs.len() as i64;
    Outcome::Ok(Response::Range(RangeResponse {
        header: hdr(revision),
        kvs,
        more: false,
        count,
    }))
}

/// (create, mod) revisions, version, lease.
fn kv_with_lease(key: &str, value: &str, revs: (i64, i64), version: i64, lease: i64) -> KeyValue {
    let (create, modr) = revs;
    KeyValue {
        key: key.as_bytes().to_vec(),
        create_revision: create,
        mod_revision: modr,
        version,
        value: value.as_bytes().to_vec(),
        lease,
    }
}

/// The put keeping its key's lease needs the key: an unknown revoke of that lease (which
/// deletes the key) cannot come before it, and a later grant of the same id needs the revoke
/// after it. The key must then be gone; a read showing it is not linearizable.
#[test]
fn a_put_keeping_its_lease_orders_the_revoke_of_that_lease() {
    let mut ops = vec![
        (0, 0, 10, grant(5), grant_ok(1, 5)),
        (1, 20, 30, put_with_lease("k", "a", 5), put_ok(2)),
        (2, 35, 1000, revoke(5), unknown()),
        (3, 40, 50, put_keeping_lease("k", "b"), put_ok(3)),
        (4, 60, 70, grant(5), grant_ok(4, 5)),
    ];
    ops.push((5, 80, 90, range("k"), range_ok(4, vec![])));
    assert!(linearizable(&history(ops.clone())));
    ops.pop();
    ops.push((
        5,
        80,
        90,
        range("k"),
        range_ok(4, vec![kv_with_lease("k", "b", (2, 3), 2, 5)]),
    ));
    assert!(!linearizable(&history(ops)));
}

/// Many unknown grants of distinct ids (lazy: they change no key) and an unknown put keeping
/// its key's lease, then a read that only a value nobody wrote explains: not linearizable
/// (the put keeping its lease no longer ends runs of lazy grants: the search still fails
/// where it must), and linearizable with the value written.
#[test]
fn lazy_grants_do_not_wait_for_a_put_keeping_its_lease() {
    let mut ops = vec![(0, 0, 10, put("k", "a"), put_ok(2))];
    for i in 0..14 {
        ops.push((1 + i, 20, 1000, grant(100 + i as i64), unknown()));
    }
    ops.push((20, 20, 1000, put_keeping_lease("k", "b"), unknown()));
    ops.push((21, 100, 110, put("j", "c"), put_ok(4)));
    let read = |v: &str| range_ok(4, vec![kv_with_lease("j", v, (4, 4), 1, 0)]);
    ops.push((22, 200, 210, range("j"), read("c")));
    assert!(linearizable(&history(ops.clone())));
    *ops.last_mut().unwrap() = (22, 200, 210, range("j"), read("x"));
    assert!(!linearizable(&history(ops)));
}
