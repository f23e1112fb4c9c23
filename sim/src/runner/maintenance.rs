//! Planned maintenance (`plan::MaintenanceOp`): rolling restarts, rolling replacements and zone
//! drains, run on the operator's node through the members' Cluster service, each disruption
//! only while the disruption budget allows (a Kubernetes PodDisruptionBudget): before it stops
//! or removes a member, an action waits until every voter is up and caught up with the leader
//! and fewer than `max_unavailable_voters` members are disrupted. Every step is a
//! `TraceEvent::Maintenance`, so the verdict knows the windows (`verdict::maintenance`).
//!
//! A graceful stop moves leadership away first, as etcd does when a leader is stopped
//! (etcd's `TransferLeadershipOnShutdown`: the leader hands over to a caught-up follower before
//! it exits, so a rolling restart costs no election timeout), then the process exits with its
//! disk intact (nothing unsynced is lost: the OS keeps a dead process's writes).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use faultline_api::{ClusterRequest, ClusterResponse, StatusResponse};
use faultline_node::Canary;
use madsim::task::JoinHandle;
use madsim::time::Instant;

use super::operator::{Operator, STEP_TIMEOUT};
use crate::plan::{MaintenanceAction, MaintenanceOp, Plan};
use crate::trace::{MaintenanceStep, TraceEvent};

/// How often an action waiting for the budget looks at the cluster's health again.
const HEALTH_POLL: Duration = Duration::from_millis(100);
/// How long one member may take to answer Status before it counts as unavailable.
const STATUS_TIMEOUT: Duration = Duration::from_millis(300);
/// How long the health check may wait for a (linearizable) member list.
const MEMBER_LIST_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a graceful stop waits for leadership to move before it stops the member anyway
/// (etcd also stops after a failed transfer, with a warning).
const TRANSFER_TIMEOUT: Duration = Duration::from_secs(2);

/// The canary `maintenance-ignores-budget` (only with the `canaries` feature): the operator
/// disrupts without asking the budget, and drains a zone's members all at once.
pub(super) fn ignores_budget(canary: Option<Canary>) -> bool {
    cfg!(feature = "canaries") && canary == Some(Canary::MaintenanceIgnoresBudget)
}

/// The plan's maintenance, before it runs.
pub(super) struct Maintenance {
    ops: Vec<MaintenanceOp>,
    shared: Shared,
}

/// What the actions of one run share: the members disrupted now, and the rules.
#[derive(Clone)]
struct Shared {
    disrupted: Arc<Mutex<BTreeSet<u64>>>,
    max_unavailable_voters: usize,
    ignore_budget: bool,
    workload_end_ms: u64,
}

impl Maintenance {
    pub(super) fn new(plan: &Plan, ignore_budget: bool) -> Maintenance {
        let mix = &plan.scenario.maintenance;
        Maintenance {
            ops: plan.maintenance.clone(),
            shared: Shared {
                disrupted: Arc::default(),
                max_unavailable_voters: mix.max_unavailable_voters.max(1) as usize,
                ignore_budget,
                workload_end_ms: plan.scenario.workload_duration_ms,
            },
        }
    }

    /// One task per action, on the operator's node (they run side by side; the budget keeps
    /// their disruptions apart).
    pub(super) fn spawn(self, operator: &Operator) -> Vec<JoinHandle<()>> {
        self.ops
            .into_iter()
            .map(|op| {
                let maintainer = Maintainer {
                    op: operator.clone(),
                    shared: self.shared.clone(),
                    action: op.action,
                    down: Duration::from_millis(op.down_ms),
                };
                madsim::task::spawn(maintainer.run(op.at_ms))
            })
            .collect()
    }
}

struct Maintainer {
    op: Operator,
    shared: Shared,
    action: MaintenanceAction,
    down: Duration,
}

