//! Issue 13's zone cuts, message faults (delays, duplicates, reordering) and clock jumps
//! fire and do what they say, judged by what the members and clients did in the window.

use faultline_api::{LeaseGrantRequest, Request, Response};
use faultline_invariants::history::Outcome;
use faultline_node::NodeEvent;

use super::{client_outcomes, get, ok, op, put, puts, quiet_plan};
use crate::plan::{Fault, FaultWindow, IsolateTarget, Plan};
use crate::runner::{simulate, RunOptions, RunOutput};
use crate::trace::TraceEvent;
use crate::verdict::{self, Verdict};

const START_MS: u64 = 1000;
const DURATION_MS: u64 = 3000;
/// Time for what was in flight at the window's start to land, and for an election.
const GRACE_MS: u64 = 500;
const MS: u64 = 1_000_000;

fn with_window(mut plan: Plan, fault: Fault) -> Plan {
    plan.faults = vec![FaultWindow {
        start_ms: START_MS,
        duration_ms: DURATION_MS,
        fault,
    }];
    plan
}

/// A quiet plan of `members` members in three zones (member i in zone (i - 1) % 3).
fn quiet_plan_of(members: u32) -> Plan {
    let plan = quiet_plan(puts(120, 30), Vec::new());
    let mut scenario = plan.scenario.clone();
    scenario.members = members;
    scenario.zones = 3;
    let mut bigger = Plan::generate(1, &scenario);
    bigger.clients = plan.clients;
    bigger.watchers = plan.watchers;
    bigger
}

fn assert_passes(plan: &Plan, output: &RunOutput) {
    let verdict = verdict::check_plan(plan, output);
    assert!(matches!(verdict, Verdict::Pass), "{verdict:?}");
    assert!(output.healed_write_succeeded);
}

/// The members the window resolved to (the trace's first `FaultStart`).
fn resolved(output: &RunOutput) -> Vec<u64> {
    output
        .trace
        .iter()
        .find_map(|r| match &r.event {
            TraceEvent::FaultStart { members, .. } => Some(members.clone()),
            _ => None,
        })
        .expect("the window started")
}

fn applied_between(output: &RunOutput, member: u64, from_ms: u64, to_ms: u64) -> usize {
    output
        .trace
        .iter()
        .filter(|r| (from_ms * MS..to_ms * MS).contains(&r.at_ns))
        .filter(|r| matches!(&r.event, TraceEvent::Member { member: m, event: NodeEvent::Applied { .. } } if *m == member))
        .count()
}

/// (member, at_ns) of every leader elected in [from_ms, to_ms).
fn elected_between(output: &RunOutput, from_ms: u64, to_ms: u64) -> Vec<(u64, u64)> {
    output
        .trace
        .iter()
        .filter(|r| (from_ms * MS..to_ms * MS).contains(&r.at_ns))
        .filter_map(|r| match &r.event {
            TraceEvent::Member {
                member,
                event: NodeEvent::RoleChanged { role, .. },
            } if role == "Leader" => Some((*member, r.at_ns)),
            _ => None,
        })
        .collect()
}

/// Batches the message fault's window touched (its `MessagesTampered` record).
fn tampered(output: &RunOutput) -> u64 {
    output
        .trace
        .iter()
        .find_map(|r| match &r.event {
            TraceEvent::MessagesTampered { batches, .. } => Some(*batches),
            _ => None,
        })
        .expect("the message fault's window ended before the heal")
}

