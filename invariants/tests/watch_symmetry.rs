//! Unknown writes a watch tells apart are not interchangeable: the symmetry reduction
//! (`Model::interchangeable_class`) must not merge writes whose values a watch event shows
//! when the search takes the watch events as facts (etcd-delete seed 322).

use faultline_api::*;
use faultline_invariants::etcd::check_etcd_history_detailed;
use faultline_invariants::history::{History, Operation, Outcome, WatchReceived, WatchReport};
use faultline_invariants::linearizability::Verdict;
use faultline_invariants::watch::{check_watches_with, WatchVerdict};

mod common;
use common::*;

const MS: u64 = 1_000_000;

fn op(id: u64, call_ms: u64, ret_ms: u64, request: Request, outcome: Outcome) -> Operation {
    Operation {
        id,
        client: id,
        member: Some(1),
        invoke_ns: call_ms * MS,
        complete_ns: ret_ms * MS,
        request,
        outcome,
    }
}

fn received(revision: i64, events: Vec<Event>) -> WatchReceived {
    WatchReceived {
        at_ns: 100 * MS,
        response: WatchResponse {
            header: hdr(revision),
            events,
            ..Default::default()
        },
    }
}

/// Two unknown puts of one key, x and y, that no response shows, fill revisions 2 and 3; a
/// known put makes revision 4. A watch from revision 4 sees that put with prev_kv x at
/// revision 3: y was at 2, x at 3. With x and y in one symmetry class the search tried only
/// x (the lowest index) at revision 2, the prev_kv fact rejected it, and the fallback
/// without watches blamed the watch.
fn history() -> History {
    let unknown = || Outcome::Unknown("leader changed".into());
    let event = Event {
        kind: EventType::Put,
        kv: kv("k/a", "z", 2, 4, 3),
        prev_kv: Some(kv("k/a", "x", 2, 3, 2)),
    };
    History {
        ops: vec![
            op(0, 1, 50, put("k/a", "x"), unknown()),
            op(1, 2, 50, put("k/a", "y"), unknown()),
            op(2, 60, 65, put("k/a", "z"), put_ok(4)),
        ],
        watches: vec![WatchReport {
            client: 9,
            member: Some(2),
            request: WatchCreateRequest {
                key: b"k/".to_vec(),
                range_end: b"k0".to_vec(),
                start_revision: 4,
                prev_kv: true,
                ..Default::default()
            },
            created_ns: 55 * MS,
            responses: vec![received(4, vec![event]), received(4, vec![])],
        }],
    }
}

#[test]
fn a_prev_kv_tells_apart_unknown_writes_no_response_shows() {
    let h = history();
    let (verdict, lin) = check_etcd_history_detailed(&h, 1_000_000);
    assert_eq!(verdict, Verdict::Linearizable);
    let lin = lin.expect("a linearization");
    assert!(!lin.watches_contradicted, "{lin:?}");
    assert_eq!(lin.op_ids, vec![1, 0, 2]);
    assert_eq!(check_watches_with(&h, &lin), WatchVerdict::Ok);
}

/// The check still fires: a prev_kv no linearization agrees with (a value nobody wrote) is a
/// watch violation.
#[test]
fn a_prev_kv_nobody_wrote_is_still_a_violation() {
    let mut h = history();
    h.watches[0].responses[0].response.events[0].prev_kv = Some(kv("k/a", "w", 2, 3, 2));
    let (verdict, lin) = check_etcd_history_detailed(&h, 1_000_000);
    assert_eq!(verdict, Verdict::Linearizable);
    let lin = lin.expect("a linearization");
    assert!(lin.watches_contradicted);
    assert!(matches!(
        check_watches_with(&h, &lin),
        WatchVerdict::Violated(_)
    ));
}
