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

use serde::{Deserialize, Serialize};

use super::keyspace::WorkloadProfile;

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
    /// The share of seeds, in percent, whose members run with BUGGIFY points on
    /// (`Scenario::buggify`; each point's chance is then drawn per seed by the runner). Drawn
    /// last, so that a swarm without it draws what it always drew.
    #[serde(default)]
    pub buggify_percent: u32,
    /// Profiles: shapes that a class of bugs needs all at once, each drawn in a share of the
    /// seeds (`SwarmProfile`). Independent draws of every knob rarely line up on such a
    /// shape; a profile narrows the knobs it names and draws the rest as usual.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub profiles: Vec<SwarmProfile>,
}

/// A named shape a share of the seeds draws: it replaces the swarm's ranges it names (the
/// others stay the swarm's) and puts its `kinds` in every subset it draws. Whether a seed
/// draws a profile is decided on its own stream (`plan::stream(seed, "swarm/profile")`), so
/// the seeds that draw none keep the scenarios they drew before profiles existed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SwarmProfile {
    /// Shown in the drawn scenario (`Scenario::swarm_profile`) and by `dst run`.
    pub name: String,
    /// The share of the seeds, in percent, that draw this profile (profiles' shares add up
    /// to at most 100).
    pub percent: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub members: Option<Vec<u32>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub election_timeout_ticks: Option<(u64, u64)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_entries_per_append: Option<Vec<usize>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault_timing_ms: Option<Vec<FaultTiming>>,
    /// How many fault kinds a seed keeps, its `kinds` included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault_kinds: Option<(u32, u32)>,
    /// Kinds in every subset this profile draws (they must fit its clusters).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kinds: Vec<String>,
}

impl SwarmProfile {
    /// `swarm` with this profile's ranges in place of its own (and no profiles).
    pub fn narrow(&self, swarm: &Swarm) -> Swarm {
        let mut narrowed = swarm.clone();
        narrowed.profiles = Vec::new();
        if let Some(members) = &self.members {
            narrowed.members = members.clone();
        }
        if let Some(ticks) = self.election_timeout_ticks {
            narrowed.election_timeout_ticks = ticks;
        }
        if let Some(limits) = &self.max_entries_per_append {
            narrowed.max_entries_per_append = limits.clone();
        }
        if let Some(timing) = &self.fault_timing_ms {
            narrowed.fault_timing_ms = timing.clone();
        }
        if let Some(count) = self.fault_kinds {
            narrowed.fault_kinds = count;
        }
        narrowed
    }
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
    /// Not 0: the kind is left out of the subset draw (and of `fault_kinds`' count) and drawn
    /// after every other knob, in this percentage of the seeds it fits, so that adding a kind
    /// moves none of the draws before it: seeds that do not draw it keep their plans.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub late_percent: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
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
