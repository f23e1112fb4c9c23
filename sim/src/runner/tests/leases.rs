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

/// §8 (etcd's lessor Renew): a keep-alive of a lease that expired on the leader but whose
/// revoke has not applied yet waits for the revoke, so a client told TTL 0 never reads the
/// lease's key afterwards, and the answer's revision is the revoke's. The keep-alive is sent at
/// times sweeping across the expiry, so that some arrive between the expiry and the revoke's
/// apply (events seed 434 had one: its TTL 0 came 28 ms before the revoke applied).
#[test]
fn a_keep_alive_reporting_the_lease_gone_comes_after_its_revoke() {
    let lease = 81;
    let mut gone = 0;
    for think_ms in (1880..1960).step_by(2) {
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
                think_ms,
                Request::LeaseKeepAlive(LeaseKeepAliveRequest { id: lease }),
            ),
            op(0, get("k/0")),
        ];
        let output = simulate(&quiet_plan(ops, vec![]), &RunOptions::default());
        let outcomes = client_outcomes(&output);
        let Response::LeaseKeepAlive(keep_alive) = ok(&outcomes[2].1) else {
            panic!("keep-alive")
        };
        let Response::Range(range) = ok(&outcomes[3].1) else {
            panic!("range")
        };
        let Response::Put(put) = ok(&outcomes[1].1) else {
            panic!("put")
        };
        if keep_alive.ttl_seconds == 0 {
            gone += 1;
            // The revoke deletes the key at a new revision: the answer must come after it.
            assert!(
                keep_alive.header.revision > put.header.revision,
                "keep-alive sent {think_ms} ms after the put said lease gone at revision {}, \
                 before its revoke deleted the key put at revision {}",
                keep_alive.header.revision,
                put.header.revision
            );
            assert_eq!(
                range.count, 0,
                "keep-alive sent {think_ms} ms after the put said lease gone at revision {}, \
                 then its key was read at revision {}",
                keep_alive.header.revision, range.header.revision
            );
        }
    }
    assert!(gone > 0, "no keep-alive came after the expiry");
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

/// Leader changes (a member becoming leader) between `from_ns` and `to_ns`.
fn leader_changes(output: &crate::runner::RunOutput, from_ns: u64, to_ns: u64) -> usize {
    output
        .trace
        .iter()
        .filter(|record| {
            matches!(&record.event, TraceEvent::Member {
                event: faultline_node::NodeEvent::RoleChanged { role, .. }, ..
            } if role == "Leader")
                && record.at_ns > from_ns
                && record.at_ns < to_ns
        })
        .count()
}

/// A 2 s lease nobody keeps alive, checkpointed every 500 ms, while the leader is cut off from
/// its peers every 1.2 s (each tenure shorter than the TTL plus the promotion's extension),
/// and a final read of its key at 9 s, after the last cut healed.
fn lease_under_leader_churn() -> Plan {
    let lease = 81;
    let ops = vec![
        op(
            500,
            Request::LeaseGrant(LeaseGrantRequest {
                ttl_seconds: 2,
                id: lease,
            }),
        ),
        op(0, put("k/0", "leased", lease)),
        op(8400, get("k/0")),
        op(
            0,
            Request::LeaseTimeToLive(LeaseTimeToLiveRequest {
                id: lease,
                keys: false,
            }),
        ),
    ];
    let mut plan = quiet_plan(ops, vec![]);
    plan.scenario.workload_duration_ms = 10_000;
    plan.scenario.lease_checkpoint_interval_ms = 500;
    plan.faults = (0..6)
        .map(|i| FaultWindow {
            start_ms: 1500 + 1200 * i,
            duration_ms: 900,
            fault: Fault::PartitionFromPeers {
                target: IsolateTarget::Leader,
            },
        })
        .collect();
    plan
}

/// The count of the churn plan's final read and the lease's TTL after it, and how many
/// leaders took over during the cuts.
fn churn_outcome(options: &RunOptions) -> (i64, i64, usize) {
    let output = simulate(&lease_under_leader_churn(), options);
    let outcomes = client_outcomes(&output);
    assert_eq!(outcomes.len(), 4, "{outcomes:?}");
    let Response::Range(range) = ok(&outcomes[2].1) else {
        panic!("range")
    };
    let Response::LeaseTimeToLive(ttl) = ok(&outcomes[3].1) else {
        panic!("ttl")
    };
    let changes = leader_changes(&output, 1_500_000_000, 8_500_000_000);
    (range.count, ttl.ttl_seconds, changes)
}

