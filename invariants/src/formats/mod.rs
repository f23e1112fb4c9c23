//! Parsers for the recorded histories in `shared/data/porcupine` (see its README) and a
//! checking function per format. Times in these histories are line numbers.
//!
//! A parser never guesses: a line that is neither an operation of its format nor a line the
//! format is known to carry besides operations is an error naming the line, and so is a file
//! with no operation at all (an empty file, or a file of another format whose lines happen to
//! be skippable), so a wrong `--format` cannot pass as "linearizable".

mod jepsen;
mod kv;

pub use jepsen::parse_jepsen_register;
pub use kv::parse_porcupine_kv;

use crate::linearizability::{check, Op, TimeUnit, Verdict};
use crate::models::kv::{KvInput, KvOutput, KvWholeModel};
use crate::models::kv_hints::HintedKvModel;
use crate::models::register::{RegisterInput, RegisterModel, RegisterOutput};

pub type RegisterOp = Op<RegisterInput, RegisterOutput>;
pub type KvOp = Op<KvInput, KvOutput>;

/// Input that is not a history of the expected format.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line number; `None` when the fault is the file as a whole (no operation in it).
    pub line: Option<usize>,
    pub message: String,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(line) => write!(f, "line {line}: {}", self.message),
            None => write!(f, "{}", self.message),
        }
    }
}

impl std::error::Error for ParseError {}

fn err(line: usize, message: impl Into<String>) -> ParseError {
    ParseError {
        line: Some(line),
        message: message.into(),
    }
}

/// The error for a text with no operation of a format: `lines` lines (after skipping what the
/// format allows besides operations), `expected` describing the format's operation lines.
fn no_operations(lines: usize, expected: &str) -> ParseError {
    let what = if lines == 0 {
        "the file is empty".to_string()
    } else {
        format!("none of its {lines} lines is an operation")
    };
    ParseError {
        line: None,
        message: format!("no operation: {what}; expected {expected}"),
    }
}

/// A line as quoted in an error: its first 60 characters, escaped, then `...` if cut.
fn quoted(raw: &str) -> String {
    const MAX_CHARS: usize = 60;
    let shown: String = raw.chars().take(MAX_CHARS).collect();
    let cut = if raw.chars().count() > MAX_CHARS {
        "..."
    } else {
        ""
    };
    format!("{shown:?}{cut}")
}

/// Sort operations by call (then client) and number them in that order.
fn number_in_call_order<I, O>(ops: &mut [Op<I, O>]) {
    ops.sort_by_key(|op| (op.call, op.client));
    for (i, op) in ops.iter_mut().enumerate() {
        op.id = i as u64;
    }
}

/// Check a register history.
pub fn check_register_ops(ops: &[RegisterOp], budget_steps: u64) -> Verdict {
    check(&RegisterModel, ops, budget_steps, TimeUnit::Position)
}

/// Check a kv history, split per key (candidates tried in the order the gets show: see
/// `models::kv_hints`).
pub fn check_kv_ops(ops: &[KvOp], budget_steps: u64) -> Verdict {
    check(
        &HintedKvModel::new(ops),
        ops,
        budget_steps,
        TimeUnit::Position,
    )
}

/// Check a kv history as one history (no per-key split); for comparison only.
pub fn check_kv_ops_unpartitioned(ops: &[KvOp], budget_steps: u64) -> Verdict {
    check(&KvWholeModel, ops, budget_steps, TimeUnit::Position)
}

/// Parse and check a Jepsen register log.
pub fn check_jepsen_register(text: &str, budget_steps: u64) -> Result<Verdict, ParseError> {
    Ok(check_register_ops(
        &parse_jepsen_register(text)?,
        budget_steps,
    ))
}

/// Parse and check a porcupine kv history.
pub fn check_porcupine_kv(text: &str, budget_steps: u64) -> Result<Verdict, ParseError> {
    Ok(check_kv_ops(&parse_porcupine_kv(text)?, budget_steps))
}
