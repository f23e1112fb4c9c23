//! The lease-expiry bounds of one run (`LeaseExpiryBounds`, which `invariants::etcd::expiry`
//! turns into expiry windows), from the plan's scenario and the run's trace.

use faultline_invariants::etcd::LeaseExpiryBounds;
use faultline_node::NodeEvent;

use crate::plan::{Fault, Scenario};
use crate::runner::RunOutput;
use crate::trace::{Trace, TraceEvent};

/// Outside a clock-skew fault a member's clock runs at exactly the simulated rate; the check
/// still allows this much, as a deployment's NTP-disciplined clocks would need.
pub const CLOCK_RATE_BOUND_PERCENT: u64 = 10;

/// An election's worth of time: the randomized election timeout reaches twice the base, and
/// the campaign (pre-vote and vote rounds) fits in one more.
pub fn election_ms(scenario: &Scenario) -> u64 {
    3 * scenario.election_timeout_ticks * scenario.tick_interval_ms
}

/// The bounds of a run. Without its scenario (a run's output alone) the deadline is not
/// enforced. Every fault window other than a clock skew within the bound may leave the
/// cluster without a leader (faults overlap, and a minority fault plus a crash is a lost
/// quorum): the deadline is extended by the time it overlaps. A clock skew beyond the bound
/// (every `ClockSkew` fault the plans draw: 10% to 500%) leaves the leases it overlaps
/// without bounds, and so does a `ClockJump`.
pub fn lease_expiry_bounds(scenario: Option<&Scenario>, trace: &Trace) -> LeaseExpiryBounds {
    let mut bounds = LeaseExpiryBounds {
        clock_rate_bound_percent: CLOCK_RATE_BOUND_PERCENT,
        election_ms: scenario.map(election_ms),
        // Without the scenario the deadline is not enforced, so the interval does not matter.
        checkpoint_interval_ms: scenario.map_or(0, |s| s.lease_checkpoint_interval_ms),
        leader_changes_ns: vec![],
        leaderless_windows_ns: vec![],
        skewed_windows_ns: vec![],
    };
    let mut open: Vec<(&Fault, &Vec<u64>, u64)> = Vec::new();
    let mut windows: Vec<(&Fault, u64, u64)> = Vec::new();
    for record in trace {
        match &record.event {
            TraceEvent::Member {
                event: NodeEvent::RoleChanged { role, .. },
                ..
            } if role == "Leader" => bounds.leader_changes_ns.push(record.at_ns),
            TraceEvent::FaultStart { fault, members } => open.push((fault, members, record.at_ns)),
            TraceEvent::FaultEnd { fault, members } => {
                if let Some(i) = open.iter().position(|o| o.0 == fault && o.1 == members) {
                    let (f, _, start) = open.remove(i);
                    windows.push((f, start, record.at_ns));
                }
            }
            _ => {}
        }
    }
    // A window that never ended lasts to the end of the run.
    windows.extend(open.into_iter().map(|(f, _, start)| (f, start, u64::MAX)));
    for (fault, start, end) in windows {
        match fault {
            Fault::ClockSkew { rate_percent, .. } => {
                let off = u64::from(*rate_percent).abs_diff(100);
                if off > CLOCK_RATE_BOUND_PERCENT {
                    bounds.skewed_windows_ns.push((start, end));
                }
            }
            // A jump moves the clock by more than any bound allows at once: the leases
            // alive when it jumped (forward: expired early; back: its standstill, which
            // ends with the window at the latest, expires them late) are unbounded.
            Fault::ClockJump { .. } => bounds.skewed_windows_ns.push((start, end)),
            _ => bounds.leaderless_windows_ns.push((start, end)),
        }
    }
    bounds.leader_changes_ns.sort_unstable();
    bounds.leaderless_windows_ns = merged(bounds.leaderless_windows_ns);
    bounds.skewed_windows_ns = merged(bounds.skewed_windows_ns);
    bounds
}

