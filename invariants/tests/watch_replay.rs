//! Watch properties judged against a replay of the committed writes: reliable, resumable,
//! prev_kv and is-create (etcd-semantics.md §6, §10 "Validations").

use faultline_api::*;
use faultline_invariants::etcd::check_etcd_history_detailed;
use faultline_invariants::history::{History, Operation, Outcome, WatchReceived, WatchReport};
use faultline_invariants::linearizability::Verdict;
use faultline_invariants::watch::{check_watches, check_watches_with, WatchProperty, WatchVerdict};

mod common;
use common::*;

const MS: u64 = 1_000_000;

fn delete(key: &str) -> Request {
    Request::DeleteRange(DeleteRangeRequest {
        key: key.as_bytes().to_vec(),
        range_end: vec![],
        prev_kv: false,
    })
}

fn delete_ok(rev: i64) -> Outcome {
    Outcome::Ok(Response::DeleteRange(DeleteRangeResponse {
        header: hdr(rev),
        deleted: 1,
        prev_kvs: vec![],
    }))
}

fn put_ev(kv: KeyValue, prev: Option<KeyValue>) -> Event {
    Event {
        kind: EventType::Put,
        kv,
        prev_kv: prev,
    }
}

fn del_ev(key: &str, rev: i64, prev: Option<KeyValue>) -> Event {
    Event {
        kind: EventType::Delete,
        kv: KeyValue {
            key: key.as_bytes().to_vec(),
            mod_revision: rev,
            ..Default::default()
        },
        prev_kv: prev,
    }
}

fn events(es: Vec<Event>) -> WatchReceived {
    WatchReceived {
        at_ns: 100 * MS,
        response: WatchResponse {
            header: hdr(es.last().map_or(0, |e| e.kv.mod_revision)),
            events: es,
            ..Default::default()
        },
    }
}

fn created(rev: i64) -> WatchReceived {
    WatchReceived {
        at_ns: 100 * MS,
        response: WatchResponse {
            header: hdr(rev),
            created: true,
            ..Default::default()
        },
    }
}

fn progress(rev: i64) -> WatchReceived {
    WatchReceived {
        at_ns: 100 * MS,
        response: WatchResponse {
            header: hdr(rev),
            ..Default::default()
        },
    }
}

// The committed writes: a=1 (rev 2), a=2 (rev 3), delete a (rev 4), b=3 (rev 5).
fn a1() -> KeyValue {
    kv("k/a", "1", 2, 2, 1)
}
fn a2() -> KeyValue {
    kv("k/a", "2", 2, 3, 2)
}
fn b3() -> KeyValue {
    kv("k/b", "3", 5, 5, 1)
}

fn ops() -> Vec<Operation> {
    let list = vec![
        (put("k/a", "1"), put_ok(2)),
        (put("k/a", "2"), put_ok(3)),
        (delete("k/a"), delete_ok(4)),
        (put("k/b", "3"), put_ok(5)),
    ];
    sequential_ops(list)
}

fn with_watch(start_revision: i64, responses: Vec<WatchReceived>) -> History {
    History {
        ops: ops(),
        watches: vec![WatchReport {
            client: 9,
            member: Some(2),
            request: WatchCreateRequest {
                key: b"k/".to_vec(),
                range_end: b"k0".to_vec(),
                start_revision,
                prev_kv: true,
                ..Default::default()
            },
            created_ns: 50 * MS,
            responses,
        }],
    }
}

fn violated(h: &History) -> Vec<WatchProperty> {
    let (verdict, lin) = check_etcd_history_detailed(h, 1_000_000);
    assert_eq!(verdict, Verdict::Linearizable);
    let with = check_watches_with(h, &lin.expect("a linearization"));
    // The one-argument form finds the same linearization itself.
    assert_eq!(check_watches(h), with);
    match with {
        WatchVerdict::Ok => vec![],
        WatchVerdict::Violated(v) => v.into_iter().map(|x| x.property).collect(),
        WatchVerdict::Unknown { reason } => panic!("unknown: {reason}"),
    }
}

fn full() -> Vec<WatchReceived> {
    vec![
        created(5),
        events(vec![put_ev(a1(), None)]),
        events(vec![put_ev(a2(), Some(a1()))]),
        events(vec![del_ev("k/a", 4, Some(a2()))]),
        events(vec![put_ev(b3(), None)]),
        progress(5),
    ]
}

#[test]
fn a_complete_watch_passes() {
    assert_eq!(violated(&with_watch(2, full())), vec![]);
    // prev_kv may be missing (compacted): tolerated.
    let mut r = full();
    r[2] = events(vec![put_ev(a2(), None)]);
    assert_eq!(violated(&with_watch(2, r)), vec![]);
}

