//! The operator: plays the plan's membership steps (`plan::MembershipOp`) through the
//! members' Cluster service, as the etcd operator or a person with etcdctl would, and starts
//! or retires the members' nodes to match. One step at a time, each with a deadline; a step
//! retries what etcd tells it to retry (a change in progress, a learner not ready) and checks
//! the member list after an unknown outcome instead of repeating blindly.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use faultline_api::{ClusterRequest, ClusterResponse, EtcdError, Member};
use madsim::time::Instant;

use super::client::ClientContext;
use super::cluster::Cluster;
use crate::plan::{MemberPlan, MembershipAction};
use crate::trace::{OperatorStep, TraceEvent};

/// How long one step may take before the operator gives up on it.
pub(super) const STEP_TIMEOUT: Duration = Duration::from_secs(6);
/// The pause before retrying a refused or lost call.
const RETRY_PAUSE: Duration = Duration::from_millis(100);
/// How long a removed member's process is left running before the operator deletes it:
/// time for the member to learn that its removal committed and stop on its own, as etcd's
/// members do (the leader's last append tells it). Deleting it at once raced that, so
/// whether a removed member stops by itself depended on the schedule.
const REMOVED_MEMBER_GRACE: Duration = Duration::from_millis(500);
#[derive(Clone)]
pub(super) struct Operator {
    pub(super) ctx: ClientContext,
    pub(super) cluster: Arc<Mutex<Cluster>>,
    /// IDs up to this one are the plan's initial members.
    initial_members: u64,
    /// The member calls go to first (the last one that answered as leader).
    pub(super) target: u64,
    /// Peer URLs whose MemberAdd a step (of any concurrent operator) is still working on: their
    /// learners are not left without a node, whatever the directory says yet.
    adding: Arc<Mutex<std::collections::BTreeSet<String>>>,
}

impl Operator {
    /// An operator (on the current node) that knows the plan's first `initial_members` IDs.
    pub(super) fn new(
        ctx: ClientContext,
        cluster: Arc<Mutex<Cluster>>,
        initial_members: u64,
    ) -> Operator {
        Operator {
            ctx,
            cluster,
            initial_members,
            target: 1,
            adding: Default::default(),
        }
    }
}

impl Operator {
    pub(super) async fn run(mut self, steps: Vec<crate::plan::MembershipOp>, workload_end_ms: u64) {
        for step in steps {
            let now_ms = self.ctx.recorder.now_ns() / 1_000_000;
            if step.at_ms > now_ms {
                madsim::time::sleep(Duration::from_millis(step.at_ms - now_ms)).await;
            }
            let now_ms = self.ctx.recorder.now_ns() / 1_000_000;
            let outcome = if now_ms >= workload_end_ms {
                vec![OperatorStep::Skipped {
                    reason: "the workload is over".into(),
                }]
            } else {
                let deadline = Instant::now() + STEP_TIMEOUT;
                self.play(step.action, deadline).await
            };
            for done in outcome {
                self.ctx.recorder.record(TraceEvent::Operator {
                    action: step.action,
                    step: done,
                });
            }
        }
    }

    /// One step; what it did, in order (a replacement removes, adds and promotes).
    async fn play(&mut self, action: MembershipAction, deadline: Instant) -> Vec<OperatorStep> {
        let mut done = Vec::new();
        let result = match action {
            MembershipAction::AddMember => self.add_member(None, deadline, &mut done).await,
            MembershipAction::RemoveMember => self.remove_added_member(deadline, &mut done).await,
            MembershipAction::Replace { member } => self.replace(member, deadline, &mut done).await,
            MembershipAction::TransferLeader { pick } => {
                self.transfer_leader(pick, deadline, &mut done).await
            }
        };
        if let Err(step) = result {
            done.push(step);
        }
        done
    }

    async fn replace(
        &mut self,
        member: u64,
        deadline: Instant,
        done: &mut Vec<OperatorStep>,
    ) -> Result<(), OperatorStep> {
        let zone = self
            .cluster
            .lock()
            .expect("cluster")
            .zones
            .get(&member)
            .copied();
        let Some(zone) = zone else {
            return Err(OperatorStep::Skipped {
                reason: format!("member {member} is no longer in the cluster"),
            });
        };
        self.remove_member(member, deadline, done).await?;
        self.add_member(Some(zone), deadline, done).await
    }

    async fn remove_added_member(
        &mut self,
        deadline: Instant,
        done: &mut Vec<OperatorStep>,
    ) -> Result<(), OperatorStep> {
        let members = self.member_list(deadline).await?;
        let Some(member) = members
            .iter()
            .filter(|m| !m.is_learner && m.id > self.initial_members)
            .map(|m| m.id)
            .max()
        else {
            return Err(OperatorStep::Skipped {
                reason: "no voter the operator added is left".into(),
            });
        };
        self.remove_member(member, deadline, done).await
    }

