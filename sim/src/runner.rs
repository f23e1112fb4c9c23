//! Plan → Simulation → (History, Trace): one run inside madsim's deterministic runtime.
//!
//! The simulator owns what a member must not: the disks (they outlive crashes), the network
//! faults, the clock, and the fault schedule.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use faultline_api::{prefix_range_end, PutRequest, RangeRequest, Request};
use faultline_invariants::history::{History, Operation, Outcome};
use faultline_node::{run_member, Canary, ClientCall, NodeConfig};
use faultline_storage::MemDisk;
use madsim::net::{Endpoint, NetSim};
use madsim::runtime::{Handle, NodeHandle, Runtime};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::plan::{stream, ClientPlan, Fault, IsolateTarget, Plan, KEY_PREFIX};
use crate::trace::{Recorder, Trace, TraceEvent};

/// Member port on every member's IP.
const MEMBER_PORT: u16 = 2379;
const CLIENT_PORT: u16 = 4000;

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
}

/// Run one plan to completion in a fresh deterministic runtime on this thread.
pub fn simulate(plan: &Plan, options: &RunOptions) -> RunOutput {
    let runtime = Runtime::with_seed_and_config(plan.seed, madsim::Config::default());
    let plan = plan.clone();
    let options = options.clone();
    runtime.block_on(async move { simulate_in_runtime(plan, options).await })
}

struct Cluster {
    handle: Handle,
    recorder: Arc<Recorder>,
    members: BTreeMap<u64, NodeHandle>,
    disks: BTreeMap<u64, Arc<Mutex<MemDisk>>>,
    zones: BTreeMap<u64, u32>,
    /// Members currently killed by the nemesis (a member may be hit by two overlapping faults).
    down: BTreeMap<u64, u32>,
    isolated: BTreeMap<u64, u32>,
    nemesis_rng: rand_chacha::ChaCha8Rng,
}

fn member_addrs(plan: &Plan) -> BTreeMap<u64, SocketAddr> {
    plan.members
        .iter()
        .map(|m| (m.id, SocketAddr::new(m.ip, MEMBER_PORT)))
        .collect()
}

