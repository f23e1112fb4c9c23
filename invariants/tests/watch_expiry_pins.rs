//! A lease expiry a watch saw, as the facts the search uses (issue 14, events seed 487):
//! unknown puts attached to a lease fill revisions no watch covered; the watch saw the
//! expiry delete some of them and not the others. The expiry's delete events pin the expiry
//! (the sole write that may delete those keys), so an unknown put the expiry did not delete
//! cannot fill the gap: its key is shown absent after the expiry and unmodified back to the
//! gap (a key observation spreads over an unmodified interval). Before, each wrong guess
//! showed only at the expiry, dozens of revisions later: the search with the watches ran out
//! of budget, the one without them placed a wrong put, and the watch checks ended unknown
//! (before this change the first test failed: "filler 14 missing", decoys 6, 7, 8 placed in
//! the gap; the second: the search with the watches ran out of `BUDGET`, so nothing showed
//! that no linearization agrees with the watches).

use faultline_api::*;
use faultline_invariants::etcd::check_etcd_history_detailed;
use faultline_invariants::history::{History, Operation, Outcome, WatchReceived, WatchReport};
use faultline_invariants::linearizability::Verdict;
use faultline_invariants::watch::{check_watches_with, WatchVerdict};

mod common;
use common::*;

const MS: u64 = 1_000_000;
const LEASE: i64 = 7;
/// Revisions 7..=9 no watch covers; the unknown puts that filled them.
const GAP: [i64; 3] = [7, 8, 9];
/// Known puts of other keys between the gap and the expiry: revisions 10..=69.
const BETWEEN: i64 = 60;
const EXPIRY_REVISION: i64 = 10 + BETWEEN;
/// Unknown puts of the gap no watch saw and the expiry did not delete (they never happened).
const DECOYS: usize = 8;
/// Search steps: far more than the search with the pins needs, far less than it needed
/// without them.
const BUDGET: u64 = 20_000;

fn leased_put(key: &str) -> Request {
    Request::Put(PutRequest {
        key: key.as_bytes().to_vec(),
        value: format!("v-{key}").into_bytes(),
        lease: LEASE,
        ..Default::default()
    })
}

fn op(
    id: u64,
    client: u64,
    at_ms: u64,
    done_ms: u64,
    request: Request,
    outcome: Outcome,
) -> Operation {
    Operation {
        id,
        client,
        member: Some(1),
        invoke_ns: at_ms * MS,
        complete_ns: done_ms * MS,
        request,
        outcome,
    }
}

fn leased_kv(key: &str, rev: i64) -> KeyValue {
    let mut kv = kv(key, &format!("v-{key}"), rev, rev, 1);
    kv.lease = LEASE;
    kv
}

fn received(rev: i64, created: bool, events: Vec<Event>) -> WatchReceived {
    WatchReceived {
        at_ns: 2_000 * MS,
        response: WatchResponse {
            header: hdr(rev),
            created,
            events,
            ..Default::default()
        },
    }
}

fn watch(start_revision: i64, responses: Vec<WatchReceived>) -> WatchReport {
    WatchReport {
        client: 90 + start_revision as u64,
        member: Some(1),
        request: WatchCreateRequest {
            key: b"k/".to_vec(),
            range_end: b"k0".to_vec(),
            start_revision,
            ..Default::default()
        },
        created_ns: MS,
        responses,
    }
}

