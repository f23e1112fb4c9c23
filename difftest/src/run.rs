//! The driver: one etcd, one `KvStore` (+ `WatchHub`, + a primary `LeaseClock`), the same
//! request stream to both, every outcome compared.
//!
//! Revisions are comparable because both sides see exactly the same requests from the start of
//! the run: seeds run back to back, each beginning with a compared cleanup (delete every key,
//! revoke every lease), so a seed starts from an empty key space at the revision (and compact
//! revision) the previous seeds left. A mismatch names the run's first seed, so the exact run
//! can be repeated.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::time::{Duration, Instant};

use etcd_client::Client;
use faultline_api::{
    DeleteRangeRequest, EtcdError, LeaseGrantRequest, LeaseKeepAliveResponse, LeaseRevokeRequest,
    PutRequest, Request, Response, Revision, WatchCreateRequest, WatchResponse,
};
use faultline_mvcc::{KvStore, LeaseClock, StreamId, WatchHub, WatchHubOptions};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use real_tokio::sync::mpsc;

use crate::compare::{
    diff_outcomes, diff_watch_items, normalize_known_differences, watch_items, Compared,
    StepOutcome, WatchItem,
};
use crate::gen::{Generator, Step, PAD_KEY};
use crate::{real, ErrorOutcome};

/// Placeholder lease ID for the store when etcd refused a server-chosen grant (the store's
/// `apply` needs a non-zero ID; the proposer picks it). Far from any ID either side uses.
const REFUSED_GRANT_PLACEHOLDER_ID: i64 = i64::MAX - 7;
/// How long to wait for etcd to deliver a watch's sentinel event.
const WATCH_SETTLE_TIMEOUT_MS: u64 = 5_000;
/// etcd (3.4 and 3.6) catches up a watch created at a past revision in a background loop that
/// runs every 100 ms; a compaction before that cancels it, while the store catches up at once.
/// To compare data rather than timing, a compaction waits this long after the last watch
/// was opened (DIFFERENCES.md, D6).
const WATCH_SYNC_WAIT_MS: u64 = 250;
/// Each request to etcd must answer within this (a hang is reported, never waited out).
const REQUEST_TIMEOUT_MS: u64 = 10_000;
/// Every this many writes the store is replaced by a restore of its own snapshot, serialized
/// and read back as a member's snapshot file is (the restart path, and a follower installing
/// the leader's snapshot): every later answer then also checks that a snapshot keeps what
/// etcd answers from (revisions, the compact revision, tombstones, leases and their keys).
const RESTORE_EVERY_WRITES: u64 = 17;

/// Deliberately corrupt the store's outcome of one step, to prove a difference is reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tamper {
    pub seed: u64,
    /// Index of a generated step (not counting the seed's cleanup steps).
    pub step_index: usize,
}

#[derive(Clone, Debug)]
pub struct RunOptions {
    pub seeds: Range<u64>,
    pub ops_per_seed: usize,
    pub tamper: Option<Tamper>,
}

/// What a passing run compared.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub seeds: u64,
    /// Compared steps, cleanup and sentinel steps included.
    pub steps: u64,
    /// Steps where both sides returned the same error.
    pub matching_errors: u64,
    /// Compared steps per kind ("Range", "Txn", "Watch", ...).
    pub steps_by_kind: BTreeMap<String, u64>,
    /// Errors per message, both sides agreeing.
    pub errors_by_message: BTreeMap<String, u64>,
    pub watches: u64,
    pub watch_events: u64,
    pub watch_cancellations: u64,
    pub final_revision: Revision,
    /// Wall time spent waiting for etcd's watch catch-up before compactions (see D6).
    pub watch_sync_wait_ms: u64,
    /// Wall time spent waiting for etcd to deliver the watches' sentinel events.
    pub watch_settle_ms: u64,
    /// Times the store was replaced by a restore of its snapshot (`RESTORE_EVERY_WRITES`).
    pub restores: u64,
}

/// Where in a seed a step was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// The compared cleanup before the seed's own steps.
    Cleanup,
    /// The seed's generated steps; the index counts from 0.
    Generated,
    /// The writes that close the seed's watches.
    Sentinel,
    /// Comparing what a watch delivered (the index is the watch's number in the seed).
    WatchEvents,
}

