//! The operator's node: what starts it (membership steps, rot to repair, maintenance) and
//! the tasks it runs there (the operator's steps, the replacer, the maintainers).

use std::sync::{Arc, Mutex};

use madsim::runtime::Handle;
use madsim::task::JoinHandle;

use super::client::ClientContext;
use super::cluster::Cluster;
use super::maintenance::Maintenance;
use super::operator::Operator;
use crate::plan::{Fault, Plan};

/// The operator runs if the plan has membership steps or synced bytes that rot (whose
/// members it replaces); only then: a node more would change every other run's schedule.
pub(super) fn needs_operator(plan: &Plan) -> bool {
    !plan.membership.is_empty() || has_rot(plan) || !plan.maintenance.is_empty()
}

fn has_rot(plan: &Plan) -> bool {
    plan.faults
        .iter()
        .any(|w| matches!(w.fault, Fault::CorruptSynced { .. }))
}

/// Start the operator on a node of its own, if the plan needs one ([`needs_operator`]).
pub(super) fn spawn_operator(
    plan: &Plan,
    cluster: &Arc<Mutex<Cluster>>,
    ctx: &ClientContext,
    ignore_budget: bool,
) -> Option<JoinHandle<()>> {
    if !needs_operator(plan) {
        return None;
    }
    let restarted_after_rot = has_rot(plan).then(|| {
        let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
        cluster.lock().expect("cluster").restarted_after_rot = Some(sender);
        receiver
    });
    let ip: std::net::IpAddr = "10.1.1.200".parse().expect("ip");
    let node = Handle::current()
        .create_node()
        .name("operator")
        .ip(ip)
        .build();
    let steps = plan.membership.clone();
    let maintenance = Maintenance::new(plan, ignore_budget);
    let concurrent = plan.scenario.membership.concurrent;
    let initial_members = plan.members.iter().map(|m| m.id).max().unwrap_or(0);
    let workload_end_ms = plan.scenario.workload_duration_ms;
    let cluster = cluster.clone();
    let ctx = ctx.clone();
    Some(node.spawn(async move {
        let operator = Operator::new(ctx, cluster, initial_members);
        let replacer = restarted_after_rot
            .map(|receiver| madsim::task::spawn(operator.clone().replace_refusing(receiver)));
        let maintainers = maintenance.spawn(&operator);
        if concurrent {
            let tasks: Vec<JoinHandle<()>> = steps
                .into_iter()
                .map(|step| {
                    let operator = operator.clone();
                    madsim::task::spawn(operator.run(vec![step], workload_end_ms))
                })
                .collect();
            for task in tasks {
                task.await.expect("operator step");
            }
        } else {
            operator.run(steps, workload_end_ms).await;
        }
        if let Some(replacer) = replacer {
            replacer.await.expect("replacer");
        }
        for maintainer in maintainers {
            maintainer.await.expect("maintenance");
        }
    }))
}