#[test]
fn reliable_catches_a_dropped_event() {
    let mut r = full();
    r.remove(3); // the delete at revision 4
    assert_eq!(violated(&with_watch(2, r)), vec![WatchProperty::Reliable]);
}

#[test]
fn reliable_catches_an_event_no_write_made() {
    let mut r = full();
    r[4] = events(vec![put_ev(kv("k/b", "forged", 5, 5, 1), None)]);
    let v = violated(&with_watch(2, r));
    assert_eq!(
        v,
        vec![WatchProperty::Reliable, WatchProperty::Reliable],
        "the committed b=3 is missing and the forged one matches nothing"
    );
}

#[test]
fn reliable_from_now_starts_after_the_created_revision() {
    // Created at revision 3: events 4 and 5 must follow.
    let ok = vec![
        created(3),
        events(vec![del_ev("k/a", 4, Some(a2()))]),
        events(vec![put_ev(b3(), None)]),
    ];
    assert_eq!(violated(&with_watch(0, ok)), vec![]);
    let gap = vec![created(3), events(vec![put_ev(b3(), None)])];
    assert_eq!(violated(&with_watch(0, gap)), vec![WatchProperty::Reliable]);
}

#[test]
fn resumable_catches_a_watch_that_starts_late() {
    // From revision 3, the first event must be a=2 at revision 3.
    let r = vec![
        created(5),
        events(vec![del_ev("k/a", 4, Some(a2()))]),
        events(vec![put_ev(b3(), None)]),
    ];
    let v = violated(&with_watch(3, r));
    assert!(v.contains(&WatchProperty::Resumable), "{v:?}");
    let ok = vec![
        created(5),
        events(vec![put_ev(a2(), Some(a1()))]),
        events(vec![del_ev("k/a", 4, Some(a2()))]),
        events(vec![put_ev(b3(), None)]),
    ];
    assert_eq!(violated(&with_watch(3, ok)), vec![]);
}

#[test]
fn prev_kv_catches_a_wrong_previous_value() {
    let mut r = full();
    r[2] = events(vec![put_ev(a2(), Some(kv("k/a", "other", 2, 2, 1)))]);
    assert_eq!(violated(&with_watch(2, r)), vec![WatchProperty::PrevKv]);
    // A creation has no previous KV.
    let mut r = full();
    r[4] = events(vec![put_ev(b3(), Some(a2()))]);
    assert_eq!(violated(&with_watch(2, r)), vec![WatchProperty::PrevKv]);
}

#[test]
fn is_create_catches_a_creation_flag_that_lies() {
    // b=3 at revision 5 shown as a modification (version 2, created earlier).
    let mut r = full();
    r[4] = events(vec![put_ev(kv("k/b", "3", 4, 5, 2), None)]);
    let v = violated(&with_watch(2, r));
    assert!(v.contains(&WatchProperty::IsCreate), "{v:?}");
}

#[test]
fn an_unknown_write_a_watch_saw_extends_the_replay() {
    let mut h = with_watch(2, full());
    h.ops.push(Operation {
        id: 4,
        client: 1,
        member: Some(2),
        invoke_ns: 60 * MS,
        complete_ns: 90 * MS,
        request: put("k/c", "4"),
        outcome: Outcome::Unknown("timeout".into()),
    });
    let c4 = kv("k/c", "4", 6, 6, 1);
    h.watches[0].responses.push(events(vec![put_ev(c4, None)]));
    assert_eq!(violated(&h), vec![]);
    // A revision-6 event that no write of the history can make.
    let mut bad = h.clone();
    bad.watches[0].responses.pop();
    bad.watches[0]
        .responses
        .push(events(vec![put_ev(kv("k/c", "nobody", 6, 6, 1), None)]));
    assert_eq!(violated(&bad), vec![WatchProperty::Reliable]);
}

#[test]
fn unknown_deletes_are_placed_where_the_watch_saw_them() {
    // Two unknown deletes (of a and of b) after b=3; the watch saw b deleted at 6, a at 7.
    let mut h = with_watch(2, vec![]);
    h.ops[2] = Operation {
        request: put("k/z", "z"),
        outcome: put_ok(4),
        ..h.ops[2].clone()
    };
    for (id, key) in [(4u64, "k/a"), (5, "k/b")] {
        h.ops.push(Operation {
            id,
            client: id,
            member: Some(1),
            invoke_ns: 60 * MS,
            complete_ns: 90 * MS,
            request: delete(key),
            outcome: Outcome::Unknown("timeout".into()),
        });
    }
    // A read at revision 7 fixes that both deletes happened.
    h.ops.push(Operation {
        id: 6,
        client: 0,
        member: Some(1),
        invoke_ns: 100 * MS,
        complete_ns: 105 * MS,
        request: Request::Range(RangeRequest {
            key: b"k/a".to_vec(),
            ..Default::default()
        }),
        outcome: Outcome::Ok(Response::Range(RangeResponse {
            header: hdr(7),
            kvs: vec![],
            more: false,
            count: 0,
        })),
    });
    let z = kv("k/z", "z", 4, 4, 1);
    h.watches[0].responses = vec![
        created(7),
        events(vec![put_ev(a1(), None)]),
        events(vec![put_ev(a2(), Some(a1()))]),
        events(vec![put_ev(z, None)]),
        events(vec![put_ev(b3(), None)]),
        events(vec![del_ev("k/b", 6, Some(b3()))]),
        events(vec![del_ev("k/a", 7, Some(a2()))]),
    ];
    assert_eq!(violated(&h), vec![]);
}

