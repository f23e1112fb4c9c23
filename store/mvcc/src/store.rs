//! The revisioned key space: etcd's mvcc `store` + `keyIndex` + the lessor's replicated part.
//!
//! Layout (like etcd's): a "backend" map from internal revision `(main, sub)` to the record
//! written at that revision, and an in-memory key index from each key to the ascending list of
//! revisions at which it was written (puts and tombstones). Every container is a `BTreeMap`
//! or a `Vec`, so iteration order (and therefore every response, event and hash) depends only
//! on the sequence of applied requests.
//!
//! Here: the state, the public API, snapshots, invariants, compaction and leases. The steps
//! of a request live in submodules: `check` (the request in itself, before proposal and at
//! apply), `txn` (plans, state checks and execution of txns), `write` (the write txn that
//! commits one revision or is undone), `read` (ranges as of a revision, history as events).

use std::collections::{BTreeMap, BTreeSet};

use faultline_api::{
    CompactionRequest, CompactionResponse, EtcdError, Event, HashKvResponse, KeyValue,
    LeaseGrantRequest, LeaseGrantResponse, LeaseId, LeaseLeasesResponse, LeaseRevokeRequest,
    LeaseRevokeResponse, LeaseTimeToLiveRequest, LeaseTimeToLiveResponse, Request, Response,
    ResponseHeader, Revision,
};
use serde::{Deserialize, Serialize};

mod check;
mod checkpoint;
mod read;
mod txn;
mod write;

pub use checkpoint::LeaseCheckpoint;

use check::Rules;

/// etcd's default `--max-txn-ops`.
pub const MAX_TXN_OPS_DEFAULT: usize = 128;
/// etcd's `lease.MaxLeaseTTL` (seconds).
pub const MAX_LEASE_TTL_SECONDS: i64 = 9_000_000_000;
/// etcd's minimum lease TTL for its default 1000 ms election timeout: ceil(1.5 * 1 s) = 2 s.
pub const MIN_LEASE_TTL_SECONDS_DEFAULT: i64 = 2;

/// Configuration that changes replicated behaviour: every member of a cluster must use the same
/// options (they are carried in snapshots for that reason).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct StoreOptions {
    /// Granted lease TTLs below this are raised to it (etcd: ceil(1.5 * election timeout)).
    pub min_lease_ttl_seconds: i64,
    /// `ErrTooManyOps` when max(len(compare), len(success), len(failure)) exceeds this.
    pub max_txn_ops: usize,
}

impl StoreOptions {
    /// etcd's defaults: 1000 ms election timeout (min lease TTL 2 s), 128 ops per txn.
    pub fn etcd_defaults() -> StoreOptions {
        StoreOptions {
            min_lease_ttl_seconds: MIN_LEASE_TTL_SECONDS_DEFAULT,
            max_txn_ops: MAX_TXN_OPS_DEFAULT,
        }
    }

    /// etcd's defaults with the minimum lease TTL derived from an election timeout the way
    /// etcd does: ceil(1.5 * election_timeout) in whole seconds.
    pub fn for_election_timeout_ms(election_timeout_ms: u64) -> StoreOptions {
        let min_ttl_ms = election_timeout_ms.saturating_mul(3) / 2;
        let min_ttl_seconds = min_ttl_ms.div_ceil(1000);
        StoreOptions {
            min_lease_ttl_seconds: i64::try_from(min_ttl_seconds).unwrap_or(i64::MAX),
            max_txn_ops: MAX_TXN_OPS_DEFAULT,
        }
    }
}

/// An internal revision: `main` is the store revision of the request, `sub` the index of the
/// change within that request (etcd's `revision{main, sub}`).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct Rev {
    pub main: Revision,
    pub sub: i64,
}

impl Rev {
    fn first_of(main: Revision) -> Rev {
        Rev { main, sub: 0 }
    }
    fn last_of(main: Revision) -> Rev {
        Rev {
            main,
            sub: i64::MAX,
        }
    }
}

