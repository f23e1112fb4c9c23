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

/// A ready canary hunted in the embedded scenario `scenario` (sim/scenarios/<name>.toml);
/// any other than "default" is dedicated to its canaries.
fn ready(
    name: &'static str,
    canary: Canary,
    models: &'static str,
    scenario: &str,
    seed_budget: u64,
    detected_as: &'static [VerdictKind],
) -> CanarySpec {
    let embedded = Scenario::embedded(scenario)
        .unwrap_or_else(|| panic!("no scenario {scenario:?} in sim/scenarios"));
    CanarySpec {
        name,
        models,
        kind: CanaryKind::Ready {
            canary,
            scenario: Box::new(embedded),
            dedicated: scenario != "default",
            seed_budget,
            detected_as,
        },
    }
}

/// Verdict kinds that count as catching a canary (a panic or a liveness failure does not
/// prove that the right checker noticed, except where said).
const READS: &[VerdictKind] = &[VerdictKind::NotLinearizable];
const PANIC: &[VerdictKind] = &[VerdictKind::Panic];
const WATCHES: &[VerdictKind] = &[VerdictKind::WatchGuarantee];
/// Two holders of one lock: the lock check names them; a history the search cannot explain
/// counts too (the ignored compare is also a wrong txn answer).
const LOCKS: &[VerdictKind] = &[VerdictKind::LockExclusion, VerdictKind::NotLinearizable];
/// A lost acknowledged entry: Raft's state machine safety check sees its index applied with
/// another entry first, or the history shows the lost write.
const LOST_ENTRY: &[VerdictKind] = &[
    VerdictKind::RaftSafety,
    VerdictKind::NotLinearizable,
    VerdictKind::Divergence,
];
/// Reads from a stale cache: the history (no linearization explains them), or the member's
/// own answers (the cache's header revision is below one the member answered before).
const STALE_CACHE: &[VerdictKind] = &[VerdictKind::NotLinearizable, VerdictKind::RevisionDecrease];
/// A member whose revision went back: its own answers, the revisions it gives to the entries
/// it applies next (Raft's state machine check compares them per index), or the history.
const REVISION_DECREASE: &[VerdictKind] = &[
    VerdictKind::RevisionDecrease,
    VerdictKind::RaftSafety,
    VerdictKind::NotLinearizable,
    VerdictKind::Divergence,
];
/// A committed entry overwritten: a panic counts here, since raft's assertion that no append
/// overwrites the committed prefix (store/raft/src/log.rs) is a safety check in the code.
const OVERWRITTEN_COMMIT: &[VerdictKind] = &[
    VerdictKind::RaftSafety,
    VerdictKind::NotLinearizable,
    VerdictKind::Divergence,
    VerdictKind::Panic,
];

