//! Swarm testing (FoundationDB's and TigerBeetle's): a scenario with a `[swarm]` section is a
//! family of scenarios, and each seed draws its own member from it on its own stream
//! (`plan::stream(seed, "swarm")`): cluster size, zones, Raft timeouts, entries per append,
//! a workload profile, and a random subset of the fault kinds with random weights. A fixed
//! mix hides the bugs that need one fault to be absent (a fault that heals what another
//! breaks, or one that widens the checkers' windows); a random subset reaches them.
//!
//! The drawn scenario has no `[swarm]` section: it is what the plan, `dst run`, seed files
//! and the shrinker see, and generating a plan from it gives the same plan again.
//!
//! A fault kind is named by its `plan::FaultMix` weight field without `_weight`
//! (`crash`, `one_way_cut`, ...), so adding a kind to the swarm is one line in the scenario's
//! `[swarm.faults]` table; the names are checked against `FaultMix` (`Swarm::validate`).

use std::collections::BTreeMap;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::keyspace::WorkloadProfile;
use super::scenario::{FaultMix, Scenario};

/// The ranges a seed draws its scenario from (the scenario's `[swarm]` table).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Swarm {
    /// Voters; one is drawn uniformly from the list (repeat a size to weigh it).
    pub members: Vec<u32>,
    /// Zones: drawn uniformly from 1..=min(members, zones_max); members are spread
    /// round-robin over them (`member i` in zone `i % zones`).
    pub zones_max: u32,
    /// Election timeout in ticks, drawn uniformly from [min, max].
    pub election_timeout_ticks: (u64, u64),
    /// The election timeout over the heartbeat interval, drawn from [min, max] (Raft wants
    /// heartbeats well inside an election timeout; etcd's defaults are 10).
    pub election_to_heartbeat_ratio: (u64, u64),
    /// Most entries per append message, drawn uniformly from the list (1 makes Raft's
    /// Figure 8 reachable, with new-leader cuts).
    pub max_entries_per_append: Vec<usize>,
    /// Fault rates: a seed draws one (gap, duration) pair of ranges from the list, which
    /// replaces `faults.gap_ms` and `faults.duration_ms` (dense windows, or long quiet spells
    /// in which the checkers' windows are tight).
    pub fault_timing_ms: Vec<FaultTiming>,
    /// How many fault kinds a seed keeps, drawn from [min, max] (capped at the kinds that
    /// fit its cluster).
    pub fault_kinds: (u32, u32),
    /// Each kept kind's weight, drawn from [min, max] (unless the kind names its own).
    pub fault_weight: (u32, u32),
    /// The fault kinds the swarm may draw, by `FaultMix` weight field without `_weight`, each
    /// with what it needs of the cluster.
    pub faults: BTreeMap<String, SwarmFault>,
    /// The workload profiles a seed draws from, each with the knobs it needs.
    pub workloads: Vec<SwarmWorkload>,
}

/// The quiet time between fault windows and their length, each drawn from [min, max].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultTiming {
    pub gap: (u64, u64),
    pub duration: (u64, u64),
}

/// One fault kind the swarm may draw, and the clusters it makes sense in.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SwarmFault {
    /// Fewest members the kind needs (a bridge 3, a ring 4, replacing a rotted member 3).
    #[serde(default)]
    pub min_members: u32,
    /// Fewest zones the kind needs (losing the only zone is not a zone loss).
    #[serde(default)]
    pub min_zones: u32,
    /// How likely the kind is to be among a seed's subset, relative to the others (default
    /// 1): a kind that reaches bugs only in some clusters is drawn more often.
    #[serde(default = "one")]
    pub odds: u32,
    /// The kind's weight range, instead of the swarm's `fault_weight`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<(u32, u32)>,
}

/// One workload profile and the scenario knobs it wants (unset: the scenario's own).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SwarmWorkload {
    pub profile: WorkloadProfile,
    /// Relative weight of the profile among the list (default 1).
    #[serde(default = "one")]
    pub weight: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watchers: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub think_time_ms_max: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_ttl_seconds: Option<i64>,
}

fn one() -> u32 {
    1
}

/// The weight fields of `FaultMix`, by name without `_weight`, as a JSON object.
fn weight_fields(mix: &FaultMix) -> serde_json::Map<String, serde_json::Value> {
    match serde_json::to_value(mix).expect("a fault mix serializes") {
        serde_json::Value::Object(map) => map,
        _ => unreachable!("a fault mix is a struct"),
    }
}

