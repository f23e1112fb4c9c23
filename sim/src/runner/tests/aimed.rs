//! Aimed crashes (`Fault::AimedCrash`): each moment fires, on the member it names, and the
//! cluster goes on.

use faultline_node::NodeEvent;

use super::{puts, quiet_plan};
use crate::plan::{CrashMoment, Fault, FaultWindow, Plan};
use crate::runner::{simulate, RunOptions, RunOutput};
use crate::trace::TraceEvent;

fn run_with(moment: CrashMoment) -> (Plan, RunOutput) {
    let mut plan = quiet_plan(puts(80, 50), Vec::new());
    plan.faults = vec![FaultWindow {
        start_ms: 1000,
        duration_ms: 2000,
        fault: Fault::AimedCrash {
            moment,
            restart_after_ms: 50,
        },
    }];
    let output = simulate(&plan, &RunOptions::default());
    (plan, output)
}

/// The members the aimed crashes crashed (recorded as `Crash` faults), with when.
fn aimed_crashes(output: &RunOutput) -> Vec<(u64, u64)> {
    output
        .trace
        .iter()
        .filter_map(|r| match &r.event {
            TraceEvent::FaultStart {
                fault: Fault::Crash { member },
                ..
            } => Some((*member, r.at_ns)),
            _ => None,
        })
        .collect()
}

/// The role `member` last took at or before `at_ns`, with its term.
fn role_at(output: &RunOutput, member: u64, at_ns: u64) -> Option<(String, u64)> {
    output
        .trace
        .iter()
        .rev()
        .filter(|r| r.at_ns <= at_ns)
        .find_map(|r| match &r.event {
            TraceEvent::Member {
                member: m,
                event: NodeEvent::RoleChanged { role, term, .. },
            } if *m == member => Some((role.clone(), *term)),
            _ => None,
        })
}

fn leaders_of_term(output: &RunOutput, term: u64) -> Vec<u64> {
    let leaders = output.trace.iter().filter_map(|r| match &r.event {
        TraceEvent::Member {
            member,
            event: NodeEvent::RoleChanged { role, term: t, .. },
        } if role == "Leader" && *t == term => Some(*member),
        _ => None,
    });
    leaders.collect()
}

/// After a vote: the window crashes the leader, the first candidate wins with the vote of
/// the voter crashed right after granting it, and the others elect a leader of a later term
/// while the candidate is cut off (a correct voter remembers its vote).
#[test]
fn an_aimed_crash_after_a_vote_lets_a_second_candidate_ask() {
    let (_, output) = run_with(CrashMoment::AfterVote);
    let crashes = aimed_crashes(&output);
    assert_eq!(crashes.len(), 1, "one voter crashed: {crashes:?}");
    let (voter, at_ns) = crashes[0];
    let (role, term) = role_at(&output, voter, at_ns).expect("the voter had a role");
    assert_eq!(role, "Follower", "member {voter} voted as a follower");
    let winners = leaders_of_term(&output, term);
    assert_eq!(winners.len(), 1, "term {term} has one leader: {winners:?}");
    assert_ne!(winners[0], voter);
    let later_leader = output.trace.iter().any(|r| {
        matches!(&r.event, TraceEvent::Member { member, event: NodeEvent::RoleChanged { role, term: t, .. } }
            if r.at_ns > at_ns && role == "Leader" && *t > term && *member != winners[0])
    });
    assert!(
        later_leader,
        "nobody else was elected after the voter's crash"
    );
    assert!(output.healed_write_succeeded);
}

/// After an append acknowledgement: a follower is crashed, once.
#[test]
fn an_aimed_crash_after_an_append_ack_hits_a_follower() {
    let (_, output) = run_with(CrashMoment::AfterAppendAck);
    let crashes = aimed_crashes(&output);
    assert_eq!(crashes.len(), 1, "one follower crashed: {crashes:?}");
    let (member, at_ns) = crashes[0];
    let (role, _) = role_at(&output, member, at_ns).expect("a role");
    assert_eq!(role, "Follower");
    assert!(output.healed_write_succeeded);
}

/// Between write and sync: the crashed member's disk held an unsynced tail at the crash
/// (the write was done, the sync was not), which the power loss decided the fate of.
#[test]
fn an_aimed_crash_before_a_sync_finds_an_unsynced_tail() {
    let (_, output) = run_with(CrashMoment::BeforeSync);
    let crashes = aimed_crashes(&output);
    assert_eq!(crashes.len(), 1, "one member crashed: {crashes:?}");
    let (member, at_ns) = crashes[0];
    let tails = output.trace.iter().find_map(|r| match &r.event {
        TraceEvent::DiskCrash { member: m, fault } if *m == member && r.at_ns >= at_ns => {
            Some(fault.tails.len())
        }
        _ => None,
    });
    assert_eq!(tails, Some(1), "the WAL's unsynced tail met the power loss");
    assert!(output.healed_write_succeeded);
}

/// While a snapshot is half written (its file durable, the WAL's marker not): the member is
/// crashed there, restarts from that snapshot (the newest whole one; the marker is written
/// at the restart) with the WAL's entries after it, and the run passes every checker.
#[test]
fn an_aimed_crash_mid_snapshot_restarts_from_the_snapshot() {
    let mut plan = quiet_plan(puts(200, 20), Vec::new());
    plan.scenario.snapshot_threshold_entries = 20;
    plan.scenario.snapshot_catch_up_entries = 5;
    plan.faults = vec![FaultWindow {
        start_ms: 1000,
        duration_ms: 2000,
        fault: Fault::AimedCrash {
            moment: CrashMoment::MidSnapshot,
            restart_after_ms: 50,
        },
    }];
    let output = simulate(&plan, &RunOptions::default());
    let crashes = aimed_crashes(&output);
    assert_eq!(crashes.len(), 1, "one member crashed: {crashes:?}");
    let (member, at_ns) = crashes[0];
    let taken_before = output
        .trace
        .iter()
        .filter(|r| r.at_ns <= at_ns)
        .filter_map(|r| match &r.event {
            TraceEvent::Member {
                member: m,
                event: NodeEvent::SnapshotTaken { index, .. },
            } if *m == member => Some(*index),
            _ => None,
        })
        .max()
        .unwrap_or(0);
    let recovered = output.trace.iter().find_map(|r| match &r.event {
        TraceEvent::Member {
            member: m,
            event: NodeEvent::Recovered { snapshot_index, .. },
        } if *m == member && r.at_ns > at_ns => Some(*snapshot_index),
        _ => None,
    });
    let recovered = recovered.expect("the member restarted");
    // The half-written snapshot was never reported taken; the restart found its file.
    assert!(
        recovered > taken_before,
        "restarted from snapshot {recovered}, the last one finished was {taken_before}"
    );
    let verdict = crate::verdict::check(&output);
    assert!(verdict.is_pass(), "{verdict:?}");
    let hashes: Vec<_> = output.final_hashes.values().collect();
    assert!(hashes.iter().all(|h| h.is_some() && *h == hashes[0]));
}