/// One stored key revision: a put (`kv` present, `kv.mod_revision == rev.main`) or a tombstone.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Record {
    pub rev: Rev,
    pub key: Vec<u8>,
    /// `None`: a tombstone (the key was deleted at `rev`).
    pub kv: Option<KeyValue>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LeaseRecord {
    pub id: LeaseId,
    pub ttl_seconds: i64,
    /// The remaining TTL of the lease's last checkpoint (`None`: none since its grant or its
    /// last keep-alive, so a new leader gives it the full TTL). See `checkpoint.rs`.
    #[serde(default)]
    pub remaining_ttl_ms: Option<u64>,
}

/// The whole replicated state; `KvStore::restore(store.snapshot()) == store`.
/// Format-neutral (no maps keyed by bytes), so it serializes with JSON as well as bincode.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Snapshot {
    pub options: StoreOptions,
    pub current_revision: Revision,
    pub compact_revision: Revision,
    /// Every stored record, ascending by `rev`.
    pub records: Vec<Record>,
    /// Every lease, ascending by id. Attached keys are derived from the records.
    pub leases: Vec<LeaseRecord>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Lease {
    ttl_seconds: i64,
    keys: BTreeSet<Vec<u8>>,
    /// Replicated by lease checkpoints (`checkpoint.rs`); never above the TTL.
    remaining_ttl_ms: Option<u64>,
}

/// etcd's revisioned key space plus the replicated part of the lessor (which leases exist,
/// their granted TTL, which keys are attached). See the crate docs for the contract.
#[derive(Clone, Debug)]
pub struct KvStore {
    options: StoreOptions,
    // Invariant: compact_rev <= current_rev; current_rev >= 1.
    current_rev: Revision,
    /// -1 before any compaction (etcd's initial compactMainRev), as HashKV reports it.
    compact_rev: Revision,
    /// Invariant: every key's `Rev.main <= current_rev`; record.rev == key of the map.
    backend: BTreeMap<Rev, Record>,
    /// Invariant: each list strictly ascending, non-empty, and equal to the backend's revisions
    /// of that key.
    index: BTreeMap<Vec<u8>, Vec<Rev>>,
    /// Invariant: a key is in `keys` of lease L iff its live KV has `lease == L`.
    leases: BTreeMap<LeaseId, Lease>,
    /// Watch events of applies not yet taken, one entry per new revision, ascending.
    pending_events: Vec<(Revision, Vec<Event>)>,
    /// A planted bug; `None` except in canary runs (not replicated state: set per member).
    canary: Option<KvCanary>,
}

/// A re-introducible store bug (a canary). The variants always exist so configurations can
/// name them; `KvStore::set_canary` refuses one unless mvcc is built with `canaries`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KvCanary {
    /// Issue 16 (etcd 3.4.23 has the same bug): a txn whose branch deletes a key (a delete to
    /// the end of the key space, possibly in a nested txn) and then puts it with
    /// ignore_value/ignore_lease passes every check and panics at apply, on every member and
    /// again on every replay of the log.
    IgnorePutAfterDelete,
    /// etcd #17780 (revision decreasing after a crash during compaction): etcd's compaction
    /// at revision R physically removes a tombstone at R, and a restarted etcd took its
    /// revision from the newest key left in its backend, so compacting at the newest revision
    /// right after a delete made the revision go back. Our store keeps the tombstone at R (a
    /// watch from R must see it, etcd #18089); the canary's restore takes the revision from
    /// the newest record that etcd's backend would still hold (tombstones at or below the
    /// compact revision ignored) instead of the snapshot's.
    RevisionFromRecords,
    /// A lock taken twice (issue 15): a create-if-absent txn (`compare create_revision == 0`
    /// on a key its success branch puts with a lease) ignores that compare when the key
    /// exists with another lease, so a second campaigner overwrites the holder's key and both
    /// believe they hold the lock.
    LockCompareIgnored,
}

/// Equality of replicated state; untaken watch events are transient output and not compared.
impl PartialEq for KvStore {
    fn eq(&self, other: &KvStore) -> bool {
        self.options == other.options
            && self.current_rev == other.current_rev
            && self.compact_rev == other.compact_rev
            && self.backend == other.backend
            && self.index == other.index
            && self.leases == other.leases
    }
}
impl Eq for KvStore {}

