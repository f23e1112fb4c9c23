//! Seed → Plan: everything a run will do, drawn up front from the seed and a scenario.
//!
//! Each purpose draws from its own stream (see [`stream`]), so that editing the workload (say,
//! while shrinking) does not move the fault schedule, and the other way round.

use std::net::{IpAddr, Ipv4Addr};

use faultline_api::{prefix_range_end, DeleteRangeRequest, PutRequest, RangeRequest, Request};
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
    pub faults: FaultMix,
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
}

pub const DEFAULT_SCENARIO_TOML: &str = include_str!("../scenarios/default.toml");

impl Scenario {
    pub fn default_scenario() -> Scenario {
        toml::from_str(DEFAULT_SCENARIO_TOML).expect("the embedded default scenario parses")
    }

    /// Refuse scenarios the simulator cannot run, naming the field.
    pub fn validate(&self) -> Result<(), String> {
        let checks: [(bool, &str); 8] = [
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
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientPlan {
    pub id: u64,
    pub ip: IpAddr,
    pub ops: Vec<PlannedOp>,
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
        let clients = (0..scenario.clients)
            .map(|i| {
                let mut rng = stream(seed, &format!("workload/client-{i}"));
                ClientPlan {
                    id: u64::from(i),
                    ip: IpAddr::V4(Ipv4Addr::new(10, 1, 0, (i + 1) as u8)),
                    ops: generate_ops(&mut rng, scenario, u64::from(i)),
                }
            })
            .collect();
        let faults = generate_faults(&mut stream(seed, "nemesis"), scenario);
        Plan {
            seed,
            scenario: scenario.clone(),
            members,
            clients,
            faults,
        }
    }

    pub fn op_count(&self) -> usize {
        self.clients.iter().map(|c| c.ops.len()).sum()
    }
}

fn generate_ops(rng: &mut ChaCha8Rng, scenario: &Scenario, client: u64) -> Vec<PlannedOp> {
    let mut ops = Vec::new();
    let mut elapsed_ms = 0;
    // Budget the ops by think time so a client's schedule ends near the workload's end.
    while elapsed_ms < scenario.workload_duration_ms {
        let think_time_ms = rng.random_range(0..=scenario.think_time_ms_max);
        elapsed_ms += think_time_ms + scenario.tick_interval_ms;
        let seq = ops.len();
        let key = key_name(rng.random_range(0..scenario.keys));
        let request = match rng.random_range(0..100) {
            0..40 => Request::Put(PutRequest {
                key,
                // Unique values let a checker tell every write apart.
                value: format!("c{client}-{seq}").into_bytes(),
                prev_kv: rng.random_bool(0.3),
                ..PutRequest::default()
            }),
            40..65 => Request::Range(RangeRequest {
                key,
                ..RangeRequest::default()
            }),
            65..77 => Request::Range(RangeRequest {
                key: KEY_PREFIX.to_vec(),
                range_end: prefix_range_end(KEY_PREFIX),
                limit: if rng.random_bool(0.3) { 2 } else { 0 },
                ..RangeRequest::default()
            }),
            77..82 => Request::Range(RangeRequest {
                key,
                serializable: true,
                ..RangeRequest::default()
            }),
            82..95 => Request::DeleteRange(DeleteRangeRequest {
                key,
                prev_kv: rng.random_bool(0.5),
                ..DeleteRangeRequest::default()
            }),
            _ => Request::DeleteRange(DeleteRangeRequest {
                key: KEY_PREFIX.to_vec(),
                range_end: prefix_range_end(KEY_PREFIX),
                prev_kv: true,
            }),
        };
        let member = rng.random_range(1..=u64::from(scenario.members));
        ops.push(PlannedOp {
            think_time_ms,
            member,
            request,
        });
    }
    ops
}

fn generate_faults(rng: &mut ChaCha8Rng, scenario: &Scenario) -> Vec<FaultWindow> {
    let mix = &scenario.faults;
    let weights = [
        mix.crash_weight,
        mix.isolate_member_weight,
        mix.isolate_leader_weight,
        mix.zone_down_weight,
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
            _ => Fault::ZoneDown {
                zone: rng.random_range(0..scenario.zones),
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
        let mut kinds = [false; 3];
        for seed in 0..50 {
            for window in Plan::generate(seed, &scenario).faults {
                match window.fault {
                    Fault::Crash { .. } => kinds[0] = true,
                    Fault::Isolate { .. } => kinds[1] = true,
                    Fault::ZoneDown { .. } => kinds[2] = true,
                }
            }
        }
        assert_eq!(kinds, [true; 3]);
    }

    #[test]
    fn invalid_scenario_names_the_field() {
        let mut scenario = Scenario::default_scenario();
        scenario.zones = 0;
        assert!(scenario.validate().unwrap_err().contains("zones"));
    }
}