/// Zone 0 of five members (m1, m4) is cut off from the other zones: it applies nothing
/// while the others, a majority, go on; nobody crashes (unlike a zone down).
#[test]
fn a_zone_cut_stops_the_zone_and_crashes_nobody() {
    let plan = with_window(quiet_plan_of(5), Fault::ZoneCut { zone: 0 });
    let output = simulate(&plan, &RunOptions::default());
    assert_eq!(resolved(&output), vec![1, 4]);
    let (from_ms, to_ms) = (START_MS + GRACE_MS, START_MS + DURATION_MS);
    for member in [1, 4] {
        assert_eq!(
            applied_between(&output, member, from_ms, to_ms),
            0,
            "m{member}"
        );
    }
    for member in [2, 3, 5] {
        assert!(
            applied_between(&output, member, from_ms, to_ms) > 10,
            "m{member}"
        );
    }
    let crashed = output
        .trace
        .iter()
        .any(|r| matches!(r.event, TraceEvent::DiskCrash { .. }));
    assert!(!crashed, "a zone cut crashed a member");
    // After the window the zone catches up.
    for member in [1, 4] {
        assert!(
            applied_between(&output, member, to_ms, to_ms + 3000) > 0,
            "m{member}"
        );
    }
    assert_passes(&plan, &output);
}

/// Latencies (ns) of the client's puts that succeeded, invoked and completed in [from, to).
fn put_latencies_ns(output: &RunOutput, from_ms: u64, to_ms: u64) -> Vec<u64> {
    output
        .history
        .ops
        .iter()
        .filter(|op| matches!(op.request, Request::Put(_)) && matches!(op.outcome, Outcome::Ok(_)))
        .filter(|op| op.invoke_ns >= from_ms * MS && op.complete_ns < to_ms * MS)
        .map(|op| op.complete_ns - op.invoke_ns)
        .collect()
}

/// Every link delayed 50-100 ms (below the election timeout, so the leader stays): a put
/// commits only after an append and its answer crossed a link, so each takes at least
/// 2 x 50 ms, where without the fault every put takes less than that.
#[test]
fn a_delay_spike_slows_every_commit() {
    let fault = Fault::DelaySpike {
        target: None,
        delay_ms_max: 100,
    };
    let plan = with_window(quiet_plan(puts(120, 30), Vec::new()), fault);
    let output = simulate(&plan, &RunOptions::default());
    assert_eq!(resolved(&output), vec![1, 2, 3]);
    let slow = put_latencies_ns(&output, START_MS, START_MS + DURATION_MS);
    assert!(slow.len() >= 5, "{slow:?}");
    assert!(slow.iter().all(|&ns| ns >= 100 * MS), "{slow:?}");
    assert!(tampered(&output) > 50);
    assert_passes(&plan, &output);
    let calm_plan = quiet_plan(puts(120, 30), Vec::new());
    let calm = simulate(&calm_plan, &RunOptions::default());
    let fast = put_latencies_ns(&calm, START_MS, START_MS + DURATION_MS);
    assert!(fast.len() > slow.len(), "{fast:?}");
    assert!(fast.iter().all(|&ns| ns < 100 * MS), "{fast:?}");
}

/// The leader's batches duplicated (60%, copies up to 200 ms late) or held back (60%, up
/// to 200 ms, later ones overtaking): the window touches batches, Raft tolerates both, and
/// the writes go on.
#[test]
fn duplicated_and_reordered_batches_are_tolerated() {
    for fault in [
        Fault::DuplicateMessages {
            target: IsolateTarget::Leader,
            percent: 60,
            lag_ms_max: 200,
        },
        Fault::ReorderMessages {
            target: IsolateTarget::Leader,
            percent: 60,
            hold_ms_max: 200,
        },
    ] {
        let plan = with_window(quiet_plan(puts(120, 30), Vec::new()), fault);
        let output = simulate(&plan, &RunOptions::default());
        let leader = resolved(&output);
        assert_eq!(leader.len(), 1, "{fault:?}");
        assert!(tampered(&output) > 20, "{fault:?}");
        let ok_puts = put_latencies_ns(&output, START_MS, START_MS + DURATION_MS);
        assert!(ok_puts.len() >= 5, "{fault:?}: {ok_puts:?}");
        assert_passes(&plan, &output);
    }
}

/// A lease of 10 s, granted on the leader at 0.5 s, and read at 4.5 s.
fn leased_key_plan() -> Plan {
    let lease = 81;
    let ops = vec![
        op(
            500,
            Request::LeaseGrant(LeaseGrantRequest {
                ttl_seconds: 10,
                id: lease,
            }),
        ),
        op(0, put("k/0", "leased", lease)),
        op(4000, get("k/0")),
    ];
    quiet_plan(ops, vec![])
}

