//! The `dst` command line: a thin front end over the stages of a run. Each subcommand's
//! arguments and work live in their own module; this file parses and dispatches.

mod canary;
mod check;
mod replay;
mod shrink;

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::fuzz::{default_workers, replay_command, run_seeds};
use crate::plan::Scenario;
use crate::run_seed;
use crate::runner::RunOptions;
use crate::verdict::Verdict;
use clap::{Parser, Subcommand};
use faultline_node::Canary;

#[derive(Parser)]
#[command(
    name = "dst",
    about = "Deterministic simulation testing of an etcd-compatible store"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one seed and print its verdict and trace hash.
    Run {
        #[arg(long)]
        seed: u64,
        /// A scenario TOML file (default: the embedded default scenario).
        #[arg(long)]
        scenario: Option<PathBuf>,
        /// Plant a re-introducible bug (needs a build with `--features canaries`).
        #[arg(long, value_parser = parse_canary)]
        canary: Option<Canary>,
        /// Print the failure report in full.
        #[arg(long)]
        verbose: bool,
        /// Run the seed twice; if the runs differ, print where they diverge (exit code 15).
        #[arg(long)]
        check_determinism: bool,
    },
    /// Re-run a seed file (or a seed) and confirm its verdict and trace hash.
    Replay(replay::ReplayArgs),
    /// Minimize a failing seed file's plan; writes a seed file that replays the small failure.
    Shrink(shrink::ShrinkArgs),
    /// Hunt every canary (planted bug) and print seeds and time to first detection.
    Canary(canary::CanaryArgs),
    /// Check a recorded history on its own (exit 0 linearizable, 1 not, 2 unknown, 3 unreadable).
    Check(check::CheckArgs),
    /// Run a range of seeds and list the failing ones with the command that replays each.
    Fuzz {
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
    },
}

pub(crate) fn parse_seed_range(text: &str) -> Result<(u64, u64), String> {
    let (a, b) = text
        .split_once("..")
        .ok_or_else(|| format!("{text:?} is not a range A..B (for example 0..200)"))?;
    let a: u64 = a
        .parse()
        .map_err(|e| format!("start {a:?} of {text:?} is not a seed: {e}"))?;
    let b: u64 = b
        .parse()
        .map_err(|e| format!("end {b:?} of {text:?} is not a seed: {e}"))?;
    if a >= b {
        return Err(format!(
            "range {text:?} is empty: the end must exceed the start"
        ));
    }
    Ok((a, b))
}

pub(crate) fn parse_canary(text: &str) -> Result<Canary, String> {
    Canary::from_name(text).ok_or_else(|| {
        let known: Vec<&str> = Canary::ALL.iter().map(|c| c.name()).collect();
        format!("unknown canary {text:?}; known: {}", known.join(", "))
    })
}

pub(crate) fn load_scenario(path: Option<&Path>) -> Result<Scenario, String> {
    let Some(path) = path else {
        return Ok(Scenario::default_scenario());
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read scenario {}: {e}", path.display()))?;
    let scenario: Scenario =
        toml::from_str(&text).map_err(|e| format!("scenario {}: {e}", path.display()))?;
    scenario
        .validate()
        .map_err(|e| format!("scenario {}: {e}", path.display()))?;
    Ok(scenario)
}

pub(crate) fn check_canary_available(canary: Option<Canary>) -> Result<(), String> {
    if canary.is_some() && !cfg!(feature = "canaries") {
        return Err(
            "this dst was built without canaries; rebuild with `--features canaries`".into(),
        );
    }
    Ok(())
}

pub fn main() -> i32 {
    // A closed pipe (`dst check FILE | head`) ends the process quietly, as it does for other
    // command-line tools, instead of panicking in `println!` (Rust ignores SIGPIPE).
    #[cfg(unix)]
    // SAFETY: restores the default disposition of one signal before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // A panic inside a simulation becomes a `Panic` verdict; print it as one line instead
    // of a backtrace per failing seed (set RUST_BACKTRACE=1 for the full one).
    if std::env::var_os("RUST_BACKTRACE").is_none() {
        std::panic::set_hook(Box::new(|info| {
            let thread = std::thread::current();
            let location = info
                .location()
                .map(|l| format!("{}:{}", l.file(), l.line()))
                .unwrap_or_default();
            eprintln!(
                "panic in {} at {location}: {}",
                thread.name().unwrap_or("a thread"),
                info.payload()
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| info.payload().downcast_ref::<&str>().copied())
                    .unwrap_or("(non-string payload)")
            );
        }));
    }
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("error: {message}");
            2
        }
    }
}

