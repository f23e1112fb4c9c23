//! Lease expiry on the members' clocks, through leader changes and keep-alives.

use faultline_api::{
    LeaseGrantRequest, LeaseKeepAliveRequest, LeaseTimeToLiveRequest, Request, Response,
};

use super::{client_outcomes, get, ok, op, put, quiet_plan};
use crate::plan::{Fault, FaultWindow, IsolateTarget, Plan};
use crate::runner::{simulate, RunOptions};
use crate::trace::TraceEvent;

// §8: a lease nobody keeps alive expires on the leader and is revoked through Raft: its
// key disappears, TimeToLive counts down, KeepAlive then answers TTL 0.
#[test]
fn unrefreshed_lease_expires_and_its_keys_are_deleted() {
    let lease = 77;
    let ops = vec![
        op(
            500,
            Request::LeaseGrant(LeaseGrantRequest {
                ttl_seconds: 2,
                id: lease,
            }),
        ),
        op(0, put("k/0", "leased", lease)),
        op(
            1000,
            Request::LeaseTimeToLive(LeaseTimeToLiveRequest {
                id: lease,
                keys: true,
            }),
        ),
        op(0, get("k/0")),
        op(2500, get("k/0")),
        op(
            0,
            Request::LeaseKeepAlive(LeaseKeepAliveRequest { id: lease }),
        ),
        op(
            0,
            Request::LeaseTimeToLive(LeaseTimeToLiveRequest {
                id: lease,
                keys: false,
            }),
        ),
    ];
    let output = simulate(&quiet_plan(ops, vec![]), &RunOptions::default());
    let outcomes = client_outcomes(&output);
    assert_eq!(outcomes.len(), 7);
    let Response::LeaseTimeToLive(ttl) = ok(&outcomes[2].1) else {
        panic!("TimeToLive answers TimeToLive")
    };
    assert_eq!(ttl.granted_ttl_seconds, 2);
    assert!(ttl.ttl_seconds < 2 && ttl.ttl_seconds >= 0, "{ttl:?}");
    assert_eq!(ttl.keys, vec![b"k/0".to_vec()]);
    let Response::Range(before) = ok(&outcomes[3].1) else {
        panic!("range")
    };
    assert_eq!(before.count, 1, "the key lives while the lease does");
    let Response::Range(after) = ok(&outcomes[4].1) else {
        panic!("range")
    };
    assert_eq!(
        after.count, 0,
        "expiry revoked the lease and deleted its key"
    );
    let Response::LeaseKeepAlive(keep_alive) = ok(&outcomes[5].1) else {
        panic!("keep-alive")
    };
    assert_eq!(keep_alive.ttl_seconds, 0);
    let Response::LeaseTimeToLive(gone) = ok(&outcomes[6].1) else {
        panic!("ttl")
    };
    assert_eq!(gone.ttl_seconds, -1);
}

/// A leader whose clock runs 5x fast expires a 10 s lease after about 2 s of simulated
/// time (lease expiry follows the member's clock); without the skew the key lives on.
#[test]
fn a_fast_leader_clock_expires_a_lease_early() {
    let lease = 80;
    let ops = vec![
        op(
            500,
            Request::LeaseGrant(LeaseGrantRequest {
                ttl_seconds: 10,
                id: lease,
            }),
        ),
        op(0, put("k/0", "leased", lease)),
        op(3000, get("k/0")),
    ];
    let count_at_end = |plan: &Plan| {
        let output = simulate(plan, &RunOptions::default());
        let outcomes = client_outcomes(&output);
        let Response::Range(range) = ok(&outcomes[2].1) else {
            panic!("range")
        };
        range.count
    };
    let plain = quiet_plan(ops, vec![]);
    assert_eq!(count_at_end(&plain), 1, "10 s have not passed");
    let mut skewed = plain.clone();
    skewed.faults = vec![FaultWindow {
        start_ms: 1000,
        duration_ms: 3000,
        fault: Fault::ClockSkew {
            target: IsolateTarget::Leader,
            rate_percent: 500,
        },
    }];
    assert_eq!(count_at_end(&skewed), 0, "the fast clock expired the lease");
}

// §8: keep-alives on the leader reset the expiry; the key outlives several TTLs.
#[test]
fn kept_alive_lease_survives() {
    let lease = 78;
    let mut ops = vec![
        op(
            500,
            Request::LeaseGrant(LeaseGrantRequest {
                ttl_seconds: 2,
                id: lease,
            }),
        ),
        op(0, put("k/0", "leased", lease)),
    ];
    for _ in 0..12 {
        ops.push(op(
            500,
            Request::LeaseKeepAlive(LeaseKeepAliveRequest { id: lease }),
        ));
    }
    ops.push(op(0, get("k/0")));
    let output = simulate(&quiet_plan(ops, vec![]), &RunOptions::default());
    let outcomes = client_outcomes(&output);
    for (_, outcome) in &outcomes[2..14] {
        let Response::LeaseKeepAlive(keep_alive) = ok(outcome) else {
            panic!("keep-alive")
        };
        assert_eq!(keep_alive.ttl_seconds, 2);
    }
    let Response::Range(range) = ok(&outcomes[14].1) else {
        panic!("range")
    };
    assert_eq!(range.count, 1, "6 s of keep-alives kept a 2 s lease");
}

// §8: a new leader extends every lease (promote with the election timeout), so a leader
// change never makes a lease expire before its TTL; it still expires later.
#[test]
fn leader_change_does_not_expire_a_lease_early() {
    let lease = 79;
    let ops = vec![
        op(
            500,
            Request::LeaseGrant(LeaseGrantRequest {
                ttl_seconds: 2,
                id: lease,
            }),
        ),
        op(0, put("k/0", "leased", lease)),
        // Just before the TTL ends, measured from the grant: the old leader is cut off
        // and a new one leads, which restarted the lease's clock at its promotion.
        op(1700, get("k/0")),
        op(3000, get("k/0")),
    ];
    let mut plan = quiet_plan(ops, vec![]);
    plan.faults = vec![FaultWindow {
        start_ms: 1200,
        duration_ms: 6000,
        fault: Fault::Isolate {
            target: IsolateTarget::Leader,
        },
    }];
    let output = simulate(&plan, &RunOptions::default());
    let outcomes = client_outcomes(&output);
    let grant_ns = output.history.ops[0].complete_ns;
    let reads: Vec<_> = output
        .history
        .ops
        .iter()
        .filter(|op| matches!(op.request, Request::Range(_)) && op.client == 0)
        .collect();
    assert_eq!(reads.len(), 2, "{outcomes:?}");
    let new_leader = output.trace.iter().any(|record| {
        matches!(&record.event, TraceEvent::Member {
            event: faultline_node::NodeEvent::RoleChanged { role, .. }, ..
        } if role == "Leader")
            && record.at_ns > 1_200_000_000
            && record.at_ns < reads[0].invoke_ns
    });
    assert!(new_leader, "a new leader took over before the first read");
    assert!(
        reads[0].complete_ns < grant_ns + 2_000_000_000,
        "the first read ends within the TTL"
    );
    let Response::Range(before) = ok(&reads[0].outcome) else {
        panic!("range")
    };
    assert_eq!(
        before.count, 1,
        "the new leader must not expire the lease early"
    );
    let Response::Range(after) = ok(&reads[1].outcome) else {
        panic!("range")
    };
    assert_eq!(after.count, 0, "the new leader expires it eventually");
}
