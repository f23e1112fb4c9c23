//! faultline-server driven by the `etcd-client` crate against three processes: put, get,
//! txn and leases through any member, and a watch that survives the restart of the member it
//! is connected to. Real build only: `cargo real-test -p faultline-server`.
#![cfg(not(madsim))]

mod common;

use std::time::Duration;

use common::Cluster;
use etcd_client::{
    Client, Compare, CompareOp, EventType, GetOptions, LeaseTimeToLiveOptions, PutOptions, Txn,
    TxnOp, TxnOpResponse, WatchOptions, WatchStream,
};

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    real_tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(future)
}

async fn connect(cluster: &Cluster, members: &[usize]) -> Client {
    let endpoints: Vec<String> = members
        .iter()
        .map(|&i| cluster.members[i].client_url.clone())
        .collect();
    Client::connect(endpoints, None)
        .await
        .expect("connect to the cluster")
}

/// `(key, value)` of each key under `prefix`, in key order.
async fn get_prefix(client: &mut Client, prefix: &str) -> Vec<(String, String)> {
    let response = client
        .get(prefix, Some(GetOptions::new().with_prefix()))
        .await
        .expect("get");
    response
        .kvs()
        .iter()
        .map(|kv| {
            let key = kv.key_str().expect("utf-8 key").to_string();
            (key, kv.value_str().expect("utf-8 value").to_string())
        })
        .collect()
}

#[test]
fn put_get_txn_and_leases_through_any_member() {
    let cluster = Cluster::start(3);
    block_on(async {
        let mut client = connect(&cluster, &[0, 1, 2]).await;
        let first = client.put("k/a", "1", None).await.expect("put");
        let second = client.put("k/b", "2", None).await.expect("put");
        let revision =
            |header: Option<&etcd_client::ResponseHeader>| header.expect("header").revision();
        assert_eq!(revision(second.header()), revision(first.header()) + 1);
        assert_eq!(
            get_prefix(&mut client, "k/").await,
            [("k/a".into(), "1".into()), ("k/b".into(), "2".into())]
        );

        // A compare-and-swap that holds, then one that does not.
        let swap = |expected: &str, new: &str| {
            Txn::new()
                .when([Compare::value("k/a", CompareOp::Equal, expected)])
                .and_then([TxnOp::put("k/a", new, None)])
                .or_else([TxnOp::get("k/a", None)])
        };
        let done = client.txn(swap("1", "10")).await.expect("txn");
        assert!(done.succeeded());
        let refused = client.txn(swap("1", "11")).await.expect("txn");
        assert!(!refused.succeeded());
        let responses = refused.op_responses();
        let [TxnOpResponse::Get(current)] = responses.as_slice() else {
            panic!("the else branch's get: {responses:?}");
        };
        assert_eq!(current.kvs()[0].value_str().expect("utf-8"), "10");

        // A lease: granted, attached, kept alive, inspected, revoked with its key.
        let lease = client.lease_grant(60, None).await.expect("grant");
        assert_eq!(lease.ttl(), 60);
        let attach = PutOptions::new().with_lease(lease.id());
        client
            .put("k/leased", "x", Some(attach))
            .await
            .expect("put");
        let (mut keeper, mut keep_alives) = client.lease_keep_alive(lease.id()).await.expect("ka");
        keeper.keep_alive().await.expect("send a keep-alive");
        let answer = keep_alives
            .message()
            .await
            .expect("keep-alive")
            .expect("an answer");
        assert_eq!((answer.id(), answer.ttl()), (lease.id(), 60));
        let with_keys = Some(LeaseTimeToLiveOptions::new().with_keys());
        let alive = client
            .lease_time_to_live(lease.id(), with_keys)
            .await
            .expect("ttl");
        assert_eq!(alive.granted_ttl(), 60);
        assert_eq!(alive.keys(), [b"k/leased".to_vec()]);
        let leases = client.leases().await.expect("leases");
        assert_eq!(
            leases.leases().iter().map(|l| l.id()).collect::<Vec<_>>(),
            [lease.id()]
        );
        client.lease_revoke(lease.id()).await.expect("revoke");
        let names: Vec<String> = get_prefix(&mut client, "k/")
            .await
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(names, ["k/a", "k/b"]);
    });
}

