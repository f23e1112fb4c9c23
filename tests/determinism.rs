//! Same seed, same run: the trace hash (over every member event, fault and client operation)
//! must be identical when a seed runs twice, and differ between seeds.
#![cfg(madsim)]

use faultline_sim::plan::Scenario;
use faultline_sim::run_seed;
use faultline_sim::runner::RunOptions;

#[test]
fn a_seed_replays_with_the_same_trace_hash() {
    let scenario = Scenario::default_scenario();
    let first = run_seed(7, &scenario, &RunOptions::default());
    let second = run_seed(7, &scenario, &RunOptions::default());
    assert_eq!(
        first.trace_hash, second.trace_hash,
        "seed 7 is not deterministic"
    );
    assert_eq!(first.verdict, second.verdict);
    assert_eq!(first.summary, second.summary);
    assert!(first.summary.ops > 0 && first.summary.faults > 0);

    let other = run_seed(8, &scenario, &RunOptions::default());
    assert_ne!(
        first.trace_hash, other.trace_hash,
        "seeds 7 and 8 gave the same trace"
    );
}
