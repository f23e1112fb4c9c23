//! `dst canary`: hunt every canary (or one) and print the table; fails if any ready canary
//! goes undetected within its seed budget. `--save DIR` shrinks each first detection and
//! writes it as a regression seed file.

use std::path::{Path, PathBuf};

use clap::Args;

use crate::canary::{all_canaries, hunt, table, CanaryKind, CanaryOutcome, CanarySpec};
use crate::fuzz::default_workers;
use crate::plan::Plan;
use crate::runner::RunOptions;
use crate::seedfile::{SeedFile, VerdictKind};
use crate::shrink::{shrink, ShrinkOptions};

#[derive(Args)]
pub struct CanaryArgs {
    /// Hunt only this canary (by name).
    #[arg(long)]
    only: Option<String>,
    /// Worker threads: seeds are tried in batches of this many (default: the machine's cores).
    #[arg(long)]
    workers: Option<usize>,
    /// Shrink each first detection and write it to this directory as `canary-<name>.toml`.
    #[arg(long)]
    save: Option<PathBuf>,
    /// Run budget of each shrink (with --save).
    #[arg(long, default_value_t = 300)]
    shrink_max_runs: usize,
}

pub fn run(args: CanaryArgs) -> Result<i32, String> {
    if !cfg!(feature = "canaries") {
        return Err(
            "this dst was built without canaries; rebuild with `--features canaries`".into(),
        );
    }
    let specs: Vec<_> = all_canaries()
        .into_iter()
        .filter(|s| args.only.as_deref().is_none_or(|name| name == s.name))
        .collect();
    if specs.is_empty() {
        let names: Vec<&str> = all_canaries().iter().map(|s| s.name).collect();
        return Err(format!(
            "no canary named {:?}; known: {}",
            args.only.unwrap_or_default(),
            names.join(", ")
        ));
    }
    let workers = args.workers.unwrap_or_else(default_workers);
    let mut reports = Vec::new();
    for spec in &specs {
        let report = hunt(spec, workers);
        println!(
            "{}",
            table(std::slice::from_ref(&report))
                .lines()
                .nth(2)
                .unwrap_or("")
        );
        if let (Some(dir), CanaryOutcome::Caught { seed, kind, .. }) = (&args.save, &report.outcome)
        {
            save_shrunk(dir, spec, *seed, *kind, args.shrink_max_runs)?;
        }
        reports.push(report);
    }
    println!("\n{}", table(&reports));
    let missed: Vec<&str> = reports
        .iter()
        .filter(|r| matches!(r.outcome, CanaryOutcome::Missed { .. }))
        .map(|r| r.name)
        .collect();
    if missed.is_empty() {
        Ok(0)
    } else {
        eprintln!(
            "undetected within their budget: {} (the checkers or the fault mix lost a bug class)",
            missed.join(", ")
        );
        Ok(1)
    }
}

/// `--save`: shrink a first detection and write it to `dir` as `canary-<name>.toml`.
fn save_shrunk(
    dir: &Path,
    spec: &CanarySpec,
    seed: u64,
    kind: VerdictKind,
    shrink_max_runs: usize,
) -> Result<(), String> {
    let CanaryKind::Ready {
        canary, scenario, ..
    } = &spec.kind
    else {
        unreachable!("only ready canaries are caught")
    };
    let plan = Plan::generate(seed, scenario);
    let options = RunOptions {
        canary: Some(*canary),
    };
    let shrunk = shrink(
        &plan,
        &options,
        kind,
        &ShrinkOptions {
            max_runs: shrink_max_runs,
        },
        &mut |_| {},
    )?;
    let file = SeedFile::new(
        format!(
            "canary {} ({}), first caught at seed {seed} of scenario {:?}, shrunk {:.1}x \
             from {} to {}{}",
            spec.name,
            spec.models,
            scenario.name,
            shrunk.ratio(),
            shrunk.before,
            shrunk.after,
            if shrunk.budget_exhausted {
                " (shrink budget ran out)"
            } else {
                ""
            }
        ),
        &shrunk.plan,
        Some(*canary),
        VerdictKind::of(&shrunk.result.verdict),
        Some(shrunk.result.trace_hash),
    );
    let path = dir.join(format!("canary-{}.toml", spec.name));
    file.save(&path)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    println!(
        "  shrunk {:.1}x ({} -> {} ops + faults, {} runs) -> {}",
        shrunk.ratio(),
        shrunk.before.ops_plus_faults(),
        shrunk.after.ops_plus_faults(),
        shrunk.runs,
        path.display()
    );
    Ok(())
}
