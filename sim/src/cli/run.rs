//! `dst run`: run one seed and print its verdict and trace hash; with
//! `--check-determinism`, run it twice and show where the runs diverge.

use std::path::PathBuf;

use clap::Args;
use faultline_node::Canary;

use super::common::{check_canary_available, first_lines, load_scenario, parse_canary};
use super::tracelog::install_trace_subscriber;
use crate::fuzz::rerun_command;
use crate::plan::Plan;
use crate::replay::{check_determinism, Determinism};
use crate::run_seed;
use crate::runner::RunOptions;
use crate::verdict::Verdict;
use crate::RunResult;

#[derive(Args)]
pub struct RunArgs {
    /// The seed to run (with the scenario, it decides the plan and the whole simulation).
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
    /// Print the run's log to stderr: simulated time, the node (member-N, client-N, ...), each
    /// trace record and client operation, keys and values as text (filter with RUST_LOG).
    #[arg(long)]
    trace: bool,
}

pub fn run(args: RunArgs) -> Result<i32, String> {
    let RunArgs {
        seed,
        scenario,
        canary,
        verbose,
        check_determinism: twice,
        trace,
    } = args;
    if trace {
        install_trace_subscriber();
    }
    let scenario_path = scenario;
    let scenario = load_scenario(scenario_path.as_deref())?;
    check_canary_available(canary)?;
    let options = RunOptions { canary };
    if scenario.swarm.is_some() {
        println!(
            "{}",
            crate::plan::describe_drawn(&Plan::generate(seed, &scenario).scenario)
        );
    }
    let result = if twice {
        match run_twice(seed, &Plan::generate(seed, &scenario), &options) {
            Ok(result) => result,
            Err(code) => return Ok(code),
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
            println!(
                "replay: {}",
                rerun_command(seed, scenario_path.as_deref(), canary)
            );
            Ok(kind.exit_code())
        }
        Verdict::Unknown { reason } => {
            println!("unknown: {reason}");
            Ok(3)
        }
    }
}

/// Run the plan twice: the result if both runs agree, else the exit code (15) after
/// printing where they diverge.
fn run_twice(seed: u64, plan: &Plan, options: &RunOptions) -> Result<RunResult, i32> {
    match check_determinism(plan, options) {
        Determinism::Same(result) => {
            println!(
                "deterministic: two runs, same trace hash {:016x} and verdict",
                result.trace_hash
            );
            Ok(result)
        }
        Determinism::Diverged {
            first,
            second,
            divergence,
        } => {
            println!("NOT DETERMINISTIC: seed {seed} ran twice and diverged");
            println!("first:  {}", first.one_line());
            println!("second: {}", second.one_line());
            println!("{divergence}");
            Err(15)
        }
    }
}
