//! The link faults (issue 13): one-way cuts, bridges, majority/minority splits and rings do
//! what they say, judged by what the members did while the window was open.

use faultline_node::NodeEvent;

use super::{puts, quiet_plan};
use crate::plan::{sides, Fault, FaultWindow, IsolateTarget, Plan};
use crate::runner::{simulate, RunOptions, RunOutput};
use crate::trace::TraceEvent;
use crate::verdict::{self, Verdict};

const START_MS: u64 = 1000;
const DURATION_MS: u64 = 3000;
/// Time for what was in flight at the window's start to land, and for an election.
const GRACE_MS: u64 = 500;

fn run_with(members: u32, fault: Fault) -> RunOutput {
    let mut plan = quiet_plan(puts(120, 30), Vec::new());
    if members != plan.scenario.members {
        let mut scenario = plan.scenario.clone();
        scenario.members = members;
        scenario.zones = 3;
        let mut bigger = Plan::generate(1, &scenario);
        bigger.clients = plan.clients;
        bigger.watchers = plan.watchers;
        plan = bigger;
    }
    plan.faults = vec![FaultWindow {
        start_ms: START_MS,
        duration_ms: DURATION_MS,
        fault,
    }];
    simulate(&plan, &RunOptions::default())
}

/// The members the window resolved to (the trace's `FaultStart`).
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

/// Inside the window, after the grace.
fn in_window(at_ns: u64) -> bool {
    ((START_MS + GRACE_MS) * 1_000_000..(START_MS + DURATION_MS) * 1_000_000).contains(&at_ns)
}

fn applied_in_window(output: &RunOutput, member: u64) -> usize {
    output
        .trace
        .iter()
        .filter(|r| in_window(r.at_ns))
        .filter(|r| matches!(&r.event, TraceEvent::Member { member: m, event: NodeEvent::Applied { .. } } if *m == member))
        .count()
}

fn campaigned_in_window(output: &RunOutput, member: u64) -> bool {
    output.trace.iter().any(|r| {
        (START_MS * 1_000_000..(START_MS + DURATION_MS) * 1_000_000).contains(&r.at_ns)
            && matches!(&r.event, TraceEvent::Member { member: m, event: NodeEvent::RoleChanged { role, .. } }
                if *m == member && role != "Follower" && role != "Leader")
    })
}

fn assert_passes(output: &RunOutput) {
    let verdict = verdict::check(output);
    assert!(matches!(verdict, Verdict::Pass), "{verdict:?}");
    assert!(output.healed_write_succeeded);
}

/// A one-way cut from `from` to a follower (member 2, or 3 when 2 leads).
fn one_way(from_leader: bool) -> (RunOutput, u64, u64) {
    for follower in [2, 3] {
        let (from, to) = if from_leader {
            (IsolateTarget::Leader, IsolateTarget::Member(follower))
        } else {
            (IsolateTarget::Member(follower), IsolateTarget::Leader)
        };
        let output = run_with(3, Fault::OneWayCut { from, to });
        if let [a, b] = resolved(&output)[..] {
            let (leader, follower) = if from_leader { (a, b) } else { (b, a) };
            return (output, leader, follower);
        }
    }
    panic!("neither member 2 nor 3 was a follower");
}

/// Leader -> follower cut: the follower stops hearing heartbeats and appends, so it applies
/// nothing and campaigns. Follower -> leader cut: the leader's appends still reach it, so it
/// keeps applying and never campaigns (only its answers are lost).
#[test]
fn a_one_way_cut_loses_one_direction_only() {
    let (output, leader, follower) = one_way(true);
    assert_ne!(leader, follower);
    assert!(
        campaigned_in_window(&output, follower),
        "m{follower} kept quiet without m{leader}'s heartbeats"
    );
    assert_eq!(applied_in_window(&output, follower), 0);
    assert_passes(&output);

    let (output, leader, follower) = one_way(false);
    assert!(
        !campaigned_in_window(&output, follower),
        "m{follower} campaigned while m{leader}'s messages reached it"
    );
    assert!(applied_in_window(&output, follower) > 10);
    assert_passes(&output);
}

