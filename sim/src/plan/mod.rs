//! Seed → Plan: everything a run will do, drawn up front from the seed and a scenario.
//!
//! Each purpose draws from its own stream (see [`stream`]), so that editing the workload (say,
//! while shrinking) does not move the fault schedule, and the other way round. The scenario
//! (`scenario`), the workload (`workload`) and the fault schedule (`faults`) each have a file;
//! their public items are re-exported here (`plan::Fault`, `plan::Scenario`, ...).

mod election;
mod events;
mod fault_mix;
mod faults;
mod keyspace;
mod kubernetes;
mod maintenance;
mod maintenance_draw;
mod membership;
mod profile;
#[cfg(test)]
mod profile_tests;
mod scenario;
mod shapes;
mod swarm;
mod swarm_draw;
#[cfg(test)]
mod swarm_tests;
#[cfg(test)]
mod tests;
pub(crate) mod wide_u64;
mod workload;

use std::net::{IpAddr, Ipv4Addr};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

pub use election::{
    campaign, grant_lease, guarded_write, keep_alive, resign, ElectionPlan, ElectionRound,
    ELECTION_KEY, GUARDED_KEY,
};
pub use fault_mix::{fault_kind_names, weights_of, with_weights, FaultMix};
pub use faults::{CrashMoment, Fault, FaultWindow, IsolateTarget};
pub use keyspace::{WorkloadProfile, KEY_PREFIX};
pub use kubernetes::{next_page, pod_key, NAMESPACE_PREFIX};
pub use maintenance::{MaintenanceAction, MaintenanceMix, MaintenanceOp};
pub use maintenance_draw::planned_request_bound_ms;
pub use membership::{MembershipAction, MembershipOp};
pub use scenario::{MembershipMix, Scenario, DEFAULT_SCENARIO_TOML, EMBEDDED_SCENARIOS};
pub use shapes::{arrange, cut_links, group_cut_links, sides};
pub use swarm::{FaultTiming, Swarm, SwarmFault, SwarmProfile, SwarmWorkload};
pub use swarm_draw::describe_drawn;
pub use workload::{
    key_name, lease_id, ClientPlan, Fill, PlannedOp, PlannedWatch, WatchStart, WatcherPlan,
};

use faults::generate_faults;
use maintenance_draw::generate_maintenance;
use membership::generate_membership;
use profile::{
    generate_etcd_ops, ETCD_DELETE_WEIGHTS, ETCD_PUT_DELETE_LEASE_WEIGHTS, ETCD_PUT_WEIGHTS,
};
use workload::{generate_compactions, generate_ops, generate_watches};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberPlan {
    pub id: u64,
    pub name: String,
    pub zone: u32,
    pub ip: IpAddr,
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
    /// The operator's membership changes and leader transfers, in time order.
    #[serde(default)]
    pub membership: Vec<MembershipOp>,
    /// Leader-election clients (the `leader-election` profile's clients, instead of
    /// key-value clients).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub elections: Vec<ElectionPlan>,
    /// Planned disruption (rolling restarts and replacements, zone drains) under the
    /// scenario's disruption budget, in time order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub maintenance: Vec<MaintenanceOp>,
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

impl Plan {
    /// The plan of `seed`. A scenario with a swarm first draws the seed's own scenario from
    /// it on the seed's "swarm" stream (in a profile, if its "swarm/profile" stream draws one); the plan carries that drawn scenario, from which it
    /// generates again unchanged.
    pub fn generate(seed: u64, scenario: &Scenario) -> Plan {
        scenario
            .validate()
            .expect("scenario was validated on input");
        if let Some(swarm) = &scenario.swarm {
            let profile = swarm.draw_profile(&mut stream(seed, "swarm/profile"));
            let drawn = swarm.draw_in(&mut stream(seed, "swarm"), scenario, profile);
            return Plan::generate(seed, &drawn);
        }
        let members: Vec<MemberPlan> = (0..scenario.members)
            .map(|i| MemberPlan {
                id: u64::from(i) + 1,
                name: format!("member-{}", i + 1),
                zone: i % scenario.zones,
                ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, (i + 1) as u8)),
            })
            .collect();
        let mut clients = generate_clients(seed, scenario);
        let elections = generate_elections(seed, scenario);
        if scenario.compaction_interval_ms > 0 {
            let id = u64::from(scenario.clients);
            clients.push(ClientPlan {
                id,
                ip: IpAddr::V4(Ipv4Addr::new(10, 1, 1, 100)),
                ops: generate_compactions(&mut stream(seed, "workload/compactor"), scenario),
            });
        }
        let first_watcher =
            u64::from(scenario.clients) + u64::from(scenario.compaction_interval_ms > 0);
        let watchers = (0..scenario.watchers)
            .map(|i| {
                let mut rng = stream(seed, &format!("workload/watcher-{i}"));
                let sessions = match scenario.workload {
                    WorkloadProfile::Kubernetes | WorkloadProfile::KubernetesCreateDelete => {
                        kubernetes::generate_list_watches(&mut rng, scenario)
                    }
                    profile => generate_watches(&mut rng, scenario, profile.key_prefix()),
                };
                WatcherPlan {
                    id: first_watcher + u64::from(i),
                    ip: IpAddr::V4(Ipv4Addr::new(10, 1, 2, (i + 1) as u8)),
                    sessions,
                }
            })
            .collect();
        let faults = generate_faults(&mut stream(seed, "nemesis"), scenario);
        let membership = generate_membership(&mut stream(seed, "operator"), scenario);
        let maintenance = generate_maintenance(&mut stream(seed, "maintenance"), scenario);
        Plan {
            seed,
            scenario: scenario.clone(),
            members,
            clients,
            watchers,
            faults,
            membership,
            elections,
            maintenance,
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
        let elections = self.elections.iter().map(|e| e.id + 1);
        clients.chain(watchers).chain(elections).max().unwrap_or(0)
    }
}

