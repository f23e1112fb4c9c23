//! (History, Trace) → Verdict: every checker over one run's output.
//!
//! Safety first (Raft's safety from the trace, linearizability of the history, convergence of
//! the members), then liveness after heal. A checker never passes by default: a search that
//! runs out of budget is `Unknown`, which is not a pass.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use faultline_invariants::linearizability::Verdict as LinVerdict;
use faultline_invariants::watch::{WatchVerdict, WatchViolation};
use faultline_node::NodeEvent;
use serde::{Deserialize, Serialize};

use crate::plan::{Plan, Scenario};
use crate::runner::RunOutput;
use crate::trace::TraceEvent;

mod leases;
mod maintenance;
use leases::expiry_note;
pub use leases::{check_locks, election_ms, lease_expiry_bounds, CLOCK_RATE_BOUND_PERCENT};
pub use maintenance::{check_planned_availability, UNPLANNED_RECOVERY_GRACE_NS};

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
    /// A member answered with a revision lower than one it had answered with before.
    RevisionDecrease,
    /// The scenario promises writes while one zone is down (five voters over three zones),
    /// and a zone loss passed without one; or, under planned maintenance, a request to a
    /// member outside the disruption failed or took too long (`check_planned_availability`).
    Availability,
    /// Two leader-election clients believed they held one lock at overlapping times
    /// (`faultline_invariants::lock`).
    LockExclusion,
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
            FailureKind::RevisionDecrease => 17,
            FailureKind::Availability => 18,
            FailureKind::LockExclusion => 19,
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

/// Every checker over a run's output alone: lease expiry deadlines are not enforced (they
/// need the scenario's election timing); `check_plan` enforces them.
pub fn check(output: &RunOutput) -> Verdict {
    check_timed(output).0
}

/// Every checker over the output of a run of `plan`, lease expiry windows included.
pub fn check_plan(plan: &Plan, output: &RunOutput) -> Verdict {
    check_timed_plan(plan, output).0
}

