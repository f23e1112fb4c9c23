//! WatchHub against etcd-semantics.md §6.

use faultline_api::*;
use faultline_mvcc::*;

fn put(s: &mut KvStore, key: &str, value: &str) {
    s.apply(&Request::Put(PutRequest {
        key: key.into(),
        value: value.into(),
        ..PutRequest::default()
    }))
    .unwrap();
}

fn del(s: &mut KvStore, key: &str) {
    s.apply(&Request::DeleteRange(DeleteRangeRequest {
        key: key.into(),
        ..DeleteRangeRequest::default()
    }))
    .unwrap();
}

fn watch_req(key: &str, range_end: &str, start: Revision) -> WatchCreateRequest {
    WatchCreateRequest {
        key: key.into(),
        range_end: range_end.into(),
        start_revision: start,
        ..WatchCreateRequest::default()
    }
}

fn feed(hub: &mut WatchHub, s: &mut KvStore) -> Vec<WatchOutput> {
    let events = s.take_events();
    hub.on_events(s, &events)
}

fn revs(responses: &[WatchResponse]) -> Vec<(Revision, String)> {
    responses
        .iter()
        .flat_map(|r| r.events.iter())
        .map(|e| {
            (
                e.kv.mod_revision,
                String::from_utf8(e.kv.key.clone()).unwrap(),
            )
        })
        .collect()
}

// §6: start 0 = events after the current revision only; live events per revision.
#[test]
fn watch_from_now() {
    let mut s = KvStore::new();
    put(&mut s, "a", "1");
    let mut hub = WatchHub::new(WatchHubOptions::etcd_defaults(), &s);
    let created = hub.create(&s, 1, &watch_req("a", "", 0));
    assert_eq!(created.len(), 1);
    assert!(created[0].created && !created[0].canceled);
    assert_eq!(created[0].watch_id, 0);
    put(&mut s, "a", "2");
    put(&mut s, "b", "2");
    let out = feed(&mut hub, &mut s);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].response.header.revision, 3);
    assert_eq!(out[0].response.events[0].kv.value, b"2");
    assert!(out[0].response.events[0].prev_kv.is_none()); // not requested
}

// §6: replay from start_revision inclusive, then live; prev_kv; filters.
#[test]
fn replay_then_live_with_prev_kv_and_filters() {
    let mut s = KvStore::new();
    let mut hub = WatchHub::new(WatchHubOptions::etcd_defaults(), &s);
    put(&mut s, "a", "1"); // 2
    put(&mut s, "a", "2"); // 3
    del(&mut s, "a"); // 4
    feed(&mut hub, &mut s);
    let mut req = watch_req("a", "b", 3);
    req.prev_kv = true;
    let out = hub.create(&s, 7, &req);
    assert_eq!(out.len(), 2);
    assert_eq!(revs(&out[1..]), vec![(3, "a".into()), (4, "a".into())]);
    assert_eq!(out[1].header.revision, 4);
    assert_eq!(out[1].events[0].prev_kv.as_ref().unwrap().value, b"1");
    assert_eq!(out[1].events[1].kind, EventType::Delete);
    assert_eq!(out[1].events[1].prev_kv.as_ref().unwrap().value, b"2");
    let mut no_put = watch_req("a", "", 1);
    no_put.filters = vec![WatchFilter::NoPut];
    let out = hub.create(&s, 7, &no_put);
    assert_eq!(out[0].watch_id, 1);
    assert_eq!(revs(&out[1..]), vec![(4, "a".into())]);
    put(&mut s, "a", "3"); // 5: a create event
    let out = feed(&mut hub, &mut s);
    assert_eq!(out.len(), 1); // the NoPut watcher gets nothing
    assert_eq!(out[0].response.watch_id, 0);
    assert_eq!(out[0].response.events[0].kv.version, 1);
    assert!(out[0].response.events[0].prev_kv.is_none()); // create event
}

// §6/§7: a compacted start revision cancels with compact_revision; start == compact works and
// includes a deletion at the compact revision (etcd #18089 / #19179).
#[test]
fn compacted_start_and_compact_boundary() {
    let mut s = KvStore::new();
    let mut hub = WatchHub::new(WatchHubOptions::etcd_defaults(), &s);
    put(&mut s, "k", "2"); // 2
    put(&mut s, "k", "3"); // 3
    del(&mut s, "k"); // 4
    put(&mut s, "k", "5"); // 5
    s.apply(&Request::Compact(CompactionRequest {
        revision: 4,
        physical: true,
    }))
    .unwrap();
    feed(&mut hub, &mut s);
    let out = hub.create(&s, 1, &watch_req("k", "", 3));
    assert_eq!(out.len(), 2);
    assert!(out[1].canceled);
    assert_eq!(out[1].compact_revision, 4);
    assert_eq!(hub.watcher_count(), 0);
    let out = hub.create(&s, 1, &watch_req("k", "", 4));
    assert_eq!(revs(&out[1..]), vec![(4, "k".into()), (5, "k".into())]);
    assert_eq!(out[1].events[0].kind, EventType::Delete);
}

