//! Seed → Plan: everything a run will do, drawn up front from the seed and a scenario.
//!
//! Each purpose draws from its own stream (see [`stream`]), so that editing the workload (say,
//! while shrinking) does not move the fault schedule, and the other way round. The scenario
//! (`scenario`), the workload (`workload`) and the fault schedule (`faults`) each have a file;
//! their public items are re-exported here (`plan::Fault`, `plan::Scenario`, ...).

mod faults;
mod membership;
mod scenario;
mod shapes;
#[cfg(test)]
mod tests;
mod workload;

use std::net::{IpAddr, Ipv4Addr};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

pub use faults::{Fault, FaultWindow, IsolateTarget};
pub use membership::{MembershipAction, MembershipOp};
pub use scenario::{FaultMix, MembershipMix, Scenario, DEFAULT_SCENARIO_TOML, EMBEDDED_SCENARIOS};
pub use shapes::{arrange, cut_links, sides};
pub use workload::{
    key_name, lease_id, ClientPlan, Fill, PlannedOp, PlannedWatch, WatchStart, WatcherPlan,
    KEY_PREFIX,
};

use faults::generate_faults;
use membership::generate_membership;
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
        let membership = generate_membership(&mut stream(seed, "operator"), scenario);
        Plan {
            seed,
            scenario: scenario.clone(),
            members,
            clients,
            watchers,
            faults,
            membership,
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