// etcd #9888's fix: each new leader resumes the lease from its checkpointed remaining TTL,
// so a lease kept alive by nobody expires although no leader lasts its full TTL.
#[test]
fn checkpoints_expire_a_lease_under_leader_churn() {
    let (count, ttl, changes) = churn_outcome(&RunOptions::default());
    assert!(
        changes >= 5,
        "the cuts moved the leadership ({changes} new leaders)"
    );
    assert_eq!(count, 0, "the lease expired and its key was deleted");
    assert_eq!(ttl, -1, "the lease is gone");
}

// The canary: without checkpoints every new leader restarts the lease at its full TTL, so
// leader changes alone keep it alive (etcd #9888).
#[cfg(feature = "canaries")]
#[test]
fn without_checkpoints_leader_churn_keeps_a_lease_alive() {
    let options = RunOptions {
        canary: Some(faultline_node::Canary::LeaseNoCheckpoint),
    };
    let (count, ttl, changes) = churn_outcome(&options);
    assert!(
        changes >= 5,
        "the cuts moved the leadership ({changes} new leaders)"
    );
    assert_eq!(count, 1, "the key outlived its 2 s lease by 6 s");
    assert!(ttl >= 0, "the lease lives on: {ttl}");
}

/// A 2 s lease kept alive every 600 ms for 6 s through member `via` (`None`: the leader), and
/// a read of its key 500 ms after the last keep-alive. Returns the members that answered the
/// keep-alives (the header's member ID) with the TTL they answered, the read's count, and the
/// leader.
fn keep_alives_via(via: Option<u64>, options: &RunOptions) -> (Vec<(u64, i64)>, i64, u64) {
    let lease = 82;
    // Who leads: the member answering a put (the plans differ only after it).
    let probe = quiet_plan(vec![op(500, put("k/1", "probe", 0))], vec![]);
    let leader = match &client_outcomes(&simulate(&probe, options))[0].1 {
        faultline_invariants::history::Outcome::Ok(response) => response.header().member_id,
        other => panic!("the probe put failed: {other:?}"),
    };
    let mut ops = vec![
        op(500, put("k/1", "probe", 0)),
        op(
            0,
            Request::LeaseGrant(LeaseGrantRequest {
                ttl_seconds: 2,
                id: lease,
            }),
        ),
        op(0, put("k/0", "leased", lease)),
    ];
    for _ in 0..10 {
        let mut keep_alive = op(
            600,
            Request::LeaseKeepAlive(LeaseKeepAliveRequest { id: lease }),
        );
        keep_alive.member = via.unwrap_or(leader);
        ops.push(keep_alive);
    }
    ops.push(op(500, get("k/0")));
    let output = simulate(&quiet_plan(ops, vec![]), options);
    let outcomes = client_outcomes(&output);
    assert_eq!(outcomes.len(), 14, "{outcomes:?}");
    let Response::Put(first) = ok(&outcomes[0].1) else {
        panic!("put")
    };
    assert_eq!(
        first.header.member_id, leader,
        "the same leader as the probe's"
    );
    let answered_by = outcomes[3..13]
        .iter()
        .map(|(_, outcome)| {
            let Response::LeaseKeepAlive(keep_alive) = ok(outcome) else {
                panic!("keep-alive")
            };
            (keep_alive.header.member_id, keep_alive.ttl_seconds)
        })
        .collect();
    let Response::Range(range) = ok(&outcomes[13].1) else {
        panic!("range")
    };
    (answered_by, range.count, leader)
}

/// A member other than `leader` of the three.
fn follower_of(leader: u64) -> u64 {
    (1..=3).find(|&m| m != leader).expect("three members")
}

// etcd: a follower forwards keep-alives to the leader. Ours answers NotLeader with the
// leader's ID, which clients follow (faultline-server forwards it): the leader answers and
// its expiry moves, so the lease outlives its TTL three times over.
#[test]
fn a_keep_alive_sent_to_a_follower_reaches_the_leader() {
    let options = RunOptions::default();
    let leader = keep_alives_via(None, &options).2;
    let (answered_by, count, _) = keep_alives_via(Some(follower_of(leader)), &options);
    assert!(
        answered_by.iter().all(|&answer| answer == (leader, 2)),
        "the leader acknowledged every keep-alive with the TTL: {answered_by:?}"
    );
    assert_eq!(
        count, 1,
        "the keep-alives through a follower kept the lease"
    );
}

// The canary: the follower acknowledges the keep-alives itself and never passes them on, so
// the lease expires on the leader while its client was told it lives.
#[cfg(feature = "canaries")]
#[test]
fn a_follower_acked_keep_alive_does_not_extend_the_lease() {
    let options = RunOptions {
        canary: Some(faultline_node::Canary::KeepAliveNotForwarded),
    };
    let leader = keep_alives_via(None, &options).2;
    let follower = follower_of(leader);
    let (answered_by, count, _) = keep_alives_via(Some(follower), &options);
    assert!(
        answered_by.iter().all(|&(member, _)| member == follower),
        "the follower answered every keep-alive itself: {answered_by:?}"
    );
    assert_eq!(
        answered_by[..2],
        [(follower, 2), (follower, 2)],
        "it acknowledged the lease as alive"
    );
    assert_eq!(
        count, 0,
        "the leader expired the lease despite acknowledged keep-alives"
    );
}

