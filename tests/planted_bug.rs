//! The checker can fail: with a planted bug (followers answer linearizable reads from their
//! local state), the fuzzer must find a non-linearizable history within a fixed seed budget,
//! and the report must name the stale read.
#![cfg(madsim)]

use faultline_node::Canary;
use faultline_sim::plan::Scenario;
use faultline_sim::run_seed;
use faultline_sim::runner::RunOptions;
use faultline_sim::verdict::{FailureKind, Verdict};

const SEED_BUDGET: u64 = 20;

#[test]
fn stale_follower_reads_are_caught_and_named() {
    let scenario = Scenario::default_scenario();
    let options = RunOptions {
        canary: Some(Canary::StaleFollowerRead),
    };
    for seed in 0..SEED_BUDGET {
        let result = run_seed(seed, &scenario, &options);
        if let Verdict::Fail { kind, report } = &result.verdict {
            assert_eq!(
                *kind,
                FailureKind::NotLinearizable,
                "seed {seed}: expected a linearizability failure, got:\n{report}"
            );
            // The report names the offending read: its op id, and that it is a range request.
            let first_finding = report
                .lines()
                .skip_while(|line| !line.starts_with("stale read: op "))
                .take(4)
                .collect::<Vec<_>>()
                .join("\n");
            assert!(
                first_finding.starts_with("stale read: op ")
                    && first_finding.contains("request:  range"),
                "seed {seed}: the report does not name the stale read:\n{report}"
            );
            println!("caught at seed {seed}:\n{report}");
            return;
        }
    }
    panic!("the planted stale-read bug went undetected in {SEED_BUDGET} seeds");
}