/// Lease 7 (TTL 1 s) granted at revision 1; known puts k/a0..k/a4 with it at 2..=6; unknown
/// puts with it: `DECOYS` decoys first (k/d*), then the real fillers of the gap (k/r0..k/r2);
/// known puts of j/* (no lease) at 10..=69; the lease expires at 70, deleting k/a* and the
/// fillers `deleted_fillers` (the watch from 10 sees it); a read at 70 shows no key under k/.
/// One watch covers 1..=6, the other 10..=70.
fn history(deleted_fillers: usize) -> History {
    let mut ops = vec![op(
        0,
        0,
        0,
        1,
        Request::LeaseGrant(LeaseGrantRequest {
            ttl_seconds: 1,
            id: LEASE,
        }),
        Outcome::Ok(Response::LeaseGrant(LeaseGrantResponse {
            header: hdr(1),
            id: LEASE,
            ttl_seconds: 1,
        })),
    )];
    let mut put_events = Vec::new();
    for i in 0..5 {
        let key = format!("k/a{i}");
        let rev = 2 + i as i64;
        ops.push(op(
            ops.len() as u64,
            0,
            10 * rev as u64,
            10 * rev as u64 + 5,
            leased_put(&key),
            put_ok(rev),
        ));
        put_events.push(Event {
            kind: EventType::Put,
            kv: leased_kv(&key, rev),
            prev_kv: None,
        });
    }
    let unknown = |ops: &mut Vec<Operation>, key: String| {
        let id = ops.len() as u64;
        ops.push(op(
            id,
            id,
            70,
            0,
            leased_put(&key),
            Outcome::Unknown("timeout".into()),
        ));
    };
    for i in 0..DECOYS {
        unknown(&mut ops, format!("k/d{i}"));
    }
    for i in 0..GAP.len() {
        unknown(&mut ops, format!("k/r{i}"));
    }
    for i in 0..BETWEEN {
        let rev = 10 + i;
        let at = 200 + 10 * i as u64;
        ops.push(op(
            ops.len() as u64,
            0,
            at,
            at + 5,
            put(&format!("j/{i}"), "x"),
            put_ok(rev),
        ));
    }
    let read = Request::Range(RangeRequest {
        key: b"k/".to_vec(),
        range_end: b"k0".to_vec(),
        ..Default::default()
    });
    let none = Outcome::Ok(Response::Range(RangeResponse {
        header: hdr(EXPIRY_REVISION),
        kvs: vec![],
        more: false,
        count: 0,
    }));
    ops.push(op(ops.len() as u64, 0, 1_500, 1_505, read, none));
    let deleted: Vec<Event> = (0..5)
        .map(|i| format!("k/a{i}"))
        .chain((0..deleted_fillers).map(|i| format!("k/r{i}")))
        .map(|key| Event {
            kind: EventType::Delete,
            kv: KeyValue {
                key: key.into_bytes(),
                mod_revision: EXPIRY_REVISION,
                ..Default::default()
            },
            prev_kv: None,
        })
        .collect();
    let mut before: Vec<WatchReceived> = vec![received(1, true, vec![])];
    before.extend(
        put_events
            .into_iter()
            .map(|e| received(e.kv.mod_revision, false, vec![e])),
    );
    let after = vec![
        received(9, true, vec![]),
        received(EXPIRY_REVISION, false, deleted),
    ];
    History {
        ops,
        watches: vec![watch(1, before), watch(10, after)],
    }
}

fn op_ids_of(h: &History, prefix: &str) -> Vec<u64> {
    h.ops
        .iter()
        .filter(|o| matches!(&o.request, Request::Put(p) if p.key.starts_with(prefix.as_bytes())))
        .map(|o| o.id)
        .collect()
}

#[test]
fn an_expiry_a_watch_saw_decides_which_unknown_puts_filled_an_unwatched_gap() {
    let h = history(GAP.len());
    let (verdict, lin) = check_etcd_history_detailed(&h, BUDGET);
    assert_eq!(verdict, Verdict::Linearizable);
    let lin = lin.expect("a linearization");
    assert!(!lin.watches_contradicted);
    for id in op_ids_of(&h, "k/r") {
        assert!(lin.op_ids.contains(&id), "filler {id} missing: {lin:?}");
    }
    for id in op_ids_of(&h, "k/d") {
        assert!(!lin.op_ids.contains(&id), "decoy {id} placed: {lin:?}");
    }
    assert_eq!(check_watches_with(&h, &lin), WatchVerdict::Ok);
}

#[test]
fn an_expiry_that_deleted_too_few_puts_for_the_gap_is_still_a_watch_violation() {
    // The watch saw the expiry delete two fillers: the third revision of the gap can only be
    // a decoy, which the expiry would have deleted too. No linearization agrees with the
    // watches; the KV history alone is linearizable.
    let h = history(GAP.len() - 1);
    let (verdict, lin) = check_etcd_history_detailed(&h, BUDGET);
    assert_eq!(verdict, Verdict::Linearizable);
    let lin = lin.expect("a linearization");
    assert!(lin.watches_contradicted, "{lin:?}");
    assert!(
        matches!(check_watches_with(&h, &lin), WatchVerdict::Violated(_)),
        "{:?}",
        check_watches_with(&h, &lin)
    );
}
