//! The checkers: pure functions from histories and traces to verdicts. No runtime, no I/O.
//!
//! Architecture invariant: this crate never depends on the simulator or the store's internals;
//! it sees only `faultline-api` types and the history.

pub mod history;