async fn simulate_in_runtime(plan: Plan, options: RunOptions) -> RunOutput {
    let handle = Handle::current();
    let recorder = Recorder::new();
    let addrs = member_addrs(&plan);
    let scenario = &plan.scenario;
    let mut members = BTreeMap::new();
    let mut disks = BTreeMap::new();
    for member in &plan.members {
        let disk = Arc::new(Mutex::new(MemDisk::new()));
        disks.insert(member.id, disk.clone());
        let incarnation = Arc::new(AtomicU64::new(0));
        let mut store_rng = stream(plan.seed, &format!("store/member-{}", member.id));
        let base_rng_seed: u64 = store_rng.random();
        let config = NodeConfig {
            id: member.id,
            members: addrs.clone(),
            tick_interval_ms: scenario.tick_interval_ms,
            election_timeout_ticks: scenario.election_timeout_ticks,
            heartbeat_interval_ticks: scenario.heartbeat_interval_ticks,
            pre_vote: true,
            check_quorum: true,
            max_entries_per_append: 64,
            request_timeout_ms: scenario.client_request_timeout_ms,
            peer_timeout_ms: scenario.tick_interval_ms * scenario.election_timeout_ticks,
            rng_seed: base_rng_seed,
            canary: options.canary,
        };
        let observer = recorder.clone();
        let node = handle
            .create_node()
            .name(&member.name)
            .ip(member.ip)
            .init(move || {
                let mut config = config.clone();
                // Each incarnation draws fresh (but seeded) randomness.
                let n = incarnation.fetch_add(1, Ordering::Relaxed);
                config.rng_seed = config
                    .rng_seed
                    .wrapping_add(n.wrapping_mul(0x9e37_79b9_7f4a_7c15));
                let disk: Box<dyn faultline_storage::Disk + Send> = Box::new(disk.clone());
                let observer = observer.clone();
                async move {
                    run_member(config, disk, observer).await;
                }
            })
            .build();
        members.insert(member.id, node);
    }
    let mut cluster = Cluster {
        handle: handle.clone(),
        recorder: recorder.clone(),
        members,
        disks,
        zones: plan.members.iter().map(|m| (m.id, m.zone)).collect(),
        down: BTreeMap::new(),
        isolated: BTreeMap::new(),
        nemesis_rng: stream(plan.seed, "nemesis/runtime"),
    };

    let ops = Arc::new(Mutex::new(Vec::<Operation>::new()));
    let next_session = Arc::new(AtomicU64::new(plan.clients.len() as u64));
    let mut client_tasks = Vec::new();
    for client in &plan.clients {
        let node = handle
            .create_node()
            .name(format!("client-{}", client.id))
            .ip(client.ip)
            .build();
        let ctx = ClientContext {
            addrs: addrs.clone(),
            recorder: recorder.clone(),
            ops: ops.clone(),
            next_session: next_session.clone(),
            request_timeout: Duration::from_millis(scenario.client_request_timeout_ms),
        };
        let client = client.clone();
        client_tasks.push(node.spawn(async move { run_client(client, ctx).await }));
    }

    run_nemesis(&plan, &mut cluster).await;
    for task in client_tasks {
        task.await.expect("client task");
    }
    heal_all(&mut cluster);

    // Liveness after heal: a write must succeed, then a linearizable read of everything
    // (the final state the checker compares with), like etcd's robustness "tombstone" put.
    let final_node = handle
        .create_node()
        .name("client-final")
        .ip("10.1.1.1".parse().expect("ip"))
        .build();
    let ctx = ClientContext {
        addrs: addrs.clone(),
        recorder: recorder.clone(),
        ops: ops.clone(),
        next_session: next_session.clone(),
        request_timeout: Duration::from_millis(scenario.client_request_timeout_ms),
    };
    let heal_timeout = Duration::from_millis(scenario.heal_timeout_ms);
    let (healed_write_succeeded, final_hashes) = final_node
        .spawn(async move { final_phase(ctx, heal_timeout).await })
        .await
        .expect("final phase");

    let mut ops = std::mem::take(&mut *ops.lock().expect("ops lock"));
    ops.sort_by_key(|op| (op.invoke_ns, op.client));
    for (id, op) in ops.iter_mut().enumerate() {
        op.id = id as u64;
    }
    RunOutput {
        history: History { ops },
        trace: recorder.take(),
        healed_write_succeeded,
        final_hashes,
    }
}

async fn run_nemesis(plan: &Plan, cluster: &mut Cluster) {
    // Each window becomes a start and an end event; process them in time order.
    let mut events: Vec<(u64, bool, usize)> = Vec::new();
    for (i, window) in plan.faults.iter().enumerate() {
        events.push((window.start_ms, true, i));
        events.push((window.start_ms + window.duration_ms, false, i));
    }
    events.sort();
    let mut resolved: BTreeMap<usize, Vec<u64>> = BTreeMap::new();
    for (at_ms, is_start, i) in events {
        let now_ms = cluster.recorder.now_ns() / 1_000_000;
        if at_ms > now_ms {
            madsim::time::sleep(Duration::from_millis(at_ms - now_ms)).await;
        }
        let fault = plan.faults[i].fault;
        if is_start {
            let members = fault_members(fault, cluster);
            start_fault(fault, &members, cluster);
            resolved.insert(i, members);
        } else {
            let members = resolved.remove(&i).expect("started before it ends");
            end_fault(fault, &members, cluster);
        }
    }
    let end_ms = plan.scenario.workload_duration_ms;
    let now_ms = cluster.recorder.now_ns() / 1_000_000;
    if end_ms > now_ms {
        madsim::time::sleep(Duration::from_millis(end_ms - now_ms)).await;
    }
}

fn fault_members(fault: Fault, cluster: &Cluster) -> Vec<u64> {
    match fault {
        Fault::Crash { member } => vec![member],
        Fault::Isolate {
            target: IsolateTarget::Member(member),
        } => vec![member],
        Fault::Isolate {
            target: IsolateTarget::Leader,
        } => cluster.recorder.current_leader().into_iter().collect(),
        Fault::ZoneDown { zone } => cluster
            .zones
            .iter()
            .filter(|(_, z)| **z == zone)
            .map(|(id, _)| *id)
            .collect(),
    }
}