/// A put seen by the writer: key, value and the revision it was applied at.
type Write = (String, String, i64);

/// Put `w/<n>` for each `n` through `client`; etcd acknowledges each at its revision.
async fn write(client: &mut Client, numbers: std::ops::Range<u32>) -> Vec<Write> {
    let mut writes = Vec::new();
    for n in numbers {
        let (key, value) = (format!("w/{n:02}"), format!("v{n}"));
        let response = client
            .put(key.as_str(), value.as_str(), None)
            .await
            .expect("put");
        writes.push((key, value, response.header().expect("header").revision()));
    }
    writes
}

/// Read the watch until it has `count` events or the stream fails (its member died);
/// returns whether the stream is still up. A bound on each wait keeps a lost event from
/// hanging the test; it is not a timing assertion.
async fn read_events(stream: &mut WatchStream, seen: &mut Vec<Write>, count: usize) -> bool {
    while seen.len() < count {
        let message = real_tokio::time::timeout(Duration::from_secs(30), stream.message()).await;
        let response = match message.expect("the watch neither answered nor failed") {
            Ok(Some(response)) => response,
            Ok(None) | Err(_) => return false,
        };
        assert!(
            !response.canceled(),
            "canceled: {}",
            response.cancel_reason()
        );
        for event in response.events() {
            assert_eq!(event.event_type(), EventType::Put);
            let kv = event.kv().expect("a put carries its key-value");
            let key = kv.key_str().expect("utf-8").to_string();
            seen.push((
                key,
                kv.value_str().expect("utf-8").to_string(),
                kv.mod_revision(),
            ));
        }
    }
    true
}

/// Watch `w/` through `member` from `revision` on.
async fn watch_from(cluster: &Cluster, member: usize, revision: i64) -> WatchStream {
    let mut client = connect(cluster, &[member]).await;
    let options = WatchOptions::new()
        .with_prefix()
        .with_start_revision(revision);
    client.watch("w/", Some(options)).await.expect("watch")
}

/// The watch's member dies twice (once for good, once to be restarted); each time the client
/// resumes on another member, then on the restarted one, from its last revision + 1. It must
/// see every write exactly once, in revision order.
#[test]
fn a_watch_resumes_across_member_restarts_without_loss_or_duplicates() {
    let mut cluster = Cluster::start(3);
    block_on(async {
        // Member 2 is never stopped: the writes go through it.
        let mut writer = connect(&cluster, &[2]).await;
        let mut seen = Vec::new();
        // The empty key space is at revision 1: watch from the first write on.
        let mut watch = watch_from(&cluster, 0, 2).await;
        let mut writes = write(&mut writer, 0..5).await;
        assert!(read_events(&mut watch, &mut seen, 5).await);

        // The watch's member is killed; writes go on while the client has no member.
        cluster.members[0].kill();
        cluster.wait_healthy(2);
        writes.extend(write(&mut writer, 5..10).await);
        assert!(
            !read_events(&mut watch, &mut seen, 10).await,
            "the stream outlived its member"
        );
        assert_eq!(seen.len(), 5, "events from a killed member: {seen:?}");
        let resume_at = seen.last().expect("events").2 + 1;
        let mut watch = watch_from(&cluster, 1, resume_at).await;
        assert!(read_events(&mut watch, &mut seen, 10).await);

        // Member 0 comes back; the watch's member (1) is killed; the client resumes on 0.
        cluster.restart(0);
        cluster.members[1].kill();
        cluster.wait_healthy(2);
        writes.extend(write(&mut writer, 10..15).await);
        assert!(
            !read_events(&mut watch, &mut seen, 15).await,
            "the stream outlived its member"
        );
        assert_eq!(seen.len(), 10, "events from a killed member: {seen:?}");
        let resume_at = seen.last().expect("events").2 + 1;
        let mut watch = watch_from(&cluster, 0, resume_at).await;
        // Catch-up (10..15, written before the resume) and then live events (15..20).
        assert!(read_events(&mut watch, &mut seen, 15).await);
        writes.extend(write(&mut writer, 15..20).await);
        assert!(read_events(&mut watch, &mut seen, 20).await);
        assert_eq!(seen, writes);
        let revisions: Vec<i64> = writes.iter().map(|w| w.2).collect();
        assert_eq!(revisions, (2..22).collect::<Vec<i64>>());
    });
}