/// Every canary in the table, in order.
pub fn all_canaries() -> Vec<CanarySpec> {
    let mut all = raft_and_read_canaries();
    all.extend(watch_canaries());
    // The default workload sends txns that delete a key to the end of the key space and then
    // put it with ignore_value/ignore_lease (workload::risky_ignore_put), which the store
    // refuses before proposal; the bug proposes one, and every member panics applying it.
    all.push(ready(
        Canary::IgnorePutAfterDelete.name(),
        Canary::IgnorePutAfterDelete,
        "issue 16 (etcd 3.4.23 too): txn deletes from-key then puts ignore_value: apply panics",
        "default",
        30,
        PANIC,
    ));
    // Membership: two operators at once propose changes that overlap; learners are promoted
    // as soon as the leader allows; snapshots are sent often, some twice under message loss.
    all.push(ready(
        Canary::ConfChangeNoGuard.name(),
        Canary::ConfChangeNoGuard,
        "single-server change bug (Ongaro 2015): a 2nd change while the 1st is in flight",
        "membership-churn",
        300,
        OVERWRITTEN_COMMIT,
    ));
    all.push(ready(
        Canary::PromoteUnreadyLearner.name(),
        Canary::PromoteUnreadyLearner,
        "etcd refuses it: a learner promoted before it caught up joins the quorum empty",
        "membership-churn",
        300,
        &[VerdictKind::RaftSafety],
    ));
    all.push(ready(
        Canary::InstallStaleSnapshot.name(),
        Canary::InstallStaleSnapshot,
        "a follower installs a snapshot older than its commit index and rolls back",
        "membership-churn",
        600,
        OVERWRITTEN_COMMIT,
    ));
    // Snapshots every 30 entries, 16 KiB WAL segments released behind them, crashes: a crash
    // after a snapshot whose bytes never reached the disk leaves nothing to restart from.
    all.push(ready(
        Canary::SnapshotPurgeBeforeDurable.name(),
        Canary::SnapshotPurgeBeforeDurable,
        "etcd #18055: a snapshot file purged while still needed (two snapshots in a short period)",
        "membership-churn",
        300,
        OVERWRITTEN_COMMIT,
    ));
    // A member restoring a snapshot taken right after a compaction at the newest revision
    // comes back below the revision it served; the next entries it applies get revisions
    // other members gave to other entries.
    all.push(ready(
        Canary::RevisionFromRecords.name(),
        Canary::RevisionFromRecords,
        "etcd #17780: revision decreases after a crash during compaction",
        "revision-from-records",
        300,
        REVISION_DECREASE,
    ));
    all.extend(lease_and_lock_canaries());
    // Planned maintenance whose operator ignores the disruption budget: a zone's two voters
    // drained at once while another action has a voter down leaves five voters without a
    // quorum, and requests to the members still up fail or wait past the bound.
    all.push(ready(
        Canary::MaintenanceIgnoresBudget.name(),
        Canary::MaintenanceIgnoresBudget,
        "a PodDisruptionBudget ignored: two voters drained at once, stacked on other maintenance",
        "planned-maintenance",
        50,
        &[VerdictKind::Availability],
    ));
    all.extend(aimed_crash_canaries());
    // Rot of a synced WAL byte taken for a torn tail (disk-faults: CorruptSynced windows; no
    // other fault damages synced bytes): the member restarts without entries and votes it
    // had synced and acknowledged, instead of refusing to start and being replaced.
    all.push(ready(
        Canary::RotTakenForTornTail.name(),
        Canary::RotTakenForTornTail,
        "a rotted WAL record taken for a torn tail: the log cut there, synced entries lost",
        "disk-faults",
        150,
        &[
            VerdictKind::RaftSafety,
            VerdictKind::Panic,
            VerdictKind::Divergence,
            VerdictKind::RevisionDecrease,
            VerdictKind::NotLinearizable,
        ],
    ));
    // Issue 13's canary that only a swarm-drawn fault subset reaches: a leader's read cache,
    // taken once it has led a quiet cluster for 6 s, that only a new term refreshes. Every
    // fault that deposes the leader or silences a member starts the quiet time over, so a
    // fixed mix with every kind on misses it; a seed whose draw leaves those kinds out (or
    // draws long quiet spells) keeps a quiet leader long enough.
    all.push(ready(
        Canary::StableLeaderReadCache.name(),
        Canary::StableLeaderReadCache,
        "a leader's read cache refreshed only by a new term: stale reads once no fault deposes it",
        "default",
        300,
        STALE_CACHE,
    ));
    all
}

/// Issue 13's bugs that need a crash at a chosen moment, or that only show as lost progress.
fn aimed_crash_canaries() -> Vec<CanarySpec> {
    vec![
        // A vote that was never synced is lost by a crash right after the grant; the
        // restarted voter votes again in that term (aimed-crashes: AfterVote windows).
        ready(
            Canary::VoteNotSynced.name(),
            Canary::VoteNotSynced,
            "a vote answered before it is durable: two leaders in one term (Raft §5.2)",
            "aimed-crashes",
            100,
            &[VerdictKind::RaftSafety, VerdictKind::Panic],
        ),
        // The WAL's snapshot record written before the snapshot file: a crash while the
        // snapshot is half written (aimed-crashes: MidSnapshot windows) leaves a WAL that
        // starts after a missing snapshot; the member refuses to start, which no fault
        // explains (the simulator's refusal check panics).
        ready(
            Canary::MarkerBeforeSnapshot.name(),
            Canary::MarkerBeforeSnapshot,
            "a snapshot's WAL record before its file: a crash mid-snapshot, a refused start",
            "aimed-crashes",
            100,
            &[VerdictKind::Panic, VerdictKind::RaftSafety],
        ),
        // Every new leader is cut from its peers and steps down through check-quorum; once
        // all three did, nobody campaigns and nothing commits after the heal.
        ready(
            Canary::NoCampaignAfterStepDown.name(),
            Canary::NoCampaignAfterStepDown,
            "a deposed leader never campaigns again: no leader after the heal (liveness)",
            "new-leader-cuts",
            100,
            &[VerdictKind::Liveness],
        ),
    ]
}