/// Two unknown puts of one value could each have made revision 6 (a current read fixes that
/// one did); only the watch tells which: its event shows no lease. The search tries the newer
/// one first, which carries a lease; with the watch's events as facts it places the other one,
/// and the watch checks pass (before, the finding against the leased write was "unknown").
fn two_unknown_puts_and_a_watch(event_lease: i64) -> History {
    let mut h = with_watch(2, vec![]);
    let grant = Request::LeaseGrant(LeaseGrantRequest {
        ttl_seconds: 7200,
        id: 7,
    });
    let grant_ok = Outcome::Ok(Response::LeaseGrant(LeaseGrantResponse {
        header: hdr(5),
        id: 7,
        ttl_seconds: 7200,
    }));
    let leased = Request::Put(PutRequest {
        key: b"k/c".to_vec(),
        value: b"same".to_vec(),
        lease: 7,
        ..PutRequest::default()
    });
    let count_c = Request::Range(RangeRequest {
        key: b"k/c".to_vec(),
        count_only: true,
        ..Default::default()
    });
    let counted = Outcome::Ok(Response::Range(RangeResponse {
        header: hdr(6),
        kvs: vec![],
        more: false,
        count: 1,
    }));
    let extra = [
        (4, 41, 42, grant, grant_ok),
        (
            5,
            50,
            0,
            put("k/c", "same"),
            Outcome::Unknown("timeout".into()),
        ),
        (6, 51, 0, leased, Outcome::Unknown("timeout".into())),
        (7, 80, 85, count_c, counted),
    ];
    for (id, a, b, request, outcome) in extra {
        h.ops.push(Operation {
            id,
            client: id,
            member: Some(1),
            invoke_ns: a * MS,
            complete_ns: b * MS,
            request,
            outcome,
        });
    }
    let mut c = kv("k/c", "same", 6, 6, 1);
    c.lease = event_lease;
    let mut responses = full();
    responses.pop();
    responses.push(events(vec![put_ev(c, None)]));
    responses.push(progress(6));
    h.watches[0].responses = responses;
    h
}

#[test]
fn watch_events_decide_which_unknown_write_filled_a_revision() {
    let h = two_unknown_puts_and_a_watch(0);
    let (verdict, lin) = check_etcd_history_detailed(&h, 1_000_000);
    assert_eq!(verdict, Verdict::Linearizable);
    let lin = lin.expect("a linearization");
    assert!(!lin.watches_contradicted);
    assert!(
        lin.op_ids.contains(&5) && !lin.op_ids.contains(&6),
        "{lin:?}"
    );
    assert_eq!(violated(&h), vec![]);
}

/// A watch that no linearization agrees with (its event shows a lease no write used) is
/// wrong for certain, unknown writes or not.
#[test]
fn a_watch_no_linearization_agrees_with_is_a_definite_violation() {
    let h = two_unknown_puts_and_a_watch(99);
    let (verdict, lin) = check_etcd_history_detailed(&h, 1_000_000);
    assert_eq!(verdict, Verdict::Linearizable);
    assert!(lin.expect("a linearization").watches_contradicted);
    assert!(!violated(&h).is_empty());
}

/// A delete event at a revision only a known revoke can explain (the revoke's response does
/// not say whether it deleted keys) must not be pinned on an unknown delete, least of all one
/// invoked after that revision was observed (default seed 1336: such a pin failed a
/// linearizable run as "not linearizable").
#[test]
fn a_revoke_deletion_is_not_pinned_on_a_later_unknown_delete() {
    let mut leased = kv("k/a", "1", 2, 2, 1);
    leased.lease = 5;
    let h = History {
        ops: grant_put_revoke_put_then_unknown_delete(),
        watches: vec![WatchReport {
            client: 9,
            member: Some(2),
            request: WatchCreateRequest {
                key: b"k/".to_vec(),
                range_end: b"k0".to_vec(),
                start_revision: 2,
                ..Default::default()
            },
            created_ns: 50 * MS,
            responses: vec![
                created(4),
                events(vec![put_ev(leased, None)]),
                events(vec![del_ev("k/a", 3, None)]),
                events(vec![put_ev(kv("k/a", "2", 4, 4, 1), None)]),
                events(vec![del_ev("k/a", 5, None)]),
                progress(5),
            ],
        }],
    };
    assert_eq!(violated(&h), vec![]);
}

