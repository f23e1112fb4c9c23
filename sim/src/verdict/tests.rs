//! Tests of the verdict's own checks (convergence, Raft safety, zone-loss availability).

use super::*;
use faultline_invariants::history::History;

fn output(healed: bool, hashes: &[(u64, Option<(i64, u32)>)]) -> RunOutput {
    RunOutput {
        history: History::default(),
        trace: Vec::new(),
        healed_write_succeeded: healed,
        final_hashes: hashes.iter().copied().collect(),
        writes_promised_during_zone_loss: false,
        continued_sessions: Default::default(),
        planned_request_bound_ms: None,
    }
}

/// The liveness and convergence checks fire: no write after heal, members that never
/// reached the final revision (all of them named), members that disagree.
#[test]
fn liveness_and_convergence_failures_are_reported() {
    let all_agree = [(1, Some((5, 77))), (2, Some((5, 77))), (3, Some((5, 77)))];
    assert_eq!(check(&output(true, &all_agree)), Verdict::Pass);
    assert!(matches!(
        check(&output(false, &all_agree)),
        Verdict::Fail {
            kind: FailureKind::Liveness,
            ..
        }
    ));
    let lagging = [(1, Some((5, 77))), (2, None), (3, None)];
    let Verdict::Fail { kind, report } = check(&output(true, &lagging)) else {
        panic!("lagging members must fail the run")
    };
    assert_eq!(kind, FailureKind::Liveness);
    assert!(report.contains("[2, 3]"), "{report}");
    let disagree = [(1, Some((5, 77))), (2, Some((5, 78))), (3, Some((5, 77)))];
    assert!(matches!(
        check(&output(true, &disagree)),
        Verdict::Fail {
            kind: FailureKind::Divergence,
            ..
        }
    ));
}

fn record(at_ns: u64, event: TraceEvent) -> crate::trace::TraceRecord {
    crate::trace::TraceRecord { at_ns, event }
}

fn applied(member: u64, index: u64, revision: i64) -> TraceEvent {
    TraceEvent::Member {
        member,
        event: NodeEvent::Applied {
            index,
            term: 1,
            digest: 7,
            revision,
        },
    }
}

/// The same entry applied to different states (a restore that lost a revision) is a
/// state machine safety failure, though the entries agree.
#[test]
fn members_at_different_revisions_after_one_index_fail_raft_safety() {
    let mut out = output(true, &[]);
    out.trace = vec![record(1, applied(1, 5, 9)), record(2, applied(2, 5, 9))];
    assert_eq!(check_raft_safety(&out), None);
    out.trace.push(record(3, applied(3, 5, 8)));
    let report = check_raft_safety(&out).expect("revision 8 after index 5 differs from 9");
    assert!(report.contains("member 3 at revision 8"), "{report}");
}

/// A write sent to a member outside the lost zone after the grace that timed out fails
/// `Availability`; one sent to a lost member, or before the grace, or one that succeeded,
/// does not.
#[test]
fn a_write_refused_by_the_quorum_side_during_a_zone_loss_fails_availability() {
    use faultline_api::{PutRequest, PutResponse, Request, Response};
    use faultline_invariants::history::{Operation, Outcome};
    let second = 1_000_000_000;
    let zone_down = crate::plan::Fault::ZoneDown { zone: 0 };
    let put = |id: u64, member: u64, invoke_ns: u64, outcome: Outcome| Operation {
        id,
        client: 0,
        member: Some(member),
        invoke_ns,
        complete_ns: invoke_ns + second / 2,
        request: Request::Put(PutRequest::default()),
        outcome,
    };
    let ok = || Outcome::Ok(Response::Put(PutResponse::default()));
    let timeout = || Outcome::Unknown("timeout".into());
    let mut out = output(true, &[]);
    out.writes_promised_during_zone_loss = true;
    out.trace = vec![
        record(
            second,
            TraceEvent::FaultStart {
                fault: zone_down,
                members: vec![1],
            },
        ),
        record(
            6 * second,
            TraceEvent::FaultEnd {
                fault: zone_down,
                members: vec![1],
            },
        ),
    ];
    out.history.ops = vec![
        put(0, 2, second + second / 2, timeout()), // before the grace: an election
        put(1, 1, 4 * second, timeout()),          // sent to the lost member
        put(2, 2, 4 * second, ok()),
    ];
    assert_eq!(check_zone_loss_availability(&out), None);
    out.history.ops.push(put(3, 3, 5 * second, timeout()));
    let report = check_zone_loss_availability(&out).expect("member 3 could not write");
    assert!(report.contains("zone 0 (members [1])"), "{report}");
    assert!(report.contains("sent to member 3"), "{report}");
    // Through `check`: only the refused write in the history (an unknown put is
    // linearizable alone), so the availability check decides.
    out.history.ops = vec![put(0, 3, 5 * second, timeout())];
    assert!(matches!(
        check(&out),
        Verdict::Fail {
            kind: FailureKind::Availability,
            ..
        }
    ));
    out.writes_promised_during_zone_loss = false;
    assert_eq!(check(&out), Verdict::Pass);
}
