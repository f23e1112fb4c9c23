//! Drawing a scenario's planned maintenance (`plan::MaintenanceOp`, on its own stream) and
//! the bound the availability check holds requests to.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::maintenance::{MaintenanceAction, MaintenanceOp};
use super::scenario::Scenario;

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