fn start_fault(fault: Fault, members: &[u64], cluster: &mut Cluster) {
    cluster.recorder.record(TraceEvent::FaultStart {
        fault,
        members: members.to_vec(),
    });
    for &member in members {
        match fault {
            Fault::Crash { .. } | Fault::ZoneDown { .. } => crash(member, cluster),
            Fault::Isolate { .. } => {
                let count = cluster.isolated.entry(member).or_insert(0);
                *count += 1;
                if *count == 1 {
                    NetSim::current().clog_node(cluster.members[&member].id());
                }
            }
        }
    }
}

fn end_fault(fault: Fault, members: &[u64], cluster: &mut Cluster) {
    cluster.recorder.record(TraceEvent::FaultEnd {
        fault,
        members: members.to_vec(),
    });
    for &member in members {
        match fault {
            Fault::Crash { .. } | Fault::ZoneDown { .. } => restart(member, cluster),
            Fault::Isolate { .. } => {
                let count = cluster.isolated.get_mut(&member).expect("isolated before");
                *count -= 1;
                if *count == 0 {
                    cluster.isolated.remove(&member);
                    NetSim::current().unclog_node(cluster.members[&member].id());
                }
            }
        }
    }
}

fn crash(member: u64, cluster: &mut Cluster) {
    let count = cluster.down.entry(member).or_insert(0);
    *count += 1;
    if *count > 1 {
        return; // already down
    }
    cluster.handle.kill(cluster.members[&member].id());
    let disk = &cluster.disks[&member];
    let fault = crate::disk::crash_disk(&mut disk.lock().expect("disk"), &mut cluster.nemesis_rng);
    cluster
        .recorder
        .record(TraceEvent::DiskCrash { member, fault });
}

fn restart(member: u64, cluster: &mut Cluster) {
    let count = cluster.down.get_mut(&member).expect("down before restart");
    *count -= 1;
    if *count == 0 {
        cluster.down.remove(&member);
        cluster.handle.restart(cluster.members[&member].id());
    }
}

fn heal_all(cluster: &mut Cluster) {
    for (member, _) in std::mem::take(&mut cluster.down) {
        cluster.handle.restart(cluster.members[&member].id());
    }
    for (member, _) in std::mem::take(&mut cluster.isolated) {
        NetSim::current().unclog_node(cluster.members[&member].id());
    }
    cluster.recorder.record(TraceEvent::Healed);
}

#[derive(Clone)]
struct ClientContext {
    addrs: BTreeMap<u64, SocketAddr>,
    recorder: Arc<Recorder>,
    ops: Arc<Mutex<Vec<Operation>>>,
    next_session: Arc<AtomicU64>,
    request_timeout: Duration,
}

/// A client session: issues requests one at a time, follows leader hints, and records each
/// outcome. After an unknown outcome it continues as a new session (a fresh client id), as
/// etcd's robustness tests do, so later operations are not ordered after the unknown one.
struct Session {
    endpoint: Endpoint,
    ctx: ClientContext,
    client: u64,
    target: u64,
}

impl Session {
    async fn new(
        ip: std::net::IpAddr,
        client: u64,
        first_member: u64,
        ctx: ClientContext,
    ) -> Session {
        let endpoint = Endpoint::bind(SocketAddr::new(ip, CLIENT_PORT))
            .await
            .expect("bind client");
        Session {
            endpoint,
            ctx,
            client,
            target: first_member,
        }
    }

    fn next_member(&self) -> u64 {
        let ids: Vec<u64> = self.ctx.addrs.keys().copied().collect();
        let pos = ids.iter().position(|&id| id == self.target).unwrap_or(0);
        ids[(pos + 1) % ids.len()]
    }