/// Every fault kind of `FaultMix` (its weight fields without `_weight`), in field order.
pub fn fault_kind_names(mix: &FaultMix) -> Vec<String> {
    weight_fields(mix)
        .keys()
        .filter_map(|k| k.strip_suffix("_weight").map(str::to_string))
        .collect()
}

/// `mix` with every weight 0 but those of `weights` (kind name → weight).
pub fn with_weights(mix: &FaultMix, weights: &BTreeMap<String, u32>) -> FaultMix {
    let mut fields = weight_fields(mix);
    for (key, value) in fields.iter_mut() {
        if let Some(kind) = key.strip_suffix("_weight") {
            *value = serde_json::Value::from(weights.get(kind).copied().unwrap_or(0));
        }
    }
    serde_json::from_value(serde_json::Value::Object(fields)).expect("the same fields")
}

/// The nonzero weights of `mix`, by kind name (what `dst run` shows of a drawn mix).
pub fn weights_of(mix: &FaultMix) -> BTreeMap<String, u32> {
    weight_fields(mix)
        .into_iter()
        .filter_map(|(key, value)| {
            let kind = key.strip_suffix("_weight")?.to_string();
            let weight = value.as_u64()? as u32;
            (weight > 0).then_some((kind, weight))
        })
        .collect()
}

fn draw_range<T: rand::distr::uniform::SampleUniform + PartialOrd + Copy>(
    rng: &mut ChaCha8Rng,
    (min, max): (T, T),
) -> T {
    rng.random_range(min..=max)
}

fn draw_from<T: Copy>(rng: &mut ChaCha8Rng, list: &[T]) -> T {
    list[rng.random_range(0..list.len())]
}

impl Swarm {
    /// Refuse a swarm that cannot draw a valid scenario, naming the knob.
    pub fn validate(&self, base: &Scenario) -> Result<(), String> {
        let known = fault_kind_names(&base.faults);
        if let Some(unknown) = self.faults.keys().find(|k| !known.contains(k)) {
            return Err(format!(
                "swarm.faults: {unknown:?} is no fault kind (known: {})",
                known.join(", ")
            ));
        }
        let checks: [(bool, &str); 9] = [
            (
                !self.fault_timing_ms.is_empty()
                    && self.fault_timing_ms.iter().all(|t| {
                        t.gap.0 >= 1 && t.gap.0 <= t.gap.1 && t.duration.0 <= t.duration.1
                    }),
                "swarm.fault_timing_ms must list gap and duration ranges [min, max], gaps >= 1 ms",
            ),
            (
                !self.members.is_empty() && self.members.iter().all(|m| (1..=9).contains(m)),
                "swarm.members must list sizes in 1..=9",
            ),
            (self.zones_max >= 1, "swarm.zones_max must be >= 1"),
            (
                self.election_timeout_ticks.0 <= self.election_timeout_ticks.1,
                "swarm.election_timeout_ticks must be [min, max]",
            ),
            (
                self.election_to_heartbeat_ratio.0 >= 2
                    && self.election_to_heartbeat_ratio.0 <= self.election_to_heartbeat_ratio.1
                    && self.election_timeout_ticks.0 >= self.election_to_heartbeat_ratio.1,
                "swarm.election_to_heartbeat_ratio must be [min >= 2, max <= election ticks]",
            ),
            (
                !self.max_entries_per_append.is_empty()
                    && self.max_entries_per_append.iter().all(|&n| n >= 1),
                "swarm.max_entries_per_append must list values >= 1",
            ),
            (
                self.fault_kinds.0 >= 1 && self.fault_kinds.0 <= self.fault_kinds.1,
                "swarm.fault_kinds must be [min >= 1, max]",
            ),
            (
                self.fault_weight.0 >= 1
                    && self.fault_weight.0 <= self.fault_weight.1
                    && self
                        .faults
                        .values()
                        .all(|f| f.weight.is_none_or(|(min, max)| min >= 1 && min <= max)),
                "swarm.fault_weight (and each kind's weight) must be [min >= 1, max]",
            ),
            (
                !self.workloads.is_empty() && self.workloads.iter().all(|w| w.weight >= 1),
                "swarm.workloads must list profiles of weight >= 1",
            ),
        ];
        match checks.iter().find(|(ok, _)| !ok) {
            Some((_, message)) => Err(message.to_string()),
            None => Ok(()),
        }
    }