// §6: negative start, empty range, duplicate id => created + canceled.
#[test]
fn create_errors() {
    let s = KvStore::new();
    let mut hub = WatchHub::new(WatchHubOptions::etcd_defaults(), &s);
    let out = hub.create(&s, 1, &watch_req("a", "", -1));
    assert!(out[0].created && out[0].canceled);
    assert_eq!(out[0].cancel_reason, EtcdError::Compacted.to_string());
    let out = hub.create(&s, 1, &watch_req("b", "a", 0));
    assert!(out[0].canceled);
    let mut req = watch_req("a", "", 0);
    req.watch_id = 5;
    assert!(!hub.create(&s, 1, &req)[0].canceled);
    assert!(hub.create(&s, 1, &req)[0].canceled);
    assert!(!hub.create(&s, 2, &req)[0].canceled); // ids are per stream
    assert_eq!(hub.cancel(&s, 1, 5).map(|r| r.canceled), Some(true));
    assert!(hub.cancel(&s, 1, 5).is_none());
}

// §6: a future start revision waits and never delivers events or progress below it (#20221).
#[test]
fn future_start_revision() {
    let mut s = KvStore::new();
    let mut hub = WatchHub::new(WatchHubOptions::etcd_defaults(), &s);
    let out = hub.create(&s, 1, &watch_req("a", "\0", 4));
    assert_eq!(out.len(), 1);
    assert!(hub.request_progress(1).is_none());
    put(&mut s, "a", "2"); // 2
    let out = feed(&mut hub, &mut s);
    assert!(out.is_empty());
    put(&mut s, "b", "3"); // 3
    let out = feed(&mut hub, &mut s);
    // now synced at 3 = start - 1: the deferred progress response is sent
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].response.watch_id, -1);
    assert_eq!(out[0].response.header.revision, 3);
    put(&mut s, "c", "4"); // 4
    let out = feed(&mut hub, &mut s);
    assert_eq!(revs(&[out[0].response.clone()]), vec![(4, "c".into())]);
}

// §6: progress only when synced; header = fed revision; periodic notify per watcher.
#[test]
fn progress() {
    let mut s = KvStore::new();
    let mut hub = WatchHub::new(WatchHubOptions::etcd_defaults(), &s);
    let mut req = watch_req("a", "", 0);
    req.progress_notify = true;
    hub.create(&s, 1, &req);
    put(&mut s, "a", "1");
    // applied but not fed yet: progress speaks for the fed revision only (1), never for 2
    let p = hub.request_progress(1).unwrap();
    assert_eq!((p.watch_id, p.header.revision), (-1, 1));
    let out = feed(&mut hub, &mut s);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].response.header.revision, 2);
    // a watcher replayed beyond the fed revision defers the stream's progress
    put(&mut s, "a", "2"); // 3, not fed
    hub.create(&s, 1, &watch_req("a", "", 1));
    assert!(hub.request_progress(1).is_none());
    let out = feed(&mut hub, &mut s);
    assert_eq!(out.len(), 2); // the first watcher's event, then the deferred progress
    assert_eq!(out[1].response.header.revision, 3);
    assert!(out[1].response.events.is_empty());
    let p = hub.request_progress(1).unwrap();
    assert_eq!((p.watch_id, p.header.revision), (-1, 3));
    let n = hub.progress_notify();
    assert_eq!(n.len(), 1); // only the watcher created with progress_notify
    assert_eq!((n[0].stream, n[0].response.watch_id), (1, 0));
}

// Atomic: catch-up responses hold whole revisions (a txn's events stay together).
#[test]
fn catch_up_never_splits_a_revision() {
    let mut s = KvStore::new();
    let mut hub = WatchHub::new(
        WatchHubOptions {
            max_revisions_per_response: 2,
        },
        &s,
    );
    for i in 0..5 {
        let txn = TxnRequest {
            compare: vec![],
            success: vec![
                RequestOp::Put(PutRequest {
                    key: format!("x{i}").into(),
                    ..PutRequest::default()
                }),
                RequestOp::Put(PutRequest {
                    key: format!("y{i}").into(),
                    ..PutRequest::default()
                }),
            ],
            failure: vec![],
        };
        s.apply(&Request::Txn(txn)).unwrap();
    }
    feed(&mut hub, &mut s);
    let out = hub.create(&s, 1, &watch_req("\0", "\0", 1));
    let sizes: Vec<usize> = out[1..].iter().map(|r| r.events.len()).collect();
    assert_eq!(sizes, vec![4, 4, 2]);
}

// Resync after a snapshot restore continues from each watcher's next revision (#15271).
#[test]
fn resync_after_restore() {
    let mut s = KvStore::new();
    let mut hub = WatchHub::new(WatchHubOptions::etcd_defaults(), &s);
    hub.create(&s, 1, &watch_req("a", "", 0));
    put(&mut s, "a", "1"); // 2
    assert_eq!(feed(&mut hub, &mut s).len(), 1);
    // a leader's store, further ahead
    let mut leader = s.clone();
    put(&mut leader, "a", "2"); // 3
    put(&mut leader, "a", "3"); // 4
    let mut restored = KvStore::restore(leader.snapshot());
    let out = hub.resync(&restored);
    assert_eq!(
        revs(&[out[0].response.clone()]),
        vec![(3, "a".into()), (4, "a".into())]
    );
    put(&mut restored, "a", "4"); // 5
    let out = feed(&mut hub, &mut restored);
    assert_eq!(revs(&[out[0].response.clone()]), vec![(5, "a".into())]);
    hub.close_stream(1);
    assert_eq!(hub.watcher_count(), 0);
}