/// For a failure report of a history in which leases may expire: which bounds the check
/// used, and which leases it checked without bounds (a clock skew beyond them). Empty when
/// no lease can expire within the run.
pub(super) fn expiry_note(output: &RunOutput, bounds: &LeaseExpiryBounds) -> String {
    let plan = faultline_invariants::etcd::expiry_windows(&output.history, bounds);
    if plan.windows.is_empty() {
        return String::new();
    }
    let mut note = format!("\n{}", bounds.describe());
    if !plan.weakened.is_empty() {
        let ids: Vec<String> = plan.weakened.iter().map(|l| format!("{l:#x}")).collect();
        note.push_str(&format!(
            "\nweakened: a clock ran outside the bound while lease(s) {} lived; their expiry \
             was checked without bounds",
            ids.join(", ")
        ));
    }
    note
}

/// The lock check (`faultline_invariants::lock`): a report of every pair of overlapping
/// lock beliefs outside clock-skew windows beyond the bound, with the expiry bounds used, or
/// `None`.
pub fn check_locks(output: &RunOutput, bounds: &LeaseExpiryBounds) -> Option<String> {
    // Under a clock beyond the bound etcd promises nothing: such overlaps are not findings
    // (the expiry note of a failure lists the skew windows).
    let locks: Vec<_> =
        faultline_invariants::lock::check_locks(&output.history, bounds.clock_rate_bound_percent)
            .into_iter()
            .filter(|v| !v.excused_by_clock(&bounds.skewed_windows_ns))
            .collect();
    if locks.is_empty() {
        return None;
    }
    let lines: Vec<String> = locks.iter().map(ToString::to_string).collect();
    Some(format!(
        "{}{}",
        lines.join("\n"),
        expiry_note(output, bounds)
    ))
}

