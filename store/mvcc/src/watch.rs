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
//! * Catching up unsynced watchers (etcd's syncWatchersLoop, every 100 ms there): `sync`.
//! * With `slow_watcher_backlog` set, the caller reports what its client has taken off a
//!   stream with `acknowledge`; every response the hub returned for a stream counts in that
//!   stream's backlog until acknowledged.
//! * After the store is replaced by a snapshot (or the member may have missed a stretch of
//!   the log): `resync(&store)` (watchers continue from the next revision they have not seen;
//!   never re-sent, never behind — etcd #15271).
//!
//! # Guarantees kept here
//! Ordered and unique (each watcher has `next_rev`, the next revision it may deliver, which only
//! grows), reliable (replay from the store's history, complete from the compact revision on),
//! atomic (one revision is never split: a response holds whole revisions, except the
//! fragments of a `fragment` watch, of which all but the last say `fragment: true`),
//! bookmarkable (a progress response at R is sent only when every watcher on the stream has
//! delivered all events <= R and none waits for a start revision above R + 1 — etcd #15220,
//! #20221).
//!
//! # Synced and unsynced watchers (etcd's watcherGroup synced/unsynced)
//! A synced watcher gets each new revision from `on_events` as it is fed. A watcher is
//! unsynced when its next revision is already in the store's history: created with a past
//! start revision (unless `catch_up_at_create`), resynced, or slow: `on_events` found its
//! stream's backlog at `slow_watcher_backlog` (etcd moves a watcher whose channel of 128 is
//! full to its victims and then to unsynced). `sync` replays history for unsynced watchers
//! while their stream has room, whole revisions per response, and cancels with
//! `compact_revision` a watcher whose next revision was compacted before it caught up.

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
/// etcd's default `--max-request-bytes` (1.5 MiB), which its watch server also uses as the
/// fragment size (server/etcdserver/api/v3rpc/watch.go).
pub const MAX_RESPONSE_BYTES_DEFAULT: usize = 1536 * 1024;
/// etcd's watch channel length (chanBufLen = 128 in server/storage/mvcc/watchable_store.go):
/// a watcher with this many responses waiting becomes a slow ("victim", then unsynced) watcher.
pub const SLOW_WATCHER_BACKLOG_DEFAULT: usize = 128;
/// Estimated protobuf overhead of one event beyond its keys and values (revisions, version,
/// lease, type, field tags); the fragment limit is compared against this estimate.
const EVENT_OVERHEAD_BYTES: usize = 48;

/// A re-introducible watch bug (a canary). The variants always exist so configurations can
/// name them; `WatchHub::new` refuses one unless mvcc is built with the `canaries` feature.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WatchCanary {
    /// etcd #15271 (watch travelling back in time after a partition): `resync` moves every
    /// watcher back to its start revision instead of its own next revision, so revisions it
    /// already delivered are sent again.
    BackInTime,
    /// etcd #15220 (progress notification not synced with the stream): progress responses are
    /// sent at the fed revision even while a watcher of the stream is unsynced, i.e. still has
    /// events at or below that revision to deliver.
    ProgressBeforeEvents,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WatchHubOptions {
    /// A catch-up response holds at most this many revisions (etcd's watchBatchMaxRevs).
    pub max_revisions_per_response: usize,
    /// A `fragment` watch splits an event response estimated larger than this into parts
    /// (etcd's max request bytes). Watches without `fragment` never split a response.
    pub max_response_bytes: usize,
    /// `Some(n)`: a synced watcher whose stream has `n` unacknowledged responses becomes an
    /// unsynced (slow) watcher, caught up by `sync` when the stream has room; the caller must
    /// `acknowledge` what its client took. `None`: every response counts as delivered at
    /// once (a caller that hands responses over synchronously, such as a test driver).
    pub slow_watcher_backlog: Option<usize>,
    /// true: `create` replays history at once (as far as the backlog allows); false: the
    /// watcher starts unsynced and the next `sync` replays (etcd's way: syncWatchersLoop).
    pub catch_up_at_create: bool,
    /// A planted bug; `None` in every normal run.
    pub canary: Option<WatchCanary>,
}