    /// The scenario this seed runs: `base` with what the swarm draws, and no swarm.
    pub fn draw(&self, rng: &mut ChaCha8Rng, base: &Scenario) -> Scenario {
        let mut drawn = base.clone();
        drawn.swarm = None;
        drawn.members = draw_from(rng, &self.members);
        drawn.zones = rng.random_range(1..=drawn.members.min(self.zones_max));
        drawn.election_timeout_ticks = draw_range(rng, self.election_timeout_ticks);
        let ratio = draw_range(rng, self.election_to_heartbeat_ratio);
        drawn.heartbeat_interval_ticks = (drawn.election_timeout_ticks / ratio).max(1);
        drawn.max_entries_per_append = draw_from(rng, &self.max_entries_per_append);
        drawn.faults = with_weights(&base.faults, &self.draw_faults(rng, &drawn));
        let timing = draw_from(rng, &self.fault_timing_ms);
        (drawn.faults.gap_ms, drawn.faults.duration_ms) = (timing.gap, timing.duration);
        self.draw_workload(rng, &mut drawn);
        drawn
    }

    /// A random subset of the kinds that fit the drawn cluster, each with a random weight.
    fn draw_faults(&self, rng: &mut ChaCha8Rng, drawn: &Scenario) -> BTreeMap<String, u32> {
        let mut fitting: Vec<(&String, &SwarmFault)> = self
            .faults
            .iter()
            .filter(|(_, f)| drawn.members >= f.min_members && drawn.zones >= f.min_zones)
            .collect();
        let count = draw_range(rng, self.fault_kinds).min(fitting.len() as u32) as usize;
        // Sampling without replacement, each kind by its odds: the first `count` kinds are
        // the subset.
        for i in 0..count {
            let total: u32 = fitting[i..].iter().map(|(_, f)| f.odds).sum();
            let mut pick = rng.random_range(0..total);
            let j = i + fitting[i..]
                .iter()
                .position(|(_, f)| {
                    if pick < f.odds {
                        true
                    } else {
                        pick -= f.odds;
                        false
                    }
                })
                .expect("pick < total");
            fitting.swap(i, j);
        }
        fitting[..count]
            .iter()
            .map(|(kind, fault)| {
                let weight = draw_range(rng, fault.weight.unwrap_or(self.fault_weight));
                ((*kind).clone(), weight)
            })
            .collect()
    }

    fn draw_workload(&self, rng: &mut ChaCha8Rng, drawn: &mut Scenario) {
        let total: u32 = self.workloads.iter().map(|w| w.weight).sum();
        let mut pick = rng.random_range(0..total);
        let workload = self
            .workloads
            .iter()
            .find(|w| {
                if pick < w.weight {
                    true
                } else {
                    pick -= w.weight;
                    false
                }
            })
            .expect("pick < total");
        drawn.workload = workload.profile;
        drawn.keys = workload.keys.unwrap_or(drawn.keys);
        drawn.watchers = workload.watchers.unwrap_or(drawn.watchers);
        drawn.think_time_ms_max = workload
            .think_time_ms_max
            .unwrap_or(drawn.think_time_ms_max);
        drawn.lease_ttl_seconds = workload
            .lease_ttl_seconds
            .unwrap_or(drawn.lease_ttl_seconds);
    }
}

/// One line of what a swarm drew (the knobs `Swarm::draw` sets), for `dst run` and reports.
pub fn describe_drawn(drawn: &Scenario) -> String {
    let faults: Vec<String> = weights_of(&drawn.faults)
        .into_iter()
        .map(|(kind, weight)| format!("{kind} {weight}"))
        .collect();
    format!(
        "swarm drew: {} member(s) in {} zone(s), election {} / heartbeat {} ticks, {} entries \
         per append, workload {}, faults [{}] every {:?} ms for {:?} ms",
        drawn.members,
        drawn.zones,
        drawn.election_timeout_ticks,
        drawn.heartbeat_interval_ticks,
        drawn.max_entries_per_append,
        serde_json::to_value(drawn.workload)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
        faults.join(", "),
        drawn.faults.gap_ms,
        drawn.faults.duration_ms
    )
}
