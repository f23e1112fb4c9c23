//! Watches as a pure component (etcd-semantics.md §6): etcd's watchableStore + watchStream,
//! without goroutines, channels or clocks.
//!
//! # How the node drives it
//! * One `WatchHub` per member, made with `WatchHub::new(options, &store)` after the store is
//!   loaded. Client watch streams are identified by a `StreamId` the node chooses.
//! * After every apply (or batch of applies), feed the store's new events, in order and
//!   without gaps: `hub.on_events(&store, &store.take_events())` (`take_events` first, then
//!   `on_events`; revisions must be fed contiguously). It returns the responses to send.
//! * Client requests on a stream: `create`, `cancel`, `request_progress`; `close_stream` when
//!   the stream ends. Each returns the responses for that stream, in sending order.
//! * Periodic progress notifications (etcd's progress_notify interval): `progress_notify`.
//! * After the store is replaced by a snapshot: `resync(&store)` (watchers continue from the
//!   next revision they have not seen; never re-sent, never behind — etcd #15271).
//!
//! # Guarantees kept here
//! Ordered and unique (each watcher has `next_rev`, the next revision it may deliver, which only
//! grows), reliable (replay from the store's history, complete from the compact revision on),
//! atomic (one revision is never split: a response holds whole revisions), bookmarkable (a
//! progress response at R is sent only when every watcher on the stream has delivered all
//! events <= R and none waits for a start revision above R + 1 — etcd #15220, #20221).
//!
//! Watchers are brought up to date synchronously when created (and on `resync`), so there is
//! no "slow watcher" state: a start revision below the compact revision is the only way to be
//! canceled with `compact_revision`. Fragmentation (`fragment`) is not implemented: responses
//! are never split.

use std::collections::{BTreeMap, BTreeSet};

use faultline_api::{
    key_in_range, Event, EventType, ResponseHeader, Revision, WatchCreateRequest, WatchFilter,
    WatchResponse,
};

use crate::KvStore;

/// The node's identifier of one client watch stream.
pub type StreamId = u64;

/// etcd's `mvcc: watcher range is empty`.
pub const ERR_EMPTY_WATCHER_RANGE: &str = "mvcc: watcher range is empty";
/// etcd's `mvcc: duplicate watch ID provided on the WatchStream`.
pub const ERR_DUPLICATE_WATCH_ID: &str = "mvcc: duplicate watch ID provided on the WatchStream";
/// watch_id of stream-wide progress responses (clientv3.InvalidWatchID).
pub const BROADCAST_WATCH_ID: i64 = -1;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WatchHubOptions {
    /// A catch-up response holds at most this many revisions (etcd's watchBatchMaxRevs).
    pub max_revisions_per_response: usize,
}

impl WatchHubOptions {
    pub fn etcd_defaults() -> WatchHubOptions {
        WatchHubOptions {
            max_revisions_per_response: 1000,
        }
    }
}

/// A response for one stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchOutput {
    pub stream: StreamId,
    pub response: WatchResponse,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Watcher {
    key: Vec<u8>,
    range_end: Vec<u8>,
    no_put: bool,
    no_delete: bool,
    prev_kv: bool,
    progress_notify: bool,
    /// The next revision this watcher may deliver; every event below it was delivered (or
    /// precedes its start). Only grows.
    next_rev: Revision,
}

impl Watcher {
    fn select(&self, events: &[Event]) -> Vec<Event> {
        events
            .iter()
            .filter(|e| key_in_range(&e.kv.key, &self.key, &self.range_end))
            .filter(|e| match e.kind {
                EventType::Put => !self.no_put,
                EventType::Delete => !self.no_delete,
            })
            .map(|e| Event {
                kind: e.kind,
                kv: e.kv.clone(),
                prev_kv: if self.prev_kv {
                    e.prev_kv.clone()
                } else {
                    None
                },
            })
            .collect()
    }
}

/// Every watcher of every stream of one member.
#[derive(Clone, Debug)]
pub struct WatchHub {
    options: WatchHubOptions,
    watchers: BTreeMap<(StreamId, i64), Watcher>,
    next_auto_id: BTreeMap<StreamId, i64>,
    /// Streams with a progress request that waits for their watchers to sync.
    pending_progress: BTreeSet<StreamId>,
    /// Every revision <= fed_rev was fed through `on_events` (or preceded the hub).
    fed_rev: Revision,
}

fn header(revision: Revision) -> ResponseHeader {
    ResponseHeader {
        revision,
        ..ResponseHeader::default()
    }
}

