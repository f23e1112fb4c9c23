//! The seed corpus: a fixed range of seeds of the default scenario, with crashes, partitions
//! and zone loss. A failing seed fails the test with its verdict and the command that replays it.
#![cfg(madsim)]

use faultline_sim::fuzz::{default_workers, replay_command, run_seeds};
use faultline_sim::plan::{Fault, Plan, Scenario};
use faultline_sim::runner::RunOptions;
use faultline_sim::verdict::Verdict;

const CORPUS_SEEDS: std::ops::Range<u64> = 0..64;

#[test]
fn default_scenario_corpus_passes() {
    let scenario = Scenario::default_scenario();
    let seeds: Vec<u64> = CORPUS_SEEDS.collect();

    // The corpus must exercise every family of fault, or a passing run proves little (the
    // default scenario is a swarm: each seed draws its own subset of the kinds).
    let (mut crashes, mut partitions, mut zone_losses, mut disk_faults) = (0, 0, 0, 0);
    for &seed in &seeds {
        for window in Plan::generate(seed, &scenario).faults {
            match window.fault {
                Fault::Crash { .. } | Fault::CrashLeader => crashes += 1,
                Fault::Isolate { .. }
                | Fault::PartitionFromPeers { .. }
                | Fault::CutNewLeaders { .. }
                | Fault::OneWayCut { .. }
                | Fault::Bridge { .. }
                | Fault::MajorityMinority { .. }
                | Fault::Ring { .. }
                | Fault::ZoneCut { .. }
                | Fault::DelaySpike { .. }
                | Fault::DuplicateMessages { .. }
                | Fault::ReorderMessages { .. } => partitions += 1,
                Fault::FsyncError { .. }
                | Fault::DiskFull { .. }
                | Fault::CorruptSynced { .. }
                | Fault::DiskReadError { .. }
                | Fault::SlowDisk { .. } => disk_faults += 1,
                Fault::Pause { .. }
                | Fault::ClockSkew { .. }
                | Fault::ClockJump { .. }
                | Fault::AimedCrash { .. } => {}
                Fault::ZoneDown { .. } => zone_losses += 1,
            }
        }
    }
    assert!(crashes > 0 && partitions > 0 && zone_losses > 0 && disk_faults > 0);

    let results = run_seeds(
        &seeds,
        &scenario,
        &RunOptions::default(),
        default_workers(),
        &|_| {},
    );
    assert_eq!(results.len(), seeds.len());
    let ops: u64 = results.iter().map(|r| r.summary.ops).sum();
    let faults: u64 = results.iter().map(|r| r.summary.faults).sum();
    println!(
        "corpus: {} seeds, {ops} operations, {faults} faults (plans: {crashes} crashes, \
         {partitions} partitions, {zone_losses} zone losses, {disk_faults} disk faults)",
        results.len()
    );
    assert!(faults > 0, "the nemesis injected no fault at all");

    let failures: Vec<String> = results
        .iter()
        .filter(|r| !r.verdict.is_pass())
        .map(|r| {
            let detail = match &r.verdict {
                Verdict::Fail { report, .. } => {
                    report.lines().take(20).collect::<Vec<_>>().join("\n    ")
                }
                Verdict::Unknown { reason } => reason.clone(),
                Verdict::Pass => unreachable!(),
            };
            format!(
                "seed {} {} — replay: {}\n    {detail}",
                r.seed,
                r.verdict.label(),
                replay_command(r.seed, &scenario)
            )
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} corpus seeds did not pass:\n{}",
        failures.len(),
        results.len(),
        failures.join("\n")
    );
}
