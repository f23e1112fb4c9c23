//! The `dst` command line: a thin front end over the stages of a run. Each subcommand's
//! arguments and work live in their own module; this file parses and dispatches.

mod bench;
mod canary;
mod check;
mod common;
mod fuzz;
mod interrupt;
mod replay;
mod run;
mod shrink;
mod tracelog;
mod triage;

use clap::{Parser, Subcommand};

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
    Run(run::RunArgs),
    /// Re-run a seed file (or a seed) and confirm its verdict and trace hash.
    Replay(replay::ReplayArgs),
    /// Minimize a failing seed file's plan; writes a seed file that replays the small failure.
    Shrink(shrink::ShrinkArgs),
    /// Hunt every canary (planted bug) and print seeds and time to first detection.
    Canary(canary::CanaryArgs),
    /// Check a recorded history on its own (exit 0 linearizable, 1 not, 2 unknown, 3 unreadable,
    /// 4 an output file cannot be written).
    Check(check::CheckArgs),
    /// Run a range of seeds (or a time budget's worth, or a shard) and list the failing ones
    /// with the command that replays each (exit 0 all pass, 1 a failure or unknown, 2 bad
    /// input, 4 the --json summary cannot be written, 128+signal interrupted).
    Fuzz(fuzz::FuzzArgs),
    /// Group a folder of found seed files by failure signature, replay one per group, print a
    /// table (exit 0 every example reproduced, 1 not, 2 bad input).
    Triage(triage::TriageArgs),
    /// Run seeds one after another on one thread and print where the wall time goes
    /// (simulated seconds per wall second, client operations per second, seeds per hour per
    /// core, each stage of a run).
    Bench(bench::BenchArgs),
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
    run_from(std::env::args_os())
}

/// Parse `args` (the first is the program name) without running anything: campaign
/// definitions in the repository are checked against the real flags this way.
pub fn parse_only<I, T>(args: I) -> Result<(), String>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    Cli::try_parse_from(args)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Parse `args` (the first is the program name) and run the command; the exit code. Tests
/// call this to run `dst` as a user would, inside the test process.
pub fn run_from<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version print to stdout and exit 0; usage errors exit 2 (bad input).
            let _ = e.print();
            return e.exit_code();
        }
    };
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
        Command::Run(args) => run::run(args),
        Command::Replay(args) => replay::run(args),
        Command::Shrink(args) => shrink::run(args),
        Command::Canary(args) => canary::run(args),
        Command::Check(args) => check::run(args),
        Command::Fuzz(args) => fuzz::run(args),
        Command::Triage(args) => triage::run(args),
        Command::Bench(args) => bench::run(args),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// `dst <sub> --help` has a line of help for every argument and option of every command.
    #[test]
    fn every_option_has_help_text() {
        let cli = Cli::command();
        let mut missing = Vec::new();
        for sub in cli.get_subcommands() {
            assert!(
                sub.get_about().is_some(),
                "dst {} has no about",
                sub.get_name()
            );
            for arg in sub.get_arguments() {
                let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
                if help.trim().is_empty() {
                    missing.push(format!("dst {} {}", sub.get_name(), arg.get_id()));
                }
            }
        }
        assert!(missing.is_empty(), "no help text: {missing:?}");
    }
}
