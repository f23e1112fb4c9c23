//! A scenario's fault mix: the weight of every fault kind and the timing of the windows.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// How often and which faults the nemesis draws.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultMix {
    /// Quiet time between two fault windows, drawn uniformly from this range.
    pub gap_ms: (u64, u64),
    /// How long a fault lasts before it is healed.
    pub duration_ms: (u64, u64),
    /// Relative weights of each fault kind (0, or left out: disabled). A swarm names a kind
    /// by its weight field without `_weight` (`plan::Swarm`).
    #[serde(default)]
    pub crash_weight: u32,
    #[serde(default)]
    pub isolate_member_weight: u32,
    #[serde(default)]
    pub isolate_leader_weight: u32,
    #[serde(default)]
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
    /// Lose the messages from the leader to a member, or from a member to the leader, while
    /// the other direction delivers.
    #[serde(default)]
    pub one_way_cut_weight: u32,
    /// Split the members in two halves joined through one member only.
    #[serde(default)]
    pub bridge_weight: u32,
    /// Split the members into a majority and a minority.
    #[serde(default)]
    pub majority_minority_weight: u32,
    /// Let each member reach only its two neighbours in a ring.
    #[serde(default)]
    pub ring_weight: u32,
    /// Make a member's fsyncs fail (it must stop, as etcd does).
    #[serde(default)]
    pub fsync_error_weight: u32,
    /// Fill a member's disk (its writes fail; it must stop, as etcd does).
    #[serde(default)]
    pub disk_full_weight: u32,
    /// Rot a synced byte of a crashed member's disk (it must refuse to start; it is replaced).
    #[serde(default)]
    pub corrupt_synced_weight: u32,
    /// Cut a zone's members off from the other zones' (nothing crashes).
    #[serde(default)]
    pub zone_cut_weight: u32,
    /// Delay the batches between members (all, or a member's) by tens to hundreds of ms.
    #[serde(default)]
    pub delay_spike_weight: u32,
    /// Deliver some batches to and from a member twice.
    #[serde(default)]
    pub duplicate_weight: u32,
    /// Hold back some batches to and from a member so that later ones overtake them.
    #[serde(default)]
    pub reorder_weight: u32,
    /// Make a member's clock (often the leader's) jump forward or back.
    #[serde(default)]
    pub clock_jump_weight: u32,
    /// Crash a member at a moment of its own: right after a vote or an append
    /// acknowledgement, or between its WAL write and sync (`Fault::AimedCrash`).
    #[serde(default)]
    pub aimed_crash_weight: u32,
    /// Make a member's disk fail its reads, and restart it (it must stop, as etcd does).
    #[serde(default)]
    pub read_error_weight: u32,
    /// Make a member's disk slow: each sync takes 50-500 ms of simulated time.
    #[serde(default)]
    pub slow_disk_weight: u32,
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
        *self = with_weights(self, &BTreeMap::new());
    }
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