impl Maintainer {
    async fn run(mut self, at_ms: u64) {
        let now_ms = self.now_ms();
        if at_ms > now_ms {
            madsim::time::sleep(Duration::from_millis(at_ms - now_ms)).await;
        }
        self.record(MaintenanceStep::Began);
        let result = match self.action {
            MaintenanceAction::RollingRestart => self.rolling_restart().await,
            MaintenanceAction::RollingReplace => self.rolling_replace().await,
            MaintenanceAction::ZoneDrain { zone } => self.zone_drain(zone).await,
        };
        if let Err(reason) = result {
            self.record(MaintenanceStep::Stopping { reason });
        }
        self.record(MaintenanceStep::Ended);
    }

    fn now_ms(&self) -> u64 {
        self.op.ctx.recorder.now_ns() / 1_000_000
    }

    fn record(&self, step: MaintenanceStep) {
        let action = self.action;
        self.op
            .ctx
            .recorder
            .record(TraceEvent::Maintenance { action, step });
    }

    /// The members (live, not retired) in ID order, optionally of one zone.
    fn members(&self, zone: Option<u32>) -> Vec<u64> {
        let cluster = self.op.cluster.lock().expect("cluster");
        (cluster.zones.iter())
            .filter(|(member, z)| zone.is_none_or(|zone| **z == zone) && cluster.is_live(**member))
            .map(|(member, _)| *member)
            .collect()
    }

    /// Those of `members` still in the cluster (another action may have replaced some).
    fn live(&self, members: &[u64]) -> Vec<u64> {
        let cluster = self.op.cluster.lock().expect("cluster");
        members
            .iter()
            .copied()
            .filter(|m| cluster.is_live(*m))
            .collect()
    }

    async fn rolling_restart(&mut self) -> Result<(), String> {
        for member in self.members(None) {
            if !self.live(&[member]).is_empty() {
                self.restart_members(&[member]).await?;
            }
        }
        Ok(())
    }

    /// As many members of the zone at once as the budget allows (all of them, for the canary).
    async fn zone_drain(&mut self, zone: u32) -> Result<(), String> {
        let members = self.members(Some(zone));
        let at_once = if self.shared.ignore_budget {
            members.len().max(1)
        } else {
            self.shared.max_unavailable_voters
        };
        for chunk in members.chunks(at_once) {
            let live: Vec<u64> = self.live(chunk);
            if !live.is_empty() {
                self.restart_members(&live).await?;
            }
        }
        Ok(())
    }

    /// Stop `members` gracefully, keep them down, start them again, and wait until the
    /// cluster is healthy before the budget is given back.
    async fn restart_members(&mut self, members: &[u64]) -> Result<(), String> {
        self.acquire(members).await?;
        for &member in members {
            self.move_leadership_from(member).await;
            self.op
                .cluster
                .lock()
                .expect("cluster")
                .stop_gracefully(member);
            self.record(MaintenanceStep::Stopped { member });
        }
        madsim::time::sleep(self.down).await;
        for &member in members {
            self.op.cluster.lock().expect("cluster").restart(member);
            self.record(MaintenanceStep::Restarted { member });
        }
        self.release(members).await
    }

    async fn rolling_replace(&mut self) -> Result<(), String> {
        for member in self.members(None) {
            let zone = self
                .op
                .cluster
                .lock()
                .expect("cluster")
                .zones
                .get(&member)
                .copied();
            let Some(zone) = zone else { continue };
            self.acquire(&[member]).await?;
            self.move_leadership_from(member).await;
            let mut done = Vec::new();
            let deadline = Instant::now() + STEP_TIMEOUT;
            let removed = self.op.remove_member(member, deadline, &mut done).await;
            let deadline = Instant::now() + STEP_TIMEOUT;
            let added = match removed {
                Ok(()) => self.op.add_member(Some(zone), deadline, &mut done).await,
                Err(step) => Err(step),
            };
            let by = done.iter().find_map(|step| match step {
                crate::trace::OperatorStep::Added { member } => Some(*member),
                _ => None,
            });
            if let Some(by) = by {
                // The new member counts as disrupted until it caught up.
                self.shared.disrupted.lock().expect("budget").insert(by);
                self.record(MaintenanceStep::Replaced { member, by });
            }
            let released: Vec<u64> = [member].into_iter().chain(by).collect();
            if let Err(step) = added {
                self.unblock(&released);
                return Err(format!("replacing member {member}: {step:?}"));
            }
            self.release(&released).await?;
        }
        Ok(())
    }