fn key_count_at_end(output: &RunOutput) -> i64 {
    let outcomes = client_outcomes(output);
    let Response::Range(range) = ok(&outcomes[2].1) else {
        panic!("range")
    };
    range.count
}

/// The leader's clock jumps 9.8 s forward: the 10 s lease it granted 0.5 s earlier expires
/// at once, long before its TTL in simulated time. The verdict passes because the jump's window
/// leaves the lease's expiry unbounded; had the window been any other fault, the early
/// expiry would be a finding (so the lease checker needs the excuse). The ticks the jump
/// skipped run in a burst: the leader's check-quorum finds no follower heard within an
/// election timeout, and it steps down at the jump.
#[test]
fn a_forward_clock_jump_expires_leases_early_and_bursts_ticks() {
    let calm_plan = leased_key_plan();
    let calm = simulate(&calm_plan, &RunOptions::default());
    assert_eq!(key_count_at_end(&calm), 1, "10 s have not passed");
    let fault = Fault::ClockJump {
        target: IsolateTarget::Leader,
        jump_ms: 9800,
    };
    let plan = with_window(leased_key_plan(), fault);
    let output = simulate(&plan, &RunOptions::default());
    assert_eq!(key_count_at_end(&output), 0, "the jump expired the lease");
    let leader = resolved(&output)[0];
    // The member sees the jump at its next tick.
    let stepped_down = output.trace.iter().any(|r| {
        (START_MS * MS..(START_MS + 20) * MS).contains(&r.at_ns)
            && matches!(&r.event, TraceEvent::Member { member, event: NodeEvent::RoleChanged { role, .. } }
                if *member == leader && role != "Leader")
    });
    assert!(stepped_down, "m{leader} kept leading through the burst");
    assert_passes(&plan, &output);
    // The same trace with the jump's window recorded as a crash of nobody: not excused.
    let mut unexcused = output.clone();
    for record in &mut unexcused.trace {
        if let TraceEvent::FaultStart { fault, .. } | TraceEvent::FaultEnd { fault, .. } =
            &mut record.event
        {
            *fault = Fault::Crash { member: 9 };
        }
    }
    let verdict = verdict::check_plan(&plan, &unexcused);
    assert!(
        matches!(
            verdict,
            Verdict::Fail {
                kind: verdict::FailureKind::NotLinearizable,
                ..
            }
        ),
        "an early expiry outside a jump passed: {verdict:?}"
    );
}

/// The leader's clock steps 3 s back: its monotonic clock stands still, so it ticks no more
/// and, with no client traffic to carry appends, sends nothing: the followers elect another
/// leader while it stands. A follower's standstill only keeps it from campaigning: under
/// traffic nobody else is elected.
#[test]
fn a_clock_stepping_back_stands_still() {
    let jump = |target| Fault::ClockJump {
        target,
        jump_ms: -3000,
    };
    let idle = quiet_plan(
        vec![op(500, put("k/0", "a", 0)), op(4500, get("k/0"))],
        vec![],
    );
    let plan = with_window(idle, jump(IsolateTarget::Leader));
    let output = simulate(&plan, &RunOptions::default());
    let leader = resolved(&output)[0];
    let others = elected_between(&output, START_MS, START_MS + DURATION_MS);
    assert!(
        others.iter().any(|&(m, _)| m != leader),
        "m{leader} stayed leader with a clock that stood still: {others:?}"
    );
    assert_passes(&plan, &output);
    let follower = if leader == 2 { 3 } else { 2 };
    let plan = with_window(
        quiet_plan(puts(120, 30), Vec::new()),
        jump(IsolateTarget::Member(follower)),
    );
    let output = simulate(&plan, &RunOptions::default());
    assert_eq!(
        elected_between(&output, START_MS, START_MS + DURATION_MS),
        vec![]
    );
    assert_passes(&plan, &output);
}
