//! The regression corpus and the reviewed picture of behaviour:
//! - every seed file in seeds/regressions/ replays with its expected verdict (a canary's file
//!   fails with the canary and passes without it);
//! - the determinism self-check runs on part of the seed corpus;
//! - insta snapshots of the trace summary of a few canonical seeds, so a change in behaviour is
//!   a reviewed diff (`cargo insta accept`, or `INSTA_UPDATE=always cargo test --test
//!   regressions`, after an intended change);
//! - shrinking a canary's failing seed makes it at least 5 times smaller.
#![cfg(madsim)]

use std::path::{Path, PathBuf};

use faultline_node::Canary;
use faultline_sim::fuzz::{default_workers, run_seeds};
use faultline_sim::plan::{Plan, Scenario};
use faultline_sim::replay::{check_determinism, replay, Determinism};
use faultline_sim::run_plan;
use faultline_sim::runner::RunOptions;
use faultline_sim::seedfile::{SeedFile, VerdictKind};
use faultline_sim::shrink::{shrink, ShrinkOptions};

fn regression_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds/regressions");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_regression_seed_replays_with_its_expected_verdict() {
    let files = regression_files();
    assert!(
        !files.is_empty(),
        "seeds/regressions/ holds no seed file: the corpus would pass vacuously"
    );
    let mut failures = Vec::new();
    for path in &files {
        let file = SeedFile::load(path).unwrap_or_else(|e| panic!("{e}"));
        let replayed = replay(&file);
        let hash_note = match file.expected_trace_hash() {
            Some(hash) if hash != replayed.result.trace_hash => " (trace hash drifted)",
            _ => "",
        };
        println!(
            "{}: expected {}, got {}{hash_note}",
            path.display(),
            file.expect.verdict,
            replayed.verdict
        );
        if replayed.verdict != file.expect.verdict {
            failures.push(format!(
                "{}: expected {}, got {}\n  replay: cargo dst replay {}",
                path.display(),
                file.expect.verdict,
                replayed.result.verdict.label(),
                path.display()
            ));
        }
        // A canary's regression must be the canary's doing: without it the plan passes.
        if file.canary().is_some() {
            let (clean, _) = run_plan(&file.plan(), &RunOptions::default());
            if !clean.verdict.is_pass() {
                failures.push(format!(
                    "{}: fails even without its canary: {}",
                    path.display(),
                    clean.verdict.label()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn determinism_self_check_on_part_of_the_corpus() {
    let scenario = Scenario::default_scenario();
    for seed in 0..8 {
        let plan = Plan::generate(seed, &scenario);
        match check_determinism(&plan, &RunOptions::default()) {
            Determinism::Same(result) => assert!(result.summary.ops > 0),
            Determinism::Diverged {
                first,
                second,
                divergence,
            } => panic!(
                "seed {seed} is not deterministic:\n{}\n{}\n{divergence}",
                first.one_line(),
                second.one_line()
            ),
        }
    }
}

#[derive(serde::Serialize)]
struct Snapshot {
    seed: u64,
    verdict: String,
    trace_hash: String,
    summary: faultline_sim::trace::TraceSummary,
}

/// A change here is a change in what the simulator does: review the diff, then accept it
/// with `cargo insta accept` (or rerun with `INSTA_UPDATE=always`).
#[test]
fn canonical_seed_summaries() {
    let scenario = Scenario::default_scenario();
    let seeds = [0, 7, 42];
    let results = run_seeds(
        &seeds,
        &scenario,
        &RunOptions::default(),
        default_workers(),
        &|_| {},
    );
    for result in results {
        let snapshot = Snapshot {
            seed: result.seed,
            verdict: result.verdict.label(),
            trace_hash: format!("{:016x}", result.trace_hash),
            summary: result.summary,
        };
        insta::assert_yaml_snapshot!(format!("default-seed-{}", result.seed), snapshot);
    }
}

/// Issue 5's bar: a canary's failing seed shrinks at least 5x (ops + faults) and still fails
/// with the same verdict kind; the shrunk plan replays to that kind from its seed file.
#[test]
fn a_canary_failure_shrinks_at_least_five_times() {
    let scenario = Scenario::default_scenario();
    let options = RunOptions {
        canary: Some(Canary::StaleFollowerRead),
    };
    let (plan, kind) = (0..20)
        .find_map(|seed| {
            let plan = Plan::generate(seed, &scenario);
            let (result, _) = run_plan(&plan, &options);
            let kind = VerdictKind::of(&result.verdict);
            // Only a seed that passes without the canary shows the canary's bug.
            let control = || run_plan(&plan, &RunOptions::default()).0.verdict.is_pass();
            (kind != VerdictKind::Pass && control()).then_some((plan, kind))
        })
        .expect("the canary is caught within 20 seeds");
    assert_eq!(kind, VerdictKind::NotLinearizable);
    let shrunk = shrink(
        &plan,
        &options,
        kind,
        &ShrinkOptions { max_runs: 150 },
        &mut |line| println!("{line}"),
    )
    .expect("the seed fails as found");
    println!(
        "seed {}: {} -> {} ({:.1}x, {} runs{})",
        plan.seed,
        shrunk.before,
        shrunk.after,
        shrunk.ratio(),
        shrunk.runs,
        if shrunk.budget_exhausted {
            ", budget exhausted"
        } else {
            ""
        }
    );
    assert!(
        shrunk.ratio() >= 5.0,
        "shrank only {:.1}x: {} -> {}",
        shrunk.ratio(),
        shrunk.before,
        shrunk.after
    );
    assert_eq!(VerdictKind::of(&shrunk.result.verdict), kind);
    let file = SeedFile::new(
        "shrunk in a test",
        &shrunk.plan,
        options.canary,
        kind,
        Some(shrunk.result.trace_hash),
    );
    let parsed = SeedFile::parse(&file.to_toml(), "shrunk").expect("round trip");
    let replayed = replay(&parsed);
    assert!(replayed.matches(), "{:?}", replayed.mismatches);
}
