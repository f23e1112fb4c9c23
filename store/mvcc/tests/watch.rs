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
    // a watcher replays only up to the fed revision; the applied-but-unfed revision 3
    // reaches both watchers live, after a progress at 2
    put(&mut s, "a", "2"); // 3, not fed
    let created = hub.create(&s, 1, &watch_req("a", "", 1));
    assert_eq!(revs(&created), vec![(2, "a".into())]);
    let p = hub.request_progress(1).unwrap();
    assert_eq!((p.watch_id, p.header.revision), (-1, 2));
    let out = feed(&mut hub, &mut s);
    assert_eq!(out.len(), 2);
    assert!(out
        .iter()
        .all(|o| revs(std::slice::from_ref(&o.response)) == vec![(3, "a".into())]));
    // a watcher waiting for a future start revision defers the stream's progress
    hub.create(&s, 1, &watch_req("a", "", 5));
    assert!(hub.request_progress(1).is_none());
    put(&mut s, "a", "3"); // 4: now the future watcher waits for 5 = fed + 1: synced
    let out = feed(&mut hub, &mut s);
    assert_eq!(
        out.len(),
        3,
        "the two watchers' events, then the progress: {out:?}"
    );
    assert!(out[2].response.events.is_empty());
    assert_eq!(out[2].response.header.revision, 4);
    hub.cancel(&s, 1, 2).unwrap();
    put(&mut s, "b", "x"); // 5: nobody's event
    assert!(feed(&mut hub, &mut s).is_empty());
    let p = hub.request_progress(1).unwrap();
    assert_eq!((p.watch_id, p.header.revision), (-1, 5));
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
            ..WatchHubOptions::etcd_defaults()
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

fn compact(s: &mut KvStore, revision: Revision) {
    s.apply(&Request::Compact(CompactionRequest {
        revision,
        physical: false,
    }))
    .unwrap();
}

fn slow_options(backlog: usize) -> WatchHubOptions {
    WatchHubOptions {
        slow_watcher_backlog: Some(backlog),
        catch_up_at_create: false,
        ..WatchHubOptions::etcd_defaults()
    }
}

fn responses_of(out: &[WatchOutput]) -> Vec<WatchResponse> {
    out.iter().map(|o| o.response.clone()).collect()
}

// §6 slow watchers: a full stream moves its watcher to unsynced; `sync` replays from history
// once the client took responses off the stream, whole revisions, then it is live again.
#[test]
fn slow_watcher_catches_up_from_history() {
    let mut s = KvStore::new();
    let mut hub = WatchHub::new(slow_options(3), &s);
    assert_eq!(hub.create(&s, 1, &watch_req("a", "", 0)).len(), 1);
    assert_eq!(hub.backlog(1), 1);
    put(&mut s, "a", "1"); // 2
    put(&mut s, "a", "2"); // 3
    put(&mut s, "a", "3"); // 4: the stream holds 3 responses, this one waits
    put(&mut s, "b", "x"); // 5: not this watcher's
    put(&mut s, "a", "4"); // 6
    let out = feed(&mut hub, &mut s);
    assert_eq!(
        revs(&responses_of(&out)),
        vec![(2, "a".into()), (3, "a".into())]
    );
    assert_eq!((hub.backlog(1), hub.unsynced_count()), (3, 1));
    // no room yet: nothing to sync, and a progress request waits for the watcher
    assert!(hub.sync(&s).is_empty());
    assert!(hub.request_progress(1).is_none());
    hub.acknowledge(1, 3);
    let out = hub.sync(&s);
    // one catch-up response with revisions 4 and 6 (header = fed revision), then progress
    assert_eq!(out.len(), 2, "{out:?}");
    assert_eq!(
        revs(&[out[0].response.clone()]),
        vec![(4, "a".into()), (6, "a".into())]
    );
    assert_eq!(out[0].response.header.revision, 6);
    assert!(out[1].response.events.is_empty() && out[1].response.watch_id == -1);
    assert_eq!(out[1].response.header.revision, 6);
    assert_eq!((hub.backlog(1), hub.unsynced_count()), (2, 0));
    put(&mut s, "a", "5"); // 7: live again
    let out = feed(&mut hub, &mut s);
    assert_eq!(revs(&responses_of(&out)), vec![(7, "a".into())]);
}

