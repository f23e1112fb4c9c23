//! Seeded random cluster runs with every fault, the safety checker after every step, and a
//! liveness phase at the end. A failure names its seed; rerun it with `run_random(seed, ..)`.

mod harness;

#[cfg(feature = "canaries")]
use faultline_raft::Canary;
#[cfg(feature = "canaries")]
use harness::run_random_with_canary;
use harness::{run_random, RunSummary};

const FAULT_TICKS: u64 = 500;

fn run_or_panic(seed: u64, node_count: u64) -> RunSummary {
    match run_random(seed, node_count, FAULT_TICKS) {
        Ok(summary) => summary,
        Err(violation) => panic!("seed {seed}, {node_count} nodes: {violation}"),
    }
}

fn run_seeds(node_count: u64, seeds: std::ops::Range<u64>) {
    let mut committed = 0;
    let mut reads = 0;
    let mut crashes = 0;
    let mut lost_readies = 0;
    let mut delivered = 0;
    let mut leader_terms = 0;
    let mut snapshots_installed = 0;
    let mut conf_changes = 0;
    let mut transfers = 0;
    let seed_count = seeds.end - seeds.start;
    for seed in seeds {
        let summary = run_or_panic(seed, node_count);
        committed += summary.committed;
        reads += summary.stats.reads_confirmed;
        crashes += summary.stats.crashes;
        lost_readies += summary.stats.lost_readies;
        delivered += summary.stats.messages_delivered;
        leader_terms += summary.leader_terms;
        snapshots_installed += summary.stats.snapshots_installed;
        conf_changes += summary.stats.conf_changes_proposed;
        transfers += summary.stats.transfers_started;
    }
    eprintln!(
        "{node_count} nodes, {seed_count} seeds: {committed} entries committed, {reads} reads \
         confirmed, {crashes} crashes ({lost_readies} lost an unpersisted Ready), \
         {delivered} messages delivered, {leader_terms} leader terms, \
         {snapshots_installed} snapshots installed, {conf_changes} membership changes, \
         {transfers} leader transfers started"
    );
    // The runs must actually exercise what they claim to: a harness that never commits or
    // never crashes anything would pass vacuously.
    assert!(
        committed as u64 > 20 * seed_count,
        "too few commits: {committed}"
    );
    assert!(reads > seed_count, "too few confirmed reads: {reads}");
    assert!(crashes > seed_count / 2, "too few crashes: {crashes}");
    assert!(lost_readies > 0, "no crash ever lost an unpersisted Ready");
    assert!(
        snapshots_installed > seed_count / 4,
        "too few snapshots installed: {snapshots_installed}"
    );
    assert!(
        transfers > seed_count / 2,
        "too few leader transfers: {transfers}"
    );
    assert!(
        conf_changes > seed_count,
        "too few membership changes: {conf_changes}"
    );
}

#[test]
fn three_node_clusters_stay_safe_and_live() {
    run_seeds(3, 0..400);
}

#[test]
fn five_node_clusters_stay_safe_and_live() {
    run_seeds(5, 1000..1300);
}

#[test]
fn a_seed_replays_exactly() {
    for seed in [3, 77] {
        let first = run_random(seed, 5, FAULT_TICKS);
        let second = run_random(seed, 5, FAULT_TICKS);
        match (first, second) {
            (Ok(a), Ok(b)) => {
                assert_eq!(a.trace_hash, b.trace_hash, "seed {seed} diverged");
                assert_eq!(a.committed, b.committed);
            }
            (Err(a), Err(b)) => assert_eq!(a, b),
            (a, b) => panic!("seed {seed} diverged: {a:?} vs {b:?}"),
        }
    }
    let a = run_random(5, 3, FAULT_TICKS).map(|s| s.trace_hash);
    let b = run_random(6, 3, FAULT_TICKS).map(|s| s.trace_hash);
    assert_ne!(a, b, "different seeds should not produce identical traces");
}

/// Proves the harness can fail: with votes granted regardless of log freshness, a node that
/// missed committed entries wins an election, and random search must find a seed where the
/// checker reports it. (`Canary::CommitOldTerm` escapes random search: the new leader's
/// no-op usually commits alongside the old entries. tests/scenarios.rs scripts Figure 8.)
#[cfg(feature = "canaries")]
#[test]
fn canary_vote_without_log_check_is_caught_by_random_search() {
    const SEED_BUDGET: u64 = 300;
    let caught: Option<(u64, harness::Violation)> = (0..SEED_BUDGET).find_map(|seed| {
        let node_count = if seed % 2 == 0 { 3 } else { 5 };
        run_random_with_canary(
            seed,
            node_count,
            FAULT_TICKS,
            Some(Canary::VoteWithoutLogCheck),
        )
        .err()
        .map(|violation| (seed, violation))
    });
    let (seed, violation) = caught.expect("the planted bug escaped every seed in the budget");
    eprintln!("canary caught at seed {seed}: {violation}");
    assert_ne!(
        violation.property, "liveness",
        "caught only as a liveness failure"
    );
}

/// Runs random seeds with `canary` until one fails, panics included (a Raft assertion), and
/// checks that this seed passes without the canary. Returns the seed and what caught it.
#[cfg(feature = "canaries")]
fn hunt(canary: Canary, seed_budget: u64) -> (u64, String) {
    (0..seed_budget)
        .find_map(|seed| {
            let node_count = if seed % 2 == 0 { 3 } else { 5 };
            let run = std::panic::catch_unwind(|| {
                run_random_with_canary(seed, node_count, FAULT_TICKS, Some(canary))
            });
            match run {
                Ok(Ok(_)) => None,
                Ok(Err(violation)) => Some((seed, violation.to_string())),
                Err(payload) => {
                    let message = payload
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default();
                    Some((seed, format!("panic: {message}")))
                }
            }
        })
        .unwrap_or_else(|| panic!("{canary:?} escaped every seed in the budget"))
}

/// The membership and snapshot canaries are each caught by random search too (besides their
/// scripts in tests/scripts/), by the property each one breaks.
#[cfg(feature = "canaries")]
#[test]
fn membership_and_snapshot_canaries_are_caught_by_random_search() {
    let expectations = [
        (
            Canary::ConfChangeOnAppendNoGuard,
            "uncommitted configuration changes",
        ),
        (Canary::InstallStaleSnapshot, "state machine safety"),
        (Canary::PromoteUnreadyLearner, "promotion readiness"),
    ];
    for (canary, caught_by) in expectations {
        let (seed, caught) = hunt(canary, 300);
        eprintln!("{canary:?} caught at seed {seed}: {caught}");
        let node_count = if seed % 2 == 0 { 3 } else { 5 };
        run_or_panic(seed, node_count);
        assert!(
            caught.contains(caught_by),
            "{canary:?} caught by something else: {caught}"
        );
    }
}
