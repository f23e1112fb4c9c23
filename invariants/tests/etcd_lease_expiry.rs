//! Lease expiry in the etcd checker (`etcd::expiry`): a lease with keys expires no earlier
//! than its TTL after the last acknowledged keep-alive, and within its deadline after the last
//! keep-alive sent; TimeToLive and KeepAlive answers agree; TTLs longer than the run change
//! nothing.

mod common;

use common::{hdr, put_ok};
use faultline_api::*;
use faultline_invariants::etcd::{
    check_etcd_history_detailed, check_etcd_history_expiring, expiry_windows, LeaseExpiryBounds,
};
use faultline_invariants::history::{History, Operation, Outcome, WatchReceived, WatchReport};
use faultline_invariants::linearizability::Verdict;
use faultline_invariants::testkit::{generate_etcd_history, GenOptions};
use faultline_invariants::watch::{check_watches_with, WatchVerdict};

const MS: u64 = 1_000_000;
const BUDGET: u64 = 100_000;
const LEASE: i64 = 0x77;

/// Clocks within 10%, elections of 300 ms, checkpoints every 500 ms.
fn bounds() -> LeaseExpiryBounds {
    LeaseExpiryBounds {
        clock_rate_bound_percent: 10,
        election_ms: Some(300),
        checkpoint_interval_ms: 500,
        leader_changes_ns: vec![],
        leaderless_windows_ns: vec![],
        skewed_windows_ns: vec![],
    }
}

/// (client, invoke ms, complete ms, request, outcome).
fn history(ops: Vec<(u64, u64, u64, Request, Outcome)>) -> History {
    History {
        ops: ops
            .into_iter()
            .enumerate()
            .map(|(i, (client, a, b, request, outcome))| Operation {
                id: i as u64,
                client,
                member: Some(1),
                invoke_ns: a * MS,
                complete_ns: b * MS,
                request,
                outcome,
            })
            .collect(),
        watches: vec![],
    }
}

fn grant(ttl_seconds: i64) -> (Request, Outcome) {
    (
        Request::LeaseGrant(LeaseGrantRequest {
            ttl_seconds,
            id: LEASE,
        }),
        Outcome::Ok(Response::LeaseGrant(LeaseGrantResponse {
            header: hdr(1),
            id: LEASE,
            ttl_seconds,
        })),
    )
}

fn put_leased() -> Request {
    Request::Put(PutRequest {
        key: b"k".to_vec(),
        value: b"v".to_vec(),
        lease: LEASE,
        ..Default::default()
    })
}

fn leased_kv() -> KeyValue {
    KeyValue {
        key: b"k".to_vec(),
        create_revision: 2,
        mod_revision: 2,
        version: 1,
        value: b"v".to_vec(),
        lease: LEASE,
    }
}

fn get() -> Request {
    Request::Range(RangeRequest {
        key: b"k".to_vec(),
        ..Default::default()
    })
}

fn range_ok(revision: i64, kvs: Vec<KeyValue>) -> Outcome {
    Outcome::Ok(Response::Range(RangeResponse {
        header: hdr(revision),
        count: kvs.len() as i64,
        kvs,
        more: false,
    }))
}

fn keep_alive(ttl_seconds: i64) -> (Request, Outcome) {
    (
        Request::LeaseKeepAlive(LeaseKeepAliveRequest { id: LEASE }),
        Outcome::Ok(Response::LeaseKeepAlive(LeaseKeepAliveResponse {
            header: hdr(2),
            id: LEASE,
            ttl_seconds,
        })),
    )
}

fn time_to_live(revision: i64, ttl_seconds: i64, granted: i64) -> (Request, Outcome) {
    (
        Request::LeaseTimeToLive(LeaseTimeToLiveRequest {
            id: LEASE,
            keys: false,
        }),
        Outcome::Ok(Response::LeaseTimeToLive(LeaseTimeToLiveResponse {
            header: hdr(revision),
            id: LEASE,
            ttl_seconds,
            granted_ttl_seconds: granted,
            keys: vec![],
        })),
    )
}

