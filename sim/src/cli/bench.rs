//! `dst bench`: run seeds of a scenario one after another on one thread and print where the
//! wall time goes (simulated seconds per wall second, client operations per second, seeds
//! per hour per core, and each stage of the run's path).

use std::path::PathBuf;

use clap::Args;

use super::common::{load_scenario, EXIT_CANNOT_WRITE};
use crate::bench::bench_seeds;
use crate::runner::RunOptions;
use crate::seedrange::parse_seed_range;

#[derive(Args)]
pub struct BenchArgs {
    /// Half-open range A..B of seeds to run, one after another on one thread.
    #[arg(long, value_parser = parse_seed_range, default_value = "0..50")]
    seeds: (u64, u64),
    /// A scenario TOML file (default: the embedded default scenario).
    #[arg(long)]
    scenario: Option<PathBuf>,
    /// Also write the figures as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

pub fn run(args: BenchArgs) -> Result<i32, String> {
    let scenario = load_scenario(args.scenario.as_deref())?;
    let (start, end) = args.seeds;
    println!(
        "dst bench: scenario {:?}, seeds {start}..{end}, one thread",
        scenario.name
    );
    let figures = bench_seeds(
        start..end,
        &scenario,
        &RunOptions::default(),
        &mut |seed, f| {
            if (seed - start + 1) % 10 == 0 {
                eprintln!("  {} seeds, {:.1} s", f.seeds, f.wall.as_secs_f64());
            }
        },
    );
    print!("{}", figures.render());
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&figures).expect("figures serialize");
        if let Err(e) = std::fs::write(path, json) {
            eprintln!("error: cannot write {}: {e}", path.display());
            return Ok(EXIT_CANNOT_WRITE);
        }
    }
    Ok(0)
}
