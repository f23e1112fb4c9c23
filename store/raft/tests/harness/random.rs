//! Seeded random runs: a fault phase with every nemesis, client traffic, log compaction and
//! membership changes, then a liveness phase.

use std::collections::BTreeSet;

use faultline_raft::{
    Canary, ConfChange, ConfChangeType, Limits, LogIndex, Membership, NodeId, ProgressState, Term,
};
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
/// phase (all faults healed, all nodes up) that must commit a new proposal on every member.
pub fn run_random(seed: u64, node_count: u64, fault_ticks: u64) -> Result<RunSummary, Violation> {
    run_random_with_canary(seed, node_count, fault_ticks, None)
}

/// Separate streams per purpose, so changing one does not reshuffle the others.
struct Streams {
    nemesis: ChaCha8Rng,
    client: ChaCha8Rng,
    app: ChaCha8Rng,
    operator: ChaCha8Rng,
}

impl Streams {
    fn new(seed: u64) -> Streams {
        Streams {
            nemesis: ChaCha8Rng::seed_from_u64(seed ^ 0x6e65_6d65_7369_7300),
            client: ChaCha8Rng::seed_from_u64(seed ^ 0x636c_6965_6e74_0000),
            app: ChaCha8Rng::seed_from_u64(seed ^ 0x6170_7000_0000_0000),
            operator: ChaCha8Rng::seed_from_u64(seed ^ 0x6f70_6572_0000_0000),
        }
    }
}

/// `run_random` with a planted bug switched on (needs the `canaries` feature).
pub fn run_random_with_canary(
    seed: u64,
    node_count: u64,
    fault_ticks: u64,
    canary: Option<Canary>,
) -> Result<RunSummary, Violation> {
    let mut plan_rng = ChaCha8Rng::seed_from_u64(seed);
    let mut cluster = random_cluster(&mut plan_rng, node_count, canary);
    let mut streams = Streams::new(seed);
    let mut operator = Operator {
        max_node_id: node_count + 3,
        pending_removals: Vec::new(),
    };
    let mut next_value: u64 = 0;
    for _ in 0..fault_ticks {
        nemesis_step(&mut cluster, &mut streams.nemesis)?;
        client_step(&mut cluster, &mut streams.client, &mut next_value)?;
        compaction_step(&mut cluster, &mut streams.app)?;
        operator.step(&mut cluster, &mut streams.operator)?;
        cluster.step_time()?;
    }
    liveness_phase(&mut cluster, &mut operator)
}

fn random_cluster(plan_rng: &mut ChaCha8Rng, node_count: u64, canary: Option<Canary>) -> Cluster {
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
            promote_max_lag_entries: plan_rng.random_range(0..8),
        },
        canary,
    };
    let mut cluster = Cluster::new(options, plan_rng.random());
    cluster.faults = NetworkFaults {
        drop_per_mille: plan_rng.random_range(0..250),
        duplicate_per_mille: plan_rng.random_range(0..60),
        max_delay_ticks: plan_rng.random_range(0..6),
    };
    cluster.crash_before_persist_per_mille = plan_rng.random_range(0..8);
    cluster
}

