//! SIGKILL under load: three faultline-server processes, several concurrent `etcd-client`
//! writers putting unique keys through every member, one member SIGKILLed in the middle of
//! the writes (a follower in one test, the leader in the other). The cluster must keep
//! acknowledging writes while the member is down; restarted, the member must catch up; and
//! every acknowledged put must then be on every member with its value and its revision, with
//! the members' HashKV equal. Counts and times are printed (`-- --nocapture`), not asserted.
//!
//! Real build only: `cargo real-test -p faultline-server --test sigkill_under_load`.
#![cfg(not(madsim))]

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::Cluster;
use etcd_client::{Client, ConnectOptions, GetOptions};

/// Concurrent writers, each with its own client (its own connections to all three members).
const WRITERS: usize = 8;
/// Acknowledged puts before the kill, while the member is down, and after its restart.
const ACKS_PER_PHASE: u64 = 300;

/// An acknowledged put: key -> (value, the revision the put was acknowledged at).
type Acked = BTreeMap<String, (String, i64)>;

#[derive(Default)]
struct Tally {
    acked: Mutex<Acked>,
    acked_count: AtomicU64,
    failed_count: AtomicU64,
    stop: AtomicBool,
}

/// A client of `urls`, with bounds on connecting and on each call so that a request to a
/// killed member fails (and the writer goes on) instead of hanging.
async fn connect(urls: &[String]) -> Client {
    let options = ConnectOptions::new()
        .with_connect_timeout(Duration::from_secs(1))
        .with_timeout(Duration::from_secs(5));
    Client::connect(urls, Some(options))
        .await
        .expect("connect to the cluster")
}