/// Lease 5 granted, "k/a" put with it (revision 2), the lease revoked (3: the key goes), "k/a"
/// put again (4), an unknown delete of it invoked at 100 ms, and a read at revision 5 that
/// finds it gone.
fn grant_put_revoke_put_then_unknown_delete() -> Vec<Operation> {
    let mut put_leased = put("k/a", "1");
    if let Request::Put(p) = &mut put_leased {
        p.lease = 5;
    }
    let list: Vec<(u64, u64, Request, Outcome)> = vec![
        (
            0,
            5,
            Request::LeaseGrant(LeaseGrantRequest {
                ttl_seconds: 7200,
                id: 5,
            }),
            Outcome::Ok(Response::LeaseGrant(LeaseGrantResponse {
                header: hdr(1),
                id: 5,
                ttl_seconds: 7200,
            })),
        ),
        (10, 15, put_leased, put_ok(2)),
        (
            20,
            25,
            Request::LeaseRevoke(LeaseRevokeRequest { id: 5 }),
            Outcome::Ok(Response::LeaseRevoke(LeaseRevokeResponse {
                header: hdr(3),
            })),
        ),
        (30, 35, put("k/a", "2"), put_ok(4)),
        (100, 0, delete("k/a"), Outcome::Unknown("timeout".into())),
        (
            120,
            125,
            Request::Range(RangeRequest {
                key: b"k/a".to_vec(),
                ..Default::default()
            }),
            Outcome::Ok(Response::Range(RangeResponse {
                header: hdr(5),
                kvs: vec![],
                more: false,
                count: 0,
            })),
        ),
    ];
    list.into_iter()
        .enumerate()
        .map(|(i, (a, b, request, outcome))| Operation {
            id: i as u64,
            client: i as u64,
            member: Some(1),
            invoke_ns: a * MS,
            complete_ns: b * MS,
            request,
            outcome,
        })
        .collect()
}

/// Four unknown puts of k/c, two of "x" and two of "y" (so no value pins its writer), any of
/// which could have made revision 6; a keys-only read at revision 6 shows the key without its
/// value, and the watch's event shows which value it was. Every observation of revision 6 must prune, not only the first one (default seed
/// 763: the keys-only read hid the watch's value, the search placed the other put, and the
/// watch checks ended "unknown").
fn keys_only_read_and_a_watch(watched_value: &str) -> History {
    let mut h = with_watch(2, vec![]);
    let keys_only = Request::Range(RangeRequest {
        key: b"k/c".to_vec(),
        keys_only: true,
        ..Default::default()
    });
    let mut shown = kv("k/c", "", 6, 6, 1);
    shown.value.clear();
    let read = Outcome::Ok(Response::Range(RangeResponse {
        header: hdr(6),
        kvs: vec![shown],
        more: false,
        count: 1,
    }));
    let extra = [
        (
            4,
            50,
            0,
            put("k/c", "x"),
            Outcome::Unknown("timeout".into()),
        ),
        (
            5,
            51,
            0,
            put("k/c", "x"),
            Outcome::Unknown("timeout".into()),
        ),
        (
            6,
            52,
            0,
            put("k/c", "y"),
            Outcome::Unknown("timeout".into()),
        ),
        (
            7,
            53,
            0,
            put("k/c", "y"),
            Outcome::Unknown("timeout".into()),
        ),
        (8, 80, 85, keys_only, read),
    ];
    for (id, a, b, request, outcome) in extra {
        h.ops.push(Operation {
            id,
            client: id,
            member: Some(1),
            invoke_ns: a * MS,
            complete_ns: b * MS,
            request,
            outcome,
        });
    }
    let mut responses = full();
    responses.pop();
    responses.push(events(vec![put_ev(
        kv("k/c", watched_value, 6, 6, 1),
        None,
    )]));
    responses.push(progress(6));
    h.watches[0].responses = responses;
    h
}

#[test]
fn every_observation_of_a_revision_prunes_not_only_the_first() {
    for (value, ids) in [("x", [4, 5]), ("y", [6, 7])] {
        let h = keys_only_read_and_a_watch(value);
        let (verdict, lin) = check_etcd_history_detailed(&h, 1_000_000);
        assert_eq!(verdict, Verdict::Linearizable);
        let lin = lin.expect("a linearization");
        assert!(!lin.watches_contradicted);
        assert!(
            ids.iter().any(|id| lin.op_ids.contains(id)),
            "watched {value}: {lin:?}"
        );
        assert_eq!(violated(&h), vec![], "watched {value}");
    }
}
