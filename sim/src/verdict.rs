//! (History, Trace) → Verdict: every checker over one run's output.
//!
//! Safety first (Raft's safety from the trace, linearizability of the history, convergence of
//! the members), then liveness after heal. A checker never passes by default: a search that
//! runs out of budget is `Unknown`, which is not a pass.

use std::collections::BTreeMap;

use faultline_invariants::linearizability::Verdict as LinVerdict;
use faultline_invariants::watch::{WatchVerdict, WatchViolation};
use faultline_node::NodeEvent;
use serde::{Deserialize, Serialize};

use crate::runner::RunOutput;
use crate::trace::TraceEvent;

/// The class of a failure; also the process exit code of `dst run` (TigerBeetle-style).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum FailureKind {
    /// Two members applied different entries at one index, or two leaders in one term.
    RaftSafety,
    /// The history is not linearizable under etcd's model.
    NotLinearizable,
    /// Members disagree on HashKV at the final revision.
    Divergence,
    /// No write succeeded after every fault was healed.
    Liveness,
    /// The simulation itself panicked (an assertion inside the store, usually).
    Panic,
    /// A watch broke one of etcd's watch guarantees (ordered, unique, atomic, ...).
    WatchGuarantee,
}

impl FailureKind {
    pub fn exit_code(self) -> i32 {
        match self {
            FailureKind::RaftSafety => 10,
            FailureKind::NotLinearizable => 11,
            FailureKind::Divergence => 12,
            FailureKind::Liveness => 13,
            FailureKind::Panic => 14,
            FailureKind::WatchGuarantee => 16,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Verdict {
    Pass,
    Fail {
        kind: FailureKind,
        report: String,
    },
    /// A checker ran out of budget: neither pass nor fail.
    Unknown {
        reason: String,
    },
}

impl Verdict {
    pub fn is_pass(&self) -> bool {
        matches!(self, Verdict::Pass)
    }

    pub fn label(&self) -> String {
        match self {
            Verdict::Pass => "PASS".to_string(),
            Verdict::Fail { kind, .. } => format!("FAIL({kind:?})"),
            Verdict::Unknown { .. } => "UNKNOWN".to_string(),
        }
    }
}

/// Search budget of the linearizability checker per run.
pub const LINEARIZABILITY_BUDGET_STEPS: u64 = 5_000_000;

pub fn check(output: &RunOutput) -> Verdict {
    if let Some(report) = check_raft_safety(output) {
        return Verdict::Fail {
            kind: FailureKind::RaftSafety,
            report,
        };
    }
    // One search: its linearization is also the write order the watch checks replay.
    let (linearizability, linearization) = faultline_invariants::etcd::check_etcd_history_detailed(
        &output.history,
        LINEARIZABILITY_BUDGET_STEPS,
    );
    let linearization = match linearizability {
        LinVerdict::Linearizable => {
            linearization.expect("a linearizable verdict comes with its linearization")
        }
        LinVerdict::NotLinearizable(report) => {
            return Verdict::Fail {
                kind: FailureKind::NotLinearizable,
                report: report.to_string(),
            }
        }
        LinVerdict::Unknown { reason } => return Verdict::Unknown { reason },
    };
    match faultline_invariants::watch::check_watches_with(&output.history, &linearization) {
        WatchVerdict::Ok => {}
        WatchVerdict::Violated(violations) => {
            return Verdict::Fail {
                kind: FailureKind::WatchGuarantee,
                report: describe_watch_violations(output, &violations),
            };
        }
        WatchVerdict::Unknown { reason } => {
            return Verdict::Unknown {
                reason: format!("watch checks: {reason}"),
            }
        }
    }
    if !output.healed_write_succeeded {
        return Verdict::Fail {
            kind: FailureKind::Liveness,
            report: "no write succeeded within heal_timeout_ms after every fault was healed"
                .to_string(),
        };
    }
    let lagging: Vec<u64> = output
        .final_hashes
        .iter()
        .filter(|(_, h)| h.is_none())
        .map(|(m, _)| *m)
        .collect();
    if !lagging.is_empty() {
        // Progress, not disagreement: the member may be slow or stuck, but nothing it
        // answered contradicts the others.
        return Verdict::Fail {
            kind: FailureKind::Liveness,
            report: format!(
                "member(s) {lagging:?} did not reach the final revision within heal_timeout_ms \
                 after every fault was healed"
            ),
        };
    }
    if let Some(report) = check_convergence(output) {
        return Verdict::Fail {
            kind: FailureKind::Divergence,
            report,
        };
    }
    Verdict::Pass
}

fn describe_watch_violations(output: &RunOutput, violations: &[WatchViolation]) -> String {
    let mut report = format!("{} watch guarantee violation(s)\n", violations.len());
    for violation in violations {
        let watch = &output.history.watches[violation.watch];
        report.push_str(&format!(
            "watch {} (client {}, member {:?}, from revision {}): {:?} broken at response {}: {}\n",
            violation.watch,
            violation.client,
            watch.member,
            watch.request.start_revision,
            violation.property,
            violation.response,
            violation.explanation
        ));
    }
    report
}

/// Raft's State Machine Safety (no two members apply different entries at one index) and
/// Election Safety (at most one leader per term), from the members' own reports.
pub fn check_raft_safety(output: &RunOutput) -> Option<String> {
    let mut applied: BTreeMap<u64, (u64, u64, u64)> = BTreeMap::new(); // index -> (term, digest, member)
    let mut leaders: BTreeMap<u64, u64> = BTreeMap::new(); // term -> member
    for record in &output.trace {
        let TraceEvent::Member { member, event } = &record.event else {
            continue;
        };
        match event {
            NodeEvent::Applied {
                index,
                term,
                digest,
                ..
            } => match applied.get(index) {
                Some(&(first_term, first_digest, first_member))
                    if (first_term, first_digest) != (*term, *digest) =>
                {
                    return Some(format!(
                        "state machine safety: at log index {index}, member {first_member} applied \
                         an entry of term {first_term} (digest {first_digest:016x}) but member \
                         {member} applied one of term {term} (digest {digest:016x}), at {:.3} ms",
                        record.at_ns as f64 / 1e6
                    ));
                }
                Some(_) => {}
                None => {
                    applied.insert(*index, (*term, *digest, *member));
                }
            },
            NodeEvent::RoleChanged { role, term, .. } if role == "Leader" => {
                match leaders.get(term) {
                    Some(&other) if other != *member => {
                        return Some(format!(
                            "election safety: members {other} and {member} both led term {term}"
                        ));
                    }
                    _ => {
                        leaders.insert(*term, *member);
                    }
                }
            }
            _ => {}
        }
    }
    None
}

/// Every member reached the final revision and they agree on HashKV there.
pub fn check_convergence(output: &RunOutput) -> Option<String> {
    let mut first: Option<(u64, (i64, u32))> = None;
    for (&member, hash) in &output.final_hashes {
        let Some(hash) = *hash else {
            return Some(format!(
                "member {member} did not reach the final revision within heal_timeout_ms"
            ));
        };
        match first {
            None => first = Some((member, hash)),
            Some((other, other_hash)) if other_hash != hash => {
                return Some(format!(
                    "HashKV differs: member {other} has (compact_revision {}, hash {:08x}), \
                     member {member} has (compact_revision {}, hash {:08x})",
                    other_hash.0, other_hash.1, hash.0, hash.1
                ));
            }
            Some(_) => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use faultline_invariants::history::History;

    fn output(healed: bool, hashes: &[(u64, Option<(i64, u32)>)]) -> RunOutput {
        RunOutput {
            history: History::default(),
            trace: Vec::new(),
            healed_write_succeeded: healed,
            final_hashes: hashes.iter().copied().collect(),
            continued_sessions: Default::default(),
        }
    }

    /// The liveness and convergence checks fire: no write after heal, members that never
    /// reached the final revision (all of them named), members that disagree.
    #[test]
    fn liveness_and_convergence_failures_are_reported() {
        let all_agree = [(1, Some((5, 77))), (2, Some((5, 77))), (3, Some((5, 77)))];
        assert_eq!(check(&output(true, &all_agree)), Verdict::Pass);
        assert!(matches!(
            check(&output(false, &all_agree)),
            Verdict::Fail {
                kind: FailureKind::Liveness,
                ..
            }
        ));
        let lagging = [(1, Some((5, 77))), (2, None), (3, None)];
        let Verdict::Fail { kind, report } = check(&output(true, &lagging)) else {
            panic!("lagging members must fail the run")
        };
        assert_eq!(kind, FailureKind::Liveness);
        assert!(report.contains("[2, 3]"), "{report}");
        let disagree = [(1, Some((5, 77))), (2, Some((5, 78))), (3, Some((5, 77)))];
        assert!(matches!(
            check(&output(true, &disagree)),
            Verdict::Fail {
                kind: FailureKind::Divergence,
                ..
            }
        ));
    }
}
