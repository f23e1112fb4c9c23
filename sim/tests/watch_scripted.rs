//! Scripted watch scenarios against one real member inside madsim (no nemesis): a slow watcher
//! that falls behind compaction (etcd-semantics.md §6), and fragments of a large revision.
#![cfg(madsim)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use faultline_api::{
    CompactionRequest, PutRequest, Request, RequestOp, Response, Revision, TxnRequest,
    WatchCreateRequest, WatchResponse,
};
use faultline_node::{
    run_member, ClientCall, NoObserver, NodeConfig, WatchBatch, WatchCall, WatchStreamError,
};
use faultline_storage::MemDisk;
use madsim::net::Endpoint;
use madsim::runtime::{Handle, Runtime};

const MEMBER: &str = "10.0.0.1:2379";

fn config(slow_backlog: usize, max_response_bytes: usize) -> NodeConfig {
    let addr: SocketAddr = MEMBER.parse().unwrap();
    NodeConfig {
        id: 1,
        members: BTreeMap::from([(1, addr)]),
        initial_cluster_state: faultline_node::InitialClusterState::New,
        attributes: faultline_node::Attributes {
            name: "member-1".into(),
            client_urls: vec![format!("http://{MEMBER}")],
        },
        tick_interval_ms: 10,
        election_timeout_ticks: 10,
        heartbeat_interval_ticks: 1,
        pre_vote: true,
        check_quorum: true,
        max_entries_per_append: 64,
        request_timeout_ms: 1_000,
        peer_timeout_ms: 100,
        rng_seed: 7,
        watch_progress_notify_interval_ms: 1_000_000,
        watch_poll_timeout_ms: 200,
        watch_slow_backlog_responses: slow_backlog,
        max_watch_response_bytes: max_response_bytes,
        snapshot_threshold_entries: 100,
        snapshot_catch_up_entries: 20,
        wal_segment_size_bytes: 64 << 10,
        lease_checkpoint_interval_ms: 2_000,
        canary: None,
        buggify: faultline_node::Buggify::default(),
    }
}

/// Run `script` on a client node next to one member started with `config`.
fn with_member<F, Fut>(config: NodeConfig, script: F)
where
    F: FnOnce(Endpoint) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let runtime = Runtime::with_seed_and_config(1, madsim::Config::default());
    runtime.block_on(async move {
        let handle = Handle::current();
        let disk = Arc::new(Mutex::new(MemDisk::new()));
        handle
            .create_node()
            .name("member-1")
            .ip(MEMBER.parse::<SocketAddr>().unwrap().ip())
            .init(move || {
                let config = config.clone();
                let disk: Box<dyn faultline_storage::Disk + Send> = Box::new(disk.clone());
                async move {
                    run_member(config, disk, Arc::new(NoObserver)).await;
                }
            })
            .build();
        let client = handle
            .create_node()
            .name("client")
            .ip("10.0.0.9".parse().unwrap())
            .build();
        client
            .spawn(async move {
                let endpoint = Endpoint::bind("10.0.0.9:4000").await.unwrap();
                script(endpoint).await;
            })
            .await
            .unwrap();
    });
}

async fn call(endpoint: &Endpoint, request: Request) -> Response {
    // The member elects itself within a few election timeouts; retry until it serves.
    for _ in 0..100 {
        let call = ClientCall {
            request: request.clone(),
        };
        match endpoint
            .call_timeout(MEMBER.parse().unwrap(), call, Duration::from_secs(2))
            .await
        {
            Ok(Ok(response)) => return response,
            _ => madsim::time::sleep(Duration::from_millis(100)).await,
        }
    }
    panic!("the member never served {request:?}");
}

async fn put(endpoint: &Endpoint, key: &str, value: &[u8]) -> Revision {
    let request = Request::Put(PutRequest {
        key: key.as_bytes().to_vec(),
        value: value.to_vec(),
        ..PutRequest::default()
    });
    call(endpoint, request).await.header().revision
}

async fn watch(endpoint: &Endpoint, call: WatchCall) -> Result<WatchBatch, WatchStreamError> {
    endpoint
        .call_timeout(MEMBER.parse().unwrap(), call, Duration::from_secs(2))
        .await
        .expect("the member answers")
}

fn prefix_watch(start_revision: Revision, fragment: bool) -> WatchCreateRequest {
    WatchCreateRequest {
        key: b"k/".to_vec(),
        range_end: b"k0".to_vec(),
        start_revision,
        fragment,
        ..WatchCreateRequest::default()
    }
}