/// A 2 s lease granted at 0 ms, key `k` put with it at 2 ms (revision 2), then `tail`.
fn leased_key_then(tail: Vec<(u64, u64, u64, Request, Outcome)>) -> History {
    let (g, g_ok) = grant(2);
    let mut ops = vec![(0, 0, 1, g, g_ok), (0, 2, 3, put_leased(), put_ok(2))];
    ops.extend(tail);
    history(ops)
}

fn verdict(h: &History, b: &LeaseExpiryBounds) -> Verdict {
    check_etcd_history_expiring(h, BUDGET, b).0
}

fn rejected(v: &Verdict) -> bool {
    matches!(v, Verdict::NotLinearizable(_))
}

#[test]
fn a_key_deleted_by_expiry_before_the_ttl_is_rejected() {
    // Gone at 500 ms: the 2 s lease cannot have expired yet (earliest 2 s / 1.1 = 1.82 s).
    let early = leased_key_then(vec![(1, 500, 501, get(), range_ok(3, vec![]))]);
    let v = verdict(&early, &bounds());
    assert!(rejected(&v), "{v:?}");
    // The same read after the TTL sees the expiry's delete.
    let late = leased_key_then(vec![(1, 2000, 2001, get(), range_ok(3, vec![]))]);
    assert_eq!(verdict(&late, &bounds()), Verdict::Linearizable);
}

#[test]
fn a_lease_that_outlives_its_deadline_is_rejected_only_when_the_deadline_is_enforced() {
    // Still there at 10 s: the deadline is 3 ms + 2 s / 0.9 + 300 ms / 0.9 = 2.56 s.
    let h = leased_key_then(vec![(
        1,
        10_000,
        10_001,
        get(),
        range_ok(2, vec![leased_kv()]),
    )]);
    let v = verdict(&h, &bounds());
    assert!(rejected(&v), "{v:?}");
    let text = match &v {
        Verdict::NotLinearizable(r) => r.to_string(),
        _ => unreachable!(),
    };
    assert!(text.contains("lease 0x77 expired"), "{text}");
    // Without an election time the deadline is not enforced: nothing says it must be gone.
    let unenforced = LeaseExpiryBounds {
        election_ms: None,
        ..bounds()
    };
    assert_eq!(verdict(&h, &unenforced), Verdict::Linearizable);
    assert_eq!(
        check_etcd_history_detailed(&h, BUDGET).0,
        Verdict::Linearizable
    );
    // A window with no leader (no quorum) covering the read extends the deadline past it.
    let leaderless = LeaseExpiryBounds {
        leaderless_windows_ns: vec![(1_000 * MS, 9_000 * MS)],
        ..bounds()
    };
    assert_eq!(verdict(&h, &leaderless), Verdict::Linearizable);
}

#[test]
fn keep_alives_sent_extend_the_deadline_and_acknowledged_ones_the_earliest_expiry() {
    let (k, k_ok) = keep_alive(2);
    // Kept alive at 1.5 s: present at 3.5 s (deadline 1.5 + 2.56 s), gone at 5 s.
    let h = leased_key_then(vec![
        (0, 1500, 1501, k, k_ok),
        (1, 3500, 3501, get(), range_ok(2, vec![leased_kv()])),
        (1, 5000, 5001, get(), range_ok(3, vec![])),
    ]);
    assert_eq!(verdict(&h, &bounds()), Verdict::Linearizable);
    // Gone at 2.5 s: the acknowledged keep-alive at 1.5 s kept it until at least 3.3 s.
    let (k, k_ok) = keep_alive(2);
    let early = leased_key_then(vec![
        (0, 1500, 1501, k, k_ok),
        (1, 2500, 2501, get(), range_ok(3, vec![])),
    ]);
    assert!(rejected(&verdict(&early, &bounds())));
}

