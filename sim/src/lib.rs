//! The simulator: a whole cluster in one process, driven by one u64 seed.
//!
//! The path of a run, one function per arrow:
//! `seed ─Plan::generate→ Plan ─runner::simulate→ RunOutput (history, trace) ─verdict::check→ Verdict`.
//! Everything that runs inside madsim needs `--cfg madsim` (the workspace default).

#[cfg(madsim)]
pub mod bench;
#[cfg(madsim)]
pub mod cli;
#[cfg(madsim)]
pub mod clock;
pub mod disk;
pub mod fuzz;
pub mod names;
pub mod plan;
#[cfg(madsim)]
pub mod runner;
pub mod trace;
#[cfg(madsim)]
pub mod verdict;
// Issue 5: from a failing seed to the bug (seed files, replay, shrinking, canaries).
#[cfg(madsim)]
pub mod campaign;
#[cfg(madsim)]
pub mod canary;
#[cfg(madsim)]
pub mod replay;
pub mod report;
pub mod seedfile;
pub mod seedrange;
#[cfg(madsim)]
pub mod shrink;
#[cfg(madsim)]
pub mod triage;

#[cfg(madsim)]
pub use fuzz::{run_plan, run_seed, RunResult};
