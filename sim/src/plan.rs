//! Seed → Plan: everything a run will do, drawn up front from the seed and a scenario.
//!
//! Each purpose draws from its own stream (see [`stream`]), so that editing the workload (say,
//! while shrinking) does not move the fault schedule, and the other way round.

use std::net::{IpAddr, Ipv4Addr};

use faultline_api::{
    prefix_range_end, CompactionRequest, Compare, CompareResult, CompareTarget, DeleteRangeRequest,
    LeaseGrantRequest, LeaseId, LeaseKeepAliveRequest, LeaseRevokeRequest, LeaseTimeToLiveRequest,
    PutRequest, RangeRequest, Request, RequestOp, SortOrder, SortTarget, TxnRequest,
    WatchCreateRequest,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// The knobs a seed is drawn against. The default scenario is embedded in the binary
/// (`scenarios/default.toml`) so `dst fuzz` needs no files.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    pub members: u32,
    pub zones: u32,
    pub clients: u32,
    /// Length of the workload phase, during which the nemesis runs.
    pub workload_duration_ms: u64,
    /// Keys the workload touches: `k/0` .. `k/{keys-1}` (a small space makes conflicts likely).
    pub keys: u32,
    /// A client pauses between 0 and this long before each request.
    pub think_time_ms_max: u64,
    /// How long a client waits for one request (all retries included) before it records
    /// the outcome as unknown.
    pub client_request_timeout_ms: u64,
    pub tick_interval_ms: u64,
    pub election_timeout_ticks: u64,
    pub heartbeat_interval_ticks: u64,
    /// After the nemesis heals everything, a write must succeed within this (liveness).
    pub heal_timeout_ms: u64,
    /// Clients that open watches over the key prefix (etcd robustness: watch traffic).
    #[serde(default)]
    pub watchers: u32,
    /// The compactor compacts at a recent revision this often (0: no compactor).
    #[serde(default)]
    pub compaction_interval_ms: u64,
    /// TTL of every lease the workload grants. The checker does not model expiry, so it must
    /// outlive the run (etcd's robustness traffic uses 7200 s).
    #[serde(default = "default_lease_ttl_seconds")]
    pub lease_ttl_seconds: i64,
    /// Members send progress notifications to progress_notify watchers this often.
    #[serde(default = "default_progress_notify_interval_ms")]
    pub watch_progress_notify_interval_ms: u64,
    /// Most entries a leader puts in one append message (1 makes Raft's Figure 8 reachable).
    #[serde(default = "default_max_entries_per_append")]
    pub max_entries_per_append: usize,
    /// Probability that the simulated network drops any one message (madsim's packet loss).
    #[serde(default)]
    pub packet_loss_rate: f64,
    pub faults: FaultMix,
}

fn default_max_entries_per_append() -> usize {
    64
}

fn default_lease_ttl_seconds() -> i64 {
    7200
}

fn default_progress_notify_interval_ms() -> u64 {
    200
}

/// How often and which faults the nemesis draws.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultMix {
    /// Quiet time between two fault windows, drawn uniformly from this range.
    pub gap_ms: (u64, u64),
    /// How long a fault lasts before it is healed.
    pub duration_ms: (u64, u64),
    /// Relative weights of each fault kind (0 disables it).
    pub crash_weight: u32,
    pub isolate_member_weight: u32,
    pub isolate_leader_weight: u32,
    pub zone_down_weight: u32,
    /// Cut the leader off from the other members while clients still reach it.
    #[serde(default)]
    pub peer_partition_weight: u32,
    /// Freeze a member's process (often the leader) without killing it, then let it go on.
    #[serde(default)]
    pub pause_weight: u32,
    /// Crash whoever leads when the fault starts (leader failover, Raft's Figure 8).
    #[serde(default)]
    pub crash_leader_weight: u32,
    /// Cut each new leader from its peers right after (or soon after) its election.
    #[serde(default)]
    pub new_leader_cut_weight: u32,
    #[serde(default = "default_new_leader_cut_delay_max_ms")]
    pub new_leader_cut_delay_max_ms: u64,
    #[serde(default = "default_new_leader_cut_hold_max_ms")]
    pub new_leader_cut_hold_max_ms: u64,
    /// Make a member's clock (often the leader's) run 10x slow to 5x fast for a while.
    #[serde(default)]
    pub clock_skew_weight: u32,
}

fn default_new_leader_cut_delay_max_ms() -> u64 {
    60
}

