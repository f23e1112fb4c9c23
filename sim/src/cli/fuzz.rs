//! `dst fuzz`: run a range of seeds (or seeds from a start until a time budget), one shard of
//! it if asked, on worker threads; write each failing seed as a seed file (with its HTML
//! report) the moment it is found; show progress; end with a summary (verdicts, fault kinds
//! fired, failing seeds with the command that replays each), also on Ctrl-C or SIGTERM.
//!
//! Exit codes: 0 every seed passed, 1 a seed failed or was unknown, 2 bad input, 4 the
//! `--json` summary could not be written, 130/143 interrupted by SIGINT/SIGTERM with no failure.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use clap::Args;
use faultline_node::Canary;

use super::common::{check_canary_available, load_scenario, parse_canary, EXIT_CANNOT_WRITE};
use super::interrupt;
use crate::campaign::{CampaignSummary, FoundSeed};
use crate::fuzz::{default_workers, dst_command, rerun_command, run_seed_range};
use crate::plan::{Plan, Scenario};
use crate::runner::RunOptions;
use crate::seedfile::{SeedFile, VerdictKind};
use crate::seedrange::{
    parse_duration, parse_seed_range, parse_shard, parse_workers, SeedRange, Shard,
};
use crate::triage::{failing_property, FOUND_PREFIX};
use crate::verdict::Verdict;
use crate::RunResult;

#[derive(Args)]
pub struct FuzzArgs {
    /// Half-open range A..B of seeds (any size: seeds are drawn lazily).
    #[arg(long, value_parser = parse_seed_range, required_unless_present = "time")]
    seeds: Option<(u64, u64)>,
    /// Time budget (e.g. 60s, 10m, 2h): run seeds from --start until it is spent (with
    /// --seeds: stop early if the range is not done).
    #[arg(long, value_parser = parse_duration)]
    time: Option<Duration>,
    /// First seed of a --time campaign.
    #[arg(long, default_value_t = 0, conflicts_with = "seeds")]
    start: u64,
    /// Run shard I of N (0-based): every N-th seed from the I-th. Shards 0/N..N-1/N are
    /// disjoint and together run exactly the unsharded seeds.
    #[arg(long, value_parser = parse_shard)]
    shard: Option<Shard>,
    /// A scenario TOML file (default: the embedded default scenario).
    #[arg(long)]
    scenario: Option<PathBuf>,
    /// Plant a re-introducible bug (needs a build with `--features canaries`).
    #[arg(long, value_parser = parse_canary)]
    canary: Option<Canary>,
    /// Worker threads, at least 1 (default: the machine's cores).
    #[arg(long, value_parser = parse_workers)]
    workers: Option<usize>,
    /// Where failing seeds are written as soon as they are found.
    #[arg(long, default_value = "seeds/found")]
    found_dir: PathBuf,
    /// Also write the summary as JSON to this file (for CI).
    #[arg(long)]
    json: Option<PathBuf>,
}

/// The seeds a campaign runs: the range (or everything from --start), then the shard.
pub fn campaign_seeds(seeds: Option<(u64, u64)>, start: u64, shard: Option<Shard>) -> SeedRange {
    let range = match seeds {
        Some((a, b)) => SeedRange::new(a, b),
        None => SeedRange::from(start),
    };
    match shard {
        Some(shard) => range.shard(shard),
        None => range,
    }
}

/// What the workers share: the totals, and when the progress line was last printed.
struct Campaign<'a> {
    summary: Mutex<(CampaignSummary, Instant)>,
    started: Instant,
    scenario: &'a Scenario,
    scenario_path: Option<&'a Path>,
    options: RunOptions,
    found_dir: &'a Path,
    terminal: bool,
}

pub fn run(args: FuzzArgs) -> Result<i32, String> {
    let scenario = load_scenario(args.scenario.as_deref())?;
    check_canary_available(args.canary)?;
    let seeds = campaign_seeds(args.seeds, args.start, args.shard);
    let workers = args.workers.unwrap_or_else(default_workers);
    println!(
        "fuzzing seeds {} of scenario {:?}{}{} on {workers} workers",
        seeds.describe(),
        scenario.name,
        args.canary
            .map(|c| format!(" with canary {}", c.name()))
            .unwrap_or_default(),
        args.time
            .map(|t| format!(" for at most {} s", t.as_secs()))
            .unwrap_or_default(),
    );
    let campaign = Campaign {
        summary: Mutex::new((
            CampaignSummary {
                scenario: scenario.name.clone(),
                canary: args.canary.map(|c| c.name().to_string()),
                seeds: seeds.describe(),
                seeds_planned: seeds.len(),
                ..CampaignSummary::default()
            },
            Instant::now(),
        )),
        started: Instant::now(),
        scenario: &scenario,
        scenario_path: args.scenario.as_deref(),
        options: RunOptions {
            canary: args.canary,
        },
        found_dir: &args.found_dir,
        terminal: std::io::stdout().is_terminal(),
    };
    interrupt::install();
    let deadline = args.time.map(|t| campaign.started + t);
    let out_of_time = || deadline.is_some_and(|d| Instant::now() >= d);
    let should_stop = || interrupt::received().is_some() || out_of_time();
    run_seed_range(
        &seeds,
        &scenario,
        &campaign.options,
        workers,
        &should_stop,
        &|result| campaign.finished(result),
    );
    let (mut summary, _) = campaign.summary.into_inner().expect("summary lock");
    summary.elapsed_s = campaign.started.elapsed().as_secs_f64();
    let signal = interrupt::received();
    summary.stopped_by = match signal {
        Some(signal) => Some(interrupt::signal_name(signal).to_string()),
        None if out_of_time() && seeds.len() != Some(summary.seeds_run) => {
            Some("time budget".to_string())
        }
        None => None,
    };
    if campaign.terminal {
        println!();
    }
    print!("{}", summary.table());
    if let Some(path) = &args.json {
        if let Err(e) = write_json(path, &summary) {
            eprintln!("error: {e}");
            return Ok(EXIT_CANNOT_WRITE);
        }
        println!("summary written to {}", path.display());
    }
    Ok(if summary.failed + summary.unknown > 0 {
        1
    } else if let Some(signal) = signal {
        128 + signal
    } else {
        0
    })
}

