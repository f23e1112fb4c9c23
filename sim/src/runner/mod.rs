//! Plan → Simulation → (History, Trace): one run inside madsim's deterministic runtime.
//!
//! The simulator owns what a member must not: the disks (they outlive crashes), the network
//! faults, the clock, and the fault schedule. A run is a list of stages, one file each:
//!
//! - [`cluster`]: start the members; crash, restart, and the final heal.
//! - [`nemesis`]: play the plan's fault windows (start and end of each fault), with the peer
//!   cuts and new-leader cuts of [`cuts`].
//! - [`client`]: client sessions issue the planned requests (filled at run time) and record
//!   the history.
//! - [`watcher`]: watch sessions over the members' streams (reassembly, resume), and
//!   list-watch sessions (a paginated list, then a watch; list again after compaction).
//! - [`election`]: leader-election clients (campaign, keep-alive, guarded writes, resign).
//! - [`final_phase`]: after the heal, a write, a read of everything, and every member's hash.
//!
//! Imports run one way: `mod.rs` uses the stages; `nemesis` → `cluster` → `cuts`;
//! `watcher`, `election` and `final_phase` → `client` (and `watcher` → `cluster` for the poll timeout).

mod aimed;
mod client;
mod cluster;
mod cuts;
mod election;
mod final_phase;
mod maintenance;
mod messages;
mod nemesis;
mod net_clock_faults;
mod operator;
mod operator_node;
mod peer_net;
mod replacer;
#[cfg(test)]
mod tests;
mod watcher;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use faultline_invariants::history::History;
use faultline_node::Canary;
use madsim::runtime::Runtime;
use serde::{Deserialize, Serialize};

use crate::plan::Plan;
use crate::trace::{Recorder, Trace};
use client::{spawn_clients, ClientContext};
use cluster::{member_addrs, Cluster};
use election::spawn_elections;
use final_phase::run_final_phase;
use nemesis::run_nemesis;
use operator_node::{needs_operator, spawn_operator};
use watcher::spawn_watchers;

/// Options of one run that are not part of the plan (they do not change what is simulated,
/// except a canary, which plants a bug on purpose).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunOptions {
    pub canary: Option<Canary>,
}

/// What a run produced, before any checker looked at it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunOutput {
    pub history: History,
    pub trace: Trace,
    /// Did a write succeed after everything was healed, within the scenario's heal timeout?
    pub healed_write_succeeded: bool,
    /// HashKV of every member at the final revision, if every member caught up in time.
    pub final_hashes: BTreeMap<u64, Option<(i64, u32)>>,
    /// The scenario promises that writes succeed while any one zone is down
    /// (`verdict::check_zone_loss_availability`).
    #[serde(default)]
    pub writes_promised_during_zone_loss: bool,
    /// Client ids opened after an unknown outcome → the id each continues (a client's
    /// incarnations, for the report's lanes). Not hashed: the history already holds every id.
    #[serde(default)]
    pub continued_sessions: BTreeMap<u64, u64>,
    /// With planned maintenance whose availability the scenario checks: the longest a request
    /// to a member outside the disruption may take (`plan::planned_request_bound_ms`;
    /// `verdict::check_planned_availability`). `None`: not checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub planned_request_bound_ms: Option<u64>,
}

/// Run one plan to completion in a fresh deterministic runtime on this thread.
pub fn simulate(plan: &Plan, options: &RunOptions) -> RunOutput {
    let mut config = madsim::Config::default();
    config.net.packet_loss_rate = plan.scenario.packet_loss_rate;
    let runtime = Runtime::with_seed_and_config(plan.seed, config);
    runtime.add_simulator::<peer_net::PeerNet>();
    let plan = plan.clone();
    let options = options.clone();
    runtime.block_on(async move { simulate_in_runtime(plan, options).await })
}

/// The stages of a run, in order. The order of everything that touches the runtime (node
/// creation, spawning, the nemesis's steps) is part of every seed's trace hash.
async fn simulate_in_runtime(plan: Plan, options: RunOptions) -> RunOutput {
    let recorder = Recorder::new();
    let addrs = member_addrs(&plan);
    let cluster = Arc::new(Mutex::new(Cluster::start(
        &plan,
        &addrs,
        options.canary,
        &recorder,
    )));
    cluster::arm_aimed_crashes(&cluster);
    // Every client, watcher and the final phase share the history sinks and session counter.
    let ctx = ClientContext::new(&plan, addrs, &recorder);
    let mut tasks = spawn_clients(&plan.clients, &ctx);
    tasks.extend(spawn_elections(&plan, &ctx));
    tasks.extend(spawn_watchers(&plan.watchers, &ctx));
    let ignore_budget = maintenance::ignores_budget(options.canary);
    tasks.extend(spawn_operator(&plan, &cluster, &ctx, ignore_budget));

    run_nemesis(&plan, &cluster).await;
    for task in tasks {
        task.await.expect("client task");
    }
    cluster.lock().expect("cluster").heal_all();

    let heal_timeout = Duration::from_millis(plan.scenario.heal_timeout_ms);
    let (healed_write_succeeded, final_hashes) = run_final_phase(&ctx, heal_timeout).await;
    let output = RunOutput {
        history: ctx.take_history(),
        trace: recorder.take(),
        healed_write_succeeded,
        final_hashes,
        writes_promised_during_zone_loss: plan.scenario.writes_promised_during_zone_loss,
        continued_sessions: ctx.take_continued(),
        planned_request_bound_ms: (plan.scenario.maintenance.availability_checked
            && !plan.maintenance.is_empty())
        .then(|| crate::plan::planned_request_bound_ms(&plan.scenario)),
    };
    release_nodes(&plan, &cluster).await;
    output
}

/// Kill every node of the run once its output is built. Tasks still pending at the end
/// (member loops, RPC servers) keep each other alive through madsim's task registry, and with
/// them the members' disks, logs and key spaces: a fuzz process grew by ~5 MB per seed
/// (../shared/notes/profile-2026-12-07.md, speedup 2). Nothing recorded changes: the history
/// and trace are taken first.
async fn release_nodes(plan: &Plan, cluster: &Mutex<Cluster>) {
    kill_nodes(plan, &cluster.lock().expect("cluster"));
    // Killed tasks are dropped when the executor next runs.
    madsim::time::sleep(Duration::from_millis(1)).await;
}

fn kill_nodes(plan: &Plan, cluster: &Cluster) {
    let handle = &cluster.handle;
    for node in cluster.members.values() {
        handle.kill(node.id());
    }
    if let Some(cuts) = &cluster.leader_cuts {
        handle.kill(cuts.lock().expect("leader cuts").timer.id());
    }
    if let Some(aimed) = &cluster.aimed {
        handle.kill(aimed.lock().expect("aimed crashes").timer.id());
    }
    let names = (plan.clients.iter().map(|c| format!("client-{}", c.id)))
        .chain(plan.elections.iter().map(|e| format!("client-{}", e.id)))
        .chain(plan.watchers.iter().map(|w| format!("watcher-{}", w.id)))
        .chain(["client-final".to_owned(), "peer-wire".to_owned()])
        .chain(needs_operator(plan).then(|| "operator".to_owned()));
    for name in names {
        handle.kill(name);
    }
}
