//! Faults that act on timing and on leaders: clock skew, new-leader cuts.

use faultline_node::NodeEvent;

use super::{get, op, put, puts, quiet_plan};
use crate::plan::{Fault, FaultWindow, IsolateTarget};
use crate::runner::{simulate, RunOptions};
use crate::trace::TraceEvent;

/// A leader whose clock runs at 10% sends heartbeats 10x too rarely: with no client
/// traffic to carry appends, the followers elect another leader while it is slow.
#[test]
fn a_slow_leader_clock_lets_the_followers_elect_another() {
    let mut plan = quiet_plan(
        vec![op(500, put("k/0", "a", 0)), op(4500, get("k/0"))],
        vec![],
    );
    plan.faults = vec![FaultWindow {
        start_ms: 1000,
        duration_ms: 3000,
        fault: Fault::ClockSkew {
            target: IsolateTarget::Leader,
            rate_percent: 10,
        },
    }];
    let output = simulate(&plan, &RunOptions::default());
    let (start_ns, slow) = output
        .trace
        .iter()
        .find_map(|r| match &r.event {
            TraceEvent::FaultStart {
                fault: Fault::ClockSkew { .. },
                members,
            } => Some((r.at_ns, members[0])),
            _ => None,
        })
        .expect("the skew started");
    let end_ns = start_ns + 3_000_000_000;
    let other_leader = output.trace.iter().any(|r| {
        r.at_ns > start_ns
            && r.at_ns < end_ns
            && matches!(&r.event, TraceEvent::Member { member, event: NodeEvent::RoleChanged { role, .. } }
                if *member != slow && role == "Leader")
    });
    assert!(
        other_leader,
        "member {slow} stayed leader with a slow clock"
    );
    assert!(output.healed_write_succeeded);
    // Without the skew, nobody else is elected in that time.
    plan.faults.clear();
    let calm = simulate(&plan, &RunOptions::default());
    let elected_during_window = calm.trace.iter().any(|r| {
        r.at_ns > start_ns
            && r.at_ns < end_ns
            && matches!(&r.event, TraceEvent::Member { event: NodeEvent::RoleChanged { role, .. }, .. }
                if role == "Leader")
    });
    assert!(!elected_during_window, "an election without any fault");
}

/// The new-leader cuts fire: a leader cut at the instant of its election gets no entry of
/// its term applied anywhere while it is cut (its first append never left), and the
/// others elect a leader of a later term meanwhile.
#[test]
fn new_leader_cuts_cut_leaders_before_their_first_append() {
    let mut plan = quiet_plan(puts(80, 50), Vec::new());
    plan.faults = vec![FaultWindow {
        start_ms: 1000,
        duration_ms: 3000,
        fault: Fault::CutNewLeaders {
            delay_max_ms: 20,
            hold_max_ms: 600,
        },
    }];
    let output = simulate(&plan, &RunOptions::default());
    let trace = &output.trace;
    // (member, term, cut start, cut end) of leaders cut when elected.
    let mut cut_at_election = Vec::new();
    for (i, record) in trace.iter().enumerate() {
        let TraceEvent::Member {
            member,
            event: NodeEvent::RoleChanged { role, term, .. },
        } = &record.event
        else {
            continue;
        };
        let cut = Fault::PartitionFromPeers {
            target: IsolateTarget::Member(*member),
        };
        let cut_now = trace[i + 1..]
            .iter()
            .take_while(|r| r.at_ns == record.at_ns)
            .any(|r| matches!(&r.event, TraceEvent::FaultStart { fault, .. } if *fault == cut));
        if role != "Leader" || !cut_now {
            continue;
        }
        let end_ns = trace[i..]
            .iter()
            .find(|r| matches!(&r.event, TraceEvent::FaultEnd { fault, .. } if *fault == cut))
            .expect("every cut ends")
            .at_ns;
        cut_at_election.push((*member, *term, record.at_ns, end_ns));
    }
    assert!(
        cut_at_election.len() >= 2,
        "too few leaders cut at election: {cut_at_election:?}"
    );
    let mut replaced_while_cut = 0;
    for &(member, term, start_ns, end_ns) in &cut_at_election {
        let during = || {
            trace
                .iter()
                .filter(|r| r.at_ns >= start_ns && r.at_ns < end_ns)
        };
        let applied_elsewhere = during().any(|r| {
            matches!(&r.event, TraceEvent::Member { member: m, event: NodeEvent::Applied { term: t, .. } }
                if *m != member && *t == term)
        });
        assert!(
            !applied_elsewhere,
            "member {member}, cut when elected in term {term}, replicated an entry"
        );
        // (Not always: another member may be cut at the same time, leaving no quorum.)
        if during().any(|r| {
            matches!(&r.event, TraceEvent::Member { member: m, event: NodeEvent::RoleChanged { role, term: t, .. } }
                if *m != member && role == "Leader" && *t > term)
        }) {
            replaced_while_cut += 1;
        }
    }
    assert!(
        replaced_while_cut >= 1,
        "no cut leader was replaced while cut: {cut_at_election:?}"
    );
    // The nemesis heals: writes succeed again after the window.
    assert!(output.healed_write_succeeded);
}