fn default_new_leader_cut_hold_max_ms() -> u64 {
    800
}

impl FaultMix {
    /// Switch every fault kind off (then turn on the ones a scenario wants).
    pub fn disable_all(&mut self) {
        self.crash_weight = 0;
        self.isolate_member_weight = 0;
        self.isolate_leader_weight = 0;
        self.zone_down_weight = 0;
        self.peer_partition_weight = 0;
        self.pause_weight = 0;
        self.crash_leader_weight = 0;
        self.new_leader_cut_weight = 0;
        self.clock_skew_weight = 0;
    }
}

pub const DEFAULT_SCENARIO_TOML: &str = include_str!("../scenarios/default.toml");

impl Scenario {
    pub fn default_scenario() -> Scenario {
        toml::from_str(DEFAULT_SCENARIO_TOML).expect("the embedded default scenario parses")
    }

    /// Refuse scenarios the simulator cannot run, naming the field.
    pub fn validate(&self) -> Result<(), String> {
        let checks: [(bool, &str); 14] = [
            (
                self.members >= 1 && self.members <= 9,
                "members must be in 1..=9",
            ),
            (
                self.zones >= 1 && self.zones <= self.members,
                "zones must be in 1..=members",
            ),
            (
                self.clients >= 1 && self.clients <= 64,
                "clients must be in 1..=64",
            ),
            (self.keys >= 1, "keys must be >= 1"),
            (self.tick_interval_ms >= 1, "tick_interval_ms must be >= 1"),
            (
                self.election_timeout_ticks > self.heartbeat_interval_ticks,
                "election_timeout_ticks must exceed heartbeat_interval_ticks",
            ),
            (
                self.faults.gap_ms.0 <= self.faults.gap_ms.1
                    && self.faults.duration_ms.0 <= self.faults.duration_ms.1,
                "fault ranges must be (min, max) with min <= max",
            ),
            (
                self.client_request_timeout_ms >= 1,
                "client_request_timeout_ms must be >= 1",
            ),
            (self.watchers <= 64, "watchers must be in 0..=64"),
            (
                self.lease_ttl_seconds >= 1,
                "lease_ttl_seconds must be >= 1",
            ),
            (
                self.watch_progress_notify_interval_ms >= 1,
                "watch_progress_notify_interval_ms must be >= 1",
            ),
            (
                self.max_entries_per_append >= 1,
                "max_entries_per_append must be >= 1",
            ),
            (
                (0.0..0.5).contains(&self.packet_loss_rate),
                "packet_loss_rate must be in [0, 0.5)",
            ),
            (
                self.faults.new_leader_cut_hold_max_ms >= 2,
                "faults.new_leader_cut_hold_max_ms must be >= 2",
            ),
        ];
        match checks.iter().find(|(ok, _)| !ok) {
            Some((_, message)) => Err(format!("scenario {:?}: {message}", self.name)),
            None => Ok(()),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberPlan {
    pub id: u64,
    pub name: String,
    pub zone: u32,
    pub ip: IpAddr,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedOp {
    pub think_time_ms: u64,
    /// The member the request is sent to first, like a client balancing over endpoints; the
    /// client follows leader hints from there.
    pub member: u64,
    pub request: Request,
    /// What the client fills in at run time from what it has seen (a plan cannot know
    /// revisions in advance); the history records the request as sent.
    #[serde(default)]
    pub fill: Fill,
}

/// Run-time parts of a planned request, filled from the client's own observations: the
/// highest header revision it saw, and the last KV it read for each key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Fill {
    #[default]
    None,
    /// The first compare of a Txn gets the compared field of the last KV this client read
    /// for its key (mod revision, version or value): a compare-and-set. A key it last saw
    /// absent (or never read) compares with 0 (create-if-absent; a value compare stays as
    /// planned and fails).
    CompareLastSeen,
    /// Range: `revision` = highest seen revision - n (at least 1): a historical read.
    RevisionsBack(u32),
    /// Range: `min_mod_revision` = highest seen revision - n (at least 1).
    MinModRevisionBack(u32),
    /// Compact: `revision` = highest seen revision - n (at least 1).
    CompactRevisionsBack(u32),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientPlan {
    pub id: u64,
    pub ip: IpAddr,
    pub ops: Vec<PlannedOp>,
}

/// Where a planned watch starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WatchStart {
    /// start_revision 0: events after the member's current revision.
    Now,
    /// The revision of a linearizable read just before, minus n (at least 1); may be compacted
    /// (then the watch is canceled with the compact revision and reopened from it).
    RevisionsBack(u32),
    /// The beginning of history (usually compacted away in a long run).
    First,
}

/// One watch session: read the current revision, open a watch on a member, receive for
/// `duration_ms` (reopening it when the stream is lost or compaction cancels it), cancel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedWatch {
    pub think_time_ms: u64,
    pub member: u64,
    pub start: WatchStart,
    /// Key, range and options; `start_revision` is set at run time from `start`.
    pub request: WatchCreateRequest,
    pub duration_ms: u64,
    /// Send a progress request this often (0: never).
    pub progress_request_interval_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatcherPlan {
    pub id: u64,
    pub ip: IpAddr,
    pub sessions: Vec<PlannedWatch>,
}

/// Who a partition isolates: a fixed member, or whoever leads when the fault starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum IsolateTarget {
    Member(u64),
    Leader,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Fault {
    /// Kill the member's process (unsynced disk writes are lost), restart it at the end.
    Crash { member: u64 },
    /// Cut every link of the member, both ways, until the end of the window.
    Isolate { target: IsolateTarget },
    /// Crash every member of the zone at once; restart them all at the end.
    ZoneDown { zone: u32 },
    /// Cut the links between the member and every other member, both ways; clients still
    /// reach it (a minority partition with clients on its side).
    PartitionFromPeers { target: IsolateTarget },
    /// Freeze the member's process (a GC or VM pause): no crash, no lost state; its timers
    /// and inbox resume at the end of the window (etcd #20418's trigger).
    Pause { target: IsolateTarget },
    /// Crash whoever leads when the window starts; restart it at the end.
    CrashLeader,
    /// While the window is open, every leader (the one at its start, and each member that
    /// wins an election) is cut from its peers, clients still reaching it, after a delay: none
    /// (before its first append leaves) half of the time, else up to `delay_max_ms`; each cut
    /// lasts between `hold_max_ms / 2` and `hold_max_ms`. Leaders that lose their followers
    /// right after an election, or halfway through catching one up, are where Raft's
    /// Figure 8 (an earlier term's entry committed by counting, then overwritten) happens.
    CutNewLeaders { delay_max_ms: u64, hold_max_ms: u64 },
    /// The member's clock runs at `rate_percent` of simulated time until the end of the
    /// window (a drifting or throttled VM clock): its Raft ticks (elections, heartbeats,
    /// check-quorum) and its lease expiry follow it. Nothing may break safety: timing is only
    /// ever an optimization in Raft, and reads go through ReadIndex.
    ClockSkew {
        target: IsolateTarget,
        rate_percent: u32,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultWindow {
    pub start_ms: u64,
    pub duration_ms: u64,
    pub fault: Fault,
}

/// Everything one run does. Generated from (seed, scenario), then possibly edited (shrinking).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub seed: u64,
    pub scenario: Scenario,
    pub members: Vec<MemberPlan>,
    pub clients: Vec<ClientPlan>,
    #[serde(default)]
    pub watchers: Vec<WatcherPlan>,
    pub faults: Vec<FaultWindow>,
}

/// The seed of one purpose's random stream. Streams are independent: FNV-1a over the seed
/// and the purpose's name.
pub fn stream(seed: u64, purpose: &str) -> ChaCha8Rng {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in seed.to_le_bytes().iter().chain(purpose.as_bytes()) {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    ChaCha8Rng::seed_from_u64(hash)
}

pub fn key_name(index: u32) -> Vec<u8> {
    format!("k/{index}").into_bytes()
}

pub const KEY_PREFIX: &[u8] = b"k/";

impl Plan {
    pub fn generate(seed: u64, scenario: &Scenario) -> Plan {
        scenario
            .validate()
            .expect("scenario was validated on input");
        let members: Vec<MemberPlan> = (0..scenario.members)
            .map(|i| MemberPlan {
                id: u64::from(i) + 1,
                name: format!("member-{}", i + 1),
                zone: i % scenario.zones,
                ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, (i + 1) as u8)),
            })
            .collect();
        let mut clients: Vec<ClientPlan> = (0..scenario.clients)
            .map(|i| {
                let mut rng = stream(seed, &format!("workload/client-{i}"));
                ClientPlan {
                    id: u64::from(i),
                    ip: IpAddr::V4(Ipv4Addr::new(10, 1, 0, (i + 1) as u8)),
                    ops: generate_ops(&mut rng, scenario, u64::from(i)),
                }
            })
            .collect();
        if scenario.compaction_interval_ms > 0 {
            let id = u64::from(scenario.clients);
            clients.push(ClientPlan {
                id,
                ip: IpAddr::V4(Ipv4Addr::new(10, 1, 1, 100)),
                ops: generate_compactions(&mut stream(seed, "workload/compactor"), scenario),
            });
        }
        let first_watcher = clients.len() as u64;
        let watchers = (0..scenario.watchers)
            .map(|i| {
                let mut rng = stream(seed, &format!("workload/watcher-{i}"));
                WatcherPlan {
                    id: first_watcher + u64::from(i),
                    ip: IpAddr::V4(Ipv4Addr::new(10, 1, 2, (i + 1) as u8)),
                    sessions: generate_watches(&mut rng, scenario),
                }
            })
            .collect();
        let faults = generate_faults(&mut stream(seed, "nemesis"), scenario);
        Plan {
            seed,
            scenario: scenario.clone(),
            members,
            clients,
            watchers,
            faults,
        }
    }

    pub fn op_count(&self) -> usize {
        self.clients.iter().map(|c| c.ops.len()).sum()
    }

    /// Client ids in use by the plan (KV clients, compactor, watchers); sessions that
    /// continue after an unknown outcome get ids from here on.
    pub fn first_free_client_id(&self) -> u64 {
        let clients = self.clients.iter().map(|c| c.id + 1);
        let watchers = self.watchers.iter().map(|w| w.id + 1);
        clients.chain(watchers).max().unwrap_or(0)
    }
}

/// The lease ids of one client: chosen by the client (etcd accepts a client-chosen id), so a
/// plan can refer to them before they exist, and distinct across clients.
pub fn lease_id(client: u64, n: u32) -> LeaseId {
    let id = ((client + 1) << 20) | u64::from(n + 1);
    i64::try_from(id).expect("small lease ids")
}

/// The key-value workload of one client, after etcd's robustness traffic (EtcdPutDeleteLease
/// with more range options): every request type the linearizability model judges, plus
/// lease requests it does not judge (KeepAlive, TimeToLive, Leases; recorded anyway).
fn generate_ops(rng: &mut ChaCha8Rng, scenario: &Scenario, client: u64) -> Vec<PlannedOp> {
    let mut ops = Vec::new();
    let mut elapsed_ms = 0;
    // Leases of this client planned so far (granted or not by the time they are used).
    let mut leases: u32 = 0;
    // Budget the ops by think time so a client's schedule ends near the workload's end.
    while elapsed_ms < scenario.workload_duration_ms {
        let think_time_ms = rng.random_range(0..=scenario.think_time_ms_max);
        elapsed_ms += think_time_ms + scenario.tick_interval_ms;
        let seq = ops.len();
        // Unique values let a checker tell every write apart.
        let mut values = 0;
        let mut value = || {
            values += 1;
            format!("c{client}-{seq}-{values}").into_bytes()
        };
        let key = key_name(rng.random_range(0..scenario.keys));
        let mut fill = Fill::None;
        let request = match rng.random_range(0..100) {
            0..22 => {
                let with_lease = leases > 0 && rng.random_bool(0.2);
                Request::Put(PutRequest {
                    key,
                    value: value(),
                    prev_kv: rng.random_bool(0.3),
                    lease: if with_lease {
                        lease_id(client, rng.random_range(0..leases))
                    } else {
                        0
                    },
                    ..PutRequest::default()
                })
            }
            22..34 => Request::Range(RangeRequest {
                key,
                serializable: rng.random_bool(0.25),
                ..RangeRequest::default()
            }),
            34..44 => {
                let mut range = random_range_options(rng);
                if rng.random_bool(0.15) {
                    fill = Fill::MinModRevisionBack(rng.random_range(0..20));
                }
                range.serializable = rng.random_bool(0.2);
                Request::Range(range)
            }
            44..50 => {
                // Historical read: a recent revision, sometimes already compacted.
                fill = Fill::RevisionsBack(rng.random_range(0..40));
                if rng.random_bool(0.5) {
                    Request::Range(RangeRequest {
                        key,
                        ..RangeRequest::default()
                    })
                } else {
                    Request::Range(random_range_options(rng))
                }
            }
            50..57 => Request::DeleteRange(DeleteRangeRequest {
                key,
                prev_kv: rng.random_bool(0.5),
                ..DeleteRangeRequest::default()
            }),
            57..58 => Request::DeleteRange(DeleteRangeRequest {
                key: KEY_PREFIX.to_vec(),
                range_end: prefix_range_end(KEY_PREFIX),
                prev_kv: true,
            }),
            58..68 => {
                // Compare-and-set on what this client last read of the key (etcd's
                // CompareAndSet traffic; Kubernetes' guarded update by mod_revision).
                fill = Fill::CompareLastSeen;
                let target = match rng.random_range(0..4) {
                    0 | 1 => CompareTarget::ModRevision(0),
                    2 => CompareTarget::Version(0),
                    _ => CompareTarget::Value(Vec::new()),
                };
                let success = vec![RequestOp::Put(PutRequest {
                    key: key.clone(),
                    value: value(),
                    prev_kv: rng.random_bool(0.3),
                    ..PutRequest::default()
                })];
                let failure = vec![RequestOp::Range(RangeRequest {
                    key: key.clone(),
                    ..RangeRequest::default()
                })];
                Request::Txn(TxnRequest {
                    compare: vec![Compare {
                        result: CompareResult::Equal,
                        target,
                        key,
                        range_end: Vec::new(),
                    }],
                    success,
                    failure,
                })
            }
            68..78 => Request::Txn(random_multi_op_txn(rng, scenario, &mut value, true)),
            78..83 => {
                leases += 1;
                Request::LeaseGrant(LeaseGrantRequest {
                    ttl_seconds: scenario.lease_ttl_seconds,
                    id: lease_id(client, leases - 1),
                })
            }
            83..87 if leases > 0 => Request::LeaseRevoke(LeaseRevokeRequest {
                id: lease_id(client, rng.random_range(0..leases)),
            }),
            87..91 if leases > 0 => Request::LeaseKeepAlive(LeaseKeepAliveRequest {
                id: lease_id(client, rng.random_range(0..leases)),
            }),
            91..95 if leases > 0 => Request::LeaseTimeToLive(LeaseTimeToLiveRequest {
                id: lease_id(client, rng.random_range(0..leases)),
                keys: rng.random_bool(0.5),
            }),
            95..97 => Request::LeaseLeases,
            _ => Request::Range(RangeRequest {
                key,
                ..RangeRequest::default()
            }),
        };
        let member = rng.random_range(1..=u64::from(scenario.members));
        ops.push(PlannedOp {
            think_time_ms,
            member,
            request,
            fill,
        });
    }
    ops
}

/// A range over the whole prefix with random options (limit, keys_only, count_only, sort).
fn random_range_options(rng: &mut ChaCha8Rng) -> RangeRequest {
    let (sort_order, sort_target) = if rng.random_bool(0.3) {
        let order =
            [SortOrder::None, SortOrder::Ascend, SortOrder::Descend][rng.random_range(0..3)];
        let target = [
            SortTarget::Key,
            SortTarget::Version,
            SortTarget::Create,
            SortTarget::Mod,
            SortTarget::Value,
        ][rng.random_range(0..5)];
        // Every combination, including descending on a non-key target (ties stay in key
        // order) and order NONE with a non-key target and a limit (etcd sorts only the first
        // limit + 1 keys): the model follows etcd in both.
        (order, target)
    } else {
        (SortOrder::None, SortTarget::Key)
    };
    let count_only = rng.random_bool(0.1);
    RangeRequest {
        key: KEY_PREFIX.to_vec(),
        range_end: prefix_range_end(KEY_PREFIX),
        // With count_only too: etcd then answers `more = false` (no KVs to truncate).
        limit: [0, 0, 1, 2][rng.random_range(0..4)],
        keys_only: rng.random_bool(0.2),
        count_only,
        sort_order,
        sort_target,
        ..RangeRequest::default()
    }
}

/// etcd's MultiOpTxn: up to four ops on distinct keys (10% delete, 40% range, 50% put, at
/// least one put), sometimes guarded by a compare, rarely with a nested txn.
fn random_multi_op_txn(
    rng: &mut ChaCha8Rng,
    scenario: &Scenario,
    value: &mut dyn FnMut() -> Vec<u8>,
    allow_nested: bool,
) -> TxnRequest {
    let mut keys: Vec<u32> = (0..scenario.keys).collect();
    let count = rng.random_range(1..=keys.len().min(4));
    let mut chosen = Vec::new();
    for _ in 0..count {
        chosen.push(keys.swap_remove(rng.random_range(0..keys.len())));
    }
    let mut success = Vec::new();
    let mut has_put = false;
    for (i, &k) in chosen.iter().enumerate() {
        let key = key_name(k);
        let last = i + 1 == chosen.len();
        let op = match rng.random_range(0..10) {
            _ if last && !has_put => 9,
            roll => roll,
        };
        success.push(match op {
            0 => RequestOp::DeleteRange(DeleteRangeRequest {
                key,
                prev_kv: rng.random_bool(0.5),
                ..DeleteRangeRequest::default()
            }),
            1..5 => RequestOp::Range(RangeRequest {
                key,
                ..RangeRequest::default()
            }),
            _ => {
                has_put = true;
                RequestOp::Put(PutRequest {
                    key,
                    value: value(),
                    ..PutRequest::default()
                })
            }
        });
    }
    let compare = if rng.random_bool(0.4) {
        let key = key_name(rng.random_range(0..scenario.keys));
        let result = [
            CompareResult::Equal,
            CompareResult::Greater,
            CompareResult::Less,
            CompareResult::NotEqual,
        ][rng.random_range(0..4)];
        let target = match rng.random_range(0..4) {
            0 => CompareTarget::Version(rng.random_range(0..3)),
            1 => CompareTarget::CreateRevision(rng.random_range(0..50)),
            2 => CompareTarget::ModRevision(rng.random_range(0..50)),
            _ => CompareTarget::Lease(0),
        };
        // Sometimes the predicate spans the whole prefix, in nested txns too: etcd evaluates
        // a nested txn's compares against the state before the whole txn, which a prefix
        // (or a key the outer ops write) tells apart from the state after the outer ops.
        let range_end = if rng.random_bool(0.2) {
            prefix_range_end(KEY_PREFIX)
        } else {
            Vec::new()
        };
        let key = if range_end.is_empty() {
            key
        } else {
            KEY_PREFIX.to_vec()
        };
        vec![Compare {
            result,
            target,
            key,
            range_end,
        }]
    } else {
        Vec::new()
    };
    // The failure branch reads the keys of the success branch.
    let failure = chosen
        .iter()
        .map(|&k| {
            RequestOp::Range(RangeRequest {
                key: key_name(k),
                ..RangeRequest::default()
            })
        })
        .collect();
    let mut txn = TxnRequest {
        compare,
        success,
        failure,
    };
    if allow_nested && !keys.is_empty() && rng.random_bool(0.1) {
        // A nested txn on the keys the outer one does not touch (no duplicate-key error).
        let mut nested_scenario = scenario.clone();
        nested_scenario.keys = keys.len() as u32;
        let mut inner = random_multi_op_txn(rng, &nested_scenario, value, false);
        let rename = |op: &mut RequestOp| match op {
            RequestOp::Range(r) => r.key = rename_key(&keys, &r.key),
            RequestOp::Put(p) => p.key = rename_key(&keys, &p.key),
            RequestOp::DeleteRange(d) => d.key = rename_key(&keys, &d.key),
            RequestOp::Txn(_) => unreachable!("nested only one level deep"),
        };
        inner.success.iter_mut().for_each(rename);
        inner.failure.iter_mut().for_each(rename);
        // The nested compare's key is not renamed: `k/i` of the reduced space is also a key
        // of the whole one, often one the outer ops write just before (etcd compares it as
        // it was before the txn).
        txn.success.push(RequestOp::Txn(inner));
    }
    txn
}

/// Map `k/i` of a reduced key space onto the i-th of `keys`.
fn rename_key(keys: &[u32], key: &[u8]) -> Vec<u8> {
    let text = std::str::from_utf8(key).expect("workload keys are text");
    let index: usize = text
        .strip_prefix("k/")
        .and_then(|i| i.parse().ok())
        .expect("workload keys are k/<n>");
    key_name(keys[index])
}

/// The compaction loop (etcd robustness: compact at a recent revision every 200 ms): read the
/// current revision, then compact a few revisions below it.
fn generate_compactions(rng: &mut ChaCha8Rng, scenario: &Scenario) -> Vec<PlannedOp> {
    let mut ops = Vec::new();
    let mut elapsed_ms = 0;
    while elapsed_ms < scenario.workload_duration_ms {
        let think_time_ms = scenario.compaction_interval_ms;
        elapsed_ms += think_time_ms;
        let member = rng.random_range(1..=u64::from(scenario.members));
        ops.push(PlannedOp {
            think_time_ms,
            member,
            request: Request::Range(RangeRequest {
                key: KEY_PREFIX.to_vec(),
                range_end: prefix_range_end(KEY_PREFIX),
                count_only: true,
                ..RangeRequest::default()
            }),
            fill: Fill::None,
        });
        ops.push(PlannedOp {
            think_time_ms: 0,
            member,
            request: Request::Compact(CompactionRequest {
                revision: 0,
                physical: rng.random_bool(0.5),
            }),
            fill: Fill::CompactRevisionsBack(rng.random_range(0..10)),
        });
    }
    ops
}

/// Watch sessions of one watcher (etcd robustness watch traffic: read, then watch the prefix
/// from around that revision with progress notifications and prev_kv).
fn generate_watches(rng: &mut ChaCha8Rng, scenario: &Scenario) -> Vec<PlannedWatch> {
    let mut sessions = Vec::new();
    let mut elapsed_ms = 0;
    while elapsed_ms < scenario.workload_duration_ms {
        let think_time_ms = rng.random_range(0..=100);
        let duration_ms = rng.random_range(300..=1500);
        elapsed_ms += think_time_ms + duration_ms;
        let start = match rng.random_range(0..10) {
            0..2 => WatchStart::Now,
            2..9 => WatchStart::RevisionsBack(rng.random_range(0..30)),
            _ => WatchStart::First,
        };
        sessions.push(PlannedWatch {
            think_time_ms,
            member: rng.random_range(1..=u64::from(scenario.members)),
            start,
            request: WatchCreateRequest {
                key: KEY_PREFIX.to_vec(),
                range_end: prefix_range_end(KEY_PREFIX),
                progress_notify: rng.random_bool(0.7),
                prev_kv: rng.random_bool(0.5),
                ..WatchCreateRequest::default()
            },
            duration_ms,
            progress_request_interval_ms: if rng.random_bool(0.5) { 100 } else { 0 },
        });
    }
    sessions
}

fn generate_faults(rng: &mut ChaCha8Rng, scenario: &Scenario) -> Vec<FaultWindow> {
    let mix = &scenario.faults;
    let weights = [
        mix.crash_weight,
        mix.isolate_member_weight,
        mix.isolate_leader_weight,
        mix.zone_down_weight,
        mix.peer_partition_weight,
        mix.pause_weight,
        mix.crash_leader_weight,
        mix.new_leader_cut_weight,
        mix.clock_skew_weight,
    ];
    let total: u32 = weights.iter().sum();
    let mut faults = Vec::new();
    if total == 0 {
        return faults;
    }
    let mut now_ms = rng.random_range(mix.gap_ms.0..=mix.gap_ms.1);
    while now_ms < scenario.workload_duration_ms {
        let duration_ms = rng.random_range(mix.duration_ms.0..=mix.duration_ms.1);
        let member = rng.random_range(1..=u64::from(scenario.members));
        let mut pick = rng.random_range(0..total);
        let kind = weights
            .iter()
            .position(|&w| {
                if pick < w {
                    true
                } else {
                    pick -= w;
                    false
                }
            })
            .expect("pick < total");
        let fault = match kind {
            0 => Fault::Crash { member },
            1 => Fault::Isolate {
                target: IsolateTarget::Member(member),
            },
            2 => Fault::Isolate {
                target: IsolateTarget::Leader,
            },
            3 => Fault::ZoneDown {
                zone: rng.random_range(0..scenario.zones),
            },
            // Partitions and pauses hit the leader: that is where stale reads come from.
            4 => Fault::PartitionFromPeers {
                target: IsolateTarget::Leader,
            },
            5 => Fault::Pause {
                target: IsolateTarget::Leader,
            },
            6 => Fault::CrashLeader,
            7 => Fault::CutNewLeaders {
                delay_max_ms: mix.new_leader_cut_delay_max_ms,
                hold_max_ms: mix.new_leader_cut_hold_max_ms,
            },
            _ => Fault::ClockSkew {
                target: if rng.random_bool(0.5) {
                    IsolateTarget::Leader
                } else {
                    IsolateTarget::Member(member)
                },
                rate_percent: [10, 50, 200, 500][rng.random_range(0..4)],
            },
        };
        faults.push(FaultWindow {
            start_ms: now_ms,
            duration_ms,
            fault,
        });
        now_ms += duration_ms + rng.random_range(mix.gap_ms.0..=mix.gap_ms.1);
    }
    faults
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_plan_and_streams_are_independent() {
        let scenario = Scenario::default_scenario();
        assert_eq!(Plan::generate(7, &scenario), Plan::generate(7, &scenario));
        assert_ne!(Plan::generate(7, &scenario), Plan::generate(8, &scenario));
        // Fewer clients leave the fault schedule untouched.
        let mut fewer = scenario.clone();
        fewer.clients = 1;
        assert_eq!(
            Plan::generate(7, &scenario).faults,
            Plan::generate(7, &fewer).faults
        );
    }

    #[test]
    fn default_scenario_has_every_fault_kind() {
        let scenario = Scenario::default_scenario();
        scenario.validate().unwrap();
        let mut kinds = [false; 7];
        for seed in 0..50 {
            for window in Plan::generate(seed, &scenario).faults {
                match window.fault {
                    Fault::Crash { .. } => kinds[0] = true,
                    Fault::Isolate { .. } => kinds[1] = true,
                    Fault::ZoneDown { .. } => kinds[2] = true,
                    Fault::PartitionFromPeers { .. } => kinds[3] = true,
                    Fault::Pause { .. } => kinds[4] = true,
                    Fault::CrashLeader => kinds[0] = true,
                    Fault::CutNewLeaders { .. } => kinds[5] = true,
                    Fault::ClockSkew { .. } => kinds[6] = true,
                }
            }
        }
        assert_eq!(kinds, [true; 7]);
    }

    // Issue 3: the default workload uses the whole API (and keeps written values unique,
    // which the checkers rely on).
    #[test]
    fn default_workload_uses_the_full_api_with_unique_values() {
        let plan = Plan::generate(3, &Scenario::default_scenario());
        let mut kinds = std::collections::BTreeSet::new();
        let mut values = std::collections::BTreeSet::new();
        let mut note_value = |value: &[u8]| assert!(values.insert(value.to_vec()), "{value:?}");
        for op in plan.clients.iter().flat_map(|c| &c.ops) {
            let kind = match &op.request {
                Request::Range(r) if r.serializable => "serializable range",
                Request::Range(_) if matches!(op.fill, Fill::RevisionsBack(_)) => {
                    "historical range"
                }
                Request::Range(r) if r.sort_order != SortOrder::None => "sorted range",
                Request::Range(r) if r.keys_only || r.count_only || r.limit > 0 => "range options",
                Request::Range(_) => "range",
                Request::Put(p) => {
                    note_value(&p.value);
                    if p.lease != 0 {
                        "put with lease"
                    } else {
                        "put"
                    }
                }
                Request::DeleteRange(_) => "delete",
                Request::Txn(t) => {
                    let mut nested = false;
                    for op in t.success.iter() {
                        match op {
                            RequestOp::Put(p) => note_value(&p.value),
                            RequestOp::Txn(inner) => {
                                nested = true;
                                for op in &inner.success {
                                    if let RequestOp::Put(p) = op {
                                        note_value(&p.value);
                                    }
                                }
                            }
                            _ => {}
                        }
                    }
                    if nested {
                        "nested txn"
                    } else if op.fill == Fill::CompareLastSeen {
                        "cas txn"
                    } else {
                        "multi-op txn"
                    }
                }
                Request::Compact(_) => "compact",
                Request::LeaseGrant(_) => "lease grant",
                Request::LeaseRevoke(_) => "lease revoke",
                Request::LeaseKeepAlive(_) => "keep-alive",
                Request::LeaseTimeToLive(_) => "time-to-live",
                Request::LeaseLeases => "leases",
                Request::HashKv(_) => "hashkv",
            };
            kinds.insert(kind);
        }
        for kind in [
            "serializable range",
            "historical range",
            "sorted range",
            "range options",
            "range",
            "put",
            "put with lease",
            "delete",
            "nested txn",
            "cas txn",
            "multi-op txn",
            "compact",
            "lease grant",
            "lease revoke",
            "keep-alive",
            "time-to-live",
            "leases",
        ] {
            assert!(kinds.contains(kind), "the default workload has no {kind}");
        }
        assert_eq!(plan.watchers.len(), 2);
        assert!(plan.watchers.iter().all(|w| !w.sessions.is_empty()));
    }

    #[test]
    fn invalid_scenario_names_the_field() {
        let mut scenario = Scenario::default_scenario();
        scenario.zones = 0;
        assert!(scenario.validate().unwrap_err().contains("zones"));
    }
}
