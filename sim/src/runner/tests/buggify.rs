//! BUGGIFY points fire where a seed enables them, and the run copes.

use faultline_invariants::history::Outcome;
use faultline_node::NodeEvent;

use super::{acked_puts, prefix_watch, puts, quiet_plan};
use crate::plan::{Fault, FaultWindow, IsolateTarget, WatchStart};
use crate::runner::cluster::draw_buggify;
use crate::runner::{simulate, RunOptions};
use crate::trace::TraceEvent;

/// A dropped proposal: the point fires in a seed that enables it, its client's request ends
/// unknown (it timed out), and writes go on after it.
#[test]
fn a_dropped_proposal_times_out_and_the_run_goes_on() {
    let seed = (0..64)
        .find(|&seed| draw_buggify(seed).drop_proposal_percent >= 5)
        .expect("half of the seeds enable the point");
    let mut plan = quiet_plan(puts(80, 50), Vec::new());
    plan.seed = seed;
    plan.scenario.buggify = true;
    let output = simulate(&plan, &RunOptions::default());
    let fired = output
        .trace
        .iter()
        .filter(|r| {
            matches!(&r.event, TraceEvent::Member { event: NodeEvent::Buggified { point }, .. }
                if point == "drop-proposal")
        })
        .count();
    assert!(fired > 0, "the point never fired in seed {seed}");
    let unknown = output
        .history
        .ops
        .iter()
        .filter(|op| matches!(op.outcome, Outcome::Unknown(_)))
        .count();
    assert!(unknown > 0, "no request ended unknown");
    assert!(output.healed_write_succeeded);
    // Off, nothing fires.
    plan.scenario.buggify = false;
    let calm = simulate(&plan, &RunOptions::default());
    assert!(!calm.trace.iter().any(|r| matches!(
        &r.event,
        TraceEvent::Member {
            event: NodeEvent::Buggified { .. },
            ..
        }
    )));
}

/// How many times `point` fired in the run.
fn fired(output: &crate::runner::RunOutput, point: &str) -> usize {
    output
        .trace
        .iter()
        .filter(|r| {
            matches!(&r.event, TraceEvent::Member { event: NodeEvent::Buggified { point: p }, .. }
                if p == point)
        })
        .count()
}

fn snapshots_installed(output: &crate::runner::RunOutput) -> usize {
    output
        .trace
        .iter()
        .filter(|r| {
            matches!(
                &r.event,
                TraceEvent::Member {
                    event: NodeEvent::SnapshotInstalled { .. },
                    ..
                }
            )
        })
        .count()
}

/// A snapshot sent early: a leader compacts without the catch-up margin, so a follower cut
/// off for a moment (a few entries behind) is sent the snapshot. More snapshots are
/// installed than without the point, and the run passes every checker.
#[test]
fn an_early_snapshot_reaches_a_follower_slightly_behind() {
    let seed = (0..64)
        .find(|&seed| draw_buggify(seed).snapshot_early_percent >= 5)
        .expect("half of the seeds enable the point");
    let mut plan = quiet_plan(puts(300, 10), Vec::new());
    plan.seed = seed;
    plan.scenario.snapshot_threshold_entries = 50;
    plan.scenario.snapshot_catch_up_entries = 10;
    // Member 3 cut off for 300 ms, five times: some 20 entries behind each time.
    plan.faults = (0..5)
        .map(|i| FaultWindow {
            start_ms: 600 + i * 700,
            duration_ms: 300,
            fault: Fault::Isolate {
                target: IsolateTarget::Member(3),
            },
        })
        .collect();
    plan.scenario.buggify = true;
    let output = simulate(&plan, &RunOptions::default());
    assert!(
        fired(&output, "snapshot-early") > 0,
        "never fired in seed {seed}"
    );
    let verdict = crate::verdict::check(&output);
    assert!(verdict.is_pass(), "seed {seed}: {verdict:?}");
    plan.scenario.buggify = false;
    let calm = simulate(&plan, &RunOptions::default());
    assert_eq!(fired(&calm, "snapshot-early"), 0);
    assert!(
        snapshots_installed(&output) > snapshots_installed(&calm),
        "installed {} with the point, {} without",
        snapshots_installed(&output),
        snapshots_installed(&calm)
    );
}

/// A watch response split into parts: a catch-up of many revisions is cut at revision
/// boundaries (a watch without `fragment`), or between any events with etcd's `fragment`
/// flags (a watch that asked for them, which the watcher reassembles). Every part arrives,
/// and the watch checkers (and every other) accept the run.
#[test]
fn split_watch_responses_pass_the_watch_checks() {
    let seed = (0..64)
        .find(|&seed| draw_buggify(seed).split_watch_percent >= 20)
        .expect("a sixth of the seeds enable the point at 20 percent");
    // Twelve sessions from revision 1, every other one asking for fragments: each begins
    // with a catch-up of every revision so far.
    let sessions = (0..12)
        .map(|i| {
            let mut session = prefix_watch(WatchStart::First, 300);
            session.think_time_ms = if i == 0 { 600 } else { 50 };
            session.request.fragment = i % 2 == 1;
            session
        })
        .collect();
    let mut plan = quiet_plan(puts(150, 30), sessions);
    plan.seed = seed;
    plan.scenario.buggify = true;
    let output = simulate(&plan, &RunOptions::default());
    assert!(
        fired(&output, "split-watch-response") > 0,
        "never fired in seed {seed}"
    );
    let verdict = crate::verdict::check(&output);
    assert!(verdict.is_pass(), "seed {seed}: {verdict:?}");
    // Every write reached every session that started before it (the catch-ups were whole).
    assert!(output.history.watches.len() >= 12);
    let written = acked_puts(&output).len();
    for report in &output.history.watches {
        let events: usize = report
            .responses
            .iter()
            .map(|r| r.response.events.len())
            .sum();
        assert!(events > 0 && events <= written);
        assert!(report.responses.iter().all(|r| !r.response.fragment));
    }
}