impl Default for KvStore {
    fn default() -> KvStore {
        KvStore::new()
    }
}

fn header(revision: Revision) -> ResponseHeader {
    ResponseHeader {
        revision,
        ..ResponseHeader::default()
    }
}

impl KvStore {
    /// A fresh store with etcd's defaults: current revision 1, no keys, no compaction
    /// (`compact_revision() == -1`), minimum lease TTL 2 s (1 s election timeout), 128 txn ops.
    pub fn new() -> KvStore {
        KvStore::with_options(StoreOptions::etcd_defaults())
    }

    pub fn with_options(options: StoreOptions) -> KvStore {
        assert!(options.max_txn_ops > 0);
        assert!(options.min_lease_ttl_seconds >= 0);
        KvStore {
            options,
            current_rev: 1,
            compact_rev: -1,
            backend: BTreeMap::new(),
            index: BTreeMap::new(),
            leases: BTreeMap::new(),
            pending_events: Vec::new(),
            canary: None,
        }
    }

    /// Plant a bug (`None`: none). Member-local, like the rest of a member's configuration:
    /// a store restored from a snapshot starts without one.
    ///
    /// # Panics
    /// On a canary when faultline-mvcc was built without the `canaries` feature.
    pub fn set_canary(&mut self, canary: Option<KvCanary>) {
        assert!(
            cfg!(feature = "canaries") || canary.is_none(),
            "store canary {canary:?} requested, but faultline-mvcc was built without `canaries`"
        );
        self.canary = canary;
    }

    fn canary_active(&self, canary: KvCanary) -> bool {
        cfg!(feature = "canaries") && self.canary == Some(canary)
    }

    fn rules(&self) -> Rules {
        Rules {
            ignore_put_after_delete: !self.canary_active(KvCanary::IgnorePutAfterDelete),
        }
    }

    /// The checks of `request` in itself, before proposal: a member calls this before it
    /// proposes a client's request and answers the error instead. They are etcd's checks of
    /// a request before its proposal (empty keys, ignore flags with a value or lease, too many
    /// txn ops, duplicate keys) plus the store's own: ErrKeyNotFound for a txn whose branch
    /// puts a key with ignore_value/ignore_lease after a delete that may remove it, whatever
    /// the state and whichever branch would run (etcd 3.4.23 crashes at apply on such a txn;
    /// see DIFFERENCES.md). `apply` runs the same checks first, so a request that is rejected
    /// here gets the same error from `apply` (should it reach the log anyway, e.g. from an
    /// older member), and one that passes them cannot crash a member.
    pub fn check_request(&self, request: &Request) -> Result<(), EtcdError> {
        check::check_request(request, self.options.max_txn_ops, self.rules())
    }

    pub fn options(&self) -> StoreOptions {
        self.options
    }

    pub fn current_revision(&self) -> Revision {
        self.current_rev
    }

    /// The last compaction's revision; -1 before any compaction (etcd's initial value, which
    /// its HashKV reports too).
    pub fn compact_revision(&self) -> Revision {
        self.compact_rev
    }

    /// Canary (etcd #18089, "watch dropping an event when compacting on delete"): after a
    /// compaction at R, drop the tombstones written exactly at R, as etcd's compaction did
    /// before the fix. Reads are unchanged (a tombstone reads as absent), but a watch from R
    /// no longer sees those deletions. The caller decides when (only with the canary on).
    #[cfg(feature = "canaries")]
    pub fn canary_drop_tombstones_at_compact_revision(&mut self) {
        let target = self.compact_rev;
        let mut emptied: Vec<Vec<u8>> = Vec::new();
        for (key, revs) in self.index.iter_mut() {
            // Only a lone deletion at R (a txn that deleted and re-put the key at R keeps
            // both records), so reads at R stay correct and only the watch event is lost.
            let at: Vec<usize> = (0..revs.len())
                .filter(|&i| revs[i].main == target)
                .collect();
            let [i] = at[..] else { continue };
            if self.backend[&revs[i]].kv.is_some() {
                continue;
            }
            let removed = self.backend.remove(&revs.remove(i));
            assert!(removed.is_some());
            if revs.is_empty() {
                emptied.push(key.clone());
            }
        }
        for key in emptied {
            self.index.remove(&key);
        }
    }