/// A difference between the store and etcd.
#[derive(Clone, Debug)]
pub struct Mismatch {
    pub first_seed: u64,
    pub seed: u64,
    pub phase: Phase,
    pub index: usize,
    pub step: Step,
    pub what: String,
    pub store: String,
    pub etcd: String,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "store and etcd differ: seed {} ({:?} step {}); rerun the same stream with \
             FAULTLINE_DIFFTEST_SEEDS={}..{}",
            self.seed,
            self.phase,
            self.index,
            self.first_seed,
            self.seed + 1
        )?;
        writeln!(f, "  request: {:?}", self.step)?;
        writeln!(f, "  first difference: {}", self.what)?;
        writeln!(f, "  store: {}", self.store)?;
        write!(f, "  etcd:  {}", self.etcd)
    }
}

/// Why a run did not pass.
#[derive(Debug)]
pub enum Failure {
    Mismatch(Box<Mismatch>),
    /// etcd could not be reached or did not answer (not a comparison result).
    Etcd(String),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Mismatch(m) => m.fmt(f),
            Failure::Etcd(message) => write!(f, "etcd failed: {message}"),
        }
    }
}

impl std::error::Error for Failure {}

fn store_error(e: EtcdError) -> ErrorOutcome {
    ErrorOutcome {
        code: format!("{:?}", e.code()),
        message: e.to_string(),
    }
}

fn kind(step: &Step) -> String {
    match step {
        Step::Watch(_) => "Watch".to_string(),
        Step::Request(r) => {
            let debug = format!("{r:?}");
            debug
                .split(|c: char| !c.is_alphanumeric())
                .next()
                .unwrap_or("?")
                .to_string()
        }
    }
}

/// The store side: key space, watches and the leader's lease clock.
struct Model {
    store: KvStore,
    hub: WatchHub,
    clock: LeaseClock,
    started: Instant,
    /// Responses delivered to each watch stream after its created response.
    delivered: BTreeMap<StreamId, Vec<WatchResponse>>,
    writes_since_restore: u64,
    restores: u64,
}

impl Model {
    fn new() -> Model {
        let store = KvStore::new();
        let hub = WatchHub::new(WatchHubOptions::etcd_defaults(), &store);
        let mut clock = LeaseClock::new();
        // The harness's etcd is a single member: the leader from the start.
        clock.promote(0, 0, &[]);
        Model {
            store,
            hub,
            clock,
            started: Instant::now(),
            delivered: BTreeMap::new(),
            writes_since_restore: 0,
            restores: 0,
        }
    }

