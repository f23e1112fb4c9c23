//! Replaying seed files and checking that a run is deterministic.
//!
//! A replay re-runs the plan a seed file describes and compares the verdict kind and (if the
//! file pins one) the trace hash. A determinism check runs one plan twice in fresh runtimes and,
//! if the fingerprints differ, finds the first trace record or history operation where the two
//! runs part.

use crate::fuzz::{run_plan, RunResult};
use crate::plan::Plan;
use crate::runner::{RunOptions, RunOutput};
use crate::seedfile::{SeedFile, VerdictKind};

/// What a replay found.
#[derive(Debug)]
pub struct Replay {
    pub result: RunResult,
    pub output: Option<RunOutput>,
    pub verdict: VerdictKind,
    /// Differences from the file's expectation, one sentence each; empty when it matched.
    pub mismatches: Vec<String>,
}

impl Replay {
    pub fn matches(&self) -> bool {
        self.mismatches.is_empty()
    }
}

/// Re-run a seed file and compare with what it expects.
pub fn replay(file: &SeedFile) -> Replay {
    let options = RunOptions {
        canary: file.canary(),
    };
    let (result, output) = run_plan(&file.plan(), &options);
    let verdict = VerdictKind::of(&result.verdict);
    let mut mismatches = Vec::new();
    if verdict != file.expect.verdict {
        mismatches.push(format!(
            "verdict: expected {}, got {verdict} ({})",
            file.expect.verdict,
            result.verdict.label()
        ));
    }
    if let Some(expected) = file.expected_trace_hash() {
        if expected != result.trace_hash {
            mismatches.push(format!(
                "trace hash: expected {expected:016x}, got {:016x} (the file was written by \
                 code {}; this is {})",
                result.trace_hash,
                file.found_with,
                crate::seedfile::CodeVersion::current()
            ));
        }
    }
    Replay {
        result,
        output,
        verdict,
        mismatches,
    }
}

/// The outcome of running one plan twice.
#[derive(Debug)]
pub enum Determinism {
    Same(RunResult),
    Diverged {
        first: Box<RunResult>,
        second: Box<RunResult>,
        /// Where the two runs part, in words (the first differing record, both versions).
        divergence: String,
    },
}

/// Run `plan` twice, each in a fresh runtime, and compare everything the fingerprint covers.
pub fn check_determinism(plan: &Plan, options: &RunOptions) -> Determinism {
    let (first, first_output) = run_plan(plan, options);
    let (second, second_output) = run_plan(plan, options);
    let divergence = match (&first_output, &second_output) {
        (Some(a), Some(b)) => first_divergence(a, b),
        (None, None) if first.verdict == second.verdict => None,
        _ => Some(format!(
            "one run panicked and the other did not: {} vs {}",
            first.verdict.label(),
            second.verdict.label()
        )),
    };
    let divergence = divergence.or_else(|| {
        (first.trace_hash != second.trace_hash || first.verdict != second.verdict).then(|| {
            format!(
                "fingerprints or verdicts differ ({:016x} {} vs {:016x} {}) but no record does",
                first.trace_hash,
                first.verdict.label(),
                second.trace_hash,
                second.verdict.label()
            )
        })
    });
    match divergence {
        None => Determinism::Same(first),
        Some(divergence) => Determinism::Diverged {
            first: Box::new(first),
            second: Box::new(second),
            divergence,
        },
    }
}

/// The first trace record, then the first history operation, where two outputs differ.
pub fn first_divergence(a: &RunOutput, b: &RunOutput) -> Option<String> {
    let trace_len = a.trace.len().max(b.trace.len());
    for i in 0..trace_len {
        let (x, y) = (a.trace.get(i), b.trace.get(i));
        if x != y {
            return Some(format!(
                "trace record {i} differs:\n  first run:  {}\n  second run: {}",
                json_or(x, "(none: the trace ended)"),
                json_or(y, "(none: the trace ended)"),
            ));
        }
    }
    let ops_len = a.history.ops.len().max(b.history.ops.len());
    for i in 0..ops_len {
        let (x, y) = (a.history.ops.get(i), b.history.ops.get(i));
        if x != y {
            return Some(format!(
                "history operation {i} differs:\n  first run:  {}\n  second run: {}",
                json_or(x, "(none: the history ended)"),
                json_or(y, "(none: the history ended)"),
            ));
        }
    }
    if a.healed_write_succeeded != b.healed_write_succeeded || a.final_hashes != b.final_hashes {
        return Some(format!(
            "final phase differs: healed write {} vs {}, member hashes {:?} vs {:?}",
            a.healed_write_succeeded, b.healed_write_succeeded, a.final_hashes, b.final_hashes
        ));
    }
    None
}

/// One-line JSON of a record, for divergence reports.
fn json_or<T: serde::Serialize>(value: Option<&T>, absent: &str) -> String {
    match value {
        Some(value) => {
            serde_json::to_string(value).unwrap_or_else(|e| format!("(unserializable: {e})"))
        }
        None => absent.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::{TraceEvent, TraceRecord};

    #[test]
    fn a_divergence_is_located_at_the_first_differing_record() {
        let plan = Plan::generate(1, &crate::plan::Scenario::default_scenario());
        let (_, output) = run_plan(&plan, &RunOptions::default());
        let a = output.expect("no panic");
        assert_eq!(first_divergence(&a, &a.clone()), None);
        let mut b = a.clone();
        assert!(b.trace.len() > 10);
        b.trace[7] = TraceRecord {
            at_ns: b.trace[7].at_ns + 1,
            event: TraceEvent::Healed,
        };
        let found = first_divergence(&a, &b).expect("a difference");
        assert!(found.starts_with("trace record 7 differs"), "{found}");
        let mut c = a.clone();
        c.history.ops[3].complete_ns += 1;
        let found = first_divergence(&a, &c).expect("a difference");
        assert!(found.starts_with("history operation 3 differs"), "{found}");
    }
}