#[test]
fn a_lease_kept_alive_only_by_leader_changes_is_rejected() {
    // Without checkpoints every new leader restarts the 2 s lease: a leader every 1.5 s keeps
    // it forever (etcd #9888). With checkpoints each change may add 0.5 s / 0.9 + 2 x 0.33 s.
    let changes: Vec<u64> = (1..=8).map(|i| i * 1500 * MS).collect();
    let b = LeaseExpiryBounds {
        leader_changes_ns: changes,
        ..bounds()
    };
    let h = leased_key_then(vec![(
        1,
        12_500,
        12_501,
        get(),
        range_ok(2, vec![leased_kv()]),
    )]);
    assert!(rejected(&verdict(&h, &b)));
    // What checkpoints allow: still there at 5 s, after three leader changes.
    let h = leased_key_then(vec![(
        1,
        5_000,
        5_001,
        get(),
        range_ok(2, vec![leased_kv()]),
    )]);
    assert_eq!(verdict(&h, &b), Verdict::Linearizable);
    assert!(
        rejected(&verdict(&h, &bounds())),
        "without the changes, 5 s is too late"
    );
}

#[test]
fn a_clock_skew_beyond_the_bound_weakens_the_check() {
    let early = leased_key_then(vec![(1, 500, 501, get(), range_ok(3, vec![]))]);
    let b = LeaseExpiryBounds {
        skewed_windows_ns: vec![(0, 1_000 * MS)],
        ..bounds()
    };
    assert_eq!(verdict(&early, &b), Verdict::Linearizable);
    assert_eq!(expiry_windows(&early, &b).weakened, vec![LEASE]);
}

fn watch_of_k(responses: Vec<WatchReceived>) -> WatchReport {
    WatchReport {
        client: 9,
        member: Some(1),
        request: WatchCreateRequest {
            key: b"k".to_vec(),
            start_revision: 1,
            ..Default::default()
        },
        created_ns: 0,
        responses,
    }
}

fn received(at_ms: u64, revision: i64, created: bool, events: Vec<Event>) -> WatchReceived {
    WatchReceived {
        at_ns: at_ms * MS,
        response: WatchResponse {
            header: hdr(revision),
            created,
            events,
            ..Default::default()
        },
    }
}

#[test]
fn a_watch_sees_the_expiry_delete_at_its_revision() {
    let mut h = leased_key_then(vec![(1, 3000, 3001, get(), range_ok(3, vec![]))]);
    let delete = Event {
        kind: EventType::Delete,
        kv: KeyValue {
            key: b"k".to_vec(),
            mod_revision: 3,
            ..Default::default()
        },
        prev_kv: None,
    };
    let put = Event {
        kind: EventType::Put,
        kv: leased_kv(),
        prev_kv: None,
    };
    h.watches = vec![watch_of_k(vec![
        received(1, 1, true, vec![]),
        received(4, 2, false, vec![put]),
        received(2_500, 3, false, vec![delete]),
    ])];
    let (v, lin) = check_etcd_history_expiring(&h, BUDGET, &bounds());
    assert_eq!(v, Verdict::Linearizable);
    let lin = lin.expect("a linearization");
    assert_eq!(lin.expiries.len(), 1, "{lin:?}");
    assert!(lin.op_ids.contains(&lin.expiries[0].op_id), "{lin:?}");
    assert_eq!(check_watches_with(&h, &lin), WatchVerdict::Ok);
    // A watch that misses the delete breaks reliability.
    let mut missed = h.clone();
    missed.watches[0].responses.pop();
    missed.watches[0]
        .responses
        .push(received(3_500, 4, false, vec![]));
    let (v, lin) = check_etcd_history_expiring(&missed, BUDGET, &bounds());
    assert_eq!(v, Verdict::Linearizable);
    let w = check_watches_with(&missed, &lin.expect("a linearization"));
    assert!(matches!(w, WatchVerdict::Violated(_)), "{w:?}");
}