    /// Replace the store by a restore of its snapshot after a JSON round trip; watchers
    /// continue from where they were (`WatchHub::resync`, as a member does after installing
    /// a snapshot).
    fn restore_from_snapshot(&mut self) {
        let bytes = serde_json::to_vec(&self.store.snapshot()).expect("snapshots serialize");
        let snapshot = serde_json::from_slice(&bytes).expect("snapshots deserialize");
        let restored = KvStore::restore(snapshot);
        assert!(
            restored == self.store,
            "a restored store differs from the one snapshotted"
        );
        self.store = restored;
        // What a watcher gets now is what it had not seen yet (a watch from the past catching
        // up); the comparison with etcd's deliveries catches anything sent twice or skipped.
        for out in self.hub.resync(&self.store) {
            self.delivered
                .entry(out.stream)
                .or_default()
                .push(out.response);
        }
        self.restores += 1;
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn feed_watches(&mut self) {
        let events = self.store.take_events();
        for out in self.hub.on_events(&self.store, &events) {
            self.delivered
                .entry(out.stream)
                .or_default()
                .push(out.response);
        }
    }

    /// `etcd_grant_id`: the ID etcd chose for a server-chosen grant.
    fn execute(
        &mut self,
        request: &Request,
        etcd_grant_id: Option<i64>,
    ) -> Result<Response, ErrorOutcome> {
        let now_ms = self.now_ms();
        let result = match request {
            Request::Range(_) | Request::LeaseLeases => self.store.read(request),
            Request::Txn(_) if !request.is_write() => self.store.read(request),
            Request::LeaseTimeToLive(req) => self.store.read(request).map(|r| match r {
                Response::LeaseTimeToLive(mut ttl) => {
                    if let Some(remaining) = self.clock.remaining_ttl(req.id, now_ms) {
                        ttl.ttl_seconds = remaining;
                    }
                    Response::LeaseTimeToLive(ttl)
                }
                other => other,
            }),
            Request::LeaseKeepAlive(req) => {
                let ttl_seconds = self.clock.keep_alive(req.id, now_ms).unwrap_or(0);
                let header = faultline_api::ResponseHeader {
                    revision: self.store.current_revision(),
                    ..Default::default()
                };
                Ok(Response::LeaseKeepAlive(LeaseKeepAliveResponse {
                    header,
                    id: req.id,
                    ttl_seconds,
                }))
            }
            Request::LeaseGrant(grant) if grant.id == 0 => {
                let id = etcd_grant_id.unwrap_or(REFUSED_GRANT_PLACEHOLDER_ID);
                self.store.apply(&Request::LeaseGrant(LeaseGrantRequest {
                    ttl_seconds: grant.ttl_seconds,
                    id,
                }))
            }
            _ => self.store.apply(request),
        };
        match (&result, request) {
            (Ok(Response::LeaseGrant(g)), _) => self.clock.grant(g.id, g.ttl_seconds, now_ms),
            (Ok(Response::LeaseRevoke(_)), Request::LeaseRevoke(r)) => self.clock.revoke(r.id),
            _ => {}
        }
        self.feed_watches();
        self.store.check_invariants();
        if request.is_write() {
            self.writes_since_restore += 1;
            if self.writes_since_restore == RESTORE_EVERY_WRITES {
                self.writes_since_restore = 0;
                self.restore_from_snapshot();
            }
        }
        result.map_err(store_error)
    }
}

/// One etcd watch, drained into a channel by its own task so etcd never blocks on it.
struct EtcdWatch {
    rx: mpsc::UnboundedReceiver<Result<WatchResponse, ErrorOutcome>>,
    /// Responses already taken from `rx` (while waiting for a catch-up).
    received: Vec<Result<WatchResponse, ErrorOutcome>>,
    task: real_tokio::task::JoinHandle<()>,
}

struct SeedWatch {
    stream: StreamId,
    /// Refused at creation (created + canceled): nothing more may arrive.
    created_canceled: bool,
    compact_revision_at_open: Revision,
    /// etcd may not have caught this watch up yet: (items the store replayed, opened at).
    sync_pending: Option<(usize, Instant)>,
    request: WatchCreateRequest,
    etcd: Option<EtcdWatch>,
}

struct Runner {
    client: Client,
    model: Model,
    summary: Summary,
    first_seed: u64,
    tamper: Option<Tamper>,
    next_stream: StreamId,
}

fn tamper_outcome(o: &mut StepOutcome) {
    match o {
        StepOutcome::Unary(Ok(r)) => r.header_mut().revision += 1000,
        StepOutcome::Unary(Err(e)) => e.message.push_str(" (tampered)"),
        StepOutcome::WatchCreated(w) => w.watch_id += 1,
    }
}

async fn with_timeout<T>(
    what: &str,
    fut: impl std::future::Future<Output = T>,
) -> Result<T, Failure> {
    real_tokio::time::timeout(Duration::from_millis(REQUEST_TIMEOUT_MS), fut)
        .await
        .map_err(|_| Failure::Etcd(format!("{what}: no answer within {REQUEST_TIMEOUT_MS} ms")))
}

impl Runner {
    async fn unary(
        &mut self,
        seed: u64,
        phase: Phase,
        index: usize,
        request: Request,
    ) -> Result<(), Failure> {
        let step = Step::Request(request.clone());
        let mut etcd = StepOutcome::Unary(
            with_timeout("request", real::execute(&mut self.client, &request)).await?,
        );
        if let StepOutcome::Unary(Err(e)) = &etcd {
            if e.code == "client" || e.code == "Unavailable" {
                return Err(Failure::Etcd(format!("{request:?}: {e:?}")));
            }
        }
        let grant_id = match &etcd {
            StepOutcome::Unary(Ok(Response::LeaseGrant(g))) => Some(g.id),
            _ => None,
        };
        let mut store = StepOutcome::Unary(self.model.execute(&request, grant_id));
        self.compare(seed, phase, index, step, &mut store, &mut etcd)
    }

