//! The checkers: pure functions from histories and traces to verdicts. No runtime, no I/O.
//!
//! Architecture invariant: this crate never depends on the simulator or the store's internals;
//! it sees only `faultline-api` types and the history.
//!
//! Modules, bottom up (each uses only those above it):
//! * `history`: the recorded history (what the simulator writes).
//! * `linearizability`: the generic engine (Wing & Gong / Lowe, as in porcupine), `Verdict`
//!   and `Report`.
//! * `describe`: requests, responses and operations in one line, for reports.
//! * `models`: etcd's key space, a register, a key/value map.
//! * `etcd`: checking a recorded `history::History`: a pipeline of passes (stale reads,
//!   revision claims and pins, watch facts, symmetry classes, key and lease facts, lease
//!   expiry windows), the search in its fallback order, and historical reads against the
//!   linearization found.
//! * `watch`: per-watch checks (filter, ordered, unique, atomic, bookmarkable; reliable,
//!   resumable, prev_kv, is-create against a replay of the linearization).
//! * `lock`: leader-election locks: no two clients believed they held one at once.
//! * `member_revisions`: no member answers with a revision lower than one it answered before.
//! * `formats`: parsers for porcupine's recorded histories.
//! * `html`: the HTML report of a checked history.
//! * `testkit`: generators of histories for tests and benchmarks.

pub mod describe;
pub mod etcd;
pub mod formats;
pub mod history;
pub mod html;
pub mod linearizability;
pub mod lock;
pub mod member_revisions;
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
