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

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::scenario::Scenario;

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

pub(super) fn generate_maintenance(
    rng: &mut ChaCha8Rng,
    scenario: &Scenario,
) -> Vec<MaintenanceOp> {
    let mix = &scenario.maintenance;
    let mut actions = Vec::new();
    actions.extend((0..mix.rolling_restarts).map(|_| MaintenanceAction::RollingRestart));
    actions.extend((0..mix.rolling_replaces).map(|_| MaintenanceAction::RollingReplace));
    for _ in 0..mix.zone_drains {
        let zone = rng.random_range(0..scenario.zones);
        actions.push(MaintenanceAction::ZoneDrain { zone });
    }
    // Start within the first half of the workload: a rolling action over five members takes
    // several seconds and should finish while clients still run.
    let span_ms = scenario.workload_duration_ms / 2;
    let mut ops: Vec<MaintenanceOp> = actions
        .into_iter()
        .map(|action| MaintenanceOp {
            at_ms: rng.random_range(span_ms / 10..=span_ms.max(1)),
            action,
            down_ms: rng.random_range(mix.down_ms.0..=mix.down_ms.1),
        })
        .collect();
    ops.sort_by_key(|op| op.at_ms);
    ops
}

/// The longest a request may take, from the client's call to its answer, when it was sent to
/// a member outside the disruption while only planned disruption happens
/// (`verdict::check_planned_availability`).
///
/// What etcd promises there: a member stopped gracefully hands leadership to a caught-up
/// follower first (etcd's `TransferLeadershipOnShutdown`), and the transferee campaigns at
/// once on the leader's `MsgTimeoutNow`, without waiting out an election timeout; the old
/// leader refuses proposals meanwhile and raft abandons a transfer that has not finished
/// within one election timeout (etcd-io/raft, `abortLeaderTransfer`). So the cluster is
/// never without a leader for longer than one election timeout, and a request that meets the
/// handover waits at most that, plus the new leader's first commit (one heartbeat round)
/// and the client's retries after `NotLeader` (20 ms each, a few). Twice the election
/// timeout covers that with room for the simulated network; an election after a leader
/// vanished without handing over takes a randomized election timeout (one to two of them)
/// after the last heartbeat, then a vote, so it usually shows up beyond this bound (and
/// always when the cluster loses its quorum: the request then fails by its timeout). Never
/// more than the client's request timeout, which ends a request anyway.
pub fn planned_request_bound_ms(scenario: &Scenario) -> u64 {
    let election_timeout_ms = scenario.election_timeout_ticks * scenario.tick_interval_ms;
    (2 * election_timeout_ms).min(scenario.client_request_timeout_ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Plan, EMBEDDED_SCENARIOS};

    /// Scenarios without a `[maintenance]` table draw none (no operator node, schedules as
    /// before); the planned-maintenance scenario draws every action, in time order, within
    /// the first half of the workload.
    #[test]
    fn maintenance_is_drawn_only_where_the_scenario_asks() {
        for (name, _) in EMBEDDED_SCENARIOS {
            let scenario = Scenario::embedded(name).expect("embedded");
            let plan = Plan::generate(7, &scenario);
            if name == "planned-maintenance" {
                let ops = &plan.maintenance;
                assert_eq!(ops.len(), 4, "{ops:?}");
                assert!(ops.windows(2).all(|w| w[0].at_ms <= w[1].at_ms));
                assert!(ops
                    .iter()
                    .all(|op| op.at_ms <= scenario.workload_duration_ms / 2));
                assert!(ops.iter().all(|op| (300..=1000).contains(&op.down_ms)));
                assert_eq!(planned_request_bound_ms(&scenario), 300);
            } else {
                assert!(plan.maintenance.is_empty(), "{name}");
                assert!(scenario.maintenance.is_empty(), "{name}");
            }
        }
    }
}