/// Wall time of each checker over one run, in the order they ran (for `dst bench`; never
/// part of a verdict).
pub type CheckerTimes = Vec<(&'static str, Duration)>;

/// `check`, with the wall time each checker took.
pub fn check_timed(output: &RunOutput) -> (Verdict, CheckerTimes) {
    let mut times = CheckerTimes::new();
    let verdict = run_checkers(output, None, &mut times);
    (verdict, times)
}

/// `check_plan`, with the wall time each checker took.
pub fn check_timed_plan(plan: &Plan, output: &RunOutput) -> (Verdict, CheckerTimes) {
    let mut times = CheckerTimes::new();
    let verdict = run_checkers(output, Some(&plan.scenario), &mut times);
    (verdict, times)
}

/// Run `f` as the checker `name`, adding its wall time to `times`.
fn timed<T>(times: &mut CheckerTimes, name: &'static str, f: impl FnOnce() -> T) -> T {
    let started = Instant::now();
    let out = f();
    times.push((name, started.elapsed()));
    out
}

fn run_checkers(
    output: &RunOutput,
    scenario: Option<&Scenario>,
    times: &mut CheckerTimes,
) -> Verdict {
    let bounds = lease_expiry_bounds(scenario, &output.trace);
    let raft = timed(times, "raft safety", || {
        check_raft_safety(output).or_else(|| check_promotions(output))
    });
    if let Some(report) = raft {
        return Verdict::Fail {
            kind: FailureKind::RaftSafety,
            report,
        };
    }
    let decreases = timed(times, "member revisions", || {
        faultline_invariants::member_revisions::check_member_revisions(&output.history)
    });
    if !decreases.is_empty() {
        let report: Vec<String> = decreases.iter().map(ToString::to_string).collect();
        return Verdict::Fail {
            kind: FailureKind::RevisionDecrease,
            report: report.join("\n"),
        };
    }
    // Before the search: a definite finding that names the two holders, even where the
    // search would run out of budget or report only the operation it cannot place.
    if let Some(report) = timed(times, "locks", || check_locks(output, &bounds)) {
        return Verdict::Fail {
            kind: FailureKind::LockExclusion,
            report,
        };
    }
    // One search: its linearization is also the write order the watch checks replay.
    let (linearizability, linearization) = timed(times, "linearizability", || {
        faultline_invariants::etcd::check_etcd_history_expiring(
            &output.history,
            LINEARIZABILITY_BUDGET_STEPS,
            &bounds,
        )
    });
    let linearization = match linearizability {
        LinVerdict::Linearizable => {
            linearization.expect("a linearizable verdict comes with its linearization")
        }
        LinVerdict::NotLinearizable(report) => {
            return Verdict::Fail {
                kind: FailureKind::NotLinearizable,
                report: format!("{report}{}", expiry_note(output, &bounds)),
            }
        }
        LinVerdict::Unknown { reason } => return Verdict::Unknown { reason },
    };
    let watches = timed(times, "watches", || {
        faultline_invariants::watch::check_watches_with(&output.history, &linearization)
    });
    match watches {
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
    if let Some(report) = timed(times, "convergence", || check_convergence(output)) {
        return Verdict::Fail {
            kind: FailureKind::Divergence,
            report,
        };
    }
    if output.writes_promised_during_zone_loss {
        if let Some(report) = timed(times, "zone-loss availability", || {
            check_zone_loss_availability(output)
        }) {
            return Verdict::Fail {
                kind: FailureKind::Availability,
                report,
            };
        }
    }
    if let Some(report) = timed(times, "planned availability", || {
        check_planned_availability(output)
    }) {
        return Verdict::Fail {
            kind: FailureKind::Availability,
            report,
        };
    }
    Verdict::Pass
}

/// After losing a zone, a cluster whose other zones hold a quorum elects a leader (if it lost
/// one) within this, and from then on must commit writes.
pub const ZONE_LOSS_GRACE_NS: u64 = 2_000_000_000;

/// While a zone is down (after the grace for an election), every write a client sent to a
/// member outside the lost zone and got an answer for before the zone came back succeeded:
/// none timed out, none lost its leader, none found no leader. Writes sent to the lost
/// members, or still in flight when the zone returned, say nothing about the cluster.
pub fn check_zone_loss_availability(output: &RunOutput) -> Option<String> {
    let mut open: BTreeMap<u32, (u64, Vec<u64>)> = BTreeMap::new();
    let mut windows = Vec::new();
    for record in &output.trace {
        match &record.event {
            TraceEvent::FaultStart {
                fault: crate::plan::Fault::ZoneDown { zone },
                members,
            } => {
                open.insert(*zone, (record.at_ns, members.clone()));
            }
            TraceEvent::FaultEnd {
                fault: crate::plan::Fault::ZoneDown { zone },
                ..
            } => {
                if let Some((start, lost)) = open.remove(zone) {
                    windows.push((*zone, start, record.at_ns, lost));
                }
            }
            _ => {}
        }
    }
    for (zone, start_ns, end_ns, lost) in windows {
        let judged_from_ns = start_ns + ZONE_LOSS_GRACE_NS;
        let refused = output.history.ops.iter().find(|op| {
            op.request.is_write()
                && op.member.is_some_and(|m| !lost.contains(&m))
                && op.invoke_ns >= judged_from_ns
                && op.complete_ns <= end_ns
                && unavailable(&op.outcome)
        });
        if let Some(op) = refused {
            return Some(format!(
                "zone {zone} (members {lost:?}) was down from {:.3} s to {:.3} s, and the write \
                 {} sent to member {} at {:.3} s, after the {:.1} s grace for an election, ended \
                 {:?}, though the other zones hold a quorum of voters",
                start_ns as f64 / 1e9,
                end_ns as f64 / 1e9,
                op.id,
                op.member.unwrap_or(0),
                op.invoke_ns as f64 / 1e9,
                ZONE_LOSS_GRACE_NS as f64 / 1e9,
                op.outcome,
            ));
        }
    }
    None
}

/// An outcome that says the cluster could not take the write (not a refusal of the write
/// itself, such as a failed compare or a compacted revision).
fn unavailable(outcome: &faultline_invariants::history::Outcome) -> bool {
    use faultline_api::EtcdError;
    use faultline_invariants::history::Outcome;
    match outcome {
        Outcome::Ok(_) => false,
        Outcome::Unknown(_) => true,
        Outcome::Failed(error) => matches!(
            error,
            EtcdError::NoLeader
                | EtcdError::NotLeader { .. }
                | EtcdError::LeaderChanged
                | EtcdError::Timeout
                | EtcdError::Stopped
        ),
    }
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
    // index -> (term, digest, revision after it, member)
    let mut applied: BTreeMap<u64, (u64, u64, i64, u64)> = BTreeMap::new();
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
                revision,
            } => match applied.get(index) {
                Some(&(first_term, first_digest, _, first_member))
                    if (first_term, first_digest) != (*term, *digest) =>
                {
                    return Some(format!(
                        "state machine safety: at log index {index}, member {first_member} applied \
                         an entry of term {first_term} (digest {first_digest:016x}) but member \
                         {member} applied one of term {term} (digest {digest:016x}), at {:.3} ms",
                        record.at_ns as f64 / 1e6
                    ));
                }
                // The same entries from the same state give the same revision, on every member
                // and in every incarnation: a restore from a snapshot must not change it.
                Some(&(_, _, first_revision, first_member)) if first_revision != *revision => {
                    return Some(format!(
                        "state machine safety: after log index {index}, member {first_member} was \
                         at revision {first_revision} but member {member} at revision {revision} \
                         (the same entries applied to different states), at {:.3} ms",
                        record.at_ns as f64 / 1e6
                    ));
                }
                Some(_) => {}
                None => {
                    applied.insert(*index, (*term, *digest, *revision, *member));
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

/// A promoted learner may lag the promotion's index by at most this many entries when the
/// promotion commits (the leader refuses beyond 16 entries of its log; the rest covers what
/// the learner holds but has not yet heard is committed, at most the entries of the last
/// round trip).
pub const PROMOTION_LAG_LIMIT_ENTRIES: u64 = 100;

/// A learner becomes a voter only once caught up (etcd refuses an unready learner): when the
/// promotion at index `i` first commits, the learner had applied (or installed a snapshot)
/// up to within `PROMOTION_LAG_LIMIT_ENTRIES` of `i`. Evidence from the learner's own events,
/// not from the leader's bookkeeping the rule relies on.
pub fn check_promotions(output: &RunOutput) -> Option<String> {
    let mut progress: BTreeMap<u64, u64> = BTreeMap::new(); // member -> highest index it holds applied
    let mut judged: std::collections::BTreeSet<u64> = Default::default(); // promotion indexes
    for record in &output.trace {
        let TraceEvent::Member { member, event } = &record.event else {
            continue;
        };
        match event {
            NodeEvent::Applied { index, .. } | NodeEvent::SnapshotInstalled { index, .. } => {
                let held = progress.entry(*member).or_default();
                *held = (*held).max(*index);
            }
            // Judged once per promotion entry, at its first apply anywhere (it is committed).
            NodeEvent::ConfChangeApplied {
                index,
                change,
                node: promoted,
                ..
            } if change.starts_with("promote") && judged.insert(*index) => {
                let held = progress.get(promoted).copied().unwrap_or(0);
                if held + PROMOTION_LAG_LIMIT_ENTRIES < *index {
                    return Some(format!(
                        "membership safety: learner {promoted} was promoted at log index \
                         {index} (committed by {:.3} ms) while it held entries only up to \
                         {held}: a voter that holds nothing yet joined the quorum",
                        record.at_ns as f64 / 1e6
                    ));
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
mod tests;
