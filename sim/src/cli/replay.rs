//! `dst replay`: re-run a seed file (or a seed) and confirm its verdict and trace hash; with
//! `--trace`, print the run's log with simulated time and one span per member.

use std::path::{Path, PathBuf};

use clap::Args;
use faultline_node::Canary;

use super::common::{check_canary_available, first_lines, load_scenario, parse_canary};
use super::tracelog::install_trace_subscriber;
use crate::replay::{replay, Replay};
use crate::seedfile::{SeedFile, VerdictKind};

#[derive(Args)]
pub struct ReplayArgs {
    /// A seed file (seeds/regressions/*.toml, seeds/found/*.toml, or the output of `dst shrink`).
    #[arg(required_unless_present = "seed", conflicts_with = "seed")]
    file: Option<PathBuf>,
    /// Replay a seed of a scenario instead of a file (expects a pass).
    #[arg(long)]
    seed: Option<u64>,
    /// With --seed: a scenario TOML file (default: the embedded default scenario).
    #[arg(long, requires = "seed")]
    scenario: Option<PathBuf>,
    /// With --seed: plant a re-introducible bug (needs a build with `--features canaries`).
    #[arg(long, value_parser = parse_canary, requires = "seed")]
    canary: Option<Canary>,
    /// Print the run's log to stderr: simulated time, the node (member-N, client-N, ...), each
    /// trace record and client operation, keys and values as text (filter with RUST_LOG).
    #[arg(long)]
    trace: bool,
    /// Write the run's history (every client operation) as JSON to this file.
    #[arg(long)]
    history: Option<PathBuf>,
    /// Write the HTML report of the run (a lane per client incarnation with the trace's faults
    /// and leader changes, the operations that cannot be placed highlighted) to this file.
    #[arg(long)]
    html: Option<PathBuf>,
    /// Print the failure report in full.
    #[arg(long)]
    verbose: bool,
}

pub fn run(args: ReplayArgs) -> Result<i32, String> {
    let file = seed_file(&args)?;
    check_canary_available(file.canary())?;
    if args.trace {
        install_trace_subscriber();
    }
    println!(
        "replaying seed {}{} (expect {}{}), written by {}",
        file.seed,
        file.canary
            .as_deref()
            .map(|c| format!(" with canary {c}"))
            .unwrap_or_default(),
        file.expect.verdict,
        file.expect
            .trace_hash
            .as_deref()
            .map(|h| format!(", trace {h}"))
            .unwrap_or_default(),
        file.found_with
    );
    if !file.description.is_empty() {
        println!("description: {}", file.description);
    }
    let replayed = replay(&file);
    println!("{}", replayed.result.one_line());
    if let crate::verdict::Verdict::Fail { report, .. } = &replayed.result.verdict {
        if args.verbose {
            println!("{report}");
        } else {
            println!("{}", first_lines(report, 30));
        }
    }
    if let Some(path) = &args.history {
        write_history(path, &replayed)?;
    }
    if let Some(path) = &args.html {
        write_html_report(path, &args, &file, &replayed)?;
    }
    if replayed.matches() {
        println!("replay matches: {}", replayed.verdict);
        Ok(0)
    } else {
        for mismatch in &replayed.mismatches {
            eprintln!("MISMATCH {mismatch}");
        }
        Ok(1)
    }
}

/// The seed file named on the command line, or one made for `--seed` (expecting a pass).
fn seed_file(args: &ReplayArgs) -> Result<SeedFile, String> {
    Ok(match (&args.file, args.seed) {
        (Some(path), _) => SeedFile::load(path).map_err(|e| e.to_string())?,
        (None, Some(seed)) => {
            let scenario = load_scenario(args.scenario.as_deref())?;
            check_canary_available(args.canary)?;
            let plan = crate::plan::Plan::generate(seed, &scenario);
            SeedFile::new(
                format!("seed {seed} of scenario {:?}", scenario.name),
                &plan,
                args.canary,
                VerdictKind::Pass,
                None,
            )
        }
        (None, None) => unreachable!("clap requires a file or --seed"),
    })
}

/// `--history`: the run's history as JSON.
fn write_history(path: &Path, replayed: &Replay) -> Result<(), String> {
    let output = replayed
        .output
        .as_ref()
        .ok_or("the run panicked: there is no history to write")?;
    let json = serde_json::to_string_pretty(&output.history)
        .map_err(|e| format!("cannot serialize the history: {e}"))?;
    std::fs::write(path, json)
        .map_err(|e| format!("cannot write history {}: {e}", path.display()))?;
    println!("history written to {}", path.display());
    Ok(())
}

/// `--html`: the run's HTML report.
fn write_html_report(
    path: &Path,
    args: &ReplayArgs,
    file: &SeedFile,
    replayed: &Replay,
) -> Result<(), String> {
    let output = replayed
        .output
        .as_ref()
        .ok_or("the run panicked: there is no history to draw")?;
    let source = match &args.file {
        Some(file) => format!("dst replay {}", file.display()),
        None => format!("dst replay --seed {}", file.seed),
    };
    let mut notes = vec![
        format!("replay: {source}"),
        format!("trace hash: {:016x}", replayed.result.trace_hash),
    ];
    if !file.description.is_empty() {
        notes.push(format!("description: {}", file.description));
    }
    let title = format!(
        "seed {}{}",
        file.seed,
        file.canary
            .as_deref()
            .map(|c| format!(" with canary {c}"))
            .unwrap_or_default()
    );
    let html = crate::report::render_run_report(
        &file.plan(),
        output,
        &replayed.result.verdict,
        &title,
        notes,
    );
    std::fs::write(path, html)
        .map_err(|e| format!("cannot write the HTML report {}: {e}", path.display()))?;
    println!("HTML report written to {}", path.display());
    Ok(())
}