/// The key-value clients of the scenario's profile (none for leader election: its clients
/// are `generate_elections`'s).
fn generate_clients(seed: u64, scenario: &Scenario) -> Vec<ClientPlan> {
    if scenario.workload == WorkloadProfile::LeaderElection {
        return Vec::new();
    }
    (0..scenario.clients)
        .map(|i| {
            let mut rng = stream(seed, &format!("workload/client-{i}"));
            let rng = &mut rng;
            let client = u64::from(i);
            let ops = match scenario.workload {
                WorkloadProfile::Mixed => generate_ops(rng, scenario, client),
                WorkloadProfile::EtcdPutDeleteLease => {
                    generate_etcd_ops(rng, scenario, client, ETCD_PUT_DELETE_LEASE_WEIGHTS)
                }
                WorkloadProfile::EtcdPut => {
                    generate_etcd_ops(rng, scenario, client, ETCD_PUT_WEIGHTS)
                }
                WorkloadProfile::EtcdDelete => {
                    generate_etcd_ops(rng, scenario, client, ETCD_DELETE_WEIGHTS)
                }
                WorkloadProfile::Kubernetes => kubernetes::generate_kubernetes_ops(
                    rng,
                    scenario,
                    client,
                    kubernetes::KUBERNETES_WRITE_WEIGHTS,
                ),
                WorkloadProfile::KubernetesCreateDelete => kubernetes::generate_kubernetes_ops(
                    rng,
                    scenario,
                    client,
                    kubernetes::KUBERNETES_CREATE_DELETE_WRITE_WEIGHTS,
                ),
                WorkloadProfile::Events => events::generate_event_ops(rng, scenario, client),
                WorkloadProfile::LeaderElection => unreachable!("no key-value clients"),
            };
            ClientPlan {
                id: client,
                ip: IpAddr::V4(Ipv4Addr::new(10, 1, 0, (i + 1) as u8)),
                ops,
            }
        })
        .collect()
}

/// The leader-election clients (ids 0.. like key-value clients, which they replace).
fn generate_elections(seed: u64, scenario: &Scenario) -> Vec<ElectionPlan> {
    if scenario.workload != WorkloadProfile::LeaderElection {
        return Vec::new();
    }
    (0..scenario.clients)
        .map(|i| ElectionPlan {
            id: u64::from(i),
            ip: IpAddr::V4(Ipv4Addr::new(10, 1, 0, (i + 1) as u8)),
            rounds: election::generate_rounds(
                &mut stream(seed, &format!("workload/client-{i}")),
                scenario,
            ),
        })
        .collect()
}