    /// Every lease and its granted TTL, ascending by id (used to seed a `LeaseClock`).
    pub fn leases(&self) -> Vec<(LeaseId, i64)> {
        self.leases
            .iter()
            .map(|(id, lease)| (*id, lease.ttl_seconds))
            .collect()
    }

    /// Number of stored key revisions (puts and tombstones); shrinks with compaction.
    pub fn stored_revisions(&self) -> usize {
        self.backend.len()
    }

    /// Apply one committed request (see the crate docs). Errors leave the state unchanged.
    ///
    /// The rule: applying a committed entry never panics on a request a client could send,
    /// and its outcome depends only on the entry and the state, so every member (and every
    /// replay of the log) computes the same. What can fail is either rejected before proposal
    /// (`check_request`, which apply runs again first) or is a per-request error computed from
    /// the state before the request, in etcd's order (ErrKeyNotFound for ignore_value or
    /// ignore_lease on a key absent at apply, also when an earlier entry deleted it after the
    /// check; ErrLeaseNotFound; ErrCompacted; ...). Execution itself runs in a write txn that
    /// is undone completely if it meets an error all the same (`KvStore::write`).
    /// `tests/apply_total.rs` applies arbitrary requests of the whole grammar to hold us to it.
    ///
    /// # Panics
    /// Only on entries a correct proposer never writes, whatever the client sent: requests
    /// that never go through the log (Range, HashKv, LeaseKeepAlive, LeaseTimeToLive,
    /// LeaseLeases) and LeaseGrant with id 0 (the proposer picks the id); and under a canary.
    pub fn apply(&mut self, request: &Request) -> Result<Response, EtcdError> {
        let before = self.current_rev;
        let result = match request {
            Request::Put(put) => self.apply_put(put).map(Response::Put),
            Request::DeleteRange(del) => self.apply_delete_range(del).map(Response::DeleteRange),
            Request::Txn(txn) => self.apply_txn(txn).map(Response::Txn),
            Request::Compact(compact) => self.apply_compact(compact).map(Response::Compact),
            Request::LeaseGrant(grant) => self.apply_lease_grant(grant).map(Response::LeaseGrant),
            Request::LeaseRevoke(revoke) => {
                self.apply_lease_revoke(revoke).map(Response::LeaseRevoke)
            }
            Request::Range(_)
            | Request::HashKv(_)
            | Request::LeaseKeepAlive(_)
            | Request::LeaseTimeToLive(_)
            | Request::LeaseLeases => {
                panic!("KvStore::apply: {request:?} never goes through the log")
            }
        };
        // One applied request moves the revision by at most one; a failed one not at all.
        assert!(self.current_rev == before || self.current_rev == before + 1);
        assert!(result.is_ok() || self.current_rev == before);
        assert!(self.compact_rev <= self.current_rev);
        if let Ok(response) = &result {
            assert!(response.header().revision <= self.current_rev);
        }
        result
    }

    /// Serve a read-only request from local state (see the crate docs).
    ///
    /// # Panics
    /// On writes (they must go through `apply`) and on LeaseKeepAlive (served by `LeaseClock`
    /// on the leader).
    pub fn read(&self, request: &Request) -> Result<Response, EtcdError> {
        match request {
            Request::Range(range) => self.range(range).map(Response::Range),
            Request::Txn(txn) => {
                assert!(
                    !request.is_write(),
                    "KvStore::read: a write txn must go through apply"
                );
                self.read_only_txn(txn).map(Response::Txn)
            }
            Request::HashKv(req) => self.hash_kv(req.revision).map(Response::HashKv),
            Request::LeaseLeases => Ok(Response::LeaseLeases(LeaseLeasesResponse {
                header: header(self.current_rev),
                leases: self.leases.keys().copied().collect(),
            })),
            Request::LeaseTimeToLive(req) => {
                Ok(Response::LeaseTimeToLive(self.lease_time_to_live(req)))
            }
            Request::Put(_)
            | Request::DeleteRange(_)
            | Request::Compact(_)
            | Request::LeaseGrant(_)
            | Request::LeaseRevoke(_)
            | Request::LeaseKeepAlive(_) => {
                panic!("KvStore::read: {request:?} is not a local read")
            }
        }
    }

