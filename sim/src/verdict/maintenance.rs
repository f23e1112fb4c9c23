//! Availability under planned disruption (`plan::MaintenanceOp`, `TraceEvent::Maintenance`):
//! while maintenance runs and no unplanned fault does, every request a client sent to a
//! member outside the disruption succeeded within `plan::planned_request_bound_ms`.
//!
//! What counts, with etcd's facts:
//! - A request whose member was disrupted at any moment of it (stopping, down, removed, or
//!   restarted but not yet caught up) may fail or hang: a gRPC call in flight to a member that
//!   stops fails, and etcd's client retries it on another endpoint. Our store also ends a
//!   write in flight at a leader that hands over with `LeaderChanged` (etcd would still answer
//!   it once the entry commits under the new leader); the old leader is the member being
//!   stopped, so that is excused too.
//! - Any other request must succeed: a graceful stop hands leadership over first, so the
//!   cluster is never without a leader for an election timeout, and the members left hold a
//!   quorum as long as the budget holds. A failure that says the cluster could not serve it
//!   (no leader, timeout, leader changed, unknown outcome), or an answer later than the
//!   bound, is a violation. Refusals of the request itself (a failed compare, a compacted
//!   revision) are answers, not unavailability.
//! - Unplanned faults are checked for safety only: a request that overlaps an unplanned
//!   fault window, or starts within `UNPLANNED_RECOVERY_GRACE_NS` after one, is not judged.

use faultline_invariants::describe::{describe_outcome, describe_request};
use faultline_invariants::history::Operation;

use super::unavailable;
use crate::runner::RunOutput;
use crate::trace::{MaintenanceStep, TraceEvent};

/// After an unplanned fault ends, the cluster may need an election (a returning member with
/// a higher term, a leader that was cut off): requests starting within this are not judged.
/// The zone-loss check's grace for an election, for the same reason.
pub const UNPLANNED_RECOVERY_GRACE_NS: u64 = super::ZONE_LOSS_GRACE_NS;

/// A span of simulated time, `[from_ns, to_ns)`.
#[derive(Clone, Copy, Debug)]
struct Span {
    from_ns: u64,
    to_ns: u64,
}

impl Span {
    fn overlaps(self, from_ns: u64, to_ns: u64) -> bool {
        self.from_ns <= to_ns && from_ns < self.to_ns
    }
}

/// The windows the trace shows: maintenance actions running, each member's disruptions, and
/// unplanned faults (with the recovery grace after each).
#[derive(Default)]
struct Windows {
    maintenance: Vec<Span>,
    disrupted: Vec<(u64, Span)>,
    unplanned: Vec<Span>,
}

fn windows(output: &RunOutput) -> Windows {
    let end_ns = output.trace.last().map_or(0, |r| r.at_ns).max(
        output
            .history
            .ops
            .iter()
            .map(|op| op.complete_ns)
            .max()
            .unwrap_or(0),
    ) + 1;
    let mut windows = Windows::default();
    let (mut actions_open, mut actions_from) = (0u32, 0u64);
    let (mut faults_open, mut faults_from) = (0u32, 0u64);
    let mut disrupted_from: std::collections::BTreeMap<u64, u64> = Default::default();
    for record in &output.trace {
        let at = record.at_ns;
        match &record.event {
            TraceEvent::Maintenance { step, .. } => match step {
                MaintenanceStep::Began => {
                    if actions_open == 0 {
                        actions_from = at;
                    }
                    actions_open += 1;
                }
                MaintenanceStep::Ended => {
                    actions_open = actions_open.saturating_sub(1);
                    if actions_open == 0 {
                        windows.maintenance.push(Span {
                            from_ns: actions_from,
                            to_ns: at,
                        });
                    }
                }
                MaintenanceStep::Disrupting { member }
                | MaintenanceStep::Replaced { by: member, .. } => {
                    disrupted_from.entry(*member).or_insert(at);
                }
                MaintenanceStep::Restored { members } => {
                    for member in members {
                        if let Some(from_ns) = disrupted_from.remove(member) {
                            let span = Span { from_ns, to_ns: at };
                            windows.disrupted.push((*member, span));
                        }
                    }
                }
                _ => {}
            },
            TraceEvent::FaultStart { .. } => {
                if faults_open == 0 {
                    faults_from = at;
                }
                faults_open += 1;
            }
            TraceEvent::FaultEnd { .. } => {
                faults_open = faults_open.saturating_sub(1);
                if faults_open == 0 {
                    let to_ns = at + UNPLANNED_RECOVERY_GRACE_NS;
                    windows.unplanned.push(Span {
                        from_ns: faults_from,
                        to_ns,
                    });
                }
            }
            _ => {}
        }
    }
    if actions_open > 0 {
        let span = Span {
            from_ns: actions_from,
            to_ns: end_ns,
        };
        windows.maintenance.push(span);
    }
    if faults_open > 0 {
        let span = Span {
            from_ns: faults_from,
            to_ns: end_ns,
        };
        windows.unplanned.push(span);
    }
    for (member, from_ns) in disrupted_from {
        let span = Span {
            from_ns,
            to_ns: end_ns,
        };
        windows.disrupted.push((member, span));
    }
    windows
}