/// Liveness: a healthy cluster must elect a leader and commit on every member.
fn liveness_phase(cluster: &mut Cluster, operator: &mut Operator) -> Result<RunSummary, Violation> {
    cluster.heal();
    cluster.faults = NetworkFaults::default();
    cluster.crash_before_persist_per_mille = 0;
    for id in cluster.ids() {
        cluster.restart(id)?;
    }
    // Elections settle within a few timeouts; a member that joined late may also have to
    // catch up on the whole log, at worst one entry per append and round trip.
    let longest_log = cluster
        .live_ids()
        .iter()
        .map(|id| cluster.raft(*id).status().last_index.0)
        .max()
        .unwrap_or(0);
    let liveness_ticks = 20 * cluster.options.election_timeout_ticks + 2 * longest_log;
    // Re-proposed whenever leadership moves, since a deposed leader's proposal may be lost.
    let mut final_proposal: Option<(Term, LogIndex)> = None;
    for _ in 0..liveness_ticks {
        cluster.step_time()?;
        operator.retire_removed(cluster);
        let Some(leader) = cluster.leader() else {
            continue;
        };
        let leader_term = cluster.raft(leader).status().term;
        if final_proposal.is_none_or(|(term, _)| term != leader_term) {
            final_proposal = cluster.propose(leader, b"final".to_vec())?;
        }
        let members: Vec<NodeId> = cluster.raft(leader).conf_state().members().collect();
        let everywhere = members.iter().all(|id| {
            cluster.is_live(*id) && cluster.applied(*id).iter().any(|e| e.data == b"final")
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
            "no proposal committed on all members within {liveness_ticks} ticks after healing \
             (leader {:?}, proposal {final_proposal:?}, statuses {:?}, leader's progress {:?})",
            cluster.leader(),
            cluster
                .live_ids()
                .iter()
                .map(|id| cluster.raft(*id).status())
                .collect::<Vec<_>>(),
            cluster
                .leader()
                .map(|leader| cluster.raft(leader).progress()),
        ),
    )
    .map(|()| RunSummary::default())
}

/// The operator changes membership now and then (through whoever leads): adds a new node as
/// a learner, promotes a learner, removes a member, or moves leadership to another voter. Like an etcd operator, it stops a removed
/// node for good once the removal has committed.
struct Operator {
    max_node_id: u64,
    /// (node, index, term) of proposed removals.
    pending_removals: Vec<(NodeId, LogIndex, Term)>,
}

impl Operator {
    fn step(&mut self, cluster: &mut Cluster, rng: &mut ChaCha8Rng) -> Result<(), Violation> {
        self.retire_removed(cluster);
        if !rng.random_bool(0.03) {
            return Ok(());
        }
        let Some(leader) = cluster.leader() else {
            return Ok(());
        };
        let conf = cluster.raft(leader).conf_state().clone();
        let change = match rng.random_range(0..4) {
            3 => {
                if let Some(to) = pick(rng, conf.voters.iter().copied()) {
                    cluster.with_node(leader, |raft| raft.transfer_leader(to))?;
                    cluster.stats.transfers_started += 1;
                }
                return Ok(());
            }
            0 => {
                let node = NodeId(cluster.ids().len() as u64 + 1);
                if node.0 > self.max_node_id {
                    return Ok(());
                }
                cluster.start_node(node);
                (ConfChangeType::AddLearner, node)
            }
            1 => match pick(rng, conf.learners.iter().copied()) {
                Some(node) => (ConfChangeType::PromoteLearner, node),
                None => return Ok(()),
            },
            _ => match pick(rng, conf.members()) {
                Some(node)
                    if conf.is_learner(node) || removal_keeps_quorum(cluster, leader, node) =>
                {
                    (ConfChangeType::RemoveNode, node)
                }
                _ => return Ok(()),
            },
        };
        let (change_type, node) = change;
        let proposed = cluster.propose_conf_change(leader, ConfChange { change_type, node })?;
        if let Some(Ok((term, index))) = proposed {
            cluster.stats.conf_changes_proposed += 1;
            if change_type == ConfChangeType::RemoveNode {
                self.pending_removals.push((node, index, term));
            }
        }
        Ok(())
    }

    /// Stops, for good, every node whose removal has committed.
    fn retire_removed(&mut self, cluster: &mut Cluster) {
        let committed = cluster.checker.committed();
        let (done, pending): (Vec<_>, Vec<_>) =
            self.pending_removals.iter().partition(|(_, index, term)| {
                committed
                    .get(index.0 as usize - 1)
                    .is_some_and(|entry| entry.term == *term)
            });
        self.pending_removals = pending;
        for (node, ..) in done {
            let member_again = cluster.leader().is_some_and(|l| {
                cluster.raft(l).conf_state().membership(node) != Membership::NotMember
            });
            assert!(
                !member_again,
                "node {node} is a member after its removal committed"
            );
            cluster.retire(node);
        }
    }
}

/// Like etcd's strict reconfiguration check: remove a voter only if at least two voters
/// remain and every remaining one is replicating from the leader, so that the removal does not
/// by itself leave the cluster unable to commit.
fn removal_keeps_quorum(cluster: &Cluster, leader: NodeId, node: NodeId) -> bool {
    let raft = cluster.raft(leader);
    let remaining: Vec<NodeId> = raft
        .conf_state()
        .voters
        .iter()
        .copied()
        .filter(|voter| *voter != node && *voter != leader)
        .collect();
    let progress = raft.progress();
    !remaining.is_empty()
        && remaining.iter().all(|voter| {
            progress
                .iter()
                .any(|p| p.id == *voter && p.recently_active && p.state == ProgressState::Replicate)
        })
}

fn pick(rng: &mut ChaCha8Rng, ids: impl Iterator<Item = NodeId>) -> Option<NodeId> {
    let ids: Vec<NodeId> = ids.collect();
    (!ids.is_empty()).then(|| ids[rng.random_range(0..ids.len())])
}

fn nemesis_step(cluster: &mut Cluster, rng: &mut ChaCha8Rng) -> Result<(), Violation> {
    let ids = cluster.ids();
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
    next_value: &mut u64,
) -> Result<(), Violation> {
    let ids = cluster.ids();
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
fn compaction_step(cluster: &mut Cluster, rng: &mut ChaCha8Rng) -> Result<(), Violation> {
    if !rng.random_bool(0.03) {
        return Ok(());
    }
    let ids = cluster.ids();
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