impl WatchHubOptions {
    /// etcd's limits, with synchronous delivery (no backlog accounting, replay at create).
    pub fn etcd_defaults() -> WatchHubOptions {
        WatchHubOptions {
            max_revisions_per_response: 1000,
            max_response_bytes: MAX_RESPONSE_BYTES_DEFAULT,
            slow_watcher_backlog: None,
            catch_up_at_create: true,
            canary: None,
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
    fragment: bool,
    /// The first revision this watcher could deliver (its start, or the revision after
    /// "now" at creation).
    start_rev: Revision,
    /// The next revision this watcher may deliver; every event below it was delivered (or
    /// precedes its start). Only grows (except under the BackInTime canary).
    next_rev: Revision,
    /// Its next revision is in history and `sync` must replay it; `on_events` skips it.
    unsynced: bool,
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

/// Estimated encoded size of one event (keys, values, previous key-value, fixed overhead).
pub fn event_size_bytes(event: &Event) -> usize {
    let kv_bytes = |kv: &faultline_api::KeyValue| kv.key.len() + kv.value.len();
    EVENT_OVERHEAD_BYTES + kv_bytes(&event.kv) + event.prev_kv.as_ref().map_or(0, kv_bytes)
}

/// One event response, or its fragments when the watch asked for them and it is too large:
/// each fragment holds at least one event and stays within `max_bytes` unless a single event
/// exceeds it; every fragment but the last says `fragment: true`.
fn event_responses(
    options: &WatchHubOptions,
    fragment: bool,
    watch_id: i64,
    header_rev: Revision,
    events: Vec<Event>,
) -> Vec<WatchResponse> {
    assert!(!events.is_empty());
    let response = |events: Vec<Event>, more: bool| WatchResponse {
        header: header(header_rev),
        watch_id,
        fragment: more,
        events,
        ..WatchResponse::default()
    };
    let total: usize = events.iter().map(event_size_bytes).sum();
    if !fragment || total <= options.max_response_bytes || events.len() < 2 {
        return vec![response(events, false)];
    }
    let mut parts: Vec<Vec<Event>> = vec![Vec::new()];
    let mut part_bytes = 0usize;
    for event in events {
        let size = event_size_bytes(&event);
        let last = parts.last_mut().expect("never empty");
        if !last.is_empty() && part_bytes + size > options.max_response_bytes {
            parts.push(vec![event]);
            part_bytes = size;
        } else {
            last.push(event);
            part_bytes += size;
        }
    }
    let count = parts.len();
    assert!(
        count >= 2,
        "a response over the limit with 2+ events splits"
    );
    parts
        .into_iter()
        .enumerate()
        .map(|(i, events)| response(events, i + 1 < count))
        .collect()
}

/// Every watcher of every stream of one member.
#[derive(Clone, Debug)]
pub struct WatchHub {
    options: WatchHubOptions,
    watchers: BTreeMap<(StreamId, i64), Watcher>,
    next_auto_id: BTreeMap<StreamId, i64>,
    /// Streams with a progress request that waits for their watchers to sync.
    pending_progress: BTreeSet<StreamId>,
    /// Responses returned for each stream and not yet acknowledged (only counted with
    /// `slow_watcher_backlog`).
    backlog: BTreeMap<StreamId, usize>,
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
        assert!(options.max_response_bytes > 0);
        assert!(options.slow_watcher_backlog != Some(0));
        assert!(
            cfg!(feature = "canaries") || options.canary.is_none(),
            "watch canary {:?} requested, but faultline-mvcc was built without `canaries`",
            options.canary
        );
        WatchHub {
            options,
            watchers: BTreeMap::new(),
            next_auto_id: BTreeMap::new(),
            pending_progress: BTreeSet::new(),
            backlog: BTreeMap::new(),
            fed_rev: store.current_revision(),
        }
    }

    fn canary_active(&self, canary: WatchCanary) -> bool {
        cfg!(feature = "canaries") && self.options.canary == Some(canary)
    }

    /// The highest revision fed to the hub.
    pub fn fed_revision(&self) -> Revision {
        self.fed_rev
    }

    pub fn watcher_count(&self) -> usize {
        self.watchers.len()
    }

    /// Watchers whose next revision is in history (slow, resynced, or created in the past
    /// and not yet caught up by `sync`).
    pub fn unsynced_count(&self) -> usize {
        self.watchers.values().filter(|w| w.unsynced).count()
    }

    /// Responses returned for `stream` and not yet acknowledged (0 without
    /// `slow_watcher_backlog`).
    pub fn backlog(&self, stream: StreamId) -> usize {
        self.backlog.get(&stream).copied().unwrap_or(0)
    }

    /// The client took `count` more responses off the stream (in order). Only meaningful with
    /// `slow_watcher_backlog`; call `sync` afterwards to use the room.
    pub fn acknowledge(&mut self, stream: StreamId, count: usize) {
        if self.options.slow_watcher_backlog.is_none() {
            return;
        }
        let backlog = self.backlog.entry(stream).or_insert(0);
        assert!(
            count <= *backlog,
            "stream {stream}: {count} acknowledged, {backlog} outstanding"
        );
        *backlog -= count;
    }

    /// Did the watch ask for fragments (`WatchCreateRequest::fragment`)? False for a watch the
    /// hub does not hold.
    pub fn wants_fragments(&self, stream: StreamId, watch_id: i64) -> bool {
        self.watchers
            .get(&(stream, watch_id))
            .is_some_and(|w| w.fragment)
    }

    /// The member split one of the hub's responses into `extra` more (its BUGGIFY point): they
    /// count in the stream's backlog as the hub's own do.
    pub fn count_split(&mut self, stream: StreamId, extra: usize) {
        self.count_sent(stream, extra);
    }

    fn count_sent(&mut self, stream: StreamId, responses: usize) {
        if self.options.slow_watcher_backlog.is_some() {
            *self.backlog.entry(stream).or_insert(0) += responses;
        }
    }

    /// How many more responses the stream may take before its watchers count as slow.
    fn room(&self, stream: StreamId) -> usize {
        match self.options.slow_watcher_backlog {
            None => usize::MAX,
            Some(limit) => limit.saturating_sub(self.backlog(stream)),
        }
    }

    /// The watch ids open on a stream, ascending.
    pub fn watch_ids(&self, stream: StreamId) -> Vec<i64> {
        self.watchers
            .range((stream, i64::MIN)..=(stream, i64::MAX))
            .map(|((_, id), _)| *id)
            .collect()
    }

    /// A WatchCreateRequest on `stream`: the created response (or created+canceled on an
    /// error), then (with `catch_up_at_create`) either the replay of history from
    /// `start_revision` (inclusive) as far as the stream's room allows, or a compaction cancel
    /// (`compact_revision` set) if the start revision is compacted. Without
    /// `catch_up_at_create`, a start in history leaves the watcher unsynced for `sync`.
    /// `watch_id` 0 = choose the lowest free id of the stream (etcd's AutoWatchID).
    pub fn create(
        &mut self,
        store: &KvStore,
        stream: StreamId,
        req: &WatchCreateRequest,
    ) -> Vec<WatchResponse> {
        let out = self.create_inner(store, stream, req);
        self.count_sent(stream, out.len());
        out
    }

    fn create_inner(
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
            fragment: req.fragment,
            start_rev: next_rev,
            next_rev,
            unsynced: next_rev <= self.fed_rev,
        };
        self.watchers.insert((stream, watch_id), watcher);
        if self.options.catch_up_at_create {
            // The created response takes one slot of the stream's room.
            let room = self.room(stream).saturating_sub(1);
            out.extend(self.catch_up(store, stream, watch_id, room));
        }
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
        self.count_sent(stream, 1);
        Some(WatchResponse {
            header: header(store.current_revision()),
            watch_id,
            canceled: true,
            ..WatchResponse::default()
        })
    }

    /// The stream ended: drop its watchers, pending progress request and backlog.
    pub fn close_stream(&mut self, stream: StreamId) {
        for id in self.watch_ids(stream) {
            self.watchers.remove(&(stream, id));
        }
        self.next_auto_id.remove(&stream);
        self.pending_progress.remove(&stream);
        self.backlog.remove(&stream);
    }

    /// Feed the events of newly applied revisions (from `KvStore::take_events`), ascending and
    /// contiguous with what was fed before (revisions the hub already covers, because they were
    /// applied before `new`/`resync`, are skipped). One response per revision per interested
    /// synced watcher (or its fragments), header = that revision; a watcher whose stream is
    /// full becomes unsynced instead; then any progress request that became answerable.
    pub fn on_events(
        &mut self,
        store: &KvStore,
        events: &[(Revision, Vec<Event>)],
    ) -> Vec<WatchOutput> {
        let mut out = Vec::new();
        let limit = self.options.slow_watcher_backlog;
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
                if watcher.unsynced || *rev < watcher.next_rev {
                    continue; // `sync` replays it, or it waits for a future start
                }
                assert_eq!(
                    *rev, watcher.next_rev,
                    "a synced watcher sees every revision"
                );
                let selected = watcher.select(revision_events);
                if selected.is_empty() {
                    watcher.next_rev = rev + 1;
                    continue;
                }
                let backlog = self.backlog.entry(*stream).or_insert(0);
                if limit.is_some_and(|limit| *backlog >= limit) {
                    // A slow watcher: it keeps `next_rev` and `sync` replays from history.
                    watcher.unsynced = true;
                    continue;
                }
                watcher.next_rev = rev + 1;
                let responses =
                    event_responses(&self.options, watcher.fragment, *watch_id, *rev, selected);
                if limit.is_some() {
                    *backlog += responses.len();
                }
                out.extend(responses.into_iter().map(|response| WatchOutput {
                    stream: *stream,
                    response,
                }));
            }
            self.fed_rev = *rev;
        }
        self.answer_pending_progress(&mut out);
        out
    }

    fn answer_pending_progress(&mut self, out: &mut Vec<WatchOutput>) {
        let ready: Vec<StreamId> = self
            .pending_progress
            .iter()
            .copied()
            .filter(|s| self.stream_synced(*s))
            .collect();
        for stream in ready {
            self.pending_progress.remove(&stream);
            self.count_sent(stream, 1);
            out.push(WatchOutput {
                stream,
                response: self.progress_response(BROADCAST_WATCH_ID),
            });
        }
    }

    /// A WatchProgressRequest on the stream: a response with watch_id -1 and header = the fed
    /// revision if every watcher of the stream is synced at it; otherwise `None`, and the
    /// response comes from a later `on_events` or `sync` once they are.
    pub fn request_progress(&mut self, stream: StreamId) -> Option<WatchResponse> {
        if self.stream_synced(stream) {
            self.count_sent(stream, 1);
            Some(self.progress_response(BROADCAST_WATCH_ID))
        } else {
            self.pending_progress.insert(stream);
            None
        }
    }

    /// The periodic notification: each synced watcher created with progress_notify gets an
    /// empty response with its watch id and header = the fed revision.
    pub fn progress_notify(&mut self) -> Vec<WatchOutput> {
        let out: Vec<WatchOutput> = self
            .watchers
            .iter()
            .filter(|(_, w)| w.progress_notify && self.watcher_synced(w))
            .map(|((stream, watch_id), _)| WatchOutput {
                stream: *stream,
                response: self.progress_response(*watch_id),
            })
            .collect();
        for output in &out {
            self.count_sent(output.stream, 1);
        }
        out
    }

    /// Catch up unsynced watchers from the store's history, as far as each stream's room
    /// allows (etcd's syncWatchers): whole revisions per response, at most
    /// `max_revisions_per_response` revisions each; a watcher whose next revision is
    /// compacted is canceled with `compact_revision`. Then answer progress requests that
    /// became answerable.
    pub fn sync(&mut self, store: &KvStore) -> Vec<WatchOutput> {
        let keys: Vec<(StreamId, i64)> = self
            .watchers
            .iter()
            .filter(|(_, w)| w.unsynced)
            .map(|(key, _)| *key)
            .collect();
        let mut out = Vec::new();
        for (stream, watch_id) in keys {
            let room = self.room(stream);
            let responses = self.catch_up(store, stream, watch_id, room);
            self.count_sent(stream, responses.len());
            out.extend(
                responses
                    .into_iter()
                    .map(|response| WatchOutput { stream, response }),
            );
        }
        self.answer_pending_progress(&mut out);
        out
    }

    /// After the store was replaced (snapshot restore), or when the member may have missed
    /// part of the log: every watcher continues from its own next revision, replayed from the
    /// new store's history by `sync` (canceled if compacted away); watchers already past the
    /// new current revision simply wait.
    pub fn resync(&mut self, store: &KvStore) -> Vec<WatchOutput> {
        self.fed_rev = self.fed_rev.max(store.current_revision());
        let back_in_time = self.canary_active(WatchCanary::BackInTime);
        let compact = store.compact_revision().max(1);
        for watcher in self.watchers.values_mut() {
            if back_in_time && watcher.next_rev > watcher.start_rev {
                // Planted bug (etcd #15271): resume from where the watcher began, not from
                // where it is, so delivered revisions are sent again.
                watcher.next_rev = watcher.start_rev.max(compact);
            }
            if watcher.next_rev <= self.fed_rev {
                watcher.unsynced = true;
            }
        }
        self.sync(store)
    }

    fn watcher_synced(&self, w: &Watcher) -> bool {
        if w.unsynced && self.canary_active(WatchCanary::ProgressBeforeEvents) {
            // Planted bug (etcd #15220): the notification does not wait for the watcher's
            // undelivered events.
            return true;
        }
        !w.unsynced && w.next_rev == self.fed_rev + 1
    }

    fn stream_synced(&self, stream: StreamId) -> bool {
        self.watchers
            .range((stream, i64::MIN)..=(stream, i64::MAX))
            .all(|(_, w)| self.watcher_synced(w))
    }

    fn progress_response(&self, watch_id: i64) -> WatchResponse {
        WatchResponse {
            header: header(self.fed_rev),
            watch_id,
            ..WatchResponse::default()
        }
    }

    /// Replay history from an unsynced watcher's next revision up to the fed revision in
    /// responses of whole revisions, stopping once `room` responses are produced (the watcher
    /// stays unsynced at the first revision not sent); cancel it if that revision is compacted.
    fn catch_up(
        &mut self,
        store: &KvStore,
        stream: StreamId,
        watch_id: i64,
        room: usize,
    ) -> Vec<WatchResponse> {
        let upto = self.fed_rev.min(store.current_revision());
        let key = (stream, watch_id);
        let watcher = self
            .watchers
            .get(&key)
            .expect("catch_up of an existing watcher");
        if !watcher.unsynced {
            return Vec::new();
        }
        if watcher.next_rev > upto {
            self.watchers.get_mut(&key).expect("present").unsynced = false;
            return Vec::new();
        }
        if room == 0 {
            return Vec::new();
        }
        if watcher.next_rev < store.compact_revision() {
            self.watchers.remove(&key);
            return vec![WatchResponse {
                header: header(upto),
                watch_id,
                canceled: true,
                compact_revision: store.compact_revision(),
                ..WatchResponse::default()
            }];
        }
        let history = store
            .history(watcher.next_rev, upto, watcher.prev_kv)
            .expect("history in [compact, current] is available");
        let mut out = Vec::new();
        let mut events: Vec<Event> = Vec::new();
        let mut revisions = 0usize;
        let mut next_rev = watcher.next_rev;
        let mut complete = true;
        for (rev, revision_events) in &history {
            let selected = watcher.select(revision_events);
            if !selected.is_empty() {
                if revisions == self.options.max_revisions_per_response {
                    out.extend(event_responses(
                        &self.options,
                        watcher.fragment,
                        watch_id,
                        upto,
                        std::mem::take(&mut events),
                    ));
                    revisions = 0;
                    if out.len() >= room {
                        complete = false; // resumes at `rev` on the next sync
                        break;
                    }
                }
                events.extend(selected);
                revisions += 1;
            }
            next_rev = rev + 1;
        }
        if complete {
            next_rev = upto + 1;
        }
        if !events.is_empty() {
            out.extend(event_responses(
                &self.options,
                watcher.fragment,
                watch_id,
                upto,
                events,
            ));
        }
        let watcher = self.watchers.get_mut(&key).expect("present");
        assert!(next_rev > watcher.next_rev || out.is_empty());
        watcher.next_rev = next_rev;
        watcher.unsynced = !complete;
        out
    }
}
