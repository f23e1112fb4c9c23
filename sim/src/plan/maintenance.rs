//! Planned disruption: the maintenance an operator (a person, a Kubernetes controller honouring
//! a PodDisruptionBudget) does to a healthy cluster, drawn from the scenario's `[maintenance]`
//! table on the seed's own "maintenance" stream (so adding it moves neither the faults, nor the
//! workload, nor the membership steps).
//!
//! Each action disrupts members one at a time, or as many at a time as the disruption budget
//! (`max_unavailable_voters`) allows: before each member it waits until the cluster is healthy
//! (every voter up, answering and caught up with the leader), as a PodDisruptionBudget's
//! eviction API refuses an eviction while the budget is spent. Actions start at their time and
//! run side by side: the budget, not the schedule, keeps them apart.

use serde::{Deserialize, Serialize};

/// How much planned disruption a run does (all 0: none, and no maintenance node is started,
/// so existing scenarios keep their schedules).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceMix {
    /// Rolling restarts: each voter in turn (ID order) gracefully stopped and started again.
    #[serde(default)]
    pub rolling_restarts: u32,
    /// Rolling replacements: each initial voter in turn removed and replaced by an empty member
    /// in its zone (a learner that catches up, then promoted), as `member-replace` does.
    #[serde(default)]
    pub rolling_replaces: u32,
    /// Zone drains: every member of one zone stopped (as many at once as the budget allows),
    /// then brought back.
    #[serde(default)]
    pub zone_drains: u32,
    /// The disruption budget: voters that may be unavailable (stopped, removed, or not caught
    /// up) at once because of maintenance. A PodDisruptionBudget's `maxUnavailable`.
    #[serde(default = "default_max_unavailable_voters")]
    pub max_unavailable_voters: u32,
    /// How long a stopped member stays down, drawn per action (min, max).
    #[serde(default = "default_down_ms")]
    pub down_ms: (u64, u64),
    /// Check availability during maintenance (`verdict::check_planned_availability`): no
    /// request to a member outside the disruption fails or waits beyond the bound.
    #[serde(default)]
    pub availability_checked: bool,
}

fn default_max_unavailable_voters() -> u32 {
    1
}

fn default_down_ms() -> (u64, u64) {
    (500, 1500)
}

impl Default for MaintenanceMix {
    fn default() -> MaintenanceMix {
        MaintenanceMix {
            rolling_restarts: 0,
            rolling_replaces: 0,
            zone_drains: 0,
            max_unavailable_voters: default_max_unavailable_voters(),
            down_ms: default_down_ms(),
            availability_checked: false,
        }
    }
}

impl MaintenanceMix {
    pub fn is_empty(&self) -> bool {
        self.rolling_restarts == 0 && self.rolling_replaces == 0 && self.zone_drains == 0
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MaintenanceAction {
    /// Each voter in turn (ID order, as the run finds them) stopped gracefully (leadership
    /// moved first, as etcd does on a graceful stop) and started again on its disk.
    RollingRestart,
    /// Each initial voter in turn removed and replaced by an empty member in its zone.
    RollingReplace,
    /// Every member of `zone` stopped gracefully, then started again.
    ZoneDrain { zone: u32 },
}

/// One maintenance action: it starts at `at_ms`; each member it stops stays down `down_ms`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaintenanceOp {
    pub at_ms: u64,
    pub action: MaintenanceAction,
    pub down_ms: u64,
}