/// The first request that broke availability under planned disruption, described; `None` if
/// the run does not check it (`RunOutput::planned_request_bound_ms`) or none did.
pub fn check_planned_availability(output: &RunOutput) -> Option<String> {
    let bound_ns = output.planned_request_bound_ms? * 1_000_000;
    let windows = windows(output);
    let judged = |op: &&Operation| {
        let (from, to) = (op.invoke_ns, op.complete_ns);
        windows
            .maintenance
            .iter()
            .any(|w| w.from_ns <= from && from < w.to_ns)
            && !windows.unplanned.iter().any(|w| w.overlaps(from, to))
            && !windows
                .disrupted
                .iter()
                .any(|(m, w)| Some(*m) == op.member && w.overlaps(from, to))
    };
    let broken = output.history.ops.iter().filter(judged).find(|op| {
        unavailable(&op.outcome) || op.complete_ns.saturating_sub(op.invoke_ns) > bound_ns
    })?;
    let disrupted: Vec<String> = windows
        .disrupted
        .iter()
        .filter(|(_, w)| w.overlaps(broken.invoke_ns, broken.complete_ns))
        .map(|(m, w)| {
            format!(
                "member {m} from {:.3} s to {:.3} s",
                w.from_ns as f64 / 1e9,
                w.to_ns as f64 / 1e9
            )
        })
        .collect();
    Some(format!(
        "during planned maintenance with no unplanned fault, request {} of client {} ({}) sent \
         to member {}, which was not disrupted, at {:.3} s ended {} after {:.3} s (bound {:.3} \
         s: twice the election timeout); disrupted meanwhile: {}",
        broken.id,
        broken.client,
        describe_request(&broken.request),
        broken.member.map_or("none".to_owned(), |m| m.to_string()),
        broken.invoke_ns as f64 / 1e9,
        describe_outcome(&broken.outcome),
        broken.complete_ns.saturating_sub(broken.invoke_ns) as f64 / 1e9,
        bound_ns as f64 / 1e9,
        if disrupted.is_empty() {
            "no member".to_owned()
        } else {
            disrupted.join(", ")
        },
    ))
}

#[cfg(test)]
mod tests {
    use faultline_api::{PutRequest, PutResponse, Request, Response};
    use faultline_invariants::history::{History, Operation, Outcome};

    use super::*;
    use crate::plan::{Fault, IsolateTarget, MaintenanceAction};
    use crate::trace::TraceRecord;
    use crate::verdict::{check, FailureKind, Verdict};

    const MS: u64 = 1_000_000;

    fn put(id: u64, member: u64, invoke_ms: u64, took_ms: u64, outcome: Outcome) -> Operation {
        Operation {
            id,
            client: id,
            member: Some(member),
            invoke_ns: invoke_ms * MS,
            complete_ns: (invoke_ms + took_ms) * MS,
            request: Request::Put(PutRequest::default()),
            outcome,
        }
    }

    fn ok() -> Outcome {
        Outcome::Ok(Response::Put(PutResponse::default()))
    }

