//! Planned maintenance end to end: on the planned-maintenance scenario, every action fires
//! (graceful stops with leadership moved first, restarts, replacements), each disruption is
//! restored, the budget keeps disruptions one at a time, and the availability check judges
//! the run and passes it.

use std::collections::BTreeSet;

use crate::plan::{MaintenanceAction, Plan, Scenario};
use crate::runner::{simulate, RunOptions};
use crate::trace::{MaintenanceStep, TraceEvent};
use crate::verdict::{check_plan, Verdict};

#[test]
fn planned_maintenance_fires_every_action_within_the_budget() {
    let scenario = Scenario::embedded("planned-maintenance").expect("embedded");
    // Seed 1: its maintenance stops a leader (seed 0 did until the schedules of 2026-12-08).
    let plan = Plan::generate(1, &scenario);
    let actions: BTreeSet<String> = plan
        .maintenance
        .iter()
        .map(|op| format!("{:?}", std::mem::discriminant(&op.action)))
        .collect();
    assert_eq!(actions.len(), 3, "{:?}", plan.maintenance);
    let output = simulate(&plan, &RunOptions::default());
    assert!(output.planned_request_bound_ms.is_some());
    let steps: Vec<(MaintenanceAction, &MaintenanceStep)> = output
        .trace
        .iter()
        .filter_map(|r| match &r.event {
            TraceEvent::Maintenance { action, step } => Some((*action, step)),
            _ => None,
        })
        .collect();
    let count = |f: &dyn Fn(&MaintenanceStep) -> bool| steps.iter().filter(|(_, s)| f(s)).count();
    assert_eq!(count(&|s| matches!(s, MaintenanceStep::Began)), 4);
    assert_eq!(count(&|s| matches!(s, MaintenanceStep::Ended)), 4);
    assert!(count(&|s| matches!(s, MaintenanceStep::Stopped { .. })) >= 3);
    assert_eq!(
        count(&|s| matches!(s, MaintenanceStep::Stopped { .. })),
        count(&|s| matches!(s, MaintenanceStep::Restarted { .. }))
    );
    assert!(count(&|s| matches!(s, MaintenanceStep::Replaced { .. })) >= 1);
    assert!(count(&|s| matches!(s, MaintenanceStep::Transferred { .. })) >= 1);
    // The budget (one voter): never two disruptions at once.
    let mut disrupted = BTreeSet::new();
    for (_, step) in &steps {
        match step {
            MaintenanceStep::Disrupting { member } => {
                assert!(disrupted.is_empty(), "{member} while {disrupted:?}");
                disrupted.insert(*member);
            }
            MaintenanceStep::Restored { members } => {
                for member in members {
                    disrupted.remove(member);
                }
            }
            _ => {}
        }
    }
    assert_eq!(check_plan(&plan, &output), Verdict::Pass);
}