    /// MemberRemove until the member is gone from the list; then its node stops for good.
    pub(super) async fn remove_member(
        &mut self,
        member: u64,
        deadline: Instant,
        done: &mut Vec<OperatorStep>,
    ) -> Result<(), OperatorStep> {
        loop {
            match self
                .call(ClusterRequest::MemberRemove { id: member }, deadline)
                .await
            {
                Ok(_) | Err(EtcdError::MemberNotFound) => break,
                Err(error) if retryable(&error) => {
                    if error.is_unknown_outcome() {
                        let members = self.member_list(deadline).await?;
                        if !members.iter().any(|m| m.id == member) {
                            break;
                        }
                    }
                    self.pause(deadline, &error).await?;
                }
                Err(error) => return Err(gave_up("remove", &error)),
            }
        }
        self.ctx.members.remove(member);
        done.push(OperatorStep::Removed { member });
        madsim::time::sleep(REMOVED_MEMBER_GRACE).await;
        self.cluster.lock().expect("cluster").retire(member);
        Ok(())
    }

    /// Add an empty member as a learner, start it, and promote it once it caught up.
    pub(super) async fn add_member(
        &mut self,
        zone: Option<u32>,
        deadline: Instant,
        done: &mut Vec<OperatorStep>,
    ) -> Result<(), OperatorStep> {
        let (ip, zone) = self.cluster.lock().expect("cluster").next_member_slot(zone);
        let addr = Cluster::member_addr(ip);
        let url = format!("http://{addr}");
        let name = format!("member@{ip}");
        self.adding.lock().expect("adding").insert(url.clone());
        let added = self.member_add(&name, &url, deadline).await;
        let Ok((id, members)) = added else {
            self.adding.lock().expect("adding").remove(&url);
            return added.map(|_| ());
        };
        let member = MemberPlan { id, name, zone, ip };
        // The new member is told the cluster's member list, as etcd's
        // `--initial-cluster` for a member joining an existing cluster is.
        let existing: BTreeMap<u64, SocketAddr> = members
            .iter()
            .filter(|m| m.id != id)
            .filter_map(|m| Some((m.id, peer_addr(m)?)))
            .collect();
        self.cluster
            .lock()
            .expect("cluster")
            .join_member(&member, &existing);
        self.ctx.members.insert(id, addr);
        self.adding.lock().expect("adding").remove(&url);
        done.push(OperatorStep::Added { member: id });
        self.promote(id, deadline).await?;
        done.push(OperatorStep::Promoted { member: id });
        Ok(())
    }

    /// MemberAdd (learner) until it is in the list; its ID and the member list.
    async fn member_add(
        &mut self,
        name: &str,
        url: &str,
        deadline: Instant,
    ) -> Result<(u64, Vec<Member>), OperatorStep> {
        let request = ClusterRequest::MemberAdd {
            name: name.to_owned(),
            peer_urls: vec![url.to_owned()],
            is_learner: true,
        };
        loop {
            match self.call(request.clone(), deadline).await {
                Ok(ClusterResponse::MemberAdd {
                    member, members, ..
                }) => return Ok((member.id, members)),
                Ok(other) => panic!("MemberAdd answered {other:?}"),
                Err(error) if error.is_unknown_outcome() || error == EtcdError::PeerUrlExist => {
                    let members = self.member_list(deadline).await?;
                    if let Some(member) = members
                        .iter()
                        .find(|m| m.peer_urls.iter().any(|u| u == url))
                    {
                        return Ok((member.id, members.clone()));
                    }
                    self.pause(deadline, &error).await?;
                }
                Err(EtcdError::TooManyLearners) => {
                    self.remove_phantom_learners(deadline).await?;
                    self.pause(deadline, &EtcdError::TooManyLearners).await?;
                }
                Err(error) if retryable(&error) => self.pause(deadline, &error).await?,
                Err(error) => return Err(gave_up("add", &error)),
            }
        }
    }

    /// A learner whose add committed after its step gave up has no node; it would block every
    /// later add (one learner at a time): remove it.
    async fn remove_phantom_learners(&mut self, deadline: Instant) -> Result<(), OperatorStep> {
        let members = self.member_list(deadline).await?;
        let known = self.ctx.members.snapshot();
        let adding = self.adding.lock().expect("adding").clone();
        for phantom in members.iter().filter(|m| {
            m.is_learner
                && !known.contains_key(&m.id)
                && !m.peer_urls.iter().any(|url| adding.contains(url))
        }) {
            let request = ClusterRequest::MemberRemove { id: phantom.id };
            if let Err(error) = self.call(request, deadline).await {
                if !retryable(&error) && error != EtcdError::MemberNotFound {
                    return Err(gave_up("remove a learner without a node", &error));
                }
            }
        }
        Ok(())
    }