fn run(cli: Cli) -> Result<i32, String> {
    match cli.command {
        Command::Run {
            seed,
            scenario,
            canary,
            verbose,
            check_determinism,
        } => {
            let scenario = load_scenario(scenario.as_deref())?;
            check_canary_available(canary)?;
            let options = RunOptions { canary };
            let result = if check_determinism {
                let plan = crate::plan::Plan::generate(seed, &scenario);
                match crate::replay::check_determinism(&plan, &options) {
                    crate::replay::Determinism::Same(result) => {
                        println!(
                            "deterministic: two runs, same trace hash {:016x} and verdict",
                            result.trace_hash
                        );
                        result
                    }
                    crate::replay::Determinism::Diverged {
                        first,
                        second,
                        divergence,
                    } => {
                        println!("NOT DETERMINISTIC: seed {seed} ran twice and diverged");
                        println!("first:  {}", first.one_line());
                        println!("second: {}", second.one_line());
                        println!("{divergence}");
                        return Ok(15);
                    }
                }
            } else {
                run_seed(seed, &scenario, &options)
            };
            println!("{}", result.one_line());
            match &result.verdict {
                Verdict::Pass => Ok(0),
                Verdict::Fail { kind, report } => {
                    if verbose {
                        println!("{report}");
                    } else {
                        println!("{}", first_lines(report, 30));
                    }
                    println!("replay: {}", replay_command(seed, &scenario));
                    Ok(kind.exit_code())
                }
                Verdict::Unknown { reason } => {
                    println!("unknown: {reason}");
                    Ok(3)
                }
            }
        }
        Command::Replay(args) => replay::run(args),
        Command::Shrink(args) => shrink::run(args),
        Command::Canary(args) => canary::run(args),
        Command::Check(args) => check::run(args),
        Command::Fuzz {
            seeds,
            scenario,
            canary,
            workers,
            found_dir,
        } => {
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
                    // Write it down at once: a crash later must not lose a found seed.
                    match save_found(&found_dir, &scenario, canary, result) {
                        // The HTML report beside it: the same plan again (deterministic), drawn.
                        Ok(path) => match crate::report::write_seed_report(
                            &path,
                            &crate::plan::Plan::generate(result.seed, &scenario),
                            &options,
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
    }
}

pub(crate) fn first_lines(text: &str, lines: usize) -> String {
    let mut out: Vec<&str> = text.lines().take(lines).collect();
    if text.lines().count() > lines {
        out.push("... (use --verbose for the full report)");
    }
    out.join("\n")
}

/// Write a failing seed as a seed file (`crate::seedfile`), replayable with `dst replay`.
fn save_found(
    dir: &Path,
    scenario: &Scenario,
    canary: Option<Canary>,
    result: &crate::RunResult,
) -> std::io::Result<PathBuf> {
    use crate::seedfile::{SeedFile, VerdictKind};
    let headline = match &result.verdict {
        Verdict::Fail { report, .. } => report.lines().next().unwrap_or_default().to_string(),
        Verdict::Unknown { reason } => reason.clone(),
        Verdict::Pass => String::new(),
    };
    let file = SeedFile::new(
        format!("found by `dst fuzz`: {} {headline}", result.verdict.label()),
        &crate::plan::Plan::generate(result.seed, scenario),
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