/// Two clients' lock campaigns on `k/lock`, each a create-if-absent txn with its own lease.
/// Returns whether each won.
fn two_campaigns(options: &RunOptions) -> (bool, bool) {
    let campaign = |lease: i64| {
        Request::Txn(faultline_api::TxnRequest {
            compare: vec![faultline_api::Compare {
                result: faultline_api::CompareResult::Equal,
                target: faultline_api::CompareTarget::CreateRevision(0),
                key: b"k/lock".to_vec(),
                range_end: Vec::new(),
            }],
            success: vec![faultline_api::RequestOp::Put(faultline_api::PutRequest {
                key: b"k/lock".to_vec(),
                value: format!("holder-{lease}").into_bytes(),
                lease,
                ..faultline_api::PutRequest::default()
            })],
            failure: Vec::new(),
        })
    };
    let grant = |id: i64| {
        Request::LeaseGrant(LeaseGrantRequest {
            ttl_seconds: 10,
            id,
        })
    };
    let ops = vec![
        op(500, grant(91)),
        op(0, grant(92)),
        op(0, campaign(91)),
        op(0, campaign(92)),
    ];
    let output = simulate(&quiet_plan(ops, vec![]), options);
    let outcomes = client_outcomes(&output);
    let won = |i: usize| match ok(&outcomes[i].1) {
        Response::Txn(txn) => txn.succeeded,
        other => panic!("a txn answers a txn: {other:?}"),
    };
    (won(2), won(3))
}

// A create-if-absent txn on a held key fails: one lock holder at a time.
#[test]
fn a_held_lock_cannot_be_taken() {
    assert_eq!(two_campaigns(&RunOptions::default()), (true, false));
}

// The canary: the second campaign ignores its compare (the key's lease is not its own), so
// both clients believe they hold the lock.
#[cfg(feature = "canaries")]
#[test]
fn with_the_lock_canary_two_clients_win() {
    let options = RunOptions {
        canary: Some(faultline_node::Canary::LockCompareIgnored),
    };
    assert_eq!(two_campaigns(&options), (true, true));
}

// etcd's Renew clears a lease's checkpoint through Raft before it answers: a keep-alive
// acknowledged just before the leader is cut off holds for its full TTL on the next leader,
// which would otherwise resume from the checkpoint taken before the keep-alive.
#[test]
fn a_keep_alive_outlives_an_older_checkpoint_on_the_next_leader() {
    let lease = 83;
    let ops = vec![
        op(
            500,
            Request::LeaseGrant(LeaseGrantRequest {
                ttl_seconds: 3,
                id: lease,
            }),
        ),
        op(0, put("k/0", "leased", lease)),
        // Checkpoints now say about 1 s is left; the keep-alive makes it 3 s again.
        op(
            2000,
            Request::LeaseKeepAlive(LeaseKeepAliveRequest { id: lease }),
        ),
        // 2.4 s after the keep-alive: past the stale checkpoint, within the TTL.
        op(2400, get("k/0")),
    ];
    let mut plan = quiet_plan(ops, vec![]);
    plan.scenario.lease_checkpoint_interval_ms = 500;
    let output = simulate(&plan, &RunOptions::default());
    let keep_alive_done_ms = output.history.ops[2].complete_ns / 1_000_000;
    // Cut the leader off right after the keep-alive was acknowledged (same plan, same run up
    // to here), before its next checkpoint.
    plan.faults = vec![FaultWindow {
        start_ms: keep_alive_done_ms + 1,
        duration_ms: 4000,
        fault: Fault::PartitionFromPeers {
            target: IsolateTarget::Leader,
        },
    }];
    let output = simulate(&plan, &RunOptions::default());
    let outcomes = client_outcomes(&output);
    let Response::LeaseKeepAlive(keep_alive) = ok(&outcomes[2].1) else {
        panic!("keep-alive")
    };
    assert_eq!(keep_alive.ttl_seconds, 3);
    let read = &output.history.ops[3];
    assert!(
        leader_changes(&output, output.history.ops[2].complete_ns, read.invoke_ns) >= 1,
        "a new leader took over before the read"
    );
    assert!(
        read.complete_ns < output.history.ops[2].complete_ns + 3_000_000_000,
        "the read ends within the TTL after the keep-alive"
    );
    let Response::Range(range) = ok(&read.outcome) else {
        panic!("range")
    };
    assert_eq!(
        range.count, 1,
        "the new leader must not use the stale checkpoint"
    );
}