impl WatchHub {
    pub fn new(options: WatchHubOptions, store: &KvStore) -> WatchHub {
        assert!(options.max_revisions_per_response > 0);
        WatchHub {
            options,
            watchers: BTreeMap::new(),
            next_auto_id: BTreeMap::new(),
            pending_progress: BTreeSet::new(),
            fed_rev: store.current_revision(),
        }
    }

    /// The highest revision fed to the hub.
    pub fn fed_revision(&self) -> Revision {
        self.fed_rev
    }

    pub fn watcher_count(&self) -> usize {
        self.watchers.len()
    }

    /// The watch ids open on a stream, ascending.
    pub fn watch_ids(&self, stream: StreamId) -> Vec<i64> {
        self.watchers
            .range((stream, i64::MIN)..=(stream, i64::MAX))
            .map(|((_, id), _)| *id)
            .collect()
    }

    /// A WatchCreateRequest on `stream`: the created response (or created+canceled on an
    /// error), then either the replay of history from `start_revision` (inclusive), or a
    /// compaction cancel (`compact_revision` set) if the start revision is compacted.
    /// `watch_id` 0 = choose the lowest free id of the stream (etcd's AutoWatchID).
    pub fn create(
        &mut self,
        store: &KvStore,
        stream: StreamId,
        req: &WatchCreateRequest,
    ) -> Vec<WatchResponse> {
        let current = store.current_revision();
        let refuse = |reason: &str| {
            vec![WatchResponse {
                header: header(current),
                watch_id: BROADCAST_WATCH_ID,
                created: true,
                canceled: true,
                cancel_reason: reason.to_string(),
                ..WatchResponse::default()
            }]
        };
        let end = &req.range_end;
        if !end.is_empty() && end.as_slice() != [0] && req.key.as_slice() >= end.as_slice() {
            return refuse(ERR_EMPTY_WATCHER_RANGE);
        }
        if req.start_revision < 0 {
            return refuse(&faultline_api::EtcdError::Compacted.to_string());
        }
        let watch_id = if req.watch_id == 0 {
            let next = self.next_auto_id.entry(stream).or_insert(0);
            while self.watchers.contains_key(&(stream, *next)) {
                *next += 1;
            }
            let id = *next;
            *next += 1;
            id
        } else if self.watchers.contains_key(&(stream, req.watch_id)) {
            return refuse(ERR_DUPLICATE_WATCH_ID);
        } else {
            req.watch_id
        };
        let mut out = vec![WatchResponse {
            header: header(current),
            watch_id,
            created: true,
            ..WatchResponse::default()
        }];
        let next_rev = if req.start_revision == 0 {
            current + 1
        } else {
            req.start_revision
        };
        let watcher = Watcher {
            key: req.key.clone(),
            range_end: req.range_end.clone(),
            no_put: req.filters.contains(&WatchFilter::NoPut),
            no_delete: req.filters.contains(&WatchFilter::NoDelete),
            prev_kv: req.prev_kv,
            progress_notify: req.progress_notify,
            next_rev,
        };
        self.watchers.insert((stream, watch_id), watcher);
        out.extend(self.catch_up(store, stream, watch_id));
        out
    }

    /// A client's cancel: the canceled response, or `None` for an unknown watch id.
    pub fn cancel(
        &mut self,
        store: &KvStore,
        stream: StreamId,
        watch_id: i64,
    ) -> Option<WatchResponse> {
        self.watchers.remove(&(stream, watch_id))?;
        Some(WatchResponse {
            header: header(store.current_revision()),
            watch_id,
            canceled: true,
            ..WatchResponse::default()
        })
    }

    /// The stream ended: drop its watchers and pending progress request.
    pub fn close_stream(&mut self, stream: StreamId) {
        for id in self.watch_ids(stream) {
            self.watchers.remove(&(stream, id));
        }
        self.next_auto_id.remove(&stream);
        self.pending_progress.remove(&stream);
    }

    /// Feed the events of newly applied revisions (from `KvStore::take_events`), ascending and
    /// contiguous with what was fed before (revisions the hub already covers, because they were
    /// applied before `new`/`resync`, are skipped). One response per revision per interested watcher,
    /// header = that revision; then any progress request that became answerable.
    pub fn on_events(
        &mut self,
        store: &KvStore,
        events: &[(Revision, Vec<Event>)],
    ) -> Vec<WatchOutput> {
        let mut out = Vec::new();
        for (rev, revision_events) in events {
            if *rev <= self.fed_rev {
                continue; // already in the store when the hub was made (or resynced)
            }
            assert_eq!(
                *rev,
                self.fed_rev + 1,
                "revisions are fed in order, no gaps"
            );
            assert!(*rev <= store.current_revision());
            assert!(!revision_events.is_empty());
            for ((stream, watch_id), watcher) in self.watchers.iter_mut() {
                if *rev < watcher.next_rev {
                    continue; // replayed at creation already, or before a future start
                }
                assert_eq!(
                    *rev, watcher.next_rev,
                    "a synced watcher sees every revision"
                );
                watcher.next_rev = rev + 1;
                let selected = watcher.select(revision_events);
                if selected.is_empty() {
                    continue;
                }
                out.push(WatchOutput {
                    stream: *stream,
                    response: WatchResponse {
                        header: header(*rev),
                        watch_id: *watch_id,
                        events: selected,
                        ..WatchResponse::default()
                    },
                });
            }
            self.fed_rev = *rev;
        }
        let ready: Vec<StreamId> = self
            .pending_progress
            .iter()
            .copied()
            .filter(|s| self.stream_synced(*s))
            .collect();
        for stream in ready {
            self.pending_progress.remove(&stream);
            out.push(WatchOutput {
                stream,
                response: self.progress_response(BROADCAST_WATCH_ID),
            });
        }
        out
    }

