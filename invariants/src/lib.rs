//! The checkers: pure functions from histories and traces to verdicts. No runtime, no I/O.
//!
//! Architecture invariant: this crate never depends on the simulator or the store's internals;
//! it sees only `faultline-api` types and the history.
//!
//! * `linearizability`: the generic engine (Wing & Gong / Lowe, as in porcupine), `Verdict`
//!   and `Report`.
//! * `models`: etcd's key space, a register, a key/value map.
//! * `etcd`: checking a recorded `history::History` (stale-read pre-check, search, historical
//!   reads).
//! * `formats`: parsers for porcupine's recorded histories.
//! * `testkit`: generators of histories for tests and benchmarks.
//! * `watch`: per-watch checks (filter, ordered, unique, atomic, bookmarkable; reliable,
//!   resumable, prev_kv, is-create against a replay of the linearization).

pub mod etcd;
pub mod formats;
pub mod history;
pub mod html;
pub mod linearizability;
pub mod models;
pub mod testkit;
pub mod watch;

/// Check a recorded etcd history for linearizability under etcd's model, with a budget of
/// search steps. Stale reads found by a direct pre-check make it `NotLinearizable` even when
/// the search runs out of budget.
pub fn check_etcd_history(
    history: &history::History,
    budget_steps: u64,
) -> linearizability::Verdict {
    etcd::check_etcd_history(history, budget_steps)
}