/// Issue 15's bugs in leases and locks, hunted where leases are short and kept alive: the
/// event clients (`events`: many keys per lease, keep-alives at TTL/3, then left to expire;
/// `lease-leader-transfers`: the same under leader moves and no fault, where the deadline's
/// slack is smallest) and the leader-election clients (`leader-election`: campaign,
/// keep-alive, resign). A lease
/// that outlives its deadline or dies before its TTL is a history no linearization explains
/// (the etcd checker's expiry windows); two holders of one lock are a lock exclusion.
fn lease_and_lock_canaries() -> Vec<CanarySpec> {
    vec![
        ready(
            Canary::LeaseNoCheckpoint.name(),
            Canary::LeaseNoCheckpoint,
            "etcd #9888: a new leader restarts inherited leases at full TTL (no checkpoints)",
            "lease-leader-transfers",
            100,
            READS,
        ),
        ready(
            Canary::KeepAliveNotForwarded.name(),
            Canary::KeepAliveNotForwarded,
            "a follower acks a keep-alive without passing it to the leader",
            "lease-leader-transfers",
            100,
            READS,
        ),
        ready(
            Canary::LockCompareIgnored.name(),
            Canary::LockCompareIgnored,
            "a lock held twice: create-if-absent txn ignores its compare (other lease)",
            "leader-election",
            100,
            LOCKS,
        ),
    ]
}