/// Put `w<writer>/<n>` with a value naming both, until told to stop. A failed put's outcome
/// is unknown (it may or may not have been applied); its key is never written again.
async fn writer(writer: usize, urls: Vec<String>, tally: Arc<Tally>) {
    let mut client = connect(&urls).await;
    let mut n = 0u64;
    while !tally.stop.load(Ordering::Relaxed) {
        let key = format!("w{writer}/{n:06}");
        let value = format!("value-{writer}-{n}-{}", "x".repeat(32));
        match client.put(key.as_str(), value.as_str(), None).await {
            Ok(response) => {
                let revision = response.header().expect("a put has a header").revision();
                tally
                    .acked
                    .lock()
                    .expect("acked lock")
                    .insert(key, (value, revision));
                tally.acked_count.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {
                tally.failed_count.fetch_add(1, Ordering::Relaxed);
                real_tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        n += 1;
    }
}

/// Wait until `count` more puts are acknowledged than `from`; a bound keeps a stalled
/// cluster from hanging the test (it fails, naming the phase).
async fn wait_for_acks(tally: &Tally, from: u64, count: u64, phase: &str) -> u64 {
    for _ in 0..1200 {
        let now = tally.acked_count.load(Ordering::Relaxed);
        if now >= from + count {
            return now;
        }
        real_tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "{phase}: only {} puts acknowledged of {count} (failed so far: {})",
        tally.acked_count.load(Ordering::Relaxed) - from,
        tally.failed_count.load(Ordering::Relaxed)
    );
}

/// The index of the member that every member names as leader.
async fn leader_index(cluster: &Cluster) -> usize {
    let mut ids = Vec::new();
    for member in &cluster.members {
        let mut client = connect(std::slice::from_ref(&member.client_url)).await;
        let status = client.status().await.expect("status");
        ids.push((
            status.header().expect("header").member_id(),
            status.leader(),
        ));
    }
    let leader = ids[0].1;
    assert!(ids.iter().all(|(_, l)| *l == leader), "leaders: {ids:?}");
    ids.iter()
        .position(|(id, _)| *id == leader)
        .expect("the leader is a member")
}

/// Every `w` key a member has (a serializable read is served from its own state; a
/// linearizable one goes through the leader's read index).
async fn read_all(url: &str, serializable: bool) -> (i64, Acked) {
    let mut client = connect(&[url.to_string()]).await;
    let mut options = GetOptions::new().with_prefix();
    if serializable {
        options = options.with_serializable();
    }
    let response = client.get("w", Some(options)).await.expect("read the keys");
    let revision = response.header().expect("header").revision();
    let keys = response
        .kvs()
        .iter()
        .map(|kv| {
            let key = kv.key_str().expect("utf-8 key").to_string();
            let value = kv.value_str().expect("utf-8 value").to_string();
            (key, (value, kv.mod_revision()))
        })
        .collect();
    (revision, keys)
}

/// Each acknowledged put is in `keys` with its value and revision; returns how many keys
/// `keys` has beyond them (puts whose client saw a failure but that were applied).
fn check_acked(acked: &Acked, keys: &Acked, reader: &str) -> usize {
    for (key, written) in acked {
        match keys.get(key) {
            Some(found) => assert_eq!(found, written, "{reader}: {key} differs from its put"),
            None => panic!(
                "{reader}: acknowledged put of {key} at {} is lost",
                written.1
            ),
        }
    }
    keys.len() - acked.len()
}

/// Poll member `index` (serializable) until its revision reaches `revision`.
async fn wait_caught_up(url: &str, revision: i64) -> Duration {
    let started = Instant::now();
    for _ in 0..1200 {
        if read_all(url, true).await.0 >= revision {
            return started.elapsed();
        }
        real_tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{url} never reached revision {revision}");
}

#[derive(Clone, Copy, Debug)]
enum Victim {
    Follower,
    Leader,
}

fn sigkill_one_member_during_writes(victim: Victim) {
    let mut cluster = Cluster::start(3);
    let runtime = real_tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let urls: Vec<String> = cluster
            .members
            .iter()
            .map(|m| m.client_url.clone())
            .collect();
        let tally = Arc::new(Tally::default());
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                // Each writer lists the members from a different first one.
                let mut order = urls.clone();
                order.rotate_left(w % urls.len());
                real_tokio::spawn(writer(w, order, tally.clone()))
            })
            .collect();
        let leader = leader_index(&cluster).await;
        let index = match victim {
            Victim::Leader => leader,
            Victim::Follower => (leader + 1) % cluster.members.len(),
        };
        let before_kill = wait_for_acks(&tally, 0, ACKS_PER_PHASE, "before the kill").await;
        let failed_before_kill = tally.failed_count.load(Ordering::Relaxed);
        cluster.members[index].kill();
        let killed_at = Instant::now();
        let at_restart = wait_for_acks(&tally, before_kill, ACKS_PER_PHASE, "member down").await;
        let down_for = killed_at.elapsed();
        let restarting = Instant::now();
        // Blocking (etcdctl polls): the writers keep running on the other worker.
        real_tokio::task::block_in_place(|| cluster.restart(index));
        let restart_to_healthy = restarting.elapsed();
        wait_for_acks(&tally, at_restart, ACKS_PER_PHASE, "after the restart").await;
        tally.stop.store(true, Ordering::Relaxed);
        for writer in writers {
            writer.await.expect("writer task");
        }
        let acked = std::mem::take(&mut *tally.acked.lock().expect("acked lock"));
        let (final_revision, linearizable) = read_all(&urls[(index + 1) % 3], false).await;
        let catch_up = wait_caught_up(&urls[index], final_revision).await;
        let mut applied_unacked = check_acked(&acked, &linearizable, "linearizable read");
        let mut hashes = Vec::new();
        for (i, url) in urls.iter().enumerate() {
            let (_, keys) = read_all(url, true).await;
            let extra = check_acked(&acked, &keys, &format!("member {i} (serializable)"));
            assert_eq!(
                keys, linearizable,
                "member {i} differs from the linearizable read"
            );
            applied_unacked = extra;
            let client = connect(std::slice::from_ref(url)).await;
            let hash = client
                .maintenance_client()
                .hash_kv(final_revision)
                .await
                .expect("HashKV");
            hashes.push((hash.hash(), hash.compact_version()));
        }
        assert!(
            hashes.iter().all(|h| *h == hashes[0]),
            "HashKV at {final_revision} differs: {hashes:?}"
        );
        println!(
            "SIGKILL of the {victim:?} (member {index}): {WRITERS} writers, {} puts acknowledged \
             ({} before the kill, {} while it was down for {down_for:.1?}), {} failed ({} before \
             the kill), {applied_unacked} failed puts applied anyway; restart to healthy \
             {restart_to_healthy:.1?}, caught up to revision {final_revision} {catch_up:.1?} \
             after the writes stopped; HashKV {:08x} on all 3 members",
            acked.len(),
            before_kill,
            at_restart - before_kill,
            tally.failed_count.load(Ordering::Relaxed),
            failed_before_kill,
            hashes[0].0,
        );
    });
}

#[test]
fn a_follower_sigkilled_during_writes_loses_nothing_acknowledged() {
    sigkill_one_member_during_writes(Victim::Follower);
}

#[test]
fn the_leader_sigkilled_during_writes_loses_nothing_acknowledged() {
    sigkill_one_member_during_writes(Victim::Leader);
}
