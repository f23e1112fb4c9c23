//! Canaries: re-introducible bugs the fuzzer must find, modelled on real ones (etcd's record in
//! etcd-semantics.md §11 and classic Raft mistakes). A canary whose machinery does not exist yet
//! is listed as pending, never as caught.
//!
//! `hunt` runs seeds 0, 1, 2, ... of the canary's scenario with the bug switched on until a run
//! fails with one of the verdict kinds that bug should produce, or the seed budget runs out. A
//! detection counts only if the same seed passes without the canary: a seed that fails anyway
//! shows some other bug, not this one.

use std::time::Instant;

use faultline_node::Canary;

use crate::fuzz::run_seeds;
use crate::plan::Scenario;
use crate::runner::RunOptions;
use crate::seedfile::VerdictKind;

/// One entry of the canary table.
#[derive(Clone, Debug)]
pub struct CanarySpec {
    pub name: &'static str,
    /// The real bug it models.
    pub models: &'static str,
    pub kind: CanaryKind,
}

#[derive(Clone, Debug)]
pub enum CanaryKind {
    Ready {
        canary: Canary,
        /// The scenario it is hunted in; `dedicated` says it is not the default one.
        scenario: Box<Scenario>,
        dedicated: bool,
        seed_budget: u64,
        /// Verdict kinds that count as catching this bug (a panic or a liveness failure does
        /// not prove that the right checker noticed).
        detected_as: &'static [VerdictKind],
    },
    /// The machinery this canary needs does not exist yet.
    Pending { reason: &'static str },
}

/// A single-member cluster that crashes often: etcd #14370 lost an acknowledged write on
/// crash in a one-member cluster, where nobody else holds a copy.
pub fn single_member_crash_scenario() -> Scenario {
    let mut scenario = Scenario::default_scenario();
    scenario.name = "single-member-crash".to_string();
    scenario.members = 1;
    scenario.zones = 1;
    scenario.clients = 3;
    scenario.faults.disable_all();
    scenario.faults.crash_weight = 1;
    scenario
}

/// The embedded lossy-leader-churn scenario (sim/scenarios/lossy-leader-churn.toml): one entry
/// per append, 15% message loss, leader crashes: the most likely place for Figure 8.
pub fn lossy_leader_churn_scenario() -> Scenario {
    toml::from_str(include_str!("../scenarios/lossy-leader-churn.toml"))
        .expect("the embedded lossy-leader-churn scenario parses")
}

/// The embedded new-leader-cuts scenario (sim/scenarios/new-leader-cuts.toml): each leader is
/// cut from its peers right after its election or halfway through catching a follower up,
/// with one entry per append: where Raft's Figure 8 happens.
pub fn new_leader_cuts_scenario() -> Scenario {
    toml::from_str(include_str!("../scenarios/new-leader-cuts.toml"))
        .expect("the embedded new-leader-cuts scenario parses")
}

/// Only process pauses of the leader: the trigger of etcd #20418 (stale reads after a pause).
pub fn leader_pause_scenario() -> Scenario {
    let mut scenario = Scenario::default_scenario();
    scenario.name = "leader-pause".to_string();
    scenario.faults.disable_all();
    scenario.faults.pause_weight = 1;
    scenario
}

/// Five members and frequent short leader isolations and crashes: many elections with
/// members whose logs lag, where a vote given without the log check elects a leader missing
/// committed entries.
pub fn leader_churn_scenario() -> Scenario {
    let mut scenario = Scenario::default_scenario();
    scenario.name = "leader-churn".to_string();
    scenario.members = 5;
    scenario.zones = 5;
    scenario.faults.gap_ms = (30, 300);
    scenario.faults.duration_ms = (50, 400);
    scenario.faults.disable_all();
    scenario.faults.crash_weight = 3;
    scenario.faults.isolate_leader_weight = 6;
    scenario
}

/// Frequent compaction and many watchers, no faults: compactions land on deletions often and
/// watchers reopen from the compact revision (etcd #18089 needs a watch from a revision whose
/// deletion the compaction dropped).
pub fn compact_on_delete_scenario() -> Scenario {
    let mut scenario = Scenario::default_scenario();
    scenario.name = "compact-on-delete".to_string();
    scenario.watchers = 6;
    scenario.compaction_interval_ms = 50;
    scenario.faults.disable_all();
    scenario
}

/// Every canary in the table, in order.
pub fn all_canaries() -> Vec<CanarySpec> {
    let default = Scenario::default_scenario;
    let reads = &[VerdictKind::NotLinearizable];
    let watches = &[VerdictKind::WatchGuarantee];
    vec![
        CanarySpec {
            name: Canary::StaleFollowerRead.name(),
            models: "follower serves linearizable reads locally (classic)",
            kind: CanaryKind::Ready {
                canary: Canary::StaleFollowerRead,
                scenario: Box::new(default()),
                dedicated: false,
                seed_budget: 20,
                detected_as: reads,
            },
        },
        CanarySpec {
            name: Canary::AckBeforeSync.name(),
            models: "etcd #14370: write acked before WAL fsync, lost on crash",
            kind: CanaryKind::Ready {
                canary: Canary::AckBeforeSync,
                scenario: Box::new(single_member_crash_scenario()),
                dedicated: true,
                seed_budget: 50,
                // The lost entry's index is later applied with another entry: Raft's state
                // machine safety check sees it first, or the history shows the lost write.
                detected_as: &[
                    VerdictKind::RaftSafety,
                    VerdictKind::NotLinearizable,
                    VerdictKind::Divergence,
                ],
            },
        },
        CanarySpec {
            name: Canary::LeaderLocalRead.name(),
            models: "leader serves reads without ReadIndex after losing its quorum (classic)",
            // Exposed by the default scenario's peer partitions (the leader is cut off from
            // the other members while clients still reach it).
            kind: CanaryKind::Ready {
                canary: Canary::LeaderLocalRead,
                scenario: Box::new(default()),
                dedicated: false,
                seed_budget: 60,
                detected_as: reads,
            },
        },
        CanarySpec {
            name: Canary::VoteWithoutLogCheck.name(),
            models: "Raft §5.4.1: vote granted without the log up-to-date check",
            kind: CanaryKind::Ready {
                canary: Canary::VoteWithoutLogCheck,
                scenario: Box::new(leader_churn_scenario()),
                dedicated: true,
                seed_budget: 100,
                // A panic counts here: raft's assertion that no append overwrites the
                // committed prefix (store/raft/src/log.rs) is a safety check in the code.
                detected_as: &[
                    VerdictKind::RaftSafety,
                    VerdictKind::NotLinearizable,
                    VerdictKind::Divergence,
                    VerdictKind::Panic,
                ],
            },
        },
        CanarySpec {
            name: Canary::CommitOldTerm.name(),
            models: "Raft §5.4.2 (Figure 8): earlier term's entry committed by counting",
            // Random faults missed it (200 default seeds, 300 with one entry per append, 100
            // lossy-leader-churn seeds): a new leader's first append carries its own term's
            // entry, so an old entry rarely reaches a quorum alone. The new-leader cuts fault
            // makes that happen: leaders cut off before their first append leaves, or while
            // catching a follower up one entry at a time.
            kind: CanaryKind::Ready {
                canary: Canary::CommitOldTerm,
                scenario: Box::new(new_leader_cuts_scenario()),
                dedicated: true,
                seed_budget: 40,
                // A panic counts here as for vote-without-log-check: the overwritten entry
                // was committed, and raft's assertion that no append overwrites the
                // committed prefix (store/raft/src/log.rs) is a safety check in the code.
                detected_as: &[
                    VerdictKind::RaftSafety,
                    VerdictKind::NotLinearizable,
                    VerdictKind::Divergence,
                    VerdictKind::Panic,
                ],
            },
        },
        CanarySpec {
            name: "pause-stale-read",
            models: "etcd #20418: stale reads after a process pause (leader-local-read, paused)",
            kind: CanaryKind::Ready {
                canary: Canary::LeaderLocalRead,
                scenario: Box::new(leader_pause_scenario()),
                dedicated: true,
                seed_budget: 150,
                detected_as: reads,
            },
        },
        CanarySpec {
            name: Canary::WatchBackInTime.name(),
            models: "etcd #15271: watch travels back in time after a partition",
            // Any new term a member learns of (elections after crashes and partitions in the
            // default scenario) resyncs its watchers; the bug re-sends delivered revisions.
            kind: CanaryKind::Ready {
                canary: Canary::WatchBackInTime,
                scenario: Box::new(default()),
                dedicated: false,
                seed_budget: 30,
                detected_as: watches,
            },
        },
        CanarySpec {
            name: Canary::WatchDropOnCompactDelete.name(),
            models: "etcd #18089: watch drops an event when compacting on delete",
            kind: CanaryKind::Ready {
                canary: Canary::WatchDropOnCompactDelete,
                scenario: Box::new(compact_on_delete_scenario()),
                dedicated: true,
                seed_budget: 100,
                detected_as: watches,
            },
        },
        CanarySpec {
            name: Canary::ProgressBeforeEvents.name(),
            models: "etcd #15220: progress notification before delivered events",
            // Watches from past revisions start unsynced (caught up on the member's next
            // tick); the watch client asks for progress right after opening.
            kind: CanaryKind::Ready {
                canary: Canary::ProgressBeforeEvents,
                scenario: Box::new(default()),
                dedicated: false,
                seed_budget: 30,
                detected_as: watches,
            },
        },
        CanarySpec {
            name: "revision-decrease-on-compaction-crash",
            models: "etcd #17780: revision decreases after a crash during compaction",
            kind: CanaryKind::Pending {
                reason: "compaction is not persisted (no snapshots or compaction on disk)",
            },
        },
    ]
}

/// What hunting one canary found.
#[derive(Clone, Debug)]
pub struct CanaryReport {
    pub name: &'static str,
    pub models: &'static str,
    pub scenario: String,
    pub dedicated: bool,
    pub outcome: CanaryOutcome,
}

#[derive(Clone, Debug)]
pub enum CanaryOutcome {
    Caught {
        seed: u64,
        /// Seeds run until (and including) the first detection: seeds 0..=seed.
        seeds_to_detection: u64,
        wall_ms: u64,
        kind: VerdictKind,
        trace_hash: u64,
        /// Earlier seeds that failed without the canary too (not counted as detections).
        seeds_failing_anyway: Vec<u64>,
    },
    Missed {
        seeds_run: u64,
        wall_ms: u64,
        /// Failures that do not count, if any (seed, kind): of another kind, or failing
        /// without the canary too.
        other_failures: Vec<(u64, VerdictKind)>,
    },
    Pending {
        reason: &'static str,
    },
}

/// Hunt one canary: seeds 0.. in batches of `workers`, stopping at the batch with the first
/// detection. Needs a build with the `canaries` feature for ready canaries.
pub fn hunt(spec: &CanarySpec, workers: usize) -> CanaryReport {
    let (canary, scenario, dedicated, seed_budget, detected_as) = match &spec.kind {
        CanaryKind::Pending { reason } => {
            return CanaryReport {
                name: spec.name,
                models: spec.models,
                scenario: "-".to_string(),
                dedicated: false,
                outcome: CanaryOutcome::Pending { reason },
            }
        }
        CanaryKind::Ready {
            canary,
            scenario,
            dedicated,
            seed_budget,
            detected_as,
        } => (*canary, scenario, *dedicated, *seed_budget, *detected_as),
    };
    let options = RunOptions {
        canary: Some(canary),
    };
    let mut seeds_failing_anyway = Vec::new();
    let started = Instant::now();
    let workers = workers.max(1) as u64;
    let mut other_failures = Vec::new();
    let mut next = 0;
    while next < seed_budget {
        let batch: Vec<u64> = (next..(next + workers).min(seed_budget)).collect();
        next += batch.len() as u64;
        let results = run_seeds(&batch, scenario, &options, workers as usize, &|_| {});
        for result in &results {
            let kind = VerdictKind::of(&result.verdict);
            // The control run: the same seed without the bug must pass.
            let fails_anyway = kind != VerdictKind::Pass
                && !crate::run_seed(result.seed, scenario, &RunOptions::default())
                    .verdict
                    .is_pass();
            if fails_anyway {
                seeds_failing_anyway.push(result.seed);
            }
            if detected_as.contains(&kind) && !fails_anyway {
                return CanaryReport {
                    name: spec.name,
                    models: spec.models,
                    scenario: scenario.name.clone(),
                    dedicated,
                    outcome: CanaryOutcome::Caught {
                        seed: result.seed,
                        seeds_to_detection: result.seed + 1,
                        wall_ms: started.elapsed().as_millis() as u64,
                        kind,
                        trace_hash: result.trace_hash,
                        seeds_failing_anyway,
                    },
                };
            }
            if kind != VerdictKind::Pass {
                other_failures.push((result.seed, kind));
            }
        }
    }
    CanaryReport {
        name: spec.name,
        models: spec.models,
        scenario: scenario.name.clone(),
        dedicated,
        outcome: CanaryOutcome::Missed {
            seeds_run: seed_budget,
            wall_ms: started.elapsed().as_millis() as u64,
            other_failures,
        },
    }
}

/// The canary table in Markdown (for the terminal and the README).
pub fn table(reports: &[CanaryReport]) -> String {
    let mut out = String::from(
        "| canary | models | scenario | seeds to first detection | wall time | verdict kind |\n\
         |---|---|---|---|---|---|\n",
    );
    for report in reports {
        let scenario = if report.dedicated {
            format!("{} (dedicated)", report.scenario)
        } else {
            report.scenario.clone()
        };
        let (seeds, wall, kind) = match &report.outcome {
            CanaryOutcome::Caught {
                seed,
                seeds_to_detection,
                wall_ms,
                kind,
                seeds_failing_anyway,
                ..
            } => (
                if seeds_failing_anyway.is_empty() {
                    format!("{seeds_to_detection} (seed {seed})")
                } else {
                    format!(
                        "{seeds_to_detection} (seed {seed}; not counted, failing without the \
                         canary too: {seeds_failing_anyway:?})"
                    )
                },
                format!("{:.1} s", *wall_ms as f64 / 1000.0),
                kind.to_string(),
            ),
            CanaryOutcome::Missed {
                seeds_run,
                wall_ms,
                other_failures,
            } => (
                format!("MISSED in {seeds_run}"),
                format!("{:.1} s", *wall_ms as f64 / 1000.0),
                if other_failures.is_empty() {
                    "-".to_string()
                } else {
                    format!("only other kinds: {other_failures:?}")
                },
            ),
            CanaryOutcome::Pending { reason } => {
                (format!("pending: {reason}"), "-".into(), "-".into())
            }
        };
        out.push_str(&format!(
            "| {} | {} | {scenario} | {seeds} | {wall} | {kind} |\n",
            report.name, report.models
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_node_canary_is_in_the_table_and_scenarios_are_valid() {
        let specs = all_canaries();
        for canary in Canary::ALL {
            assert!(
                specs.iter().any(|s| matches!(
                    s.kind,
                    CanaryKind::Ready { canary: c, .. } if c == canary
                )),
                "canary {} has no table entry",
                canary.name()
            );
        }
        for spec in &specs {
            if let CanaryKind::Ready {
                scenario,
                detected_as,
                ..
            } = &spec.kind
            {
                scenario.validate().unwrap();
                assert!(!detected_as.is_empty());
                assert!(!detected_as.contains(&VerdictKind::Pass));
            }
        }
    }

    /// The dedicated scenarios moved from code to sim/scenarios/: the TOML files are exactly
    /// the scenarios built here before (so every canary hunts the same plans).
    #[test]
    fn dedicated_scenario_files_equal_the_in_code_scenarios() {
        let pairs = [
            ("single-member-crash", single_member_crash_scenario()),
            ("leader-pause", leader_pause_scenario()),
            ("leader-churn", leader_churn_scenario()),
            ("compact-on-delete", compact_on_delete_scenario()),
            ("lossy-leader-churn", lossy_leader_churn_scenario()),
            ("new-leader-cuts", new_leader_cuts_scenario()),
        ];
        for (name, in_code) in pairs {
            assert_eq!(Scenario::embedded(name), Some(in_code), "{name}");
        }
    }

    #[test]
    fn pending_canaries_are_never_reported_as_caught() {
        let pending = all_canaries()
            .into_iter()
            .find(|s| matches!(s.kind, CanaryKind::Pending { .. }))
            .expect("a pending canary");
        let report = hunt(&pending, 1);
        assert!(matches!(report.outcome, CanaryOutcome::Pending { .. }));
        assert!(table(&[report]).contains("pending"));
    }
}