    /// A WatchProgressRequest on the stream: a response with watch_id -1 and header = the fed
    /// revision if every watcher of the stream is synced at it; otherwise `None`, and the
    /// response comes from a later `on_events` once they are.
    pub fn request_progress(&mut self, stream: StreamId) -> Option<WatchResponse> {
        if self.stream_synced(stream) {
            Some(self.progress_response(BROADCAST_WATCH_ID))
        } else {
            self.pending_progress.insert(stream);
            None
        }
    }

    /// The periodic notification: each synced watcher created with progress_notify gets an
    /// empty response with its watch id and header = the fed revision.
    pub fn progress_notify(&self) -> Vec<WatchOutput> {
        self.watchers
            .iter()
            .filter(|(_, w)| w.progress_notify && w.next_rev == self.fed_rev + 1)
            .map(|((stream, watch_id), _)| WatchOutput {
                stream: *stream,
                response: self.progress_response(*watch_id),
            })
            .collect()
    }

    /// After the store was replaced (snapshot restore): every watcher continues from its own
    /// next revision, replayed from the new store's history (canceled if compacted away);
    /// watchers already past the new current revision simply wait.
    pub fn resync(&mut self, store: &KvStore) -> Vec<WatchOutput> {
        self.fed_rev = self.fed_rev.max(store.current_revision());
        let keys: Vec<(StreamId, i64)> = self.watchers.keys().copied().collect();
        let mut out = Vec::new();
        for (stream, watch_id) in keys {
            out.extend(
                self.catch_up(store, stream, watch_id)
                    .into_iter()
                    .map(|response| WatchOutput { stream, response }),
            );
        }
        out
    }

    fn stream_synced(&self, stream: StreamId) -> bool {
        self.watchers
            .range((stream, i64::MIN)..=(stream, i64::MAX))
            .all(|(_, w)| w.next_rev == self.fed_rev + 1)
    }

    fn progress_response(&self, watch_id: i64) -> WatchResponse {
        WatchResponse {
            header: header(self.fed_rev),
            watch_id,
            ..WatchResponse::default()
        }
    }

    /// Replay history from the watcher's next revision to the store's current revision, in
    /// responses of whole revisions; cancel it if that revision is compacted.
    fn catch_up(&mut self, store: &KvStore, stream: StreamId, watch_id: i64) -> Vec<WatchResponse> {
        let current = store.current_revision();
        let watcher = self
            .watchers
            .get_mut(&(stream, watch_id))
            .expect("catch_up of an existing watcher");
        if watcher.next_rev > current {
            return Vec::new();
        }
        if watcher.next_rev < store.compact_revision() {
            self.watchers.remove(&(stream, watch_id));
            return vec![WatchResponse {
                header: header(current),
                watch_id,
                canceled: true,
                compact_revision: store.compact_revision(),
                ..WatchResponse::default()
            }];
        }
        let history = store
            .history(watcher.next_rev, current, watcher.prev_kv)
            .expect("history in [compact, current] is available");
        watcher.next_rev = current + 1;
        let mut out = Vec::new();
        let mut events: Vec<Event> = Vec::new();
        let mut revisions = 0usize;
        for (_, revision_events) in &history {
            let selected = watcher.select(revision_events);
            if selected.is_empty() {
                continue;
            }
            if revisions == self.options.max_revisions_per_response {
                out.push(WatchResponse {
                    header: header(current),
                    watch_id,
                    events: std::mem::take(&mut events),
                    ..WatchResponse::default()
                });
                revisions = 0;
            }
            events.extend(selected);
            revisions += 1;
        }
        if !events.is_empty() {
            out.push(WatchResponse {
                header: header(current),
                watch_id,
                events,
                ..WatchResponse::default()
            });
        }
        out
    }
}