/// Overlapping windows merged, sorted.
fn merged(mut windows: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    windows.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::new();
    for (a, b) in windows {
        match out.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::IsolateTarget;
    use crate::trace::TraceRecord;

    fn record(at_ms: u64, event: TraceEvent) -> TraceRecord {
        TraceRecord {
            at_ns: at_ms * 1_000_000,
            event,
        }
    }

    #[test]
    fn bounds_come_from_the_scenario_and_the_trace() {
        let skew = Fault::ClockSkew {
            target: IsolateTarget::Leader,
            rate_percent: 200,
        };
        let crash = Fault::Crash { member: 2 };
        let trace = vec![
            record(
                10,
                TraceEvent::Member {
                    member: 1,
                    event: NodeEvent::RoleChanged {
                        role: "Leader".into(),
                        term: 2,
                        leader: Some(1),
                    },
                },
            ),
            record(
                100,
                TraceEvent::FaultStart {
                    fault: crash,
                    members: vec![2],
                },
            ),
            record(
                150,
                TraceEvent::FaultStart {
                    fault: skew,
                    members: vec![1],
                },
            ),
            record(
                300,
                TraceEvent::FaultEnd {
                    fault: crash,
                    members: vec![2],
                },
            ),
            record(
                400,
                TraceEvent::FaultEnd {
                    fault: skew,
                    members: vec![1],
                },
            ),
        ];
        let scenario = Scenario::default_scenario();
        let b = lease_expiry_bounds(Some(&scenario), &trace);
        assert_eq!(b.election_ms, Some(election_ms(&scenario)));
        assert_eq!(
            b.checkpoint_interval_ms,
            scenario.lease_checkpoint_interval_ms
        );
        assert_eq!(b.leader_changes_ns, vec![10_000_000]);
        assert_eq!(b.leaderless_windows_ns, vec![(100_000_000, 300_000_000)]);
        assert_eq!(b.skewed_windows_ns, vec![(150_000_000, 400_000_000)]);
        assert_eq!(lease_expiry_bounds(None, &trace).election_ms, None);
    }

    /// A clock jump's window, forward or back, leaves the leases it overlaps unbounded (as
    /// a skew beyond the bound does); a zone cut or a message fault may leave the cluster
    /// without a leader.
    #[test]
    fn clock_jumps_are_skew_windows_and_message_faults_leaderless_ones() {
        let window = |fault, start_ms, end_ms| {
            [
                record(
                    start_ms,
                    TraceEvent::FaultStart {
                        fault,
                        members: vec![1],
                    },
                ),
                record(
                    end_ms,
                    TraceEvent::FaultEnd {
                        fault,
                        members: vec![1],
                    },
                ),
            ]
        };
        let jump = |jump_ms| Fault::ClockJump {
            target: IsolateTarget::Leader,
            jump_ms,
        };
        let duplicates = Fault::DuplicateMessages {
            target: IsolateTarget::Leader,
            percent: 10,
            lag_ms_max: 50,
        };
        let trace: Vec<_> = [
            window(jump(3000), 100, 200),
            window(jump(-300), 300, 400),
            window(Fault::ZoneCut { zone: 1 }, 500, 600),
            window(duplicates, 700, 800),
        ]
        .into_iter()
        .flatten()
        .collect();
        let b = lease_expiry_bounds(Some(&Scenario::default_scenario()), &trace);
        let ms = 1_000_000;
        assert_eq!(
            b.skewed_windows_ns,
            vec![(100 * ms, 200 * ms), (300 * ms, 400 * ms)]
        );
        assert_eq!(
            b.leaderless_windows_ns,
            vec![(500 * ms, 600 * ms), (700 * ms, 800 * ms)]
        );
    }

    /// The verdict runs the lock check, before the search: two campaigns won 1 s apart on
    /// 2 s leases are overlapping beliefs, reported as such. Under a
    /// clock skew beyond the bound etcd promises neither expiry nor exclusion: the expiry is
    /// unconstrained, the overlap excused, and the history passes.
    #[test]
    fn the_verdict_runs_the_lock_check() {
        use crate::verdict::{check, FailureKind, Verdict};
        use faultline_api::*;
        use faultline_invariants::history::{History, Operation, Outcome};
        let ms = 1_000_000;
        let header = |revision| ResponseHeader {
            revision,
            ..Default::default()
        };
        let grant = |id, revision| {
            (
                Request::LeaseGrant(LeaseGrantRequest { ttl_seconds: 2, id }),
                Outcome::Ok(Response::LeaseGrant(LeaseGrantResponse {
                    header: header(revision),
                    id,
                    ttl_seconds: 2,
                })),
            )
        };
        let campaign = |lease, revision| {
            let key = b"election/leader".to_vec();
            (
                Request::Txn(TxnRequest {
                    compare: vec![Compare {
                        result: CompareResult::Equal,
                        target: CompareTarget::CreateRevision(0),
                        key: key.clone(),
                        range_end: vec![],
                    }],
                    success: vec![RequestOp::Put(PutRequest {
                        key: key.clone(),
                        value: vec![lease as u8],
                        lease,
                        ..Default::default()
                    })],
                    failure: vec![RequestOp::Range(RangeRequest {
                        key,
                        ..Default::default()
                    })],
                }),
                Outcome::Ok(Response::Txn(TxnResponse {
                    header: header(revision),
                    succeeded: true,
                    responses: vec![ResponseOp::Put(PutResponse::default())],
                })),
            )
        };
        let steps = [
            (1, 0, grant(1, 1)),
            (1, 10, campaign(1, 2)),
            (2, 900, grant(2, 3)),
            (2, 1000, campaign(2, 4)),
        ];
        let history = History {
            ops: steps
                .into_iter()
                .enumerate()
                .map(|(i, (client, at_ms, (request, outcome)))| Operation {
                    id: i as u64,
                    client,
                    member: Some(1),
                    invoke_ns: at_ms * ms,
                    complete_ns: (at_ms + 1) * ms,
                    request,
                    outcome,
                })
                .collect(),
            watches: vec![],
        };
        let mut output = crate::runner::RunOutput {
            history,
            trace: vec![],
            healed_write_succeeded: true,
            final_hashes: Default::default(),
            writes_promised_during_zone_loss: false,
            continued_sessions: Default::default(),
            planned_request_bound_ms: None,
        };
        let Verdict::Fail { kind, report } = check(&output) else {
            panic!("overlapping lock beliefs passed")
        };
        assert_eq!(kind, FailureKind::LockExclusion, "{report}");
        assert!(
            report.contains("client 1") && report.contains("client 2"),
            "{report}"
        );
        let skew = Fault::ClockSkew {
            target: IsolateTarget::Leader,
            rate_percent: 500,
        };
        output.trace = vec![
            record(
                0,
                TraceEvent::FaultStart {
                    fault: skew,
                    members: vec![1],
                },
            ),
            record(
                5_000,
                TraceEvent::FaultEnd {
                    fault: skew,
                    members: vec![1],
                },
            ),
        ];
        assert_eq!(check(&output), Verdict::Pass);
    }
}