fn write_json(path: &Path, summary: &CampaignSummary) -> Result<(), String> {
    let json = serde_json::to_string_pretty(summary)
        .map_err(|e| format!("cannot serialize the summary: {e}"))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {} for the JSON summary: {e}", dir.display()))?;
    }
    std::fs::write(path, json + "\n")
        .map_err(|e| format!("cannot write the JSON summary {}: {e}", path.display()))
}

impl Campaign<'_> {
    /// One seed finished (on a worker thread): save it if it failed, count it, show progress.
    fn finished(&self, result: &RunResult) {
        let plan = Plan::generate(result.seed, self.scenario);
        let found = (!result.verdict.is_pass()).then(|| self.note_failure(result, &plan));
        let mut guard = self.summary.lock().expect("summary lock");
        let (summary, last_progress) = &mut *guard;
        summary.record(result, &plan);
        if self.scenario.swarm.is_some() {
            summary.record_draw(&plan.scenario);
        }
        if let Some(found) = found {
            summary.found.push(found);
        }
        let every = if self.terminal {
            Duration::from_millis(200)
        } else {
            Duration::from_secs(10)
        };
        if last_progress.elapsed() >= every {
            *last_progress = Instant::now();
            let line = summary.progress_line(self.started.elapsed());
            if self.terminal {
                print!("\r{line}\x1b[K");
                let _ = std::io::Write::flush(&mut std::io::stdout());
            } else {
                println!("{line}");
            }
        }
    }

    /// Write a failing seed down at once (a crash or a signal later must not lose it), with
    /// the HTML report beside it, and say how to replay it.
    fn note_failure(&self, result: &RunResult, plan: &Plan) -> FoundSeed {
        let clear = if self.terminal { "\r\x1b[K" } else { "" };
        println!("{clear}{}", result.one_line());
        let canary = self.options.canary;
        let saved = save_found(self.found_dir, self.scenario, canary, result, plan);
        let (file, replay) = match saved {
            Ok(path) => {
                let replay = format!(
                    "{} replay {}",
                    dst_command(canary.is_some()),
                    path.display()
                );
                match crate::report::write_seed_report(&path, plan, &self.options, &replay) {
                    Ok(html) => println!("  report: {}", html.display()),
                    Err(e) => eprintln!("warning: no HTML report for seed {}: {e}", result.seed),
                }
                (Some(path.display().to_string()), replay)
            }
            Err(e) => {
                eprintln!("warning: could not save seed {}: {e}", result.seed);
                (None, rerun_command(result.seed, self.scenario_path, canary))
            }
        };
        FoundSeed {
            seed: result.seed,
            verdict: VerdictKind::of(&result.verdict),
            file,
            replay,
        }
    }
}

/// Write a failing seed as a seed file (`crate::seedfile`), replayable with `dst replay`.
fn save_found(
    dir: &Path,
    scenario: &Scenario,
    canary: Option<Canary>,
    result: &RunResult,
    plan: &Plan,
) -> std::io::Result<PathBuf> {
    let headline = match &result.verdict {
        Verdict::Fail { report, .. } => report.lines().next().unwrap_or_default().to_string(),
        Verdict::Unknown { reason } => reason.clone(),
        Verdict::Pass => String::new(),
    };
    let file = SeedFile::new(
        format!(
            "{FOUND_PREFIX}{} [{}] {headline}",
            result.verdict.label(),
            failing_property(&result.verdict)
        ),
        plan,
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        fuzz: FuzzArgs,
    }

    fn parse(args: &[&str]) -> Result<FuzzArgs, String> {
        Cli::try_parse_from(std::iter::once("fuzz").chain(args.iter().copied()))
            .map(|cli| cli.fuzz)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn bad_arguments_are_refused_with_their_reason() {
        let e = parse(&["--seeds", "0..10", "--workers", "0"])
            .err()
            .unwrap();
        assert!(e.contains("at least 1 worker"), "{e}");
        let e = parse(&["--workers", "2"]).err().unwrap();
        assert!(e.contains("--seeds"), "{e}");
        let e = parse(&["--seeds", "0..10", "--start", "3"]).err().unwrap();
        assert!(e.contains("cannot be used with"), "{e}");
        let e = parse(&["--time", "10", "--seeds", "0..10"]).err().unwrap();
        assert!(e.contains("no unit"), "{e}");
        let e = parse(&["--seeds", "0..10", "--shard", "4/4"])
            .err()
            .unwrap();
        assert!(e.contains("below the count"), "{e}");
    }

    #[test]
    fn the_largest_range_is_parsed_and_drawn_lazily() {
        let args = parse(&["--seeds", "0..18446744073709551615", "--shard", "1/4"]).unwrap();
        let seeds = campaign_seeds(args.seeds, args.start, args.shard);
        assert_eq!(seeds.nth(0), Some(1));
        assert_eq!(seeds.nth(2), Some(9));
        assert_eq!(seeds.len(), Some(u64::MAX / 4 + 1));
        let args = parse(&["--time", "10m", "--start", "100"]).unwrap();
        assert_eq!(args.time, Some(Duration::from_secs(600)));
        let seeds = campaign_seeds(args.seeds, args.start, args.shard);
        assert_eq!((seeds.nth(0), seeds.len()), (Some(100), None));
    }
}