#[test]
fn time_to_live_and_keep_alive_answers_must_agree_with_the_windows() {
    let cases = [
        // Alive at 10 s, after the 2.56 s deadline.
        time_to_live(2, 1, 2),
        // A remaining TTL above the granted one.
        time_to_live(2, 5, 5),
        // Another granted TTL than the grant's.
        time_to_live(2, 1, 3),
    ];
    let at = [10_000, 100, 100];
    for ((req, out), at) in cases.into_iter().zip(at) {
        let h = leased_key_then(vec![(1, at, at + 1, req, out)]);
        assert!(rejected(&verdict(&h, &bounds())), "{h:?}");
    }
    // Gone (KeepAlive answers TTL 0; TimeToLive -1) before it may expire.
    let (k, k_gone) = keep_alive(0);
    let h = leased_key_then(vec![(1, 500, 501, k, k_gone)]);
    assert!(rejected(&verdict(&h, &bounds())));
    let (t, t_gone) = time_to_live(2, -1, 0);
    let h = leased_key_then(vec![(1, 500, 501, t, t_gone)]);
    assert!(rejected(&verdict(&h, &bounds())));
    // The same answers within the windows pass; a read after "gone" sees the key deleted.
    let (t, t_ok) = time_to_live(2, 1, 2);
    let (t2, t_gone) = time_to_live(3, -1, 0);
    let h = leased_key_then(vec![
        (1, 100, 101, t, t_ok),
        (1, 2_000, 2_001, t2, t_gone),
        (1, 2_100, 2_101, get(), range_ok(3, vec![])),
    ]);
    assert_eq!(verdict(&h, &bounds()), Verdict::Linearizable);
    // Gone by 2 s means the key is gone by then too: a read after it that shows it fails.
    let (t2, t_gone) = time_to_live(3, -1, 0);
    let h = leased_key_then(vec![
        (1, 2_000, 2_001, t2, t_gone),
        (1, 2_100, 2_101, get(), range_ok(2, vec![leased_kv()])),
    ]);
    assert!(rejected(&verdict(&h, &bounds())));
}

#[test]
fn a_client_revoke_explains_a_lease_gone_early() {
    let h = leased_key_then(vec![
        (
            1,
            100,
            101,
            Request::LeaseRevoke(LeaseRevokeRequest { id: LEASE }),
            Outcome::Ok(Response::LeaseRevoke(LeaseRevokeResponse {
                header: hdr(3),
            })),
        ),
        (1, 500, 501, get(), range_ok(3, vec![])),
    ]);
    assert_eq!(verdict(&h, &bounds()), Verdict::Linearizable);
}

#[test]
fn long_ttls_change_nothing() {
    for seed in 0..20 {
        let o = GenOptions {
            seed,
            ops: 300,
            ..GenOptions::benchmark(seed)
        };
        let h = generate_etcd_history(&o);
        assert!(
            expiry_windows(&h, &bounds()).windows.is_empty(),
            "7200 s leases never expire within a run: {:?}",
            expiry_windows(&h, &bounds()).windows.first()
        );
        assert_eq!(
            check_etcd_history_expiring(&h, 1_000_000, &bounds()),
            check_etcd_history_detailed(&h, 1_000_000),
            "seed {seed}"
        );
    }
}

#[test]
fn generated_short_lease_histories_expire_within_their_windows() {
    use faultline_invariants::testkit::generate_short_lease_history;
    let mut required = 0;
    for seed in 0..6 {
        let o = GenOptions {
            seed,
            ops: 2_000,
            latency_ns: 20 * MS,
            ..GenOptions::benchmark(seed)
        };
        let h = generate_short_lease_history(&o, 1);
        required += expiry_windows(&h, &bounds())
            .windows
            .iter()
            .filter(|w| w.required)
            .count();
        let (v, lin) = check_etcd_history_expiring(&h, 2_000_000, &bounds());
        assert_eq!(v, Verdict::Linearizable, "seed {seed}");
        assert!(!lin.expect("a linearization").expiries.is_empty());
    }
    assert!(required > 0, "some leases must have expired by a deadline");
}
