//! Scenarios: the knobs a seed is drawn against (cluster shape, workload, fault mix), read
//! from TOML (sim/scenarios/).

use super::maintenance::MaintenanceMix;
use serde::{Deserialize, Serialize};

use super::fault_mix::FaultMix;
use super::keyspace::WorkloadProfile;
use super::swarm::Swarm;

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
    /// The compactor compacts between 0 and this many revisions (exclusive) below the newest
    /// revision it saw (1: always at the newest, etcd robustness's choice).
    #[serde(default = "default_compact_back_max_revisions")]
    pub compact_back_max_revisions: u32,
    /// What the clients send (`plan::WorkloadProfile`; the mixed profile unless a scenario
    /// names another). Left out of a serialized scenario when mixed, so that seed files
    /// written before the knob existed keep their text.
    #[serde(default, skip_serializing_if = "WorkloadProfile::is_mixed")]
    pub workload: WorkloadProfile,
    /// TTL of every lease the workload grants. The etcd checker judges expiry within windows
    /// (`invariants::etcd::expiry`); a TTL longer than the run (etcd's robustness traffic
    /// uses 7200 s) keeps every lease alive.
    #[serde(default = "default_lease_ttl_seconds")]
    pub lease_ttl_seconds: i64,
    /// Clients that keep leases alive (event and election clients) send a keep-alive this
    /// often (0: a third of the TTL, as etcd's clientv3 does).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub lease_keep_alive_interval_ms: u64,
    /// Members send progress notifications to progress_notify watchers this often.
    #[serde(default = "default_progress_notify_interval_ms")]
    pub watch_progress_notify_interval_ms: u64,
    /// Most entries a leader puts in one append message (1 makes Raft's Figure 8 reachable).
    #[serde(default = "default_max_entries_per_append")]
    pub max_entries_per_append: usize,
    /// Probability that the simulated network drops any one message (madsim's packet loss).
    #[serde(default)]
    pub packet_loss_rate: f64,
    /// A member snapshots its key space and compacts its log once this many entries were
    /// applied since its last snapshot (0: never). Small, so snapshots happen in most seeds.
    #[serde(default = "default_snapshot_threshold_entries")]
    pub snapshot_threshold_entries: u64,
    /// Entries kept in the log before a snapshot's index, for followers slightly behind.
    #[serde(default = "default_snapshot_catch_up_entries")]
    pub snapshot_catch_up_entries: u64,
    /// WAL segment size: small, so segments rotate and are released in a run.
    #[serde(default = "default_wal_segment_size_bytes")]
    pub wal_segment_size_bytes: u64,
    /// How often the leader checkpoints the remaining TTL of its leases through Raft (a new
    /// leader resumes leases from them: etcd #9888's fix). A few seconds, for short TTLs.
    #[serde(default = "default_lease_checkpoint_interval_ms")]
    pub lease_checkpoint_interval_ms: u64,
    pub faults: FaultMix,
    /// Writes must succeed while any one zone is down (checked: five voters over three zones
    /// keep a quorum when a zone is lost).
    #[serde(default)]
    pub writes_promised_during_zone_loss: bool,
    /// The operator's membership changes (none unless the scenario asks).
    #[serde(default)]
    pub membership: MembershipMix,
    /// Planned disruption under a budget (none unless the scenario asks).
    #[serde(default, skip_serializing_if = "MaintenanceMix::is_empty")]
    pub maintenance: super::maintenance::MaintenanceMix,
    /// BUGGIFY points in the members (`faultline_node::Buggify`, drawn per seed by the
    /// runner's `draw_buggify`). Left out of a serialized scenario when off.
    #[serde(default, skip_serializing_if = "is_false")]
    pub buggify: bool,
    /// Swarm testing: each seed draws its own cluster size, zones, timeouts, workload and
    /// fault subset from these ranges (`plan::Swarm`), replacing the knobs above; a drawn
    /// scenario has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swarm: Option<Swarm>,
    /// The swarm profile this scenario was drawn in (`plan::SwarmProfile`), if any: a label
    /// for the plan, `dst run` and seed files; it changes nothing in the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swarm_profile: Option<String>,
}

fn is_false(value: &bool) -> bool {
    !*value
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}

fn default_compact_back_max_revisions() -> u32 {
    10
}

fn default_snapshot_threshold_entries() -> u64 {
    100
}

fn default_snapshot_catch_up_entries() -> u64 {
    10
}

fn default_wal_segment_size_bytes() -> u64 {
    64 << 10
}