    pub(super) async fn promote(
        &mut self,
        member: u64,
        deadline: Instant,
    ) -> Result<(), OperatorStep> {
        loop {
            match self
                .call(ClusterRequest::MemberPromote { id: member }, deadline)
                .await
            {
                Ok(_) | Err(EtcdError::MemberNotLearner) => return Ok(()),
                Err(error) if retryable(&error) || error == EtcdError::LearnerNotReady => {
                    self.pause(deadline, &error).await?
                }
                Err(error) => return Err(gave_up("promote", &error)),
            }
        }
    }

    async fn transfer_leader(
        &mut self,
        pick: u32,
        deadline: Instant,
        done: &mut Vec<OperatorStep>,
    ) -> Result<(), OperatorStep> {
        let leader = loop {
            match self.call(ClusterRequest::Status, deadline).await {
                Ok(ClusterResponse::Status(status)) if status.leader != 0 => break status.leader,
                Ok(_) => self.pause(deadline, &EtcdError::NoLeader).await?,
                Err(error) => self.pause(deadline, &error).await?,
            }
        };
        let members = self.member_list(deadline).await?;
        let others: Vec<u64> = members
            .iter()
            .filter(|m| !m.is_learner && m.id != leader)
            .map(|m| m.id)
            .collect();
        if others.is_empty() {
            return Err(OperatorStep::Skipped {
                reason: "no other voter".into(),
            });
        }
        let to = others[pick as usize % others.len()];
        self.target = leader;
        match self
            .call(ClusterRequest::MoveLeader { target_id: to }, deadline)
            .await
        {
            Ok(_) => {
                done.push(OperatorStep::Transferred { from: leader, to });
                Ok(())
            }
            Err(error) => Err(gave_up("move leader", &error)),
        }
    }

    pub(super) async fn member_list(
        &mut self,
        deadline: Instant,
    ) -> Result<Vec<Member>, OperatorStep> {
        loop {
            let list = ClusterRequest::MemberList { linearizable: true };
            match self.call(list, deadline).await {
                Ok(response) => {
                    return Ok(response.members().expect("a member list").to_vec());
                }
                Err(error) => self.pause(deadline, &error).await?,
            }
        }
    }

    async fn pause(&self, deadline: Instant, error: &EtcdError) -> Result<(), OperatorStep> {
        if Instant::now() + RETRY_PAUSE >= deadline {
            return Err(gave_up("step", error));
        }
        madsim::time::sleep(RETRY_PAUSE).await;
        Ok(())
    }

    /// One Cluster call, following leader hints between members (no retry of anything else).
    pub(super) async fn call(
        &mut self,
        request: ClusterRequest,
        deadline: Instant,
    ) -> Result<ClusterResponse, EtcdError> {
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Err(EtcdError::Timeout);
            }
            let member = self.ctx.members.known_or_next(self.target);
            self.target = member;
            let addr = self.ctx.members.addr(member).expect("known_or_next");
            let timeout = (deadline - now).min(Duration::from_secs(2));
            let answer = super::client::grpc_cluster_call(addr, request.clone(), timeout).await;
            match answer {
                Ok(Err(EtcdError::NotLeader {
                    leader_hint: Some(hint),
                })) if hint != member && self.ctx.members.addr(hint).is_some() => {
                    self.target = hint;
                }
                Ok(Err(EtcdError::NotLeader { .. } | EtcdError::NoLeader | EtcdError::Removed)) => {
                    self.target = self.ctx.members.next_after(member);
                    madsim::time::sleep(Duration::from_millis(20)).await;
                }
                Ok(result) => return result,
                Err(_) => {
                    // Lost or timed out: the member may be down; whether it acted is unknown.
                    self.target = self.ctx.members.next_after(member);
                    return Err(EtcdError::Timeout);
                }
            }
        }
    }
}

/// A member's peer address from its first peer URL (`http://host:port`).
fn peer_addr(member: &Member) -> Option<SocketAddr> {
    let url = member.peer_urls.first()?;
    url.trim_start_matches("http://").parse().ok()
}

/// Refusals that pass: another change is in flight, a quorum is not active yet, or the
/// outcome is unknown (the caller checks the list).
fn retryable(error: &EtcdError) -> bool {
    error.is_unknown_outcome()
        || matches!(
            error,
            EtcdError::ConfChangeInProgress
                | EtcdError::TooManyLearners
                | EtcdError::NotEnoughStartedMembers
                | EtcdError::Unhealthy
                | EtcdError::NoLeader
                | EtcdError::NotLeader { .. }
        )
}

fn gave_up(what: &str, error: &EtcdError) -> OperatorStep {
    OperatorStep::GaveUp {
        reason: format!("{what}: {error}"),
    }
}
