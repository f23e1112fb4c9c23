//! BUGGIFY points fire where a seed enables them, and the run copes.

use faultline_invariants::history::Outcome;
use faultline_node::NodeEvent;

use super::{puts, quiet_plan};
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