fn default_lease_checkpoint_interval_ms() -> u64 {
    2_000
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

pub const DEFAULT_SCENARIO_TOML: &str = include_str!("../../scenarios/default.toml");

/// Every scenario of sim/scenarios/ as (name, TOML text), embedded so that no run depends on
/// the working directory. A file's `name` is its file name without `.toml`.
pub const EMBEDDED_SCENARIOS: [(&str, &str); 27] = [
    ("default", DEFAULT_SCENARIO_TOML),
    (
        "compact-on-delete",
        include_str!("../../scenarios/compact-on-delete.toml"),
    ),
    (
        "leader-churn",
        include_str!("../../scenarios/leader-churn.toml"),
    ),
    (
        "leader-pause",
        include_str!("../../scenarios/leader-pause.toml"),
    ),
    (
        "lossy-leader-churn",
        include_str!("../../scenarios/lossy-leader-churn.toml"),
    ),
    (
        "new-leader-cuts",
        include_str!("../../scenarios/new-leader-cuts.toml"),
    ),
    (
        "single-member-crash",
        include_str!("../../scenarios/single-member-crash.toml"),
    ),
    ("scale", include_str!("../../scenarios/scale.toml")),
    (
        "disk-faults",
        include_str!("../../scenarios/disk-faults.toml"),
    ),
    (
        "fsync-error-ignored",
        include_str!("../../scenarios/fsync-error-ignored.toml"),
    ),
    (
        "member-replace",
        include_str!("../../scenarios/member-replace.toml"),
    ),
    (
        "five-voters-three-zones",
        include_str!("../../scenarios/five-voters-three-zones.toml"),
    ),
    (
        "revision-from-records",
        include_str!("../../scenarios/revision-from-records.toml"),
    ),
    (
        "membership-churn",
        include_str!("../../scenarios/membership-churn.toml"),
    ),
    (
        "partitions",
        include_str!("../../scenarios/partitions.toml"),
    ),
    (
        "kubernetes",
        include_str!("../../scenarios/kubernetes.toml"),
    ),
    ("events", include_str!("../../scenarios/events.toml")),
    (
        "leader-election",
        include_str!("../../scenarios/leader-election.toml"),
    ),
    (
        "lease-leader-transfers",
        include_str!("../../scenarios/lease-leader-transfers.toml"),
    ),
    (
        "etcd-put-delete-lease",
        include_str!("../../scenarios/etcd-put-delete-lease.toml"),
    ),
    ("etcd-put", include_str!("../../scenarios/etcd-put.toml")),
    (
        "etcd-delete",
        include_str!("../../scenarios/etcd-delete.toml"),
    ),
    (
        "kubernetes-create-delete",
        include_str!("../../scenarios/kubernetes-create-delete.toml"),
    ),
    (
        "planned-maintenance",
        include_str!("../../scenarios/planned-maintenance.toml"),
    ),
    (
        "messages-and-clocks",
        include_str!("../../scenarios/messages-and-clocks.toml"),
    ),
    (
        "leader-election-clock-jumps",
        include_str!("../../scenarios/leader-election-clock-jumps.toml"),
    ),
    (
        "aimed-crashes",
        include_str!("../../scenarios/aimed-crashes.toml"),
    ),
];

impl Scenario {
    /// How often clients keep a lease alive (`lease_keep_alive_interval_ms`, else TTL / 3).
    pub fn keep_alive_interval_ms(&self) -> u64 {
        match self.lease_keep_alive_interval_ms {
            0 => (self.lease_ttl_seconds.max(1) as u64 * 1000 / 3).max(1),
            interval => interval,
        }
    }

    pub fn default_scenario() -> Scenario {
        toml::from_str(DEFAULT_SCENARIO_TOML).expect("the embedded default scenario parses")
    }

    /// The scenario with its swarm removed: the fixed scenario its base knobs describe (for
    /// tests that tweak a knob the swarm would otherwise draw).
    pub fn without_swarm(mut self) -> Scenario {
        self.swarm = None;
        self
    }

    /// The embedded scenario `name` (sim/scenarios/<name>.toml), if there is one.
    pub fn embedded(name: &str) -> Option<Scenario> {
        let (_, text) = EMBEDDED_SCENARIOS.iter().find(|(n, _)| *n == name)?;
        let scenario: Scenario = toml::from_str(text)
            .unwrap_or_else(|e| panic!("the embedded scenario {name} does not parse: {e}"));
        Some(scenario)
    }

    /// Does losing the largest zone leave a quorum of the members (spread `i % zones`)?
    fn zone_loss_keeps_quorum(&self) -> bool {
        let largest_zone = self.members.div_ceil(self.zones.max(1));
        self.members - largest_zone > self.members / 2
    }

    /// Refuse scenarios the simulator cannot run, naming the field.
    pub fn validate(&self) -> Result<(), String> {
        let checks: [(bool, &str); 16] = [
            (
                !self.writes_promised_during_zone_loss || self.zone_loss_keeps_quorum(),
                "writes_promised_during_zone_loss needs every zone smaller than members - quorum",
            ),
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
                self.lease_checkpoint_interval_ms >= 1,
                "lease_checkpoint_interval_ms must be >= 1",
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
        if let Some((_, message)) = checks.iter().find(|(ok, _)| !ok) {
            return Err(format!("scenario {:?}: {message}", self.name));
        }
        match &self.swarm {
            Some(swarm) => swarm
                .validate(self)
                .map_err(|message| format!("scenario {:?}: {message}", self.name)),
            None => Ok(()),
        }
    }
}

/// How much membership work a run does (all 0: the cluster keeps its members).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MembershipMix {
    /// Times the cluster grows by two members and shrinks back (3 → 5 → 3).
    #[serde(default)]
    pub scale_cycles: u32,
    /// Members replaced by an empty member (disk wiped, new ID, same zone).
    #[serde(default)]
    pub replacements: u32,
    /// Leader transfers (MoveLeader) to another voter.
    #[serde(default)]
    pub leader_transfers: u32,
    /// Steps start at their time even while an earlier one still runs, as when two operators
    /// (a controller and a person) act at once: changes then meet etcd's one-at-a-time rule.
    #[serde(default)]
    pub concurrent: bool,
}

impl MembershipMix {
    pub fn is_empty(&self) -> bool {
        self.scale_cycles == 0 && self.replacements == 0 && self.leader_transfers == 0
    }
}
