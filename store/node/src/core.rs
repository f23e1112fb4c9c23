//! The synchronous heart of a member: what to do with a tick, a peer message, a client request
//! and a Raft `Ready`. No awaits here; `run_member` feeds it and sends what it returns.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use faultline_api::{
    EtcdError, LeaseId, LeaseKeepAliveResponse, Request, Response, ResponseHeader,
};
use faultline_mvcc::{KvStore, LeaseClock, StoreOptions, WatchHub, WatchHubOptions};
use faultline_raft::{
    Config as RaftConfig, Entry, EntryKind, Limits, LogIndex, Message, NodeId, PersistedState,
    ProposeError, Raft, Role, Term,
};
use faultline_storage::{
    open_member_storage, Disk, RestartError, SnapshotFiles, SnapshotOptions, StorageOptions, Wal,
    WalOptions,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::time::Instant;

use crate::{Canary, Clock, ClusterReply, NodeConfig, NodeEvent, Observer, Reply};

mod aimed;
mod buggify;
mod fail_stop;
mod lease;
mod membership;
mod metrics;
mod publish;
mod read_cache;
mod snapshot;
mod watch;

pub(crate) use fail_stop::DiskFailure;
pub use membership::member_id_for;

pub use membership::MemberAttrs;
pub use publish::{Attributes, Published};

use watch::WatchStream;

struct PendingWrite {
    term: Term,
    waiter: Waiter,
    deadline: Instant,
}

/// Who waits for a proposal: a client of the key space or of the Cluster service, or a
/// keep-alive waiting for its lease's checkpoint to be cleared (with its answer).
enum Waiter {
    Kv(Reply),
    Cluster(ClusterReply),
    KeepAlive(Reply, Response),
}

impl Waiter {
    fn fail(self, error: EtcdError) {
        match self {
            Waiter::Kv(reply) | Waiter::KeepAlive(reply, _) => {
                let _ = reply.send(Err(error));
            }
            Waiter::Cluster(reply) => {
                let _ = reply.send(Err(error));
            }
        }
    }
}

struct PendingRead {
    request: Request,
    reply: Reply,
    deadline: Instant,
}

pub struct NodeCore {
    config: NodeConfig,
    raft: Raft,
    wal: Wal,
    snapshots: SnapshotFiles,
    /// A capture of `kv` waiting for the catch-up margin (see `snapshot.rs`).
    pending_compaction: Option<snapshot::PendingCompaction>,
    kv: KvStore,
    observer: Arc<dyn Observer>,
    rng: ChaCha8Rng,
    /// Index of the last entry applied to `kv`. Invariant: applied <= raft's commit.
    applied: LogIndex,
    role: Role,
    term: Term,
    leader: Option<NodeId>,
    /// Proposals of this member by log index, until applied or abandoned.
    pending_writes: BTreeMap<LogIndex, PendingWrite>,
    /// Linearizable reads waiting for their ReadIndex, by read context.
    reads_awaiting_index: BTreeMap<u64, Vec<PendingRead>>,
    /// Reads whose ReadIndex is known, waiting for `applied` to reach it.
    reads_awaiting_apply: Vec<(LogIndex, PendingRead)>,
    next_read_ctx: u64,
    /// Lease expiry (leader only), mirrored from every applied grant and revoke.
    lease_clock: LeaseClock,
    clock: Arc<dyn Clock>,
    /// Expired leases whose revoke this leader proposed, with the clock time it did.
    revoking: BTreeMap<LeaseId, u64>,
    /// Keep-alives of expired leases, answered once the revoke applied (see `lease.rs`).
    keep_alives_awaiting_revoke: BTreeMap<LeaseId, Vec<(Reply, Instant)>>,
    /// When the leader proposes its next lease checkpoint (clock time; see `lease.rs`).
    next_lease_checkpoint_ms: u64,
    hub: WatchHub,
    streams: BTreeMap<u64, WatchStream>,
    /// Stream ids are `stream_base + n`: random per incarnation, so a restarted member never
    /// mistakes an old stream id for one of its own.
    stream_base: u64,
    next_stream: u64,
    last_progress_notify_ms: u64,
    /// Every member ever added, with its address (see `membership.rs`); grows only.
    address_book: BTreeMap<u64, MemberAttrs>,
    /// Peers our log does not know yet, with the address their messages came from (etcd's
    /// "remotes"): a member that fell behind can answer a leader added after its log ends.
    remotes: BTreeMap<u64, SocketAddr>,
    /// Members whose removal was applied: their IDs never come back (etcd's removed set).
    removed_ids: std::collections::BTreeSet<u64>,
    /// The name and client URLs every member published (see `publish.rs`).
    publishing: publish::Publishing,
    /// The configuration as of `applied` (Raft's own runs ahead: it changes on append).
    applied_conf: faultline_raft::ConfState,
    /// Set once this member applied its own removal: it stops serving and sending.
    removed: bool,
    pending_transfer: Option<membership::PendingTransfer>,
    /// Set when a storage write or sync failed: the member stopped (see `fail_stop.rs`).
    stopped_by_disk: Option<DiskFailure>,
    /// Set when the observer halted the member at a moment it aimed a crash at (`aimed.rs`):
    /// from then on nothing is persisted, applied or sent until the member is killed.
    halted: bool,
    /// BUGGIFY's own draws (`buggify.rs`), seeded from the member's seed.
    buggify_rng: ChaCha8Rng,
    /// Proposals a BUGGIFY point dropped, answered `Timeout` at their deadline.
    dropped_proposals: Vec<(Reply, Instant)>,
    /// Simulated time a slow disk's operations took, not yet waited out (`fail_stop.rs`).
    disk_latency_ms: u64,
    /// The stable-leader-read-cache canary's state (`core/read_cache.rs`).
    read_cache: read_cache::ReadCache,
}

impl NodeCore {
    /// Recover from the newest snapshot and the WAL after it and build the Raft state machine:
    /// the key space is restored from the snapshot, then the committed entries after it are
    /// re-applied.
    pub fn open(
        config: NodeConfig,
        disk: Box<dyn Disk + Send>,
        observer: Arc<dyn Observer>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        NodeCore::try_open(config, disk, observer, clock)
            .unwrap_or_else(|error| panic!("storage recovery failed: {error}"))
    }

    /// [`NodeCore::open`], or why the member's storage cannot be recovered (damaged synced
    /// data: a checksum names the file and the byte; the member must not start).
    pub fn try_open(
        config: NodeConfig,
        disk: Box<dyn Disk + Send>,
        observer: Arc<dyn Observer>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, RestartError> {
        assert_config_supported(&config);
        // The storage canary reaches the WAL through the options (recovery acts on it too).
        let storage = open_member_storage(disk, storage_options(&config))?;
        let restart = storage.restart;
        let raft_snapshot = restart
            .snapshot
            .as_ref()
            .map(|s| snapshot::decode_payload(&s.payload));
        let persisted = PersistedState {
            hard_state: restart.hard_state,
            entries: restart.entries,
        };
        let hard_state = persisted.hard_state;
        let snapshot_index = raft_snapshot.as_ref().map_or(0, |s| s.metadata.index.0);
        let last_index = persisted
            .entries
            .last()
            .map_or(snapshot_index, |e| e.index.0);
        let raft_config = raft_config(&config);
        let bootstrap_conf = faultline_raft::ConfState::with_voters(raft_config.voters.clone());
        let config_rng_seed = config.rng_seed;
        let mut rng = ChaCha8Rng::seed_from_u64(config.rng_seed);
        let snapshot::RestoredState {
            mut kv,
            members: snapshot_members,
            removed_ids: restored_removed,
            attributes: restored_attributes,
        } = restored_state(&config, raft_snapshot.as_ref());
        let address_book = membership::initial_address_book(&config.members, &snapshot_members);
        // The canary is this member's, not replicated state: set again after every restore
        // (`decode_state` sets it on a restored store).
        kv.set_canary(config.canary.and_then(Canary::kv_canary));
        observer.on_event(
            config.id,
            NodeEvent::Recovered {
                term: hard_state.term.0,
                commit: hard_state.commit.0,
                last_index,
                snapshot_index,
                revision: kv.current_revision(),
            },
        );
        let recovered_entries = persisted.entries.clone();
        let raft = Raft::recover(
            raft_config,
            Limits::default(),
            raft_snapshot,
            persisted,
            rng.random(),
        );
        let hub = WatchHub::new(watch_hub_options(&config), &kv);
        let stream_base = u64::from(rng.random::<u32>()) << 32;
        let now_ms = clock.now_ms();
        let mut lease_clock = LeaseClock::new();
        // The snapshot's leases; the rest are rebuilt as the committed log is re-applied.
        lease_clock.sync(&kv.leases(), now_ms);
        let mut core = NodeCore {
            config,
            raft,
            wal: storage.wal,
            snapshots: storage.snapshots,
            pending_compaction: None,
            kv,
            observer,
            rng,
            applied: LogIndex(snapshot_index),
            role: Role::Follower,
            term: hard_state.term,
            leader: None,
            pending_writes: BTreeMap::new(),
            reads_awaiting_index: BTreeMap::new(),
            reads_awaiting_apply: Vec::new(),
            next_read_ctx: 1,
            lease_clock,
            clock,
            revoking: BTreeMap::new(),
            keep_alives_awaiting_revoke: BTreeMap::new(),
            next_lease_checkpoint_ms: 0,
            hub,
            streams: BTreeMap::new(),
            stream_base,
            next_stream: 1,
            last_progress_notify_ms: now_ms,
            address_book,
            remotes: BTreeMap::new(),
            removed_ids: restored_removed,
            publishing: publish::Publishing::restored(restored_attributes),
            applied_conf: faultline_raft::ConfState::default(),
            removed: false,
            pending_transfer: None,
            stopped_by_disk: None,
            halted: false,
            buggify_rng: ChaCha8Rng::seed_from_u64(config_rng_seed ^ 0xb066_1f7e_b066_1f7e),
            dropped_proposals: Vec::new(),
            disk_latency_ms: 0,
            read_cache: read_cache::ReadCache::default(),
        };
        core.applied_conf = core
            .raft
            .snapshot()
            .map_or_else(|| bootstrap_conf, |s| s.metadata.conf_state.clone());
        core.learn_addresses(&recovered_entries);
        Ok(core)
    }

    /// A message from a peer, which sent it from `from_addr`.
    pub fn step(&mut self, message: Message, from_addr: SocketAddr) {
        if self.removed {
            return; // a removed member is gone for the others
        }
        self.remember_sender(message.from, from_addr);
        self.read_cache_heard(message.from);
        self.raft.step(message);
    }

    pub fn tick(&mut self, now: Instant) {
        if self.removed {
            return;
        }
        self.raft.tick();
        self.read_cache_tick(now);
        self.expire_requests(now);
        self.expire_dropped_proposals(now);
        self.expire_transfer(now);
        let now_ms = self.clock.now_ms();
        self.revoke_expired_leases(now_ms);
        self.checkpoint_leases(now_ms);
        self.publish_own_attributes(now_ms);
        self.watch_tick(now, now_ms);
    }

    /// Answer at once (errors, local reads) or register the request until Raft decides.
    pub fn handle_client(&mut self, request: Request, reply: Reply, deadline: Instant) {
        if self.removed {
            let _ = reply.send(Err(EtcdError::Removed));
            return;
        }
        if let Request::Range(range) = &request {
            if range.serializable {
                let result = self.read_local(&request);
                let _ = reply.send(result);
                return;
            }
        }
        if matches!(request, Request::HashKv(_)) {
            // HashKv is member-local by definition (etcd's Maintenance service).
            let result = self.read_local(&request);
            let _ = reply.send(result);
            return;
        }
        if self.role != Role::Leader {
            if let Request::LeaseKeepAlive(keep_alive) = &request {
                if self.canary_active(Canary::KeepAliveNotForwarded) {
                    // Planted bug: acknowledged here, never passed on to the leader.
                    let response = self.canary_ack_keep_alive_locally(keep_alive.id);
                    let _ = reply.send(Ok(response));
                    return;
                }
            }
            if self.canary_active(Canary::StaleFollowerRead) && !request.is_write() {
                // Planted bug: serve a linearizable read from a follower's local state.
                let result = self.read_local(&request);
                let _ = reply.send(result);
                return;
            }
            let _ = reply.send(Err(self.not_leader()));
            return;
        }
        if request.is_write() {
            self.propose(request, reply, deadline);
        } else if self.canary_active(Canary::LeaderLocalRead) {
            // Planted bug: trust our own leadership instead of confirming it with a quorum.
            if let Request::LeaseKeepAlive(keep_alive) = &request {
                self.serve_keep_alive(keep_alive.id, reply, deadline);
                return;
            }
            let result = self.read_local(&request);
            let _ = reply.send(result);
        } else if let Some(result) = self.canary_cached_read(&request) {
            // Planted bug (`read_cache.rs`): a long-serving leader reads its stale cache.
            let _ = reply.send(result);
        } else {
            let ctx = self.next_read_ctx;
            self.next_read_ctx += 1;
            match self.raft.read_index(ctx) {
                Ok(()) => self
                    .reads_awaiting_index
                    .entry(ctx)
                    .or_default()
                    .push(PendingRead {
                        request,
                        reply,
                        deadline,
                    }),
                Err(ProposeError::NotLeader { leader_hint }) => {
                    let _ = reply.send(Err(EtcdError::NotLeader {
                        leader_hint: leader_hint.map(|id| id.0),
                    }));
                }
            }
        }
    }

    fn propose(&mut self, mut request: Request, reply: Reply, deadline: Instant) {
        // What the request is wrong in itself is answered now, not committed (etcd checks
        // requests before proposing them too); apply would give every member the same error.
        if let Err(error) = self.kv.check_request(&request) {
            let _ = reply.send(Err(error));
            return;
        }
        if let Request::LeaseGrant(grant) = &mut request {
            if grant.id == 0 {
                // The proposer picks the ID so every replica applies the same one (etcd: a
                // positive int63 from the leader's ID generator).
                grant.id = self.rng.random_range(1..i64::MAX);
            }
        }
        let Some(reply) = self.buggify_drop_proposal(reply, deadline) else {
            return;
        };
        let data = bincode::serialize(&request).expect("requests always serialize");
        match self.raft.propose(data) {
            Ok((term, index)) => {
                let previous = self.pending_writes.insert(
                    index,
                    PendingWrite {
                        term,
                        waiter: Waiter::Kv(reply),
                        deadline,
                    },
                );
                assert!(previous.is_none(), "two proposals at index {index:?}");
            }
            Err(ProposeError::NotLeader { leader_hint }) => {
                let _ = reply.send(Err(EtcdError::NotLeader {
                    leader_hint: leader_hint.map(|id| id.0),
                }));
            }
        }
    }

    fn not_leader(&self) -> EtcdError {
        match self.leader {
            Some(leader) if leader.0 != self.config.id => EtcdError::NotLeader {
                leader_hint: Some(leader.0),
            },
            _ => EtcdError::NoLeader,
        }
    }

    fn canary_active(&self, canary: Canary) -> bool {
        cfg!(feature = "canaries") && self.config.canary == Some(canary)
    }

    /// Serve a read from local state. Lease keep-alives and remaining TTLs come from the
    /// lease clock, which only the leader runs (a follower answers TTL 0 to a keep-alive and
    /// the granted TTL to TimeToLive; `handle_client` sends neither to a follower).
    fn read_local(&mut self, request: &Request) -> Result<Response, EtcdError> {
        let now_ms = self.clock.now_ms();
        let mut response = match request {
            Request::LeaseKeepAlive(keep_alive) => {
                Response::LeaseKeepAlive(LeaseKeepAliveResponse {
                    header: ResponseHeader {
                        revision: self.kv.current_revision(),
                        ..ResponseHeader::default()
                    },
                    id: keep_alive.id,
                    // etcd answers TTL 0 (not an error) for an unknown or expired lease.
                    ttl_seconds: self
                        .lease_clock
                        .keep_alive(keep_alive.id, now_ms)
                        .unwrap_or(0),
                })
            }
            Request::LeaseTimeToLive(ttl) => {
                let mut response = self.kv.read(request)?;
                if let Response::LeaseTimeToLive(r) = &mut response {
                    if r.ttl_seconds >= 0 {
                        if let Some(remaining) = self.lease_clock.remaining_ttl(ttl.id, now_ms) {
                            r.ttl_seconds = remaining;
                        }
                    }
                }
                response
            }
            _ => self.kv.read(request)?,
        };
        self.stamp(&mut response);
        Ok(response)
    }

    /// The header of a response this member answers now.
    fn header(&self) -> ResponseHeader {
        ResponseHeader {
            revision: self.kv.current_revision(),
            member_id: self.config.id,
            raft_term: self.term.0,
            ..ResponseHeader::default()
        }
    }

    fn stamp(&self, response: &mut Response) {
        let header = response.header_mut();
        header.member_id = self.config.id;
        header.raft_term = self.term.0;
    }

    /// Persist, apply and collect messages until Raft has nothing more to say.
    /// Returns the messages to send; they may only leave after this returns (the WAL is synced).
    ///
    /// A storage error stops the member for good (`fail_stop.rs`): no message of that Ready
    /// or any later one leaves, nothing more is applied or acknowledged.
    pub fn process_ready(&mut self) -> Vec<Message> {
        if self.stopped_by_disk.is_some() || self.halted {
            return Vec::new();
        }
        match self.persist_and_apply() {
            Ok(outbox) => outbox,
            Err(failure) => {
                self.fail_stop(failure);
                Vec::new()
            }
        }
    }

    fn persist_and_apply(&mut self) -> Result<Vec<Message>, DiskFailure> {
        let mut outbox = Vec::new();
        while self.raft.has_ready() {
            let mut ready = self.raft.ready();
            if let Some(soft) = &ready.soft_state {
                self.on_soft_state(soft.role, soft.term, soft.leader);
            }
            if let Some(snapshot) = &ready.snapshot {
                // Durable before the entries after it and before any message acknowledges it.
                self.persist_snapshot(snapshot)?;
                if self.halted {
                    return Ok(Vec::new()); // an aimed crash at `MidSnapshot`
                }
            }
            // Before any message to a member these entries add can leave.
            self.learn_addresses(&ready.entries);
            if ready.hard_state.is_some() || !ready.entries.is_empty() {
                self.wal
                    .save(ready.hard_state, &ready.entries)
                    .map_err(|e| DiskFailure::new("WAL write", e))?;
                if self.halt_before_sync(&ready) {
                    return Ok(Vec::new());
                }
                if !self.canary_active(Canary::AckBeforeSync) && !self.canary_skips_sync(&ready) {
                    self.wal
                        .sync()
                        .map_err(|e| DiskFailure::new("WAL sync", e))?;
                }
            }
            if let Some(snapshot) = &ready.snapshot {
                self.install_snapshot(snapshot);
                self.wal
                    .release_to(snapshot.metadata.index)
                    .map_err(|e| DiskFailure::new("WAL release after a snapshot", e))?;
            }
            for entry in &ready.committed_entries {
                self.apply(entry);
            }
            for read_state in &ready.read_states {
                if let Some(reads) = self.reads_awaiting_index.remove(&read_state.ctx) {
                    for read in reads {
                        self.reads_awaiting_apply.push((read_state.index, read));
                    }
                }
            }
            // Moved, not cloned: `advance` reads the entries, never the messages.
            let messages = std::mem::take(&mut ready.messages);
            self.raft.advance(&ready);
            self.raft.check_invariants();
            let halt = self.halt_after_answers(&messages);
            outbox.extend(messages);
            if halt {
                return Ok(outbox);
            }
            if self.removed {
                // Never snapshot past our own removal: a restart replays it from the WAL and
                // stops again.
                return Ok(Vec::new());
            }
            self.maybe_compact()?;
            if self.halted {
                return Ok(outbox); // durable before the snapshot began: they may leave
            }
            if self.disk_was_slow() {
                // What follows this Ready waits for the slow disk (`drive_member`).
                break;
            }
        }
        self.serve_applied_reads();
        self.flush_watch_polls();
        Ok(outbox)
    }

    fn on_soft_state(&mut self, role: Role, term: Term, leader: Option<NodeId>) {
        let was_leader = self.role == Role::Leader;
        if term != self.term {
            // A new term: this member may have been cut off (etcd restores a leader's snapshot
            // then, and resyncs its watchers; etcd #15271 broke exactly this). Our members
            // catch up through the log, so every watcher is current and this re-sends nothing.
            let outputs = self.hub.resync(&self.kv);
            self.deliver_watch(outputs);
        }
        self.role = role;
        self.term = term;
        self.leader = leader;
        self.read_cache_reset();
        self.on_leader_for_transfer(leader);
        self.observer.on_event(
            self.config.id,
            NodeEvent::RoleChanged {
                role: format!("{role:?}"),
                term: term.0,
                leader: leader.map(|id| id.0),
            },
        );
        // A new leader's lease clock is promoted when it applies its own term's empty entry
        // (`promote_leases`), after every checkpoint of earlier terms.
        if was_leader && role != Role::Leader {
            self.lease_clock.demote();
            self.revoking.clear();
            // Nothing was renewed: a definite failure the client retries on the new leader.
            self.fail_keep_alives_awaiting_revoke(self.not_leader());
            // Our proposals may still commit under the next leader, or never: unknown.
            for (_, write) in std::mem::take(&mut self.pending_writes) {
                write.waiter.fail(EtcdError::LeaderChanged);
            }
            // Reads have not been served: a definite failure the client may retry.
            self.fail_reads(self.not_leader());
        }
    }

    /// Answer every read not yet served with `error`.
    fn fail_reads(&mut self, error: EtcdError) {
        for (_, reads) in std::mem::take(&mut self.reads_awaiting_index) {
            for read in reads {
                let _ = read.reply.send(Err(error.clone()));
            }
        }
        for (_, read) in std::mem::take(&mut self.reads_awaiting_apply) {
            let _ = read.reply.send(Err(error.clone()));
        }
    }

    fn apply(&mut self, entry: &Entry) {
        assert_eq!(
            entry.index.0,
            self.applied.0 + 1,
            "committed entries are applied in order, without gaps"
        );
        self.applied = entry.index;
        let result = if matches!(entry.kind, EntryKind::ConfChange { .. }) {
            // Raft put it in force when it was appended; the member list moves on now.
            let waiter = self.pending_writes.remove(&entry.index);
            self.apply_conf_change(entry, waiter);
            None
        } else if entry.data.is_empty() {
            // A leader's no-op; our own term's means every earlier entry is applied.
            if self.role == Role::Leader
                && entry.term == self.term
                && !self.lease_clock.is_primary()
            {
                self.promote_leases();
            }
            None
        } else if let Some(published) = publish::decode_publish(&entry.data) {
            self.apply_publish(published);
            None
        } else {
            match lease::decode_command(&entry.data) {
                lease::Command::Client(request) => Some(self.apply_request(&request)),
                lease::Command::LeaseCheckpoint(checkpoints) => {
                    // Lessor state only: no revision, no watch event (etcd's LeaseCheckpoint).
                    self.kv.apply_lease_checkpoints(&checkpoints);
                    None
                }
            }
        };
        self.observer.on_event(
            self.config.id,
            NodeEvent::Applied {
                index: entry.index.0,
                term: entry.term.0,
                digest: fnv1a64(&entry.data),
                revision: self.kv.current_revision(),
            },
        );
        if let Some(write) = self.pending_writes.remove(&entry.index) {
            self.answer_writer(entry, write, result);
        }
    }

    /// Apply a client's write (or an expiry's revoke) to the key space and the lease clock,
    /// and hand its events to the watchers.
    fn apply_request(&mut self, request: &Request) -> Result<Response, EtcdError> {
        let result = self.kv.apply(request);
        #[cfg(feature = "canaries")]
        if self.canary_active(Canary::WatchDropOnCompactDelete)
            && matches!(request, Request::Compact(_))
            && result.is_ok()
        {
            // Planted bug (etcd #18089): the deletion at the compact revision is lost.
            self.kv.canary_drop_tombstones_at_compact_revision();
        }
        self.mirror_leases(request, &result);
        // Watchers see every applied revision, in order; events are taken after every
        // apply so none accumulates and revisions reach the hub contiguously.
        let events = self.kv.take_events();
        if !events.is_empty() {
            let outputs = self.hub.on_events(&self.kv, &events);
            self.deliver_watch(outputs);
        }
        result
    }

    /// Answer whoever waits for the proposal at `entry`'s index, now applied; `result` is the
    /// client write's (`None` for a lease checkpoint).
    fn answer_writer(
        &mut self,
        entry: &Entry,
        write: PendingWrite,
        result: Option<Result<Response, EtcdError>>,
    ) {
        // Another leader's entry replaced ours at this index: ours never applies.
        if write.term != entry.term {
            write.waiter.fail(EtcdError::LeaderChanged);
            return;
        }
        let reply = match write.waiter {
            Waiter::Kv(reply) => reply,
            Waiter::KeepAlive(reply, response) => {
                // The lease's checkpoint is cleared: the keep-alive holds on any leader.
                assert!(
                    result.is_none(),
                    "a keep-alive waits for its checkpoint entry"
                );
                let _ = reply.send(Ok(response));
                return;
            }
            Waiter::Cluster(_) => {
                unreachable!("a cluster change's index holds a command of the same term")
            }
        };
        let outcome = match result {
            Some(Ok(mut response)) => {
                self.stamp(&mut response);
                self.observer.on_event(
                    self.config.id,
                    NodeEvent::WriteAcked {
                        index: entry.index.0,
                        revision: response.header().revision,
                    },
                );
                Ok(response)
            }
            Some(Err(error)) => Err(error),
            None => unreachable!("a client's write is a command entry"),
        };
        let _ = reply.send(outcome);
    }

    fn serve_applied_reads(&mut self) {
        let applied = self.applied;
        if self
            .reads_awaiting_apply
            .iter()
            .all(|(index, _)| *index > applied)
        {
            return; // after every Ready: no allocation when no read is due
        }
        let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.reads_awaiting_apply)
            .into_iter()
            .partition(|(index, _)| *index <= applied);
        self.reads_awaiting_apply = waiting;
        for (_, read) in ready {
            if let Request::LeaseKeepAlive(keep_alive) = &read.request {
                self.serve_keep_alive(keep_alive.id, read.reply, read.deadline);
                continue;
            }
            let result = self.read_local(&read.request);
            let _ = read.reply.send(result);
        }
    }

    fn expire_requests(&mut self, now: Instant) {
        let expired: Vec<LogIndex> = self
            .pending_writes
            .iter()
            .filter(|(_, write)| write.deadline <= now)
            .map(|(&index, _)| index)
            .collect();
        for index in expired {
            let write = self.pending_writes.remove(&index).expect("listed above");
            write.waiter.fail(EtcdError::Timeout);
        }
        self.expire_keep_alives_awaiting_revoke(now);
        for reads in self.reads_awaiting_index.values_mut() {
            if reads.iter().all(|r| r.deadline > now) {
                continue; // every tick: no allocation when nothing expired
            }
            let (expired, kept): (Vec<_>, Vec<_>) = std::mem::take(reads)
                .into_iter()
                .partition(|r| r.deadline <= now);
            *reads = kept;
            for read in expired {
                let _ = read.reply.send(Err(EtcdError::Timeout));
            }
        }
        self.reads_awaiting_index
            .retain(|_, reads| !reads.is_empty());
        if self
            .reads_awaiting_apply
            .iter()
            .all(|(_, r)| r.deadline > now)
        {
            return;
        }
        let (expired, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut self.reads_awaiting_apply)
            .into_iter()
            .partition(|(_, read)| read.deadline <= now);
        self.reads_awaiting_apply = kept;
        for (_, read) in expired {
            let _ = read.reply.send(Err(EtcdError::Timeout));
        }
    }
}

/// A configuration this build can run: no canary without the `canaries` feature, and a
/// positive lease checkpoint interval.
fn assert_config_supported(config: &NodeConfig) {
    #[cfg(not(feature = "canaries"))]
    assert!(
        config.canary.is_none(),
        "canary {:?} requested, but this build has no canaries (enable the `canaries` feature)",
        config.canary
    );
    assert!(
        config.lease_checkpoint_interval_ms > 0,
        "lease_checkpoint_interval_ms must be positive"
    );
}

/// Where and how the member's WAL and snapshot files live.
fn storage_options(config: &NodeConfig) -> StorageOptions {
    StorageOptions {
        wal: WalOptions {
            segment_size_bytes: config.wal_segment_size_bytes,
        },
        snapshots: SnapshotOptions {
            canary: config.canary.and_then(Canary::storage_canary),
            ..SnapshotOptions::default()
        },
    }
}

/// etcd's way: watches from the past and slow watchers are caught up from history by `sync`
/// on every tick (etcd's syncWatchersLoop), bounded by what the stream holds.
fn watch_hub_options(config: &NodeConfig) -> WatchHubOptions {
    WatchHubOptions {
        max_revisions_per_response: WatchHubOptions::etcd_defaults().max_revisions_per_response,
        max_response_bytes: config.max_watch_response_bytes,
        slow_watcher_backlog: Some(config.watch_slow_backlog_responses),
        catch_up_at_create: false,
        canary: config.canary.and_then(Canary::watch_canary),
    }
}

/// Raft's configuration for this member.
fn raft_config(config: &NodeConfig) -> RaftConfig {
    RaftConfig {
        id: NodeId(config.id),
        // A joining member is not among the voters it is told of: it learns the configuration
        // (with itself in it) from the leader's log or snapshot before it could campaign.
        voters: match config.initial_cluster_state {
            crate::InitialClusterState::New => {
                config.members.keys().map(|&id| NodeId(id)).collect()
            }
            crate::InitialClusterState::Existing => config
                .members
                .keys()
                .filter(|&&id| id != config.id)
                .map(|&id| NodeId(id))
                .collect(),
        },
        election_timeout_ticks: config.election_timeout_ticks,
        heartbeat_interval_ticks: config.heartbeat_interval_ticks,
        pre_vote: config.pre_vote,
        // The leader-local-read canary is the classic combination: reads served from a
        // leader that does not notice it lost its quorum (no check-quorum step-down).
        check_quorum: config.check_quorum
            && !(cfg!(feature = "canaries") && config.canary == Some(Canary::LeaderLocalRead)),
        max_entries_per_append: config.max_entries_per_append,
        canary: config.canary.and_then(Canary::raft_canary),
    }
}

/// FNV-1a, 64 bit: a stable digest (unlike std's hasher, fixed across Rust releases).
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// The key space and membership a member restarts with: its snapshot's, or an empty store.
/// The minimum lease TTL is replicated configuration derived from the election timeout
/// exactly as etcd does (ceil(1.5 x election timeout)); every member computes the same.
fn restored_state(
    config: &NodeConfig,
    raft_snapshot: Option<&faultline_raft::Snapshot>,
) -> snapshot::RestoredState {
    match raft_snapshot {
        Some(s) => snapshot::decode_state(&s.data, config.canary.and_then(Canary::kv_canary)),
        None => {
            let options = StoreOptions::for_election_timeout_ms(config.election_timeout_ms());
            snapshot::RestoredState::empty(KvStore::with_options(options))
        }
    }
}