// A slow watcher's catch-up is bounded by its stream's room (several syncs), in order.
#[test]
fn slow_watcher_catch_up_respects_the_room() {
    let mut s = KvStore::new();
    let mut hub = WatchHub::new(
        WatchHubOptions {
            max_revisions_per_response: 1,
            ..slow_options(2)
        },
        &s,
    );
    hub.create(&s, 1, &watch_req("a", "", 0));
    for i in 0..6 {
        put(&mut s, "a", &i.to_string()); // 2..=7
    }
    let mut got = revs(&responses_of(&feed(&mut hub, &mut s)));
    assert_eq!(got, vec![(2, "a".into())]);
    for _ in 0..10 {
        hub.acknowledge(1, hub.backlog(1));
        let out = hub.sync(&s);
        assert!(out.len() <= 2, "at most the room: {out:?}");
        got.extend(revs(&responses_of(&out)));
    }
    let want: Vec<(Revision, String)> = (2..=7).map(|r| (r, "a".to_string())).collect();
    assert_eq!(got, want);
    assert_eq!(hub.unsynced_count(), 0);
}

// §6: a slow watcher whose next revision is compacted before it catches up is canceled with
// compact_revision; a new watch from the compact revision continues exactly.
#[test]
fn slow_watcher_behind_compaction_is_canceled() {
    let mut s = KvStore::new();
    let mut hub = WatchHub::new(slow_options(1), &s);
    hub.create(&s, 1, &watch_req("a", "", 0)); // the created response fills the stream
    put(&mut s, "a", "1"); // 2
    put(&mut s, "a", "2"); // 3
    put(&mut s, "a", "3"); // 4
    assert!(feed(&mut hub, &mut s).is_empty());
    assert_eq!(hub.unsynced_count(), 1);
    compact(&mut s, 3);
    hub.acknowledge(1, 1);
    let out = hub.sync(&s);
    assert_eq!(out.len(), 1);
    let cancel = &out[0].response;
    assert!(cancel.canceled && cancel.events.is_empty());
    assert_eq!((cancel.watch_id, cancel.compact_revision), (0, 3));
    assert_eq!(hub.watcher_count(), 0);
    // the client resumes from the compact revision (etcd clients do)
    hub.acknowledge(1, 1);
    let out = hub.create(&s, 1, &watch_req("a", "", 3));
    assert_eq!(out.len(), 1);
    hub.acknowledge(1, 1);
    let out = hub.sync(&s);
    assert_eq!(
        revs(&responses_of(&out)),
        vec![(3, "a".into()), (4, "a".into())]
    );
}

// Without `catch_up_at_create` a watch from the past starts unsynced (etcd's way); progress
// waits for its replay.
#[test]
fn deferred_catch_up_at_create() {
    let mut s = KvStore::new();
    put(&mut s, "a", "1"); // 2
    put(&mut s, "a", "2"); // 3
    let mut hub = WatchHub::new(slow_options(100), &s);
    let out = hub.create(&s, 1, &watch_req("a", "", 2));
    assert_eq!(out.len(), 1);
    assert!(out[0].created);
    assert_eq!(hub.unsynced_count(), 1);
    assert!(hub.request_progress(1).is_none());
    let out = hub.sync(&s);
    assert_eq!(
        revs(&responses_of(&out[..1])),
        vec![(2, "a".into()), (3, "a".into())]
    );
    assert_eq!(out[1].response.header.revision, 3);
    assert!(out[1].response.events.is_empty());
}

fn big_txn(s: &mut KvStore, keys: &[&str], value_len: usize) {
    let txn = TxnRequest {
        compare: vec![],
        success: keys
            .iter()
            .map(|k| {
                RequestOp::Put(PutRequest {
                    key: k.as_bytes().to_vec(),
                    value: vec![b'v'; value_len],
                    ..PutRequest::default()
                })
            })
            .collect(),
        failure: vec![],
    };
    s.apply(&Request::Txn(txn)).unwrap();
}