/// Bugs in Raft, the WAL and the read path, caught by the linearizability and Raft checkers.
fn raft_and_read_canaries() -> Vec<CanarySpec> {
    vec![
        ready(
            Canary::StaleFollowerRead.name(),
            Canary::StaleFollowerRead,
            "follower serves linearizable reads locally (classic)",
            "default",
            20,
            READS,
        ),
        // single-member-crash: etcd #14370 lost an acknowledged write on crash in a
        // one-member cluster, where nobody else holds a copy.
        ready(
            Canary::AckBeforeSync.name(),
            Canary::AckBeforeSync,
            "etcd #14370: write acked before WAL fsync, lost on crash",
            "single-member-crash",
            50,
            LOST_ENTRY,
        ),
        // fsync-error-ignored: one member whose fsyncs fail now and then, crashed after each
        // window; a member that takes the failed fsync as done acknowledged what the power
        // loss takes, and nobody else holds a copy.
        ready(
            Canary::FsyncErrorIgnored.name(),
            Canary::FsyncErrorIgnored,
            "etcd #14370's cousin: a failed WAL fsync taken as done (etcd exits instead)",
            "fsync-error-ignored",
            50,
            LOST_ENTRY,
        ),
        // Exposed by the default scenario's peer partitions (the leader is cut off from the
        // other members while clients still reach it).
        ready(
            Canary::LeaderLocalRead.name(),
            Canary::LeaderLocalRead,
            "leader serves reads without ReadIndex after losing its quorum (classic)",
            "default",
            60,
            READS,
        ),
        // leader-churn: many elections with members whose logs lag, where a vote given
        // without the log check elects a leader missing committed entries.
        ready(
            Canary::VoteWithoutLogCheck.name(),
            Canary::VoteWithoutLogCheck,
            "Raft §5.4.1: vote granted without the log up-to-date check",
            "leader-churn",
            300,
            OVERWRITTEN_COMMIT,
        ),
        // Random faults missed it (200 default seeds, 300 with one entry per append, 100
        // lossy-leader-churn seeds): a new leader's first append carries its own term's
        // entry, so an old entry rarely reaches a quorum alone. The new-leader cuts fault
        // makes that happen: leaders cut off before their first append leaves, or while
        // catching a follower up one entry at a time.
        ready(
            Canary::CommitOldTerm.name(),
            Canary::CommitOldTerm,
            "Raft §5.4.2 (Figure 8): earlier term's entry committed by counting",
            "new-leader-cuts",
            40,
            OVERWRITTEN_COMMIT,
        ),
        // Issue 13: the default's swarm alone reaches it within 300 seeds. 2026-12-07, after
        // every branch of issue 13 merged: first caught at seed 198; once members' messages
        // ran over the simulator's own transport and read errors and slow disks joined the
        // swarm, at seed 789 (0 of 300): seeds that drew one entry per append and new-leader
        // cuts also drew other kinds, the swarm's other timings and three members rarely all
        // at once, and each of those halves the odds (200 seeds per variant, see default.toml).
        // The swarm's term-churn profile (a fifth of the seeds) draws that shape together:
        // seeds 0..300 catch it first at seed 2, then 90 and 165, all term-churn draws (one seed
        // in a hundred), so 300 seeds leave room for schedule changes. 2026-12-08, after the
        // clients moved onto the gRPC service layer and the member ticker changed: seed 9.
        ready(
            "swarm-commit-old-term",
            Canary::CommitOldTerm,
            "commit-old-term, drawn by the default's swarm (its term-churn profile: three members, \
             one entry per append, new-leader cuts, dense windows)",
            "default",
            300,
            OVERWRITTEN_COMMIT,
        ),
        // The default's swarm (issue 13): only a swarm draw reaches it there, a one-member
        // cluster with fsync errors among its fault kinds (the fixed default has three
        // members and no disk fault; disk-faults.toml has three members, who keep copies of
        // what the member lost). 2026-12-07: first caught at seed 27, and at seed 61
        // once every branch of issue 13 had merged (a panic first does not count).
        ready(
            "swarm-fsync-error-ignored",
            Canary::FsyncErrorIgnored,
            "fsync-error-ignored, drawn by the default's swarm (one member, fsync errors)",
            "default",
            100,
            LOST_ENTRY,
        ),
        // leader-pause: only process pauses of the leader, etcd #20418's trigger.
        ready(
            "pause-stale-read",
            Canary::LeaderLocalRead,
            "etcd #20418: stale reads after a process pause (leader-local-read, paused)",
            "leader-pause",
            150,
            READS,
        ),
    ]
}

/// Bugs in the watch path, caught by the watch checker.
fn watch_canaries() -> Vec<CanarySpec> {
    vec![
        // Any new term a member learns of (elections after crashes and partitions in the
        // default scenario) resyncs its watchers; the bug re-sends delivered revisions.
        ready(
            Canary::WatchBackInTime.name(),
            Canary::WatchBackInTime,
            "etcd #15271: watch travels back in time after a partition",
            "default",
            30,
            WATCHES,
        ),
        // compact-on-delete: compactions land on deletions often and watchers reopen from
        // the compact revision (the bug needs a watch from a revision whose deletion the
        // compaction dropped).
        ready(
            Canary::WatchDropOnCompactDelete.name(),
            Canary::WatchDropOnCompactDelete,
            "etcd #18089: watch drops an event when compacting on delete",
            "compact-on-delete",
            100,
            WATCHES,
        ),
        // Watches from past revisions start unsynced (caught up on the member's next tick);
        // the watch client asks for progress right after opening.
        ready(
            Canary::ProgressBeforeEvents.name(),
            Canary::ProgressBeforeEvents,
            "etcd #15220: progress notification before delivered events",
            "default",
            30,
            WATCHES,
        ),
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

    #[test]
    fn pending_canaries_are_never_reported_as_caught() {
        // The table has none pending today; a canary waiting for machinery looks like this.
        let pending = CanarySpec {
            name: "waiting",
            models: "a bug whose machinery does not exist yet",
            kind: CanaryKind::Pending {
                reason: "no such machinery",
            },
        };
        let report = hunt(&pending, 1);
        assert!(matches!(report.outcome, CanaryOutcome::Pending { .. }));
        assert!(table(&[report]).contains("pending"));
    }
}
