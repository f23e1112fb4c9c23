//! The HTML report of a run: the run's history drawn by `faultline_invariants::html`, with the
//! trace's faults, leader changes, disk crashes and heal overlaid as timeline marks.
//!
//! `dst replay --html OUT` and `dst fuzz` (next to each failing seed file) write one.

use std::collections::BTreeMap;

use faultline_invariants::html::{MarkKind, TimelineMark};
use faultline_node::NodeEvent;

use crate::plan::{Fault, IsolateTarget};
use crate::trace::{OperatorStep, Trace, TraceEvent};

fn members_text(members: &[u64]) -> String {
    members
        .iter()
        .map(|m| format!("m{m}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn fault_mark(fault: &Fault, members: &[u64]) -> (MarkKind, String) {
    let who = members_text(members);
    let target = |t: &IsolateTarget| match t {
        IsolateTarget::Member(_) => who.clone(),
        IsolateTarget::Leader => format!("leader {who}"),
    };
    match fault {
        Fault::Crash { .. } => (MarkKind::Crash, format!("crash {who}")),
        Fault::CrashLeader => (MarkKind::Crash, format!("crash leader {who}")),
        Fault::ZoneDown { zone } => (MarkKind::Crash, format!("zone {zone} down ({who})")),
        Fault::Isolate { target: t } => (MarkKind::Partition, format!("isolate {}", target(t))),
        Fault::PartitionFromPeers { target: t } => {
            (MarkKind::Partition, format!("cut {} from peers", target(t)))
        }
        Fault::Pause { target: t } => (MarkKind::Pause, format!("pause {}", target(t))),
        Fault::CutNewLeaders { .. } => (MarkKind::Partition, "cut new leaders".to_string()),
        Fault::ClockSkew {
            target: t,
            rate_percent,
        } => (
            MarkKind::Pause,
            format!("clock of {} at {rate_percent}%", target(t)),
        ),
        Fault::OneWayCut { .. } => match members {
            [from, to] => (MarkKind::Partition, format!("cut m{from} -> m{to}")),
            _ => (MarkKind::Partition, "one-way cut (nobody)".to_string()),
        },
        Fault::Bridge { .. } | Fault::MajorityMinority { .. } => {
            let label = match crate::plan::sides(*fault, members) {
                Some((left, right)) => {
                    let (left, right) = (members_text(left), members_text(right));
                    match fault {
                        Fault::Bridge { .. } => {
                            format!("{left} | {right}, bridged by m{}", members[0])
                        }
                        _ => format!("split {left} | {right}"),
                    }
                }
                None => "split (too few members)".to_string(),
            };
            (MarkKind::Partition, label)
        }
        Fault::Ring { .. } => (MarkKind::Partition, format!("ring {who}")),
        // The member stops at its first failed write or sync; crashed and restarted at the end.
        Fault::FsyncError { target: t } => {
            (MarkKind::Fault, format!("fsync fails on {}", target(t)))
        }
        Fault::DiskFull { target: t } => (MarkKind::Fault, format!("disk full on {}", target(t))),
        // Restarted at the start (its recovery reads fail: it stops), again at the end.
        Fault::DiskReadError { target: t } => {
            (MarkKind::Fault, format!("reads fail on {}", target(t)))
        }
        Fault::SlowDisk {
            target: t,
            delay_ms,
        } => (
            MarkKind::Fault,
            format!("disk slow on {} ({delay_ms} ms per sync)", target(t)),
        ),
        Fault::CorruptSynced { .. } => (MarkKind::Crash, format!("crash {who}, synced byte rots")),
        Fault::ZoneCut { zone } => (MarkKind::Partition, format!("zone {zone} cut off ({who})")),
        Fault::DelaySpike {
            target: spiked,
            delay_ms_max,
        } => {
            let links = match spiked {
                None => "all links".to_string(),
                Some(t) => format!("links of {}", target(t)),
            };
            let min_ms = delay_ms_max / 2;
            (
                MarkKind::Partition,
                format!("{links} delayed {min_ms}-{delay_ms_max} ms"),
            )
        }
        Fault::DuplicateMessages {
            target: t,
            percent,
            lag_ms_max,
        } => (
            MarkKind::Partition,
            format!(
                "{percent}% of batches of {} twice (lag <= {lag_ms_max} ms)",
                target(t)
            ),
        ),
        Fault::ReorderMessages {
            target: t,
            percent,
            hold_ms_max,
        } => (
            MarkKind::Partition,
            format!(
                "{percent}% of batches of {} held <= {hold_ms_max} ms",
                target(t)
            ),
        ),
        Fault::ClockJump { target: t, jump_ms } => {
            let how = if *jump_ms >= 0 {
                format!("jumps {jump_ms} ms forward")
            } else {
                format!("stands still {} ms (stepped back)", jump_ms.unsigned_abs())
            };
            (MarkKind::Pause, format!("clock of {} {how}", target(t)))
        }
        Fault::AimedCrash { moment, .. } => (MarkKind::Crash, format!("aimed crash {moment:?}")),
    }
}

fn operator_label(step: &OperatorStep) -> String {
    match step {
        OperatorStep::Added { member } => format!("operator: m{member} added as a learner"),
        OperatorStep::Promoted { member } => format!("operator: m{member} promoted to voter"),
        OperatorStep::Removed { member } => format!("operator: m{member} removed"),
        OperatorStep::Transferred { from, to } => {
            format!("operator: leadership moved m{from} -> m{to}")
        }
        OperatorStep::Skipped { reason } => format!("operator skipped a step: {reason}"),
        OperatorStep::GaveUp { reason } => format!("operator gave up a step: {reason}"),
    }
}

/// The marks a timeline shows for a run's trace: a band per fault (from its start to its end,
/// or to the end of the trace when it never ended), a line per new leader, per disk crash and
/// for the final heal.
pub fn marks_from_trace(trace: &Trace) -> Vec<TimelineMark> {
    let trace_end_ns = trace.last().map(|r| r.at_ns).unwrap_or(0);
    let mut marks = Vec::new();
    // Open faults by (fault, members), oldest first: `end_fault` records exactly what
    // `start_fault` recorded, so equal keys pair up in order.
    let mut open: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    let key = |fault: &Fault, members: &[u64]| format!("{fault:?}/{members:?}");
    for record in trace {
        match &record.event {
            TraceEvent::FaultStart { fault, members } => {
                let (kind, label) = fault_mark(fault, members);
                open.entry(key(fault, members))
                    .or_default()
                    .push(marks.len());
                marks.push(TimelineMark {
                    at_ns: record.at_ns,
                    end_ns: Some(trace_end_ns),
                    kind,
                    label,
                });
            }
            TraceEvent::FaultEnd { fault, members } => {
                let started = open
                    .get_mut(&key(fault, members))
                    .and_then(|v| (!v.is_empty()).then(|| v.remove(0)));
                close_fault_mark(&mut marks, started, record.at_ns, fault, members);
            }
            TraceEvent::Member {
                member,
                event: NodeEvent::RoleChanged { role, term, .. },
            } if role == "Leader" => marks.push(TimelineMark {
                at_ns: record.at_ns,
                end_ns: None,
                kind: MarkKind::Leader,
                label: format!("leader m{member} (term {term})"),
            }),
            TraceEvent::DiskCrash { member, fault } => {
                let kept = fault.tails.len();
                marks.push(TimelineMark {
                    at_ns: record.at_ns,
                    end_ns: None,
                    kind: MarkKind::DiskCrash,
                    label: format!(
                        "disk m{member}: unsynced writes lost{}",
                        if kept > 0 {
                            format!(" ({kept} file tail(s) kept, torn or corrupted)")
                        } else {
                            String::new()
                        }
                    ),
                });
            }
            TraceEvent::SyncedByteRot { member, rot } => marks.push(TimelineMark {
                at_ns: record.at_ns,
                end_ns: None,
                kind: MarkKind::DiskCrash,
                label: match rot {
                    Some(rot) => {
                        format!("disk m{member}: byte {} of {} rotted", rot.offset, rot.file)
                    }
                    None => format!("disk m{member}: nothing rotted"),
                },
            }),
            TraceEvent::Member {
                member,
                event: NodeEvent::StoppedByDisk { error } | NodeEvent::RefusedToStart { error },
            } => marks.push(TimelineMark {
                at_ns: record.at_ns,
                end_ns: None,
                kind: MarkKind::Note,
                label: format!("m{member} stopped: {error}"),
            }),
            TraceEvent::Healed => marks.push(TimelineMark {
                at_ns: record.at_ns,
                end_ns: None,
                kind: MarkKind::Heal,
                label: "every fault healed".to_string(),
            }),
            TraceEvent::Operator { step, .. } => marks.push(TimelineMark {
                at_ns: record.at_ns,
                end_ns: None,
                kind: MarkKind::Note,
                label: operator_label(step),
            }),
            TraceEvent::Maintenance { action, step } => marks.push(TimelineMark {
                at_ns: record.at_ns,
                end_ns: None,
                kind: MarkKind::Note,
                label: format!("maintenance ({action:?}): {step:?}"),
            }),
            TraceEvent::Member {
                member,
                event: NodeEvent::SnapshotInstalled { index, .. },
            } => marks.push(TimelineMark {
                at_ns: record.at_ns,
                end_ns: None,
                kind: MarkKind::Note,
                label: format!("m{member} installed the leader's snapshot at index {index}"),
            }),
            TraceEvent::MessagesTampered { batches, .. } => marks.push(TimelineMark {
                at_ns: record.at_ns,
                end_ns: None,
                kind: MarkKind::Note,
                label: format!("the message fault that ended touched {batches} batches"),
            }),
            TraceEvent::Member { .. } => {}
        }
    }
    marks
}

/// Ends the band of the fault that started as `marks[started]`; an end without a start (a
/// trace cut at the front) is a line, not a band.
fn close_fault_mark(
    marks: &mut Vec<TimelineMark>,
    started: Option<usize>,
    at_ns: u64,
    fault: &Fault,
    members: &[u64],
) {
    match started {
        Some(i) => {
            let mark: &mut TimelineMark = &mut marks[i];
            assert!(mark.at_ns <= at_ns, "a fault ends after it starts");
            mark.end_ns = Some(at_ns);
        }
        None => marks.push(TimelineMark {
            at_ns,
            end_ns: None,
            kind: MarkKind::Note,
            label: format!("end of {}", fault_mark(fault, members).1),
        }),
    }
}

#[cfg(madsim)]
pub use run_report::*;

#[cfg(madsim)]
mod run_report {
    use std::path::{Path, PathBuf};

    use faultline_invariants::html::{render_timeline_report, timeline_from_history, ReportMeta};
    use faultline_invariants::linearizability::TimeUnit;

    use super::marks_from_trace;
    use crate::fuzz::run_plan;
    use crate::plan::Plan;
    use crate::runner::{RunOptions, RunOutput};
    use crate::verdict::{Verdict, LINEARIZABILITY_BUDGET_STEPS};

    /// The HTML report of one run of `plan`: the linearizability verdict of its history
    /// (checked again here, with the run's budget and lease-expiry bounds), its trace as marks, a lane per client
    /// incarnation grouped by client (named from the plan), and `notes` (what was run, how to
    /// replay it) with the run's own verdict under the banner. The run may have failed another
    /// checker (Raft safety, convergence, ...): the page says so, and still shows the history.
    pub fn render_run_report(
        plan: &Plan,
        output: &RunOutput,
        run_verdict: &Verdict,
        title: &str,
        mut notes: Vec<String>,
    ) -> String {
        // With the run's lease-expiry bounds, as the verdict checked it.
        let bounds = crate::verdict::lease_expiry_bounds(Some(&plan.scenario), &output.trace);
        let (verdict, _) = faultline_invariants::etcd::check_etcd_history_expiring(
            &output.history,
            LINEARIZABILITY_BUDGET_STEPS,
            &bounds,
        );
        let mut text_report = None;
        match run_verdict {
            Verdict::Fail { report, .. } => {
                let headline = report.lines().next().unwrap_or_default();
                notes.push(format!("run verdict: {} {headline}", run_verdict.label()));
                if verdict.is_linearizable() {
                    notes.push(
                        "the history is linearizable: the run failed another checker (its \
                         report is at the end of the page)"
                            .to_string(),
                    );
                }
                text_report = Some(report.clone());
            }
            Verdict::Unknown { reason } => {
                notes.push(format!("run verdict: {} {reason}", run_verdict.label()))
            }
            Verdict::Pass => notes.push(format!("run verdict: {}", run_verdict.label())),
        }
        let meta = ReportMeta {
            title: title.to_string(),
            time_unit: TimeUnit::Nanoseconds,
            notes,
            text_report,
            lane_owners: crate::names::lane_owners(plan, &output.continued_sessions),
        };
        render_timeline_report(
            &timeline_from_history(&output.history),
            &verdict,
            &marks_from_trace(&output.trace),
            &meta,
        )
    }

    /// Where the report of a seed file goes: beside it, `.html` instead of `.toml`.
    pub fn report_path_for(seed_file: &Path) -> PathBuf {
        seed_file.with_extension("html")
    }

    /// Re-run `plan` (deterministic: the same run as the one that failed) and write its report
    /// beside `seed_file`. Returns the path written; an error names the file or the panic.
    pub fn write_seed_report(
        seed_file: &Path,
        plan: &Plan,
        options: &RunOptions,
        replay_command: &str,
    ) -> Result<PathBuf, String> {
        let (result, output) = run_plan(plan, options);
        let output = output.ok_or_else(|| {
            format!(
                "seed {} panicked in the simulation ({}): no history to draw",
                plan.seed,
                result.verdict.label()
            )
        })?;
        let title = format!(
            "seed {} of scenario {}{}",
            plan.seed,
            plan.scenario.name,
            options
                .canary
                .map(|c| format!(" with canary {}", c.name()))
                .unwrap_or_default()
        );
        let notes = vec![
            format!("seed file: {}", seed_file.display()),
            format!("replay: {replay_command}"),
            format!("trace hash: {:016x}", result.trace_hash),
        ];
        let html = render_run_report(plan, &output, &result.verdict, &title, notes);
        let path = report_path_for(seed_file);
        std::fs::write(&path, html)
            .map_err(|e| format!("cannot write report {}: {e}", path.display()))?;
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::TraceRecord;

    fn at(at_ns: u64, event: TraceEvent) -> TraceRecord {
        TraceRecord { at_ns, event }
    }

    #[test]
    fn faults_become_bands_and_leaders_lines() {
        let crash = Fault::Crash { member: 2 };
        let pause = Fault::Pause {
            target: IsolateTarget::Leader,
        };
        let trace: Trace = vec![
            at(
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
            at(
                11,
                TraceEvent::Member {
                    member: 2,
                    event: NodeEvent::RoleChanged {
                        role: "Follower".into(),
                        term: 2,
                        leader: Some(1),
                    },
                },
            ),
            at(
                20,
                TraceEvent::FaultStart {
                    fault: crash,
                    members: vec![2],
                },
            ),
            at(
                21,
                TraceEvent::DiskCrash {
                    member: 2,
                    fault: faultline_storage::CrashFault::lose_all_unsynced(),
                },
            ),
            at(
                25,
                TraceEvent::FaultStart {
                    fault: pause,
                    members: vec![1],
                },
            ),
            at(
                30,
                TraceEvent::FaultEnd {
                    fault: crash,
                    members: vec![2],
                },
            ),
            at(40, TraceEvent::Healed),
        ];
        let marks = marks_from_trace(&trace);
        let kinds: Vec<(MarkKind, u64, Option<u64>)> =
            marks.iter().map(|m| (m.kind, m.at_ns, m.end_ns)).collect();
        assert_eq!(
            kinds,
            vec![
                (MarkKind::Leader, 10, None),
                (MarkKind::Crash, 20, Some(30)),
                (MarkKind::DiskCrash, 21, None),
                // Never ended: runs to the end of the trace.
                (MarkKind::Pause, 25, Some(40)),
                (MarkKind::Heal, 40, None),
            ]
        );
        assert_eq!(marks[0].label, "leader m1 (term 2)");
        assert_eq!(marks[1].label, "crash m2");
        assert_eq!(marks[3].label, "pause leader m1");
    }

    #[test]
    fn link_faults_name_who_is_cut_from_whom() {
        let label = |fault: Fault, members: &[u64]| {
            let (kind, label) = fault_mark(&fault, members);
            assert!(matches!(kind, MarkKind::Partition));
            label
        };
        let one_way = Fault::OneWayCut {
            from: IsolateTarget::Leader,
            to: IsolateTarget::Member(3),
        };
        assert_eq!(label(one_way, &[1, 3]), "cut m1 -> m3");
        assert_eq!(label(one_way, &[]), "one-way cut (nobody)");
        let bridge = Fault::Bridge { arrangement: 0 };
        assert_eq!(
            label(bridge, &[3, 1, 5, 2, 4]),
            "m1,m5 | m2,m4, bridged by m3"
        );
        let split = Fault::MajorityMinority { arrangement: 0 };
        assert_eq!(label(split, &[3, 1, 5, 2, 4]), "split m3,m1,m5 | m2,m4");
        assert_eq!(label(split, &[]), "split (too few members)");
        let ring = Fault::Ring { arrangement: 0 };
        assert_eq!(label(ring, &[3, 1, 5, 2, 4]), "ring m3,m1,m5,m2,m4");
    }
}