// `fragment`: a response over the size limit is split, fragment=true on all but the last;
// without `fragment` one revision stays in one response, however large.
#[test]
fn fragments_only_when_asked() {
    let mut s = KvStore::new();
    let options = WatchHubOptions {
        max_response_bytes: 300,
        ..WatchHubOptions::etcd_defaults()
    };
    let mut hub = WatchHub::new(options, &s);
    let mut fragmented = watch_req("k", "l", 0);
    fragmented.fragment = true;
    hub.create(&s, 1, &fragmented);
    hub.create(&s, 2, &watch_req("k", "l", 0));
    big_txn(&mut s, &["k1", "k2", "k3", "k4", "k5"], 100); // 2: 5 x ~150 bytes
    let out = feed(&mut hub, &mut s);
    let on = |stream| -> Vec<WatchResponse> {
        out.iter()
            .filter(|o| o.stream == stream)
            .map(|o| o.response.clone())
            .collect()
    };
    let parts = on(1);
    assert_eq!(parts.len(), 3, "{parts:?}");
    let flags: Vec<bool> = parts.iter().map(|r| r.fragment).collect();
    assert_eq!(flags, vec![true, true, false]);
    assert!(parts
        .iter()
        .all(|r| r.events.iter().map(watch::event_size_bytes).sum::<usize>() <= 300));
    assert_eq!(revs(&parts).len(), 5);
    let whole = on(2);
    assert_eq!(whole.len(), 1);
    assert!(!whole[0].fragment);
    assert_eq!(revs(&whole), revs(&parts));
    // a replay from history fragments the same way
    let out = hub.create(&s, 3, &{
        let mut r = fragmented.clone();
        r.start_revision = 2;
        r
    });
    let flags: Vec<bool> = out[1..].iter().map(|r| r.fragment).collect();
    assert_eq!(flags, vec![true, true, false]);
    // a single event larger than the limit is sent whole
    big_txn(&mut s, &["k9"], 1000);
    let out = feed(&mut hub, &mut s);
    assert!(out
        .iter()
        .all(|o| !o.response.fragment && o.response.events.len() == 1));
}

#[cfg(not(feature = "canaries"))]
#[test]
#[should_panic(expected = "without `canaries`")]
fn canaries_are_refused_without_the_feature() {
    let s = KvStore::new();
    WatchHub::new(
        WatchHubOptions {
            canary: Some(WatchCanary::BackInTime),
            ..WatchHubOptions::etcd_defaults()
        },
        &s,
    );
}

#[cfg(feature = "canaries")]
mod canaries {
    use super::*;

    fn hub_with(canary: Option<WatchCanary>, s: &KvStore) -> WatchHub {
        WatchHub::new(
            WatchHubOptions {
                canary,
                ..slow_options(100)
            },
            s,
        )
    }

    // etcd #15271: resync re-sends revisions the watcher already delivered.
    #[test]
    fn back_in_time_resends_old_revisions() {
        for canary in [None, Some(WatchCanary::BackInTime)] {
            let mut s = KvStore::new();
            let mut hub = hub_with(canary, &s);
            hub.create(&s, 1, &watch_req("a", "", 0));
            put(&mut s, "a", "1"); // 2
            put(&mut s, "a", "2"); // 3
            assert_eq!(feed(&mut hub, &mut s).len(), 2);
            let again = revs(&responses_of(&hub.resync(&s)));
            if canary.is_some() {
                assert_eq!(again, vec![(2, "a".into()), (3, "a".into())]);
            } else {
                assert!(again.is_empty());
            }
        }
    }

    // etcd #15220: progress at the fed revision while a watcher still owes events.
    #[test]
    fn progress_before_events() {
        for canary in [None, Some(WatchCanary::ProgressBeforeEvents)] {
            let mut s = KvStore::new();
            put(&mut s, "a", "1"); // 2
            let mut hub = hub_with(canary, &s);
            hub.create(&s, 1, &watch_req("a", "", 1));
            let progress = hub.request_progress(1);
            if canary.is_some() {
                assert_eq!(progress.unwrap().header.revision, 2);
            } else {
                assert!(progress.is_none());
            }
            // the events <= 2 come after it
            let out = hub.sync(&s);
            assert_eq!(revs(&responses_of(&out)), vec![(2, "a".into())]);
        }
    }

    // etcd #18089: the tombstone at the compact revision is dropped, so a watch from the
    // compact revision misses that delete (reads are unchanged).
    #[test]
    fn compaction_drops_the_delete_at_the_compact_revision() {
        for planted in [false, true] {
            let mut s = KvStore::new();
            put(&mut s, "a", "1"); // 2
            del(&mut s, "a"); // 3
            put(&mut s, "b", "1"); // 4
            compact(&mut s, 3);
            if planted {
                s.canary_drop_tombstones_at_compact_revision();
            }
            s.check_invariants();
            let mut hub = WatchHub::new(WatchHubOptions::etcd_defaults(), &s);
            let out = hub.create(&s, 1, &watch_req("a", "c", 3));
            let got = revs(&out);
            if planted {
                assert_eq!(got, vec![(4, "b".into())]);
            } else {
                assert_eq!(got, vec![(3, "a".into()), (4, "b".into())]);
            }
        }
    }
}
