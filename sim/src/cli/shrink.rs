//! `dst shrink`: minimize a failing seed file's plan and write a seed file that replays it.

use std::path::PathBuf;

use clap::Args;

use super::common::check_canary_available;
use crate::runner::RunOptions;
use crate::seedfile::{SeedFile, VerdictKind};
use crate::shrink::{shrink, ShrinkOptions};

#[derive(Args)]
pub struct ShrinkArgs {
    /// The seed file of a failing run.
    file: PathBuf,
    /// Where to write the shrunk seed file (default: next to the input, `*.shrunk.toml`).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Upper bound on simulations run while shrinking.
    #[arg(long, default_value_t = ShrinkOptions::default().max_runs)]
    max_runs: usize,
}

pub fn run(args: ShrinkArgs) -> Result<i32, String> {
    let file = SeedFile::load(&args.file).map_err(|e| e.to_string())?;
    check_canary_available(file.canary())?;
    if file.expect.verdict == VerdictKind::Pass {
        return Err(format!(
            "{} expects a pass: there is no failure to shrink",
            args.file.display()
        ));
    }
    if args.max_runs == 0 {
        return Err("--max-runs must be at least 1".to_string());
    }
    let options = RunOptions {
        canary: file.canary(),
    };
    let started = std::time::Instant::now();
    let shrunk = shrink(
        &file.plan(),
        &options,
        file.expect.verdict,
        &ShrinkOptions {
            max_runs: args.max_runs,
        },
        &mut |line| println!("{line}"),
    )?;
    println!("before: {}", shrunk.before);
    println!("after:  {}", shrunk.after);
    println!(
        "shrank {:.1}x (ops + faults {} -> {}) in {} runs, {:.1} s{}",
        shrunk.ratio(),
        shrunk.before.ops_plus_faults(),
        shrunk.after.ops_plus_faults(),
        shrunk.runs,
        started.elapsed().as_secs_f64(),
        if shrunk.budget_exhausted {
            "; the run budget ran out, a smaller plan may exist (raise --max-runs)"
        } else {
            ""
        }
    );
    let out = args.out.unwrap_or_else(|| {
        let stem = args
            .file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "seed".to_string());
        args.file.with_file_name(format!("{stem}.shrunk.toml"))
    });
    let description = format!(
        "{} (shrunk {:.1}x from {} ops + {} faults)",
        file.description,
        shrunk.ratio(),
        shrunk.before.ops,
        shrunk.before.faults
    );
    let shrunk_file = SeedFile::new(
        description,
        &shrunk.plan,
        file.canary(),
        VerdictKind::of(&shrunk.result.verdict),
        Some(shrunk.result.trace_hash),
    );
    shrunk_file
        .save(&out)
        .map_err(|e| format!("cannot write {}: {e}", out.display()))?;
    println!(
        "wrote {}; replay with `cargo dst replay {}`",
        out.display(),
        out.display()
    );
    Ok(0)
}
