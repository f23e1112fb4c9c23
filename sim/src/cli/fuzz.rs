//! `dst fuzz`: run a range of seeds on worker threads, write each failing seed as a seed file
//! (with its HTML report) the moment it is found, and list them with their replay commands.

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Args;
use faultline_node::Canary;

use super::common::{check_canary_available, load_scenario, parse_canary, parse_seed_range};
use crate::fuzz::{default_workers, replay_command, run_seeds};
use crate::plan::{Plan, Scenario};
use crate::runner::RunOptions;
use crate::seedfile::{SeedFile, VerdictKind};
use crate::verdict::Verdict;
use crate::RunResult;

#[derive(Args)]
pub struct FuzzArgs {
    /// Half-open range A..B of seeds.
    #[arg(long, value_parser = parse_seed_range)]
    seeds: (u64, u64),
    #[arg(long)]
    scenario: Option<PathBuf>,
    #[arg(long, value_parser = parse_canary)]
    canary: Option<Canary>,
    /// Worker threads (default: the machine's cores).
    #[arg(long)]
    workers: Option<usize>,
    /// Where failing seeds are written as soon as they are found.
    #[arg(long, default_value = "seeds/found")]
    found_dir: PathBuf,
}

pub fn run(args: FuzzArgs) -> Result<i32, String> {
    let FuzzArgs {
        seeds,
        scenario,
        canary,
        workers,
        found_dir,
    } = args;
    let scenario = load_scenario(scenario.as_deref())?;
    check_canary_available(canary)?;
    let started = Instant::now();
    let seed_list: Vec<u64> = (seeds.0..seeds.1).collect();
    let workers = workers.unwrap_or_else(default_workers);
    println!(
        "fuzzing seeds {}..{} of scenario {:?} on {workers} workers",
        seeds.0, seeds.1, scenario.name
    );
    let options = RunOptions { canary };
    let results = run_seeds(&seed_list, &scenario, &options, workers, &|result| {
        if !result.verdict.is_pass() {
            println!("{}", result.one_line());
            note_failure(&found_dir, &scenario, &options, result);
        }
    });
    let failures: Vec<_> = results
        .iter()
        .filter(|r| matches!(r.verdict, Verdict::Fail { .. }))
        .collect();
    let unknown: Vec<_> = results
        .iter()
        .filter(|r| matches!(r.verdict, Verdict::Unknown { .. }))
        .collect();
    let elapsed = started.elapsed();
    println!(
        "summary: {} seeds run, {} failed, {} unknown, {} passed, in {:.1} s \
         ({:.1} seeds/s)",
        results.len(),
        failures.len(),
        unknown.len(),
        results.len() - failures.len() - unknown.len(),
        elapsed.as_secs_f64(),
        results.len() as f64 / elapsed.as_secs_f64().max(1e-9)
    );
    for result in failures.iter().chain(unknown.iter()) {
        println!(
            "  seed {} {}: replay with `{}`",
            result.seed,
            result.verdict.label(),
            replay_command(result.seed, &scenario)
        );
    }
    Ok(if failures.is_empty() && unknown.is_empty() {
        0
    } else {
        1
    })
}

/// Write a failing seed down at once (a crash later must not lose a found seed), with the
/// HTML report beside it: the same plan again (deterministic), drawn.
fn note_failure(found_dir: &Path, scenario: &Scenario, options: &RunOptions, result: &RunResult) {
    match save_found(found_dir, scenario, options.canary, result) {
        Ok(path) => match crate::report::write_seed_report(
            &path,
            &Plan::generate(result.seed, scenario),
            options,
            &format!("cargo dst replay {}", path.display()),
        ) {
            Ok(html) => println!("  report: {}", html.display()),
            Err(e) => {
                eprintln!("warning: no HTML report for seed {}: {e}", result.seed)
            }
        },
        Err(e) => eprintln!("warning: could not save seed {}: {e}", result.seed),
    }
}

/// Write a failing seed as a seed file (`crate::seedfile`), replayable with `dst replay`.
fn save_found(
    dir: &Path,
    scenario: &Scenario,
    canary: Option<Canary>,
    result: &RunResult,
) -> std::io::Result<PathBuf> {
    let headline = match &result.verdict {
        Verdict::Fail { report, .. } => report.lines().next().unwrap_or_default().to_string(),
        Verdict::Unknown { reason } => reason.clone(),
        Verdict::Pass => String::new(),
    };
    let file = SeedFile::new(
        format!("found by `dst fuzz`: {} {headline}", result.verdict.label()),
        &Plan::generate(result.seed, scenario),
        canary,
        VerdictKind::of(&result.verdict),
        Some(result.trace_hash),
    );
    let name = match canary {
        Some(canary) => format!(
            "{}-{}-seed-{}.toml",
            scenario.name,
            canary.name(),
            result.seed
        ),
        None => format!("{}-seed-{}.toml", scenario.name, result.seed),
    };
    let path = dir.join(name);
    file.save(&path)?;
    Ok(path)
}
