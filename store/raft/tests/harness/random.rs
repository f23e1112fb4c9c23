//! Seeded random runs: a fault phase with every nemesis, then a liveness phase.

use std::collections::BTreeSet;

use faultline_raft::{Canary, Limits, LogIndex, NodeId, Term};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{violation, Cluster, ClusterOptions, NetworkFaults, Stats, Violation};

#[derive(Clone, Copy, Debug, Default)]
pub struct RunSummary {
    pub committed: usize,
    pub leader_terms: usize,
    pub stats: Stats,
    pub trace_hash: u64,
}

/// One seeded run: random configuration, a fault phase with every nemesis, then a liveness
/// phase (all faults healed, all nodes up) that must commit a new proposal everywhere.
pub fn run_random(seed: u64, node_count: u64, fault_ticks: u64) -> Result<RunSummary, Violation> {
    run_random_with_canary(seed, node_count, fault_ticks, None)
}

/// `run_random` with a planted bug switched on (needs the `canaries` feature).
pub fn run_random_with_canary(
    seed: u64,
    node_count: u64,
    fault_ticks: u64,
    canary: Option<Canary>,
) -> Result<RunSummary, Violation> {
    // Separate streams per purpose, so changing one does not reshuffle the others.
    let mut plan_rng = ChaCha8Rng::seed_from_u64(seed);
    let mut nemesis_rng = ChaCha8Rng::seed_from_u64(seed ^ 0x6e65_6d65_7369_7300);
    let mut client_rng = ChaCha8Rng::seed_from_u64(seed ^ 0x636c_6965_6e74_0000);
    let mut app_rng = ChaCha8Rng::seed_from_u64(seed ^ 0x6170_7000_0000_0000);
    let election_timeout_ticks = plan_rng.random_range(6..14);
    let options = ClusterOptions {
        node_count,
        pre_vote: plan_rng.random_bool(0.5),
        check_quorum: plan_rng.random_bool(0.5),
        election_timeout_ticks,
        heartbeat_interval_ticks: plan_rng.random_range(1..election_timeout_ticks / 2),
        max_entries_per_append: plan_rng.random_range(1..6),
        limits: Limits {
            max_inflight_appends: plan_rng.random_range(2..9),
            ..Limits::default()
        },
        canary,
    };
    let mut cluster = Cluster::new(options, plan_rng.random());
    let chaos = NetworkFaults {
        drop_per_mille: plan_rng.random_range(0..250),
        duplicate_per_mille: plan_rng.random_range(0..60),
        max_delay_ticks: plan_rng.random_range(0..6),
    };
    cluster.faults = chaos.clone();
    cluster.crash_before_persist_per_mille = plan_rng.random_range(0..8);
    let ids = cluster.ids().to_vec();
    let mut next_value: u64 = 0;

    for _ in 0..fault_ticks {
        nemesis_step(&mut cluster, &mut nemesis_rng, &ids)?;
        client_step(&mut cluster, &mut client_rng, &ids, &mut next_value)?;
        compaction_step(&mut cluster, &mut app_rng, &ids)?;
        cluster.step_time()?;
    }

    // Liveness: a healthy cluster must elect a leader and commit on every node.
    cluster.heal();
    cluster.faults = NetworkFaults::default();
    cluster.crash_before_persist_per_mille = 0;
    for id in &ids {
        cluster.restart(*id)?;
    }
    let liveness_ticks = 20 * cluster.options.election_timeout_ticks;
    // Re-proposed whenever leadership moves, since a deposed leader's proposal may be lost.
    let mut final_proposal: Option<(Term, LogIndex)> = None;
    for _ in 0..liveness_ticks {
        cluster.step_time()?;
        if let Some(leader) = cluster.leader() {
            let leader_term = cluster.raft(leader).status().term;
            if final_proposal.is_none_or(|(term, _)| term != leader_term) {
                final_proposal = cluster.propose(leader, b"final".to_vec())?;
            }
        }
        let everywhere = ids.iter().all(|id| {
            cluster
                .applied(*id)
                .iter()
                .any(|entry| entry.data == b"final")
        });
        if everywhere {
            return Ok(RunSummary {
                committed: cluster.checker.committed().len(),
                leader_terms: cluster.checker.leaders_by_term().len(),
                stats: cluster.stats,
                trace_hash: cluster.trace_hash,
            });
        }
    }
    violation(
        "liveness",
        format!(
            "no proposal committed on all nodes within {liveness_ticks} ticks after healing \
             (leader {:?}, proposal {final_proposal:?}, statuses {:?}, leader's progress {:?})",
            cluster.leader(),
            ids.iter()
                .filter(|id| cluster.is_live(**id))
                .map(|id| cluster.raft(*id).status())
                .collect::<Vec<_>>(),
            cluster
                .leader()
                .map(|leader| cluster.raft(leader).progress()),
        ),
    )
    .map(|()| RunSummary::default())
}

fn nemesis_step(
    cluster: &mut Cluster,
    rng: &mut ChaCha8Rng,
    ids: &[NodeId],
) -> Result<(), Violation> {
    let roll = rng.random_range(0..1000);
    let node = ids[rng.random_range(0..ids.len())];
    match roll {
        0..=9 => cluster.crash(node),
        10..=39 => cluster.restart(node)?,
        40..=49 => {
            let side: BTreeSet<NodeId> = ids
                .iter()
                .copied()
                .filter(|_| rng.random_bool(0.5))
                .collect();
            cluster.partition(&side);
        }
        50..=54 => cluster.isolate(node),
        55..=59 => {
            // One-way cut: the kind of fault that check-quorum and pre-vote exist for.
            let other = ids[rng.random_range(0..ids.len())];
            if other != node {
                cluster.cut(node, other);
            }
        }
        60..=79 => cluster.heal(),
        _ => {}
    }
    Ok(())
}

fn client_step(
    cluster: &mut Cluster,
    rng: &mut ChaCha8Rng,
    ids: &[NodeId],
    next_value: &mut u64,
) -> Result<(), Violation> {
    // Clients mostly find the leader, sometimes ask a random node (and get NotLeader).
    let target = if rng.random_bool(0.8) {
        cluster.leader().unwrap_or(ids[0])
    } else {
        ids[rng.random_range(0..ids.len())]
    };
    if rng.random_bool(0.3) {
        *next_value += 1;
        cluster.propose(target, next_value.to_le_bytes().to_vec())?;
    }
    if rng.random_bool(0.1) {
        cluster.read_index(target)?;
    }
    Ok(())
}

/// Now and then a node's application snapshots its state machine a little behind its applied
/// index and compacts the log, so that lagging or restarted followers need snapshots.
fn compaction_step(
    cluster: &mut Cluster,
    rng: &mut ChaCha8Rng,
    ids: &[NodeId],
) -> Result<(), Violation> {
    if !rng.random_bool(0.03) {
        return Ok(());
    }
    let node = ids[rng.random_range(0..ids.len())];
    let keep_entries = rng.random_range(0..4);
    if !cluster.is_live(node) {
        return Ok(());
    }
    let status = cluster.raft(node).status();
    let index = LogIndex(status.applied.0.saturating_sub(keep_entries));
    if index > status.snapshot_index {
        cluster.compact(node, index)?;
    }
    Ok(())
}
