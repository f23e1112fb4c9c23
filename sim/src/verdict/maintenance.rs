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