    /// Wait until the budget allows disrupting `members`: fewer than `max_unavailable_voters`
    /// disrupted with them, and the cluster healthy. The canary does not wait.
    async fn acquire(&mut self, members: &[u64]) -> Result<(), String> {
        loop {
            if self.now_ms() >= self.shared.workload_end_ms {
                return Err("the workload ended while waiting for the disruption budget".into());
            }
            let fits = |shared: &Shared| {
                let disrupted = shared.disrupted.lock().expect("budget");
                disrupted.len() + members.len() <= shared.max_unavailable_voters
            };
            let allowed = self.shared.ignore_budget
                || (fits(&self.shared) && self.healthy().await && fits(&self.shared));
            if allowed {
                let mut disrupted = self.shared.disrupted.lock().expect("budget");
                disrupted.extend(members);
                drop(disrupted);
                for &member in members {
                    self.record(MaintenanceStep::Disrupting { member });
                }
                return Ok(());
            }
            madsim::time::sleep(HEALTH_POLL).await;
        }
    }

    /// Wait until the cluster is healthy again, then give `members`' budget back (at the
    /// workload's end even if it is not, so that the run can finish).
    async fn release(&mut self, members: &[u64]) -> Result<(), String> {
        loop {
            if self.healthy().await {
                self.unblock(members);
                return Ok(());
            }
            if self.now_ms() >= self.shared.workload_end_ms {
                self.unblock(members);
                return Err("the workload ended before the cluster was healthy again".into());
            }
            madsim::time::sleep(HEALTH_POLL).await;
        }
    }

    fn unblock(&self, members: &[u64]) {
        let mut disrupted = self.shared.disrupted.lock().expect("budget");
        for member in members {
            disrupted.remove(member);
        }
        drop(disrupted);
        self.record(MaintenanceStep::Restored {
            members: members.to_vec(),
        });
    }

    /// Healthy: the member list has no learner, and every voter answers Status, follows the
    /// leader and has applied everything the leader's log held just before.
    async fn healthy(&mut self) -> bool {
        let deadline = Instant::now() + MEMBER_LIST_TIMEOUT;
        let Ok(members) = self.op.member_list(deadline).await else {
            return false;
        };
        if members.iter().any(|m| m.is_learner) {
            return false;
        }
        let voters: Vec<u64> = members.iter().map(|m| m.id).collect();
        let Some(leader) = self.status(self.op.target).await.map(|s| s.leader) else {
            return false;
        };
        let Some(leader_status) = self.status(leader).await else {
            return false;
        };
        if leader_status.leader != leader {
            return false;
        }
        for &voter in voters.iter().filter(|&&v| v != leader) {
            match self.status(voter).await {
                Some(status)
                    if status.leader == leader
                        && status.raft_applied_index >= leader_status.raft_index => {}
                _ => return false,
            }
        }
        true
    }

    /// The member's own Status, if it answers in time.
    async fn status(&self, member: u64) -> Option<StatusResponse> {
        let addr = self.op.ctx.members.addr(member)?;
        match super::client::grpc_cluster_call(addr, ClusterRequest::Status, STATUS_TIMEOUT).await {
            Ok(Ok(ClusterResponse::Status(status))) => Some(status),
            _ => None,
        }
    }

    /// If `member` leads, move leadership to the first voter in ID order that is not
    /// disrupted (etcd's graceful stop picks a caught-up follower).
    async fn move_leadership_from(&mut self, member: u64) {
        let Some(status) = self.status(member).await else {
            return;
        };
        if status.leader != member {
            return;
        }
        let disrupted = self.shared.disrupted.lock().expect("budget").clone();
        let Some(to) = self
            .members(None)
            .into_iter()
            .find(|m| *m != member && !disrupted.contains(m))
        else {
            return;
        };
        self.op.target = member;
        let deadline = Instant::now() + TRANSFER_TIMEOUT;
        let request = ClusterRequest::MoveLeader { target_id: to };
        if self.op.call(request, deadline).await.is_ok() {
            self.record(MaintenanceStep::Transferred { from: member, to });
        }
    }
}