    /// LeaseTimeToLive from replicated state: `ttl_seconds` = granted TTL (the leader's
    /// `LeaseClock` knows the remaining time), or -1 for an unknown lease. Keys sorted.
    pub fn lease_time_to_live(&self, req: &LeaseTimeToLiveRequest) -> LeaseTimeToLiveResponse {
        match self.leases.get(&req.id) {
            Some(lease) => LeaseTimeToLiveResponse {
                header: header(self.current_rev),
                id: req.id,
                ttl_seconds: lease.ttl_seconds,
                granted_ttl_seconds: lease.ttl_seconds,
                keys: if req.keys {
                    lease.keys.iter().cloned().collect()
                } else {
                    Vec::new()
                },
            },
            None => LeaseTimeToLiveResponse {
                header: header(self.current_rev),
                id: req.id,
                ttl_seconds: -1,
                granted_ttl_seconds: 0,
                keys: Vec::new(),
            },
        }
    }

    /// CRC-32 over every stored key revision with main revision <= `revision` (0 or less: the
    /// current revision); compaction has already dropped what it drops, so two members that
    /// applied the same log (or restored the same snapshot) agree.
    pub fn hash_kv(&self, revision: Revision) -> Result<HashKvResponse, EtcdError> {
        if revision > self.current_rev {
            return Err(EtcdError::FutureRev);
        }
        let rev = if revision <= 0 {
            self.current_rev
        } else {
            revision
        };
        if rev < self.compact_rev {
            return Err(EtcdError::Compacted);
        }
        let mut hasher = crc32fast::Hasher::new();
        for record in self.backend.range(..=Rev::last_of(rev)).map(|(_, r)| r) {
            hasher.update(&record.rev.main.to_be_bytes());
            hasher.update(&record.rev.sub.to_be_bytes());
            hasher.update(&(record.key.len() as u64).to_be_bytes());
            hasher.update(&record.key);
            match &record.kv {
                None => hasher.update(b"t"),
                Some(kv) => {
                    hasher.update(b"p");
                    hasher.update(&kv.create_revision.to_be_bytes());
                    hasher.update(&kv.mod_revision.to_be_bytes());
                    hasher.update(&kv.version.to_be_bytes());
                    hasher.update(&kv.lease.to_be_bytes());
                    hasher.update(&(kv.value.len() as u64).to_be_bytes());
                    hasher.update(&kv.value);
                }
            }
        }
        Ok(HashKvResponse {
            header: header(self.current_rev),
            hash: hasher.finalize(),
            compact_revision: self.compact_rev,
            hash_revision: rev,
        })
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            options: self.options,
            current_revision: self.current_rev,
            compact_revision: self.compact_rev,
            records: self.backend.values().cloned().collect(),
            leases: self
                .leases
                .iter()
                .map(|(id, lease)| LeaseRecord {
                    id: *id,
                    ttl_seconds: lease.ttl_seconds,
                    remaining_ttl_ms: lease.remaining_ttl_ms,
                })
                .collect(),
        }
    }

    /// Rebuild a store from a snapshot. Panics if the snapshot is inconsistent (it was
    /// produced by `snapshot()`; storage checksums it).
    pub fn restore(snapshot: Snapshot) -> KvStore {
        let mut store = KvStore::with_options(snapshot.options);
        assert!(snapshot.current_revision >= 1);
        assert!(snapshot.compact_revision <= snapshot.current_revision);
        store.current_rev = snapshot.current_revision;
        store.compact_rev = snapshot.compact_revision;
        for lease in snapshot.leases {
            let previous = store.leases.insert(
                lease.id,
                Lease {
                    ttl_seconds: lease.ttl_seconds,
                    keys: BTreeSet::new(),
                    remaining_ttl_ms: lease.remaining_ttl_ms,
                },
            );
            assert!(previous.is_none(), "duplicate lease in snapshot");
        }
        for record in snapshot.records {
            let revs = store.index.entry(record.key.clone()).or_default();
            if let Some(last) = revs.last() {
                assert!(*last < record.rev);
            }
            revs.push(record.rev);
            let previous = store.backend.insert(record.rev, record);
            assert!(previous.is_none(), "duplicate revision in snapshot");
        }
        let attached: Vec<(LeaseId, Vec<u8>)> = store
            .index
            .keys()
            .filter_map(|key| store.live_kv(key, store.current_rev))
            .filter(|kv| kv.lease != 0)
            .map(|kv| (kv.lease, kv.key.clone()))
            .collect();
        for (lease, key) in attached {
            store
                .leases
                .get_mut(&lease)
                .expect("a live key's lease exists")
                .keys
                .insert(key);
        }
        store.check_invariants();
        store
    }

    /// `restore` with this member's canary set (a canary may live in the restore itself).
    pub fn restore_with_canary(mut snapshot: Snapshot, canary: Option<KvCanary>) -> KvStore {
        if cfg!(feature = "canaries") && canary == Some(KvCanary::RevisionFromRecords) {
            // Planted bug: restore what etcd's backend would hold after compacting (no
            // tombstone at or below the compact revision) and take the revision from the
            // newest record left, not from the snapshot.
            let compacted = snapshot.compact_revision;
            snapshot
                .records
                .retain(|record| !(record.kv.is_none() && record.rev.main <= compacted));
            let newest = snapshot.records.iter().map(|r| r.rev.main).max();
            snapshot.current_revision = newest.unwrap_or(1).max(1);
            snapshot.compact_revision = compacted.min(snapshot.current_revision);
        }
        let mut store = KvStore::restore(snapshot);
        store.set_canary(canary);
        store
    }

    /// Watch events produced by applies since the last call, one entry per new revision in
    /// ascending order, events in execution order. Every event carries `prev_kv` (the key's KV
    /// at the revision before the change, as etcd reads it, so `None` for creations and for a
    /// key created earlier in the same txn): a watcher that did not ask drops it.
    /// Events accumulate until taken: the node takes them after every apply (batch).
    pub fn take_events(&mut self) -> Vec<(Revision, Vec<Event>)> {
        std::mem::take(&mut self.pending_events)
    }

    /// Check every structural invariant (O(stored revisions)); panics on a violation.
    /// Cheap checks run on every apply; tests call this after every step.
    pub fn check_invariants(&self) {
        assert!(self.current_rev >= 1);
        assert!(self.compact_rev >= -1);
        assert!(self.compact_rev <= self.current_rev);
        let mut indexed = 0usize;
        for (key, revs) in &self.index {
            assert!(!revs.is_empty());
            assert!(revs.windows(2).all(|w| w[0] < w[1]));
            for rev in revs {
                let record = self.backend.get(rev).expect("indexed revision is stored");
                assert_eq!(&record.key, key);
            }
            indexed += revs.len();
            // Compaction keeps nothing older than the latest revision <= compact_rev, and that
            // one only if it is a put or sits exactly at the compact revision (where every
            // record of that revision is kept).
            let below = revs.iter().filter(|r| r.main < self.compact_rev).count();
            let at = revs.iter().filter(|r| r.main == self.compact_rev).count();
            assert!(below <= 1);
            assert!(below == 0 || at == 0);
            if let Some(live) = self.live_kv(key, self.current_rev) {
                if live.lease != 0 {
                    let lease = self.leases.get(&live.lease).expect("attached lease exists");
                    assert!(lease.keys.contains(key));
                }
            }
        }
        assert_eq!(indexed, self.backend.len());
        for (rev, record) in &self.backend {
            assert_eq!(*rev, record.rev);
            assert!(rev.main >= 2 && rev.main <= self.current_rev);
            assert!(rev.sub >= 0);
            if let Some(kv) = &record.kv {
                assert_eq!(kv.key, record.key);
                assert_eq!(kv.mod_revision, rev.main);
                assert!(kv.version >= 1);
                assert!(kv.create_revision >= 2 && kv.create_revision <= kv.mod_revision);
                assert_eq!(kv.version == 1, kv.create_revision == kv.mod_revision);
            }
        }
        for (id, lease) in &self.leases {
            assert!(*id != 0);
            assert!(lease.ttl_seconds >= self.options.min_lease_ttl_seconds);
            if let Some(remaining_ms) = lease.remaining_ttl_ms {
                assert!(remaining_ms <= crate::lease_clock::ttl_ms(lease.ttl_seconds));
            }
            for key in &lease.keys {
                let live = self
                    .live_kv(key, self.current_rev)
                    .expect("leased key is live");
                assert_eq!(live.lease, *id);
            }
        }
        for (rev, events) in &self.pending_events {
            assert!(*rev <= self.current_rev);
            assert!(!events.is_empty());
        }
    }

    /// §7: for each key drop every revision <= R except the latest one, and that one too if it
    /// is a tombstone older than R. Tombstones AT R are kept so that a watch from R still sees
    /// the deletion (etcd #18089, #19179); reads are unaffected (a tombstone reads as absent).
    fn apply_compact(&mut self, req: &CompactionRequest) -> Result<CompactionResponse, EtcdError> {
        let target = req.revision;
        if target <= self.compact_rev {
            return Err(EtcdError::Compacted);
        }
        if target > self.current_rev {
            return Err(EtcdError::FutureRev);
        }
        let mut emptied: Vec<Vec<u8>> = Vec::new();
        for (key, revs) in self.index.iter_mut() {
            let below = revs.partition_point(|r| r.main < target);
            let at_or_below = revs.partition_point(|r| r.main <= target);
            if at_or_below == 0 {
                continue;
            }
            // Every record AT the target is kept: a txn can delete and re-create a key in one
            // revision (a delete to the end of the key space, then a put), and a watch from
            // the target must still see both events. Below it, only the latest put survives.
            let drop_count = if at_or_below > below {
                below
            } else {
                let latest = revs[below - 1];
                if self.backend[&latest].kv.is_none() {
                    below
                } else {
                    below - 1
                }
            };
            for rev in revs.drain(..drop_count) {
                let removed = self.backend.remove(&rev);
                assert!(removed.is_some());
            }
            if revs.is_empty() {
                emptied.push(key.clone());
            }
        }
        for key in emptied {
            self.index.remove(&key);
        }
        self.compact_rev = target;
        Ok(CompactionResponse {
            header: header(self.current_rev),
        })
    }

    fn apply_lease_grant(
        &mut self,
        req: &LeaseGrantRequest,
    ) -> Result<LeaseGrantResponse, EtcdError> {
        assert!(req.id != 0, "the proposer picks a lease id before the log");
        if req.ttl_seconds > MAX_LEASE_TTL_SECONDS {
            return Err(EtcdError::LeaseTtlTooLarge);
        }
        if self.leases.contains_key(&req.id) {
            return Err(EtcdError::LeaseExist);
        }
        let ttl_seconds = req.ttl_seconds.max(self.options.min_lease_ttl_seconds);
        self.leases.insert(
            req.id,
            Lease {
                ttl_seconds,
                keys: BTreeSet::new(),
                remaining_ttl_ms: None,
            },
        );
        Ok(LeaseGrantResponse {
            header: header(self.current_rev),
            id: req.id,
            ttl_seconds,
        })
    }

    fn apply_lease_revoke(
        &mut self,
        req: &LeaseRevokeRequest,
    ) -> Result<LeaseRevokeResponse, EtcdError> {
        let keys: Vec<Vec<u8>> = match self.leases.get(&req.id) {
            None => return Err(EtcdError::LeaseNotFound),
            Some(lease) => lease.keys.iter().cloned().collect(),
        };
        self.write(|store, tx| {
            for key in &keys {
                store.delete_key(tx, key);
            }
            Ok(())
        })?;
        let lease = self.leases.remove(&req.id).expect("present");
        assert!(lease.keys.is_empty());
        Ok(LeaseRevokeResponse {
            header: header(self.current_rev),
        })
    }
}