    fn compare(
        &mut self,
        seed: u64,
        phase: Phase,
        index: usize,
        step: Step,
        store: &mut StepOutcome,
        etcd: &mut StepOutcome,
    ) -> Result<(), Failure> {
        if phase == Phase::Generated
            && self.tamper
                == Some(Tamper {
                    seed,
                    step_index: index,
                })
        {
            tamper_outcome(store);
        }
        normalize_known_differences(Compared::Step {
            step: &step,
            store,
            etcd,
        });
        if let Some(what) = diff_outcomes(store, etcd) {
            return Err(Failure::Mismatch(Box::new(Mismatch {
                first_seed: self.first_seed,
                seed,
                phase,
                index,
                step,
                what,
                store: format!("{store:?}"),
                etcd: format!("{etcd:?}"),
            })));
        }
        self.summary.steps += 1;
        *self.summary.steps_by_kind.entry(kind(&step)).or_default() += 1;
        if let StepOutcome::Unary(Err(e)) = etcd {
            self.summary.matching_errors += 1;
            *self
                .summary
                .errors_by_message
                .entry(e.message.clone())
                .or_default() += 1;
        }
        Ok(())
    }

    async fn open_watch(
        &mut self,
        seed: u64,
        index: usize,
        request: WatchCreateRequest,
    ) -> Result<SeedWatch, Failure> {
        let step = Step::Watch(request.clone());
        let (created, stream) =
            with_timeout("watch create", real::open_watch(&mut self.client, &request))
                .await?
                .map_err(|e| Failure::Etcd(format!("watch {request:?}: {e:?}")))?;
        let (tx, rx) = mpsc::unbounded_channel();
        let mut stream_for_task = stream;
        let task = real_tokio::spawn(async move {
            loop {
                match real::next_watch_response(&mut stream_for_task).await {
                    Ok(Some(r)) => {
                        if tx.send(Ok(r)).is_err() {
                            break;
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        break;
                    }
                }
            }
        });
        let stream_id = self.next_stream;
        self.next_stream += 1;
        let mut responses = self
            .model
            .hub
            .create(&self.model.store, stream_id, &request);
        assert!(!responses.is_empty(), "a create always answers");
        let created_store = responses.remove(0);
        self.model
            .delivered
            .entry(stream_id)
            .or_default()
            .extend(responses);
        let mut store = StepOutcome::WatchCreated(created_store);
        let mut etcd = StepOutcome::WatchCreated(created);
        self.compare(seed, Phase::Generated, index, step, &mut store, &mut etcd)?;
        self.summary.watches += 1;
        // Only a watch from a past revision starts "unsynced" in etcd (start 0 or a future
        // start is synced at once); one refused or canceled at creation never syncs.
        let historical = request.start_revision > 0
            && request.start_revision <= self.model.store.current_revision();
        let created_canceled = matches!(&store, StepOutcome::WatchCreated(w) if w.canceled);
        let etcd_watch = EtcdWatch {
            rx,
            received: Vec::new(),
            task,
        };
        // When the store replayed something, etcd's catch-up is done once it delivered as many
        // items; with nothing to replay only time tells. Waited for before a compaction only.
        let sync_pending = (historical && !created_canceled).then(|| {
            let expected = watch_items(self.model.delivered.get(&stream_id).map_or(&[], |v| v));
            (expected.len(), Instant::now())
        });
        Ok(SeedWatch {
            stream: stream_id,
            created_canceled,
            sync_pending,
            compact_revision_at_open: self.model.store.compact_revision(),
            request,
            etcd: Some(etcd_watch),
        })
    }

    /// Wait until etcd delivered, on this watch, an event at or after `sentinel_rev` or a
    /// cancellation, then compare everything before the sentinel with the store's.
    async fn settle_watch(
        &mut self,
        seed: u64,
        number: usize,
        watch: &mut SeedWatch,
        sentinel_rev: Revision,
    ) -> Result<(), Failure> {
        let etcd_watch = watch.etcd.take().expect("settled once");
        let EtcdWatch {
            mut rx,
            received,
            task,
        } = etcd_watch;
        let mut etcd_responses: Vec<WatchResponse> = Vec::new();
        let mut etcd_error = None;
        for r in received {
            match r {
                Ok(r) => etcd_responses.push(r),
                Err(e) => etcd_error = Some(e),
            }
        }
        let deadline = Instant::now() + Duration::from_millis(WATCH_SETTLE_TIMEOUT_MS);
        let done = |responses: &[WatchResponse]| {
            responses
                .iter()
                .any(|r| r.canceled || r.events.iter().any(|e| e.kv.mod_revision >= sentinel_rev))
        };
        if watch.created_canceled {
            // Nothing may follow a refusal: take what already arrived, without waiting.
            while let Ok(message) = rx.try_recv() {
                match message {
                    Ok(r) => etcd_responses.push(r),
                    Err(e) => etcd_error = Some(e),
                }
            }
        }
        while !watch.created_canceled && etcd_error.is_none() && !done(&etcd_responses) {
            let left = deadline.saturating_duration_since(Instant::now());
            match real_tokio::time::timeout(left, rx.recv()).await {
                Ok(Some(Ok(r))) => etcd_responses.push(r),
                Ok(Some(Err(e))) => {
                    etcd_error = Some(e);
                    break;
                }
                Ok(None) | Err(_) => break,
            }
        }
        task.abort();
        let store_responses = self
            .model
            .delivered
            .remove(&watch.stream)
            .unwrap_or_default();
        self.model.hub.close_stream(watch.stream);
        let cut = |items: Vec<WatchItem>| -> Vec<WatchItem> {
            items
                .into_iter()
                .filter(|i| match i {
                    WatchItem::Event(e) => e.kv.mod_revision < sentinel_rev,
                    WatchItem::Canceled { .. } => true,
                })
                .collect()
        };
        let mut store_items = cut(watch_items(&store_responses));
        let mut etcd_items = cut(watch_items(&etcd_responses));
        normalize_known_differences(Compared::WatchEvents {
            request: &watch.request,
            compact_revision_at_open: watch.compact_revision_at_open,
            store: &mut store_items,
            etcd: &mut etcd_items,
        });
        let store_done = done(&store_responses);
        let etcd_done = done(&etcd_responses);
        let what = if let Some(e) = &etcd_error {
            Some(format!("etcd's watch stream failed: {e:?}"))
        } else if store_done != etcd_done {
            Some(format!(
                "store reached the sentinel revision {sentinel_rev}: {store_done}; etcd within \
                 {WATCH_SETTLE_TIMEOUT_MS} ms: {etcd_done}"
            ))
        } else {
            diff_watch_items(&store_items, &etcd_items)
        };
        if let Some(what) = what {
            return Err(Failure::Mismatch(Box::new(Mismatch {
                first_seed: self.first_seed,
                seed,
                phase: Phase::WatchEvents,
                index: number,
                step: Step::Watch(watch.request.clone()),
                what,
                store: format!("{store_items:?}"),
                etcd: format!("{etcd_items:?}"),
            })));
        }
        for item in &store_items {
            match item {
                WatchItem::Event(_) => self.summary.watch_events += 1,
                WatchItem::Canceled { .. } => self.summary.watch_cancellations += 1,
            }
        }
        Ok(())
    }

    async fn run_seed(&mut self, seed: u64, ops_per_seed: usize) -> Result<(), Failure> {
        // Cleanup: an empty key space and no leases, compared like any step.
        let mut cleanup = 0;
        self.unary(
            seed,
            Phase::Cleanup,
            cleanup,
            Request::DeleteRange(DeleteRangeRequest {
                key: vec![0],
                range_end: vec![0],
                prev_kv: false,
            }),
        )
        .await?;
        for (id, _) in self.model.store.leases() {
            cleanup += 1;
            self.unary(
                seed,
                Phase::Cleanup,
                cleanup,
                Request::LeaseRevoke(LeaseRevokeRequest { id }),
            )
            .await?;
        }
        cleanup += 1;
        self.unary(seed, Phase::Cleanup, cleanup, Request::LeaseLeases)
            .await?;

        let rng = ChaCha8Rng::seed_from_u64(seed);
        let mut generator = Generator::new(rng, self.model.store.current_revision());
        let mut watches: Vec<SeedWatch> = Vec::new();
        for index in 0..ops_per_seed {
            match generator.next_step(&self.model.store) {
                Step::Request(request) => {
                    if let Request::Compact(_) = request {
                        let started = Instant::now();
                        await_catch_up(&mut watches).await;
                        self.summary.watch_sync_wait_ms +=
                            u64::try_from(started.elapsed().as_millis()).unwrap_or(0);
                    }
                    self.unary(seed, Phase::Generated, index, request).await?
                }
                Step::Watch(request) => {
                    let watch = self.open_watch(seed, index, request).await?;
                    watches.push(watch);
                }
            }
        }

        // Close the watches: padding writes push every future start revision below the
        // sentinels, then each watch gets a put and a delete of its own key, one of which it
        // must see (no watch filters both). Everything below the first sentinel is compared.
        let mut index = 0;
        for _ in 0..3 {
            self.unary(
                seed,
                Phase::Sentinel,
                index,
                Request::Put(PutRequest {
                    key: PAD_KEY.to_vec(),
                    value: b"pad".to_vec(),
                    ..PutRequest::default()
                }),
            )
            .await?;
            index += 1;
        }
        let sentinel_rev = self.model.store.current_revision() + 1;
        for watch in &watches {
            let key = watch.request.key.clone();
            let put = Request::Put(PutRequest {
                key: key.clone(),
                value: b"sentinel".to_vec(),
                ..PutRequest::default()
            });
            let delete = Request::DeleteRange(DeleteRangeRequest {
                key,
                range_end: Vec::new(),
                prev_kv: false,
            });
            self.unary(seed, Phase::Sentinel, index, put).await?;
            self.unary(seed, Phase::Sentinel, index + 1, delete).await?;
            index += 2;
        }
        let settle_started = Instant::now();
        for (number, watch) in watches.iter_mut().enumerate() {
            self.settle_watch(seed, number, watch, sentinel_rev).await?;
        }
        self.summary.watch_settle_ms +=
            u64::try_from(settle_started.elapsed().as_millis()).unwrap_or(0);
        self.summary.seeds += 1;
        Ok(())
    }
}

/// Before a compaction: wait until etcd has caught up every watch opened at a past revision
/// (it delivered what the store replayed, or WATCH_SYNC_WAIT_MS passed when there was nothing
/// to replay). A shortfall is not judged here; the watch comparison reports it.
async fn await_catch_up(watches: &mut [SeedWatch]) {
    for watch in watches.iter_mut() {
        let Some((expected, opened)) = watch.sync_pending.take() else {
            continue;
        };
        let etcd = watch.etcd.as_mut().expect("open until settled");
        if expected == 0 {
            let wait = Duration::from_millis(WATCH_SYNC_WAIT_MS);
            let since = opened.elapsed();
            if since < wait {
                real_tokio::time::sleep(wait - since).await;
            }
            continue;
        }
        let deadline = Instant::now() + Duration::from_millis(WATCH_SETTLE_TIMEOUT_MS);
        loop {
            let got: Vec<WatchResponse> = etcd
                .received
                .iter()
                .filter_map(|r| r.as_ref().ok().cloned())
                .collect();
            if watch_items(&got).len() >= expected || etcd.received.iter().any(|r| r.is_err()) {
                break;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match real_tokio::time::timeout(left, etcd.rx.recv()).await {
                Ok(Some(r)) => etcd.received.push(r),
                Ok(None) | Err(_) => break,
            }
        }
    }
}

/// Connect to etcd at `endpoint` and compare the store with it over `options.seeds`.
pub fn run(endpoint: &str, options: &RunOptions) -> Result<Summary, Failure> {
    let runtime = real_tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Etcd(format!("building a tokio runtime: {e}")))?;
    runtime.block_on(async {
        let client = with_timeout("connect", Client::connect([endpoint], None))
            .await?
            .map_err(|e| Failure::Etcd(format!("connecting to {endpoint}: {e}")))?;
        let mut runner = Runner {
            client,
            model: Model::new(),
            summary: Summary::default(),
            first_seed: options.seeds.start,
            tamper: options.tamper,
            next_stream: 1,
        };
        // The store starts empty at revision 1: a compared first read proves etcd does too.
        runner
            .unary(options.seeds.start, Phase::Cleanup, 0, Request::LeaseLeases)
            .await?;
        for seed in options.seeds.clone() {
            runner.run_seed(seed, options.ops_per_seed).await?;
        }
        runner.summary.final_revision = runner.model.store.current_revision();
        runner.summary.restores = runner.model.restores;
        Ok(runner.summary)
    })
}

/// Probe used while etcd starts: one range request answered.
pub fn probe(endpoint: &str) -> bool {
    let Ok(runtime) = real_tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return false;
    };
    runtime.block_on(async {
        let attempt = async {
            let mut client = Client::connect([endpoint], None).await.ok()?;
            client.get("faultline-probe", None).await.ok()
        };
        matches!(
            real_tokio::time::timeout(Duration::from_millis(1_000), attempt).await,
            Ok(Some(_))
        )
    })
}