/// A 3|2 split of five members: the minority applies nothing while it lasts, the majority
/// goes on applying.
#[test]
fn a_majority_minority_split_stops_only_the_minority() {
    let fault = Fault::MajorityMinority { arrangement: 5 };
    let output = run_with(5, fault);
    let members = resolved(&output);
    let (majority, minority) = sides(fault, &members).expect("five members");
    assert_eq!((majority.len(), minority.len()), (3, 2));
    for &member in minority {
        assert_eq!(applied_in_window(&output, member), 0, "minority m{member}");
    }
    for &member in majority {
        assert!(
            applied_in_window(&output, member) > 10,
            "majority m{member}"
        );
    }
    assert_passes(&output);
}

/// Who led when the window started (the last member elected before it).
fn leader_at_start(output: &RunOutput) -> u64 {
    output
        .trace
        .iter()
        .take_while(|r| r.at_ns < START_MS * 1_000_000)
        .filter_map(|r| match &r.event {
            TraceEvent::Member {
                member,
                event: NodeEvent::RoleChanged { role, .. },
            } if role == "Leader" => Some(*member),
            _ => None,
        })
        .last()
        .expect("a leader before the window")
}

/// A bridge over five members, the leader in one half: the other half no longer hears it and
/// campaigns, while the bridge, which talks to both halves, hears whoever leads, never
/// campaigns and keeps applying (writes go on through it).
#[test]
fn a_bridge_keeps_the_bridge_in_contact_with_both_halves() {
    for arrangement in 0..10 {
        let fault = Fault::Bridge { arrangement };
        let output = run_with(5, fault);
        let members = resolved(&output);
        let (bridge, leader) = (members[0], leader_at_start(&output));
        if bridge == leader {
            continue; // the leader reaches everyone: try a bridge of another member
        }
        let (left, right) = sides(fault, &members).expect("five members");
        let far = if left.contains(&leader) { right } else { left };
        assert!(
            far.iter().any(|&m| campaigned_in_window(&output, m)),
            "the half {far:?} kept quiet, cut from leader m{leader}"
        );
        assert!(!campaigned_in_window(&output, bridge), "bridge m{bridge}");
        assert!(applied_in_window(&output, bridge) > 10, "bridge m{bridge}");
        assert_passes(&output);
        return;
    }
    panic!("every arrangement made the leader the bridge");
}

/// A ring of five: the leader's two non-neighbours no longer hear it and campaign, while a
/// quorum (the leader and its neighbours) keeps applying.
#[test]
fn a_ring_cuts_the_leader_from_its_non_neighbours() {
    let fault = Fault::Ring { arrangement: 2 };
    let output = run_with(5, fault);
    let ring = resolved(&output);
    assert_eq!(ring.len(), 5);
    let leader = leader_at_start(&output);
    let at = ring.iter().position(|&m| m == leader).expect("in the ring");
    for far in [ring[(at + 2) % 5], ring[(at + 3) % 5]] {
        assert!(
            campaigned_in_window(&output, far),
            "m{far} kept quiet, not a neighbour of leader m{leader} in {ring:?}"
        );
    }
    let appliers = ring
        .iter()
        .filter(|&&m| applied_in_window(&output, m) > 10)
        .count();
    assert!(appliers >= 3, "a quorum applies: {appliers}");
    assert_passes(&output);
}

/// Overlapping faults on one link: the one that ends first leaves the link cut for the
/// other (a peer cut of the follower, then a second one-way cut of the same link).
#[test]
fn a_link_stays_cut_until_the_last_fault_on_it_ends() {
    for shorter in [
        Fault::PartitionFromPeers {
            target: IsolateTarget::Member(2),
        },
        Fault::OneWayCut {
            from: IsolateTarget::Leader,
            to: IsolateTarget::Member(2),
        },
    ] {
        let mut plan = quiet_plan(puts(120, 30), Vec::new());
        let window = |duration_ms, fault| FaultWindow {
            start_ms: START_MS,
            duration_ms,
            fault,
        };
        let cut = Fault::OneWayCut {
            from: IsolateTarget::Leader,
            to: IsolateTarget::Member(2),
        };
        plan.faults = vec![window(DURATION_MS, cut), window(GRACE_MS / 2, shorter)];
        let output = simulate(&plan, &RunOptions::default());
        assert_eq!(resolved(&output).len(), 2, "member 2 led; pick another");
        assert_eq!(applied_in_window(&output, 2), 0, "{shorter:?} ended");
        assert_passes(&output);
    }
}