    fn step(at_ms: u64, step: MaintenanceStep) -> TraceRecord {
        let action = MaintenanceAction::RollingRestart;
        TraceRecord {
            at_ns: at_ms * MS,
            event: TraceEvent::Maintenance { action, step },
        }
    }

    /// A rolling restart from 1 s to 9 s that disrupts member 1 from 2 s to 4 s; an unplanned
    /// isolation of member 5 from 6 s to 6.5 s (judged again from 8.5 s).
    fn output(ops: Vec<Operation>) -> RunOutput {
        let isolate = Fault::Isolate {
            target: IsolateTarget::Member(5),
        };
        let fault = |at_ms: u64, start: bool| TraceRecord {
            at_ns: at_ms * MS,
            event: if start {
                TraceEvent::FaultStart {
                    fault: isolate,
                    members: vec![5],
                }
            } else {
                TraceEvent::FaultEnd {
                    fault: isolate,
                    members: vec![5],
                }
            },
        };
        RunOutput {
            history: History {
                ops,
                watches: Vec::new(),
            },
            trace: vec![
                step(1000, MaintenanceStep::Began),
                step(2000, MaintenanceStep::Disrupting { member: 1 }),
                step(2100, MaintenanceStep::Stopped { member: 1 }),
                step(3000, MaintenanceStep::Restarted { member: 1 }),
                step(4000, MaintenanceStep::Restored { members: vec![1] }),
                fault(6000, true),
                fault(6500, false),
                step(9000, MaintenanceStep::Ended),
            ],
            healed_write_succeeded: true,
            final_hashes: Default::default(),
            writes_promised_during_zone_loss: false,
            continued_sessions: Default::default(),
            planned_request_bound_ms: Some(300),
        }
    }

    /// Excused: a request to the disrupted member (failed or slow), one overlapping the
    /// unplanned fault or its recovery grace, one before the window; a fast success is fine.
    /// Caught: a request to a member outside the disruption that failed, or that succeeded
    /// after the bound; and through `check`, as `Availability`.
    #[test]
    fn a_request_outside_the_disruption_that_fails_or_waits_fails_availability() {
        let unknown = || Outcome::Unknown("rpc: timed out".into());
        let excused = vec![
            put(0, 2, 500, 2000, unknown()),  // before maintenance began
            put(1, 1, 2050, 1800, unknown()), // to the member being stopped
            put(2, 2, 2500, 20, ok()),        // fast enough
            put(3, 1, 3500, 900, ok()),       // to the restarted member, catching up
            put(4, 3, 6200, 1500, unknown()), // during the unplanned fault
            put(5, 3, 8000, 400, unknown()),  // in the recovery grace after it
        ];
        let out = output(excused.clone());
        assert_eq!(check_planned_availability(&out), None);

        let mut failed = excused.clone();
        failed.push(put(6, 2, 3000, 1500, unknown()));
        let report = check_planned_availability(&output(failed)).expect("member 2 failed");
        assert!(report.contains("request 6 of client 6"), "{report}");
        assert!(report.contains("sent to member 2"), "{report}");
        assert!(
            report.contains("member 1 from 2.000 s to 4.000 s"),
            "{report}"
        );

        let mut slow = excused.clone();
        slow.push(put(6, 3, 5000, 301, ok()));
        let report = check_planned_availability(&output(slow)).expect("too slow");
        assert!(
            report.contains("disrupted meanwhile: no member"),
            "{report}"
        );

        // Not checked unless the scenario asks.
        let mut unchecked = output(vec![put(6, 2, 3000, 1500, unknown())]);
        unchecked.planned_request_bound_ms = None;
        assert_eq!(check_planned_availability(&unchecked), None);

        // Through the whole verdict: one unknown put is linearizable alone, so availability
        // decides.
        let verdict = check(&output(vec![put(0, 2, 3000, 1500, unknown())]));
        let Verdict::Fail { kind, .. } = verdict else {
            panic!("expected a failure, got {verdict:?}")
        };
        assert_eq!(kind, FailureKind::Availability);
    }
}