    /// Issue one request and record it. Retries only after definite failures (the request
    /// was not applied), within one overall deadline.
    async fn execute(&mut self, request: Request) -> Outcome {
        let invoke_ns = self.ctx.recorder.now_ns();
        let deadline = madsim::time::Instant::now() + self.ctx.request_timeout;
        let mut member;
        let outcome = loop {
            member = self.target;
            let now = madsim::time::Instant::now();
            if now >= deadline {
                break Outcome::Failed(faultline_api::EtcdError::NoLeader);
            }
            let call = ClientCall {
                request: request.clone(),
            };
            match self
                .endpoint
                .call_timeout(self.ctx.addrs[&member], call, deadline - now)
                .await
            {
                Ok(Ok(response)) => break Outcome::Ok(response),
                Ok(Err(faultline_api::EtcdError::NotLeader {
                    leader_hint: Some(hint),
                })) if hint != member && self.ctx.addrs.contains_key(&hint) => {
                    self.target = hint;
                }
                Ok(Err(
                    faultline_api::EtcdError::NotLeader { .. } | faultline_api::EtcdError::NoLeader,
                )) => {
                    self.target = self.next_member();
                    madsim::time::sleep(Duration::from_millis(20)).await;
                }
                Ok(Err(error)) if error.is_unknown_outcome() => {
                    break Outcome::Unknown(error.to_string())
                }
                Ok(Err(error)) => break Outcome::Failed(error),
                Err(io_error) => break Outcome::Unknown(format!("rpc: {io_error}")),
            }
        };
        let complete_ns = self.ctx.recorder.now_ns();
        let unknown = matches!(outcome, Outcome::Unknown(_));
        self.ctx.ops.lock().expect("ops lock").push(Operation {
            id: 0,
            client: self.client,
            member: Some(member),
            invoke_ns,
            complete_ns,
            request,
            outcome: outcome.clone(),
        });
        if unknown {
            self.client = self.ctx.next_session.fetch_add(1, Ordering::Relaxed);
            self.target = self.next_member();
        }
        outcome
    }
}

async fn run_client(plan: ClientPlan, ctx: ClientContext) {
    let mut session = Session::new(plan.ip, plan.id, 1, ctx).await;
    for op in plan.ops {
        madsim::time::sleep(Duration::from_millis(op.think_time_ms)).await;
        session.target = op.member;
        session.execute(op.request).await;
    }
}

async fn final_phase(
    ctx: ClientContext,
    heal_timeout: Duration,
) -> (bool, BTreeMap<u64, Option<(i64, u32)>>) {
    let members: Vec<u64> = ctx.addrs.keys().copied().collect();
    let mut session = Session::new(
        "10.1.1.1".parse().expect("ip"),
        u64::MAX,
        members[0],
        ctx.clone(),
    )
    .await;
    let deadline = madsim::time::Instant::now() + heal_timeout;
    let mut final_revision = None;
    while madsim::time::Instant::now() < deadline {
        let put = Request::Put(PutRequest {
            key: b"final".to_vec(),
            value: b"healed".to_vec(),
            ..PutRequest::default()
        });
        match session.execute(put).await {
            Outcome::Ok(response) => {
                final_revision = Some(response.header().revision);
                break;
            }
            _ => madsim::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let Some(final_revision) = final_revision else {
        return (false, BTreeMap::new());
    };
    // A final linearizable read of the whole key space pins the end state for the checker.
    let read_all = Request::Range(RangeRequest {
        key: KEY_PREFIX.to_vec(),
        range_end: prefix_range_end(KEY_PREFIX),
        ..RangeRequest::default()
    });
    while madsim::time::Instant::now() < deadline {
        if let Outcome::Ok(_) = session.execute(read_all.clone()).await {
            break;
        }
        madsim::time::sleep(Duration::from_millis(100)).await;
    }
    // Every member must reach the final revision and agree on HashKV there.
    let mut hashes = BTreeMap::new();
    for &member in &members {
        let mut result = None;
        while madsim::time::Instant::now() < deadline {
            let call = ClientCall {
                request: Request::HashKv(faultline_api::HashKvRequest {
                    revision: final_revision,
                }),
            };
            if let Ok(Ok(faultline_api::Response::HashKv(hash))) = session
                .endpoint
                .call_timeout(ctx.addrs[&member], call, Duration::from_millis(500))
                .await
            {
                result = Some((hash.compact_revision, hash.hash));
                break;
            }
            madsim::time::sleep(Duration::from_millis(50)).await;
        }
        hashes.insert(member, result);
    }
    (true, hashes)
}