/// Poll a stream (acknowledging everything up to `*last_seq`) until `done` says so.
async fn poll_until(
    endpoint: &Endpoint,
    stream: u64,
    last_seq: &mut u64,
    got: &mut Vec<WatchResponse>,
    done: impl Fn(&[WatchResponse]) -> bool,
) {
    for _ in 0..50 {
        if done(got) {
            return;
        }
        let call = WatchCall::Poll {
            stream,
            after_seq: *last_seq,
        };
        let batch = watch(endpoint, call).await.expect("the stream lives");
        for sequenced in batch.responses {
            assert_eq!(sequenced.seq, *last_seq + 1, "no gaps, no repeats");
            *last_seq = sequenced.seq;
            got.push(sequenced.response);
        }
    }
    panic!("condition never reached; got {got:?}");
}

fn event_revisions(responses: &[WatchResponse]) -> Vec<Revision> {
    responses
        .iter()
        .flat_map(|r| &r.events)
        .map(|e| e.kv.mod_revision)
        .collect()
}

// A watcher stops polling while 20 writes and a compaction happen: its stream fills (4
// responses), it becomes a slow watcher, compaction passes its next revision, and when it
// polls again it gets what was buffered, then a cancel with compact_revision; a new watch from
// the compact revision continues exactly to the last write.
#[test]
fn slow_watcher_behind_compaction_is_canceled_and_resumes() {
    with_member(config(4, 1 << 20), |endpoint| async move {
        let first = put(&endpoint, "warmup", b"x").await;
        let opened = watch(
            &endpoint,
            WatchCall::Open {
                request: prefix_watch(0, false),
            },
        )
        .await
        .unwrap();
        let stream = opened.stream;
        let mut last_seq = 0;
        let mut got = Vec::new();
        for sequenced in opened.responses {
            last_seq = sequenced.seq;
            got.push(sequenced.response);
        }
        assert!(got[0].created);
        let mut revisions = Vec::new();
        for i in 0..20 {
            revisions.push(put(&endpoint, &format!("k/{}", i % 3), b"v").await);
        }
        assert_eq!(revisions[0], first + 1);
        let compact_at = revisions[15];
        call(
            &endpoint,
            Request::Compact(CompactionRequest {
                revision: compact_at,
                physical: false,
            }),
        )
        .await;
        // The client comes back (well within the member's idle limit) and drains the stream.
        poll_until(&endpoint, stream, &mut last_seq, &mut got, |got| {
            got.last().is_some_and(|r| r.canceled)
        })
        .await;
        // created + 3 events filled the stream; nothing was sent past the bound but the cancel
        assert_eq!(event_revisions(&got), revisions[..3].to_vec());
        let cancel = got.last().unwrap();
        assert_eq!(cancel.compact_revision, compact_at);
        assert!(cancel.events.is_empty());
        assert_eq!(got.len(), 5, "{got:?}");

        // Resume like an etcd client: from the compact revision.
        let reopened = watch(
            &endpoint,
            WatchCall::Open {
                request: prefix_watch(compact_at, false),
            },
        )
        .await
        .unwrap();
        let stream = reopened.stream;
        let mut last_seq = 0;
        let mut got = Vec::new();
        let last = *revisions.last().unwrap();
        poll_until(&endpoint, stream, &mut last_seq, &mut got, |got| {
            event_revisions(got).last() == Some(&last)
        })
        .await;
        assert!(got[0].created && !got[0].canceled);
        assert_eq!(event_revisions(&got), revisions[15..].to_vec());
    });
}

// `fragment: true`: a revision larger than the member's max_watch_response_bytes arrives in
// fragments (fragment=true on all but the last); without it, in one response.
#[test]
fn large_revision_is_fragmented_only_when_asked() {
    with_member(config(128, 450), |endpoint| async move {
        put(&endpoint, "warmup", b"x").await;
        let txn = TxnRequest {
            compare: vec![],
            success: (0..6)
                .map(|i| {
                    RequestOp::Put(PutRequest {
                        key: format!("k/{i}").into_bytes(),
                        value: vec![b'v'; 150],
                        ..PutRequest::default()
                    })
                })
                .collect(),
            failure: vec![],
        };
        let revision = call(&endpoint, Request::Txn(txn)).await.header().revision;
        for fragment in [true, false] {
            let opened = watch(
                &endpoint,
                WatchCall::Open {
                    request: prefix_watch(revision, fragment),
                },
            )
            .await
            .unwrap();
            let mut last_seq = 0;
            let mut got = Vec::new();
            poll_until(&endpoint, opened.stream, &mut last_seq, &mut got, |got| {
                got.iter().map(|r| r.events.len()).sum::<usize>() == 6
                    && got.last().is_some_and(|r| !r.fragment)
            })
            .await;
            let parts: Vec<&WatchResponse> = got.iter().filter(|r| !r.events.is_empty()).collect();
            let flags: Vec<bool> = parts.iter().map(|r| r.fragment).collect();
            if fragment {
                // ~200 bytes per event (estimate), 450 per fragment: 3 fragments of 2 events
                assert_eq!(flags, vec![true, true, false]);
            } else {
                assert_eq!(flags, vec![false]);
            }
            assert_eq!(event_revisions(&got), vec![revision; 6]);
        }
    });
}
