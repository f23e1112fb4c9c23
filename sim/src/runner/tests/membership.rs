//! Membership end to end: the operator grows and shrinks the cluster, replaces a member by an
//! empty one that catches up by snapshot, and moves leadership, while a client writes.

use faultline_node::NodeEvent;

use super::{puts, quiet_plan};
use crate::plan::{MembershipAction, MembershipOp, Plan};
use crate::runner::{simulate, RunOptions, RunOutput};
use crate::trace::{OperatorStep, TraceEvent};
use crate::verdict::{check, Verdict};

fn plan_with(steps: Vec<MembershipOp>) -> Plan {
    let mut plan = quiet_plan(puts(600, 10), Vec::new());
    plan.scenario.snapshot_threshold_entries = 50;
    plan.scenario.snapshot_catch_up_entries = 10;
    plan.membership = steps;
    plan
}

fn steps(output: &RunOutput) -> Vec<OperatorStep> {
    output
        .trace
        .iter()
        .filter_map(|r| match &r.event {
            TraceEvent::Operator { step, .. } => Some(step.clone()),
            _ => None,
        })
        .collect()
}

fn events_of(output: &RunOutput, member: u64) -> Vec<&NodeEvent> {
    output
        .trace
        .iter()
        .filter_map(|r| match &r.event {
            TraceEvent::Member { member: m, event } if *m == member => Some(event),
            _ => None,
        })
        .collect()
}

/// 3 → 5 → 3: two learners join, are promoted, and the two are removed again; the removed
/// members stop (they applied their own removal), the final hashes cover the three left.
#[test]
fn the_cluster_grows_to_five_and_shrinks_back_to_three() {
    let at = |at_ms, action| MembershipOp { at_ms, action };
    let plan = plan_with(vec![
        at(1000, MembershipAction::AddMember),
        at(1500, MembershipAction::AddMember),
        at(3000, MembershipAction::RemoveMember),
        at(3500, MembershipAction::RemoveMember),
    ]);
    let output = simulate(&plan, &RunOptions::default());
    let done = steps(&output);
    let [OperatorStep::Added { member: first }, OperatorStep::Promoted {
        member: promoted_first,
    }, OperatorStep::Added { member: second }, OperatorStep::Promoted {
        member: promoted_second,
    }, OperatorStep::Removed {
        member: removed_first,
    }, OperatorStep::Removed {
        member: removed_second,
    }] = done[..]
    else {
        panic!("unexpected operator steps: {done:?}");
    };
    assert_eq!((promoted_first, promoted_second), (first, second));
    // The member added last is removed first.
    assert_eq!((removed_first, removed_second), (second, first));
    assert!(first > 3 && second > 3 && first != second);
    for removed in [first, second] {
        assert!(
            events_of(&output, removed)
                .iter()
                .any(|e| matches!(e, NodeEvent::Removed { .. })),
            "member {removed} applied its own removal and stopped"
        );
    }
    assert_eq!(
        output.final_hashes.keys().copied().collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert_eq!(check(&output), Verdict::Pass);
}

/// A member replaced by an empty one: the newcomer (a new ID, in the old member's zone)
/// starts from nothing after the leader compacted its log, so it catches up by snapshot, and
/// is promoted; the leader then moves to it.
#[test]
fn a_replaced_member_catches_up_by_snapshot_and_can_lead() {
    let at = |at_ms, action| MembershipOp { at_ms, action };
    let plan = plan_with(vec![
        at(4000, MembershipAction::Replace { member: 2 }),
        at(5500, MembershipAction::TransferLeader { pick: 2 }),
    ]);
    let output = simulate(&plan, &RunOptions::default());
    let done = steps(&output);
    let [OperatorStep::Removed { member: 2 }, OperatorStep::Added { member: newcomer }, OperatorStep::Promoted { member: promoted }, OperatorStep::Transferred { .. }] =
        done[..]
    else {
        panic!("unexpected operator steps: {done:?}");
    };
    assert_eq!(promoted, newcomer);
    assert!(
        events_of(&output, newcomer)
            .iter()
            .any(|e| matches!(e, NodeEvent::SnapshotInstalled { .. })),
        "the empty member caught up by snapshot"
    );
    assert_eq!(
        output.final_hashes.keys().copied().collect::<Vec<_>>(),
        vec![1, 3, newcomer]
    );
    assert_eq!(check(&output), Verdict::Pass);
}

/// etcd's remotes: member 3 is cut from its peers while a member is added and becomes the
/// leader, so member 3's log does not know the leader when the cut heals. It must still
/// answer the leader (at the address the leader's messages came from) and catch up. Without
/// that, its answers were dropped and it stayed behind for good (membership-churn seed 313,
/// "did not reach the final revision").
#[test]
fn a_member_behind_answers_a_leader_its_log_does_not_know() {
    use crate::plan::{Fault, FaultWindow, IsolateTarget};
    let at = |at_ms, action| MembershipOp { at_ms, action };
    let mut plan = plan_with(vec![
        at(1500, MembershipAction::AddMember),
        // Among the voters other than the leader (1 or 2), by ID: the other one, 3, then
        // the newcomer, whose ID is a hash far above 3.
        at(3500, MembershipAction::TransferLeader { pick: 2 }),
    ]);
    plan.faults = vec![FaultWindow {
        start_ms: 1000,
        duration_ms: 4000,
        fault: Fault::PartitionFromPeers {
            target: IsolateTarget::Member(3),
        },
    }];
    let output = simulate(&plan, &RunOptions::default());
    let done = steps(&output);
    let [OperatorStep::Added { member: newcomer }, OperatorStep::Promoted { .. }, OperatorStep::Transferred { to, .. }] =
        done[..]
    else {
        panic!("unexpected operator steps: {done:?}");
    };
    assert_eq!(to, newcomer, "the newcomer leads when the cut heals");
    assert!(
        output.final_hashes[&3].is_some(),
        "member 3 reached the final revision"
    );
    assert_eq!(check(&output), Verdict::Pass);
}
