//! The revisioned key space: etcd's mvcc `store` + `keyIndex` + the lessor's replicated part.
//!
//! Layout (like etcd's): a "backend" map from internal revision `(main, sub)` to the record
//! written at that revision, and an in-memory key index from each key to the ascending list of
//! revisions at which it was written (puts and tombstones). Every container is a `BTreeMap`
//! or a `Vec`, so iteration order (and therefore every response, event and hash) depends only
//! on the sequence of applied requests.

use std::collections::{BTreeMap, BTreeSet};

use faultline_api::{
    key_in_range, CompactionRequest, CompactionResponse, Compare, CompareResult, CompareTarget,
    DeleteRangeRequest, DeleteRangeResponse, EtcdError, Event, EventType, HashKvResponse, KeyValue,
    LeaseGrantRequest, LeaseGrantResponse, LeaseId, LeaseLeasesResponse, LeaseRevokeRequest,
    LeaseRevokeResponse, LeaseTimeToLiveRequest, LeaseTimeToLiveResponse, PutRequest, PutResponse,
    RangeRequest, RangeResponse, Request, RequestOp, Response, ResponseHeader, ResponseOp,
    Revision, SortOrder, SortTarget, TxnRequest, TxnResponse,
};
use serde::{Deserialize, Serialize};

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

/// The compares' outcome for a txn and, in order, for every nested txn of the chosen branch
/// (etcd's `compareToPath`): all evaluated against the state before the txn runs.
#[derive(Debug)]
struct Plan {
    succeeded: bool,
    nested: Vec<Plan>,
}

/// A write in progress: changes go straight into the store at revision `begin + 1`;
/// `current_rev` moves only at commit.
struct WriteTxn {
    begin: Revision,
    changes: i64,
    events: Vec<Event>,
}

impl WriteTxn {
    fn new(begin: Revision) -> WriteTxn {
        WriteTxn {
            begin,
            changes: 0,
            events: Vec::new(),
        }
    }
    /// The revision reads inside the txn see (etcd: beginRev, or beginRev + 1 after a change).
    fn view_rev(&self) -> Revision {
        if self.changes > 0 {
            self.begin + 1
        } else {
            self.begin
        }
    }
    fn next_rev(&self) -> Rev {
        Rev {
            main: self.begin + 1,
            sub: self.changes,
        }
    }
}

fn header(revision: Revision) -> ResponseHeader {
    ResponseHeader {
        revision,
        ..ResponseHeader::default()
    }
}

fn check_range_request(req: &RangeRequest) -> Result<(), EtcdError> {
    if req.key.is_empty() {
        return Err(EtcdError::EmptyKey);
    }
    Ok(())
}

fn check_put_request(req: &PutRequest) -> Result<(), EtcdError> {
    if req.key.is_empty() {
        return Err(EtcdError::EmptyKey);
    }
    if req.ignore_value && !req.value.is_empty() {
        return Err(EtcdError::ValueProvided);
    }
    if req.ignore_lease && req.lease != 0 {
        return Err(EtcdError::LeaseProvided);
    }
    Ok(())
}

fn check_delete_request(req: &DeleteRangeRequest) -> Result<(), EtcdError> {
    if req.key.is_empty() {
        return Err(EtcdError::EmptyKey);
    }
    Ok(())
}

/// etcd's `checkTxnRequest` (v3rpc/key.go): op count, empty keys, recursively. A nested txn's
/// budget is what its parent left: `max_ops - max(len(compare), len(success), len(failure))`.
fn check_txn_request(txn: &TxnRequest, max_ops: usize) -> Result<(), EtcdError> {
    let ops = txn
        .compare
        .len()
        .max(txn.success.len())
        .max(txn.failure.len());
    if ops > max_ops {
        return Err(EtcdError::TooManyOps);
    }
    if txn.compare.iter().any(|c| c.key.is_empty()) {
        return Err(EtcdError::EmptyKey);
    }
    for op in txn.success.iter().chain(txn.failure.iter()) {
        match op {
            RequestOp::Range(r) => check_range_request(r)?,
            RequestOp::Put(p) => check_put_request(p)?,
            RequestOp::DeleteRange(d) => check_delete_request(d)?,
            RequestOp::Txn(t) => check_txn_request(t, max_ops - ops)?,
        }
    }
    Ok(())
}

/// A delete's key interval as etcd's checkIntervals sees it.
struct DelInterval {
    key: Vec<u8>,
    range_end: Vec<u8>,
}

/// etcd's checkIntervals builds the interval [key, range_end) literally, so a `"\0"` range end
/// (which the delete itself reads as "to the end of the key space") is the EMPTY interval
/// there: a put of a key the same branch deletes that way is not a duplicate. etcd 3.4.23
/// accepts such a txn (found by the differential test, difftest/); 3.6's checkIntervals builds
/// the interval the same way.
fn dels_contain(dels: &[DelInterval], key: &[u8]) -> bool {
    dels.iter()
        .filter(|d| d.range_end.as_slice() != [0])
        .any(|d| key_in_range(key, &d.key, &d.range_end))
}

/// etcd's `checkIntervals`: returns the puts and deletes of a branch (recursively), or
/// `ErrDuplicateKey` if two puts share a key or a put falls in a delete range of the branch.
/// The then/else branches of one nested txn may reuse keys (they are mutually exclusive).
fn check_intervals(ops: &[RequestOp]) -> Result<(BTreeSet<Vec<u8>>, Vec<DelInterval>), EtcdError> {
    let mut dels: Vec<DelInterval> = ops
        .iter()
        .filter_map(|op| match op {
            RequestOp::DeleteRange(d) => Some(DelInterval {
                key: d.key.clone(),
                range_end: d.range_end.clone(),
            }),
            _ => None,
        })
        .collect();
    let mut puts: BTreeSet<Vec<u8>> = BTreeSet::new();
    for op in ops {
        let RequestOp::Txn(inner) = op else { continue };
        let (puts_then, dels_then) = check_intervals(&inner.success)?;
        let (puts_else, dels_else) = check_intervals(&inner.failure)?;
        for key in &puts_then {
            if puts.contains(key) || dels_contain(&dels, key) {
                return Err(EtcdError::DuplicateKey);
            }
            puts.insert(key.clone());
        }
        for key in &puts_else {
            if puts.contains(key) && !puts_then.contains(key) {
                return Err(EtcdError::DuplicateKey);
            }
            if dels_contain(&dels, key) {
                return Err(EtcdError::DuplicateKey);
            }
            puts.insert(key.clone());
        }
        dels.extend(dels_then);
        dels.extend(dels_else);
    }
    for op in ops {
        let RequestOp::Put(p) = op else { continue };
        if puts.contains(&p.key) || dels_contain(&dels, &p.key) {
            return Err(EtcdError::DuplicateKey);
        }
        puts.insert(p.key.clone());
    }
    Ok((puts, dels))
}

/// Does any branch (at any depth) contain a put or a delete? (etcd's isTxnReadonly, negated.)
fn txn_has_write(txn: &TxnRequest) -> bool {
    txn.success
        .iter()
        .chain(txn.failure.iter())
        .any(|op| match op {
            RequestOp::Range(_) => false,
            RequestOp::Put(_) | RequestOp::DeleteRange(_) => true,
            RequestOp::Txn(inner) => txn_has_write(inner),
        })
}

fn compare_kv(compare: &Compare, kv: &KeyValue) -> bool {
    let ordering = match &compare.target {
        CompareTarget::Version(v) => kv.version.cmp(v),
        CompareTarget::CreateRevision(r) => kv.create_revision.cmp(r),
        CompareTarget::ModRevision(r) => kv.mod_revision.cmp(r),
        CompareTarget::Value(v) => kv.value.as_slice().cmp(v.as_slice()),
        CompareTarget::Lease(l) => kv.lease.cmp(l),
    };
    match compare.result {
        CompareResult::Equal => ordering.is_eq(),
        CompareResult::NotEqual => ordering.is_ne(),
        CompareResult::Greater => ordering.is_gt(),
        CompareResult::Less => ordering.is_lt(),
    }
}

fn sort_kvs(kvs: &mut [KeyValue], order: SortOrder, target: SortTarget) {
    // etcd: a non-KEY target with order NONE sorts ascending; KEY ascending is the natural
    // order already. Ties keep key order (Go's sort is stable for etcd-sized small inputs).
    let order = match (target, order) {
        (SortTarget::Key, SortOrder::Ascend) => SortOrder::None,
        (SortTarget::Key, o) => o,
        (_, SortOrder::None) => SortOrder::Ascend,
        (_, o) => o,
    };
    let cmp = |a: &KeyValue, b: &KeyValue| match target {
        SortTarget::Key => a.key.cmp(&b.key),
        SortTarget::Version => a.version.cmp(&b.version),
        SortTarget::Create => a.create_revision.cmp(&b.create_revision),
        SortTarget::Mod => a.mod_revision.cmp(&b.mod_revision),
        SortTarget::Value => a.value.cmp(&b.value),
    };
    match order {
        SortOrder::None => {}
        SortOrder::Ascend => kvs.sort_by(cmp),
        SortOrder::Descend => kvs.sort_by(|a, b| cmp(b, a)),
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
        }
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
    /// # Panics
    /// On requests that never go through the log (Range, HashKv, LeaseKeepAlive,
    /// LeaseTimeToLive, LeaseLeases) and on LeaseGrant with id 0.
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

    /// etcd's Range (§2): header.revision is the current revision, whatever was asked for.
    pub fn range(&self, req: &RangeRequest) -> Result<RangeResponse, EtcdError> {
        check_range_request(req)?;
        self.range_at(req, self.current_rev)
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

    /// Watch events produced by applies since the last call, one entry per new revision in
    /// ascending order, events in execution order. Every event carries `prev_kv` (the key's KV
    /// at the revision before the change, as etcd reads it, so `None` for creations and for a
    /// key created earlier in the same txn): a watcher that did not ask drops it.
    /// Events accumulate until taken: the node takes them after every apply (batch).
    pub fn take_events(&mut self) -> Vec<(Revision, Vec<Event>)> {
        std::mem::take(&mut self.pending_events)
    }

    /// Events of revisions `from..=to` rebuilt from the stored history, as `take_events` would
    /// have produced them, except that `prev_kv` is only filled when `with_prev_kv` is set and
    /// the revision before the event is not compacted (etcd's watch reads it the same way).
    /// `from < compact_revision()` => `ErrCompacted`; `to > current_revision()` => `ErrFutureRev`.
    /// Complete for every revision >= the compact revision: compaction keeps the records of the
    /// compact revision itself, tombstones included (the fix of etcd #18089/#19179).
    pub fn history(
        &self,
        from: Revision,
        to: Revision,
        with_prev_kv: bool,
    ) -> Result<Vec<(Revision, Vec<Event>)>, EtcdError> {
        if to > self.current_rev {
            return Err(EtcdError::FutureRev);
        }
        if from < self.compact_rev {
            return Err(EtcdError::Compacted);
        }
        let mut out: Vec<(Revision, Vec<Event>)> = Vec::new();
        if from > to {
            return Ok(out);
        }
        let range = Rev::first_of(from.max(0))..=Rev::last_of(to);
        for record in self.backend.range(range).map(|(_, r)| r) {
            let event = self.record_event(record, with_prev_kv);
            match out.last_mut() {
                Some((rev, events)) if *rev == record.rev.main => events.push(event),
                _ => out.push((record.rev.main, vec![event])),
            }
        }
        Ok(out)
    }

    fn record_event(&self, record: &Record, with_prev_kv: bool) -> Event {
        let (kind, kv, is_create) = match &record.kv {
            Some(kv) => (EventType::Put, kv.clone(), kv.version == 1),
            None => (
                EventType::Delete,
                KeyValue {
                    key: record.key.clone(),
                    mod_revision: record.rev.main,
                    ..KeyValue::default()
                },
                false,
            ),
        };
        let prev_rev = record.rev.main - 1;
        let prev_kv = if with_prev_kv && !is_create && prev_rev >= self.compact_rev {
            self.live_kv(&record.key, prev_rev).cloned()
        } else {
            None
        };
        Event { kind, kv, prev_kv }
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

    // ---- reads ----

    /// The key's KV as of `rev`, if it was live then (callers check compaction).
    fn live_kv(&self, key: &[u8], rev: Revision) -> Option<&KeyValue> {
        let revs = self.index.get(key)?;
        let pos = revs.partition_point(|r| r.main <= rev);
        if pos == 0 {
            return None;
        }
        self.backend
            .get(&revs[pos - 1])
            .expect("indexed revision is stored")
            .kv
            .as_ref()
    }

    /// Every KV live at `rev` in etcd's range [key, range_end), ascending by key.
    fn live_range(&self, key: &[u8], range_end: &[u8], rev: Revision) -> Vec<&KeyValue> {
        if range_end.is_empty() {
            return self.live_kv(key, rev).into_iter().collect();
        }
        let keys: Box<dyn Iterator<Item = &Vec<u8>>> = if range_end == [0] {
            Box::new(self.index.range(key.to_vec()..).map(|(k, _)| k))
        } else if range_end <= key {
            Box::new(std::iter::empty())
        } else {
            Box::new(
                self.index
                    .range(key.to_vec()..range_end.to_vec())
                    .map(|(k, _)| k),
            )
        };
        keys.filter_map(|k| self.live_kv(k, rev)).collect()
    }

    /// etcd's applier Range over mvcc's rangeKeys, with `current` the revision the reader is
    /// at (the store's, or a write txn's view). Header = `current`.
    fn range_at(&self, req: &RangeRequest, current: Revision) -> Result<RangeResponse, EtcdError> {
        if req.revision > current {
            return Err(EtcdError::FutureRev);
        }
        let rev = if req.revision <= 0 {
            current
        } else {
            req.revision
        };
        if rev < self.compact_rev {
            return Err(EtcdError::Compacted);
        }
        let mut live = self.live_range(&req.key, &req.range_end, rev);
        let count = live.len() as i64;
        if req.count_only {
            return Ok(RangeResponse {
                header: header(current),
                kvs: Vec::new(),
                more: false,
                count,
            });
        }
        // etcd's rangeLimit (3.4 and 3.6): only an explicit sort order or a min/max filter
        // makes etcd read every key before sorting; otherwise it reads limit + 1 keys in key
        // order, so a sort target with order NONE sorts just those (found by difftest/).
        let reads_everything = req.sort_order != SortOrder::None
            || req.min_mod_revision != 0
            || req.max_mod_revision != 0
            || req.min_create_revision != 0
            || req.max_create_revision != 0;
        if !reads_everything && req.limit > 0 {
            live.truncate(
                usize::try_from(req.limit)
                    .unwrap_or(usize::MAX)
                    .saturating_add(1),
            );
        }
        let mut kvs: Vec<KeyValue> = live
            .into_iter()
            .filter(|kv| req.max_mod_revision == 0 || kv.mod_revision <= req.max_mod_revision)
            .filter(|kv| req.min_mod_revision == 0 || kv.mod_revision >= req.min_mod_revision)
            .filter(|kv| {
                req.max_create_revision == 0 || kv.create_revision <= req.max_create_revision
            })
            .filter(|kv| {
                req.min_create_revision == 0 || kv.create_revision >= req.min_create_revision
            })
            .cloned()
            .collect();
        sort_kvs(&mut kvs, req.sort_order, req.sort_target);
        let mut more = false;
        if req.limit > 0 && kvs.len() as i64 > req.limit {
            kvs.truncate(req.limit as usize);
            more = true;
        }
        if req.keys_only {
            for kv in &mut kvs {
                kv.value = Vec::new();
            }
        }
        Ok(RangeResponse {
            header: header(current),
            kvs,
            more,
            count,
        })
    }

    // ---- txn planning and checks (all against the pre-txn state) ----

    /// etcd's applyCompare: the predicate must hold for every key in the range; with no key,
    /// the zero KV is compared, except that a VALUE compare on missing keys is false.
    fn eval_compare(&self, compare: &Compare) -> bool {
        let kvs = self.live_range(&compare.key, &compare.range_end, self.current_rev);
        if kvs.is_empty() {
            if matches!(compare.target, CompareTarget::Value(_)) {
                return false;
            }
            return compare_kv(compare, &KeyValue::default());
        }
        kvs.into_iter().all(|kv| compare_kv(compare, kv))
    }

    fn plan(&self, txn: &TxnRequest) -> Plan {
        let succeeded = txn.compare.iter().all(|c| self.eval_compare(c));
        let ops = if succeeded {
            &txn.success
        } else {
            &txn.failure
        };
        let nested = ops
            .iter()
            .filter_map(|op| match op {
                RequestOp::Txn(inner) => Some(self.plan(inner)),
                _ => None,
            })
            .collect();
        Plan { succeeded, nested }
    }

    /// Visit every non-txn op of the chosen branches, depth first in op order.
    fn for_each_planned_op<'a>(
        txn: &'a TxnRequest,
        plan: &Plan,
        f: &mut dyn FnMut(&'a RequestOp) -> Result<(), EtcdError>,
    ) -> Result<(), EtcdError> {
        let ops = if plan.succeeded {
            &txn.success
        } else {
            &txn.failure
        };
        let mut nested = plan.nested.iter();
        for op in ops {
            match op {
                RequestOp::Txn(inner) => {
                    let inner_plan = nested.next().expect("a plan per nested txn");
                    Self::for_each_planned_op(inner, inner_plan, f)?;
                }
                _ => f(op)?,
            }
        }
        assert!(nested.next().is_none());
        Ok(())
    }

    /// etcd's checkPut then checkRange over the chosen path, before anything executes.
    fn check_planned(&self, txn: &TxnRequest, plan: &Plan) -> Result<(), EtcdError> {
        Self::for_each_planned_op(txn, plan, &mut |op| match op {
            RequestOp::Put(p) => self.check_put_state(p),
            _ => Ok(()),
        })?;
        Self::for_each_planned_op(txn, plan, &mut |op| match op {
            // etcd's checkRange (3.4 and 3.6 alike): only revision 0 skips the check, so a
            // negative revision below the compact revision (-1 before any compaction) fails
            // the whole txn with ErrCompacted; found by the differential test (difftest/).
            RequestOp::Range(r) if r.revision != 0 => {
                if r.revision > self.current_rev {
                    Err(EtcdError::FutureRev)
                } else if r.revision < self.compact_rev {
                    Err(EtcdError::Compacted)
                } else {
                    Ok(())
                }
            }
            _ => Ok(()),
        })
    }

    /// The state-dependent checks of a put: ignore_value/ignore_lease need the key; a lease
    /// must exist.
    fn check_put_state(&self, put: &PutRequest) -> Result<(), EtcdError> {
        if (put.ignore_value || put.ignore_lease)
            && self.live_kv(&put.key, self.current_rev).is_none()
        {
            return Err(EtcdError::KeyNotFound);
        }
        if put.lease != 0 && !self.leases.contains_key(&put.lease) {
            return Err(EtcdError::LeaseNotFound);
        }
        Ok(())
    }

    // ---- writes ----

    fn commit(&mut self, tx: WriteTxn) {
        assert_eq!(tx.begin, self.current_rev);
        assert_eq!(tx.changes, tx.events.len() as i64);
        if tx.changes > 0 {
            self.current_rev = tx.begin + 1;
            self.pending_events.push((self.current_rev, tx.events));
        }
    }

    fn write_record(&mut self, tx: &mut WriteTxn, key: &[u8], kv: Option<KeyValue>) -> Rev {
        let rev = tx.next_rev();
        let revs = self.index.entry(key.to_vec()).or_default();
        if let Some(last) = revs.last() {
            assert!(*last < rev);
        }
        revs.push(rev);
        let previous = self.backend.insert(
            rev,
            Record {
                rev,
                key: key.to_vec(),
                kv,
            },
        );
        assert!(previous.is_none());
        tx.changes += 1;
        rev
    }

    fn detach(&mut self, lease: LeaseId, key: &[u8]) {
        if lease == 0 {
            return;
        }
        if let Some(l) = self.leases.get_mut(&lease) {
            let removed = l.keys.remove(key);
            assert!(removed, "a leased key is in its lease's key set");
        }
    }

    /// mvcc's put inside a write txn. `value`/`lease` are the final ones (ignore_* resolved).
    fn put_kv(&mut self, tx: &mut WriteTxn, key: &[u8], value: Vec<u8>, lease: LeaseId) {
        let prev = self.live_kv(key, tx.view_rev()).cloned();
        let main = tx.begin + 1;
        let kv = KeyValue {
            key: key.to_vec(),
            create_revision: prev.as_ref().map_or(main, |p| p.create_revision),
            mod_revision: main,
            version: prev.as_ref().map_or(1, |p| p.version + 1),
            value,
            lease,
        };
        self.write_record(tx, key, Some(kv.clone()));
        if let Some(p) = &prev {
            self.detach(p.lease, key);
        }
        if lease != 0 {
            let l = self
                .leases
                .get_mut(&lease)
                .expect("put's lease checked before execution");
            l.keys.insert(key.to_vec());
        }
        // A watch event's prev_kv is the key at the revision BEFORE the txn (etcd reads it at
        // mod_revision - 1), not the in-txn value; a creation (version 1) has none.
        let event_prev_kv = if kv.version == 1 {
            None
        } else {
            self.live_kv(key, tx.begin).cloned()
        };
        tx.events.push(Event {
            kind: EventType::Put,
            kv,
            prev_kv: event_prev_kv,
        });
    }

    fn delete_key(&mut self, tx: &mut WriteTxn, key: &[u8]) {
        let prev = self
            .live_kv(key, tx.view_rev())
            .cloned()
            .expect("only live keys are deleted");
        let rev = self.write_record(tx, key, None);
        self.detach(prev.lease, key);
        // As for puts: the key before the txn, which is absent if this txn created it (etcd
        // 3.4.23 sent no prev_kv for such a delete; found by difftest/).
        let event_prev_kv = self.live_kv(key, tx.begin).cloned();
        tx.events.push(Event {
            kind: EventType::Delete,
            kv: KeyValue {
                key: key.to_vec(),
                mod_revision: rev.main,
                ..KeyValue::default()
            },
            prev_kv: event_prev_kv,
        });
    }

    fn exec_put(&mut self, tx: &mut WriteTxn, put: &PutRequest) -> PutResponse {
        let prev = self.live_kv(&put.key, tx.view_rev()).cloned();
        let value = if put.ignore_value {
            prev.as_ref().expect("checked").value.clone()
        } else {
            put.value.clone()
        };
        let lease = if put.ignore_lease {
            prev.as_ref().expect("checked").lease
        } else {
            put.lease
        };
        self.put_kv(tx, &put.key, value, lease);
        PutResponse {
            header: header(tx.begin + 1),
            prev_kv: if put.prev_kv { prev } else { None },
        }
    }

    fn exec_delete_range(
        &mut self,
        tx: &mut WriteTxn,
        del: &DeleteRangeRequest,
    ) -> DeleteRangeResponse {
        let prevs: Vec<KeyValue> = self
            .live_range(&del.key, &del.range_end, tx.view_rev())
            .into_iter()
            .cloned()
            .collect();
        for kv in &prevs {
            self.delete_key(tx, &kv.key);
        }
        DeleteRangeResponse {
            header: header(tx.view_rev()),
            deleted: prevs.len() as i64,
            prev_kvs: if del.prev_kv { prevs } else { Vec::new() },
        }
    }

    fn exec_txn(&mut self, tx: &mut WriteTxn, txn: &TxnRequest, plan: &Plan) -> TxnResponse {
        let ops = if plan.succeeded {
            &txn.success
        } else {
            &txn.failure
        };
        let mut nested = plan.nested.iter();
        let mut responses = Vec::with_capacity(ops.len());
        for op in ops {
            let response = match op {
                RequestOp::Range(r) => ResponseOp::Range(
                    self.range_at(r, tx.view_rev())
                        .expect("range checked before execution"),
                ),
                RequestOp::Put(p) => ResponseOp::Put(self.exec_put(tx, p)),
                RequestOp::DeleteRange(d) => ResponseOp::DeleteRange(self.exec_delete_range(tx, d)),
                RequestOp::Txn(inner) => {
                    let inner_plan = nested.next().expect("a plan per nested txn");
                    ResponseOp::Txn(self.exec_txn(tx, inner, inner_plan))
                }
            };
            responses.push(response);
        }
        // Nested txn headers stay zero (etcd's newTxnResp); the caller sets the outer one.
        TxnResponse {
            header: ResponseHeader::default(),
            succeeded: plan.succeeded,
            responses,
        }
    }

    /// Read-only execution (no writes anywhere in the chosen path).
    fn exec_read_only(&self, txn: &TxnRequest, plan: &Plan) -> TxnResponse {
        let ops = if plan.succeeded {
            &txn.success
        } else {
            &txn.failure
        };
        let mut nested = plan.nested.iter();
        let responses = ops
            .iter()
            .map(|op| match op {
                RequestOp::Range(r) => ResponseOp::Range(
                    self.range_at(r, self.current_rev)
                        .expect("range checked before execution"),
                ),
                RequestOp::Txn(inner) => {
                    let inner_plan = nested.next().expect("a plan per nested txn");
                    ResponseOp::Txn(self.exec_read_only(inner, inner_plan))
                }
                RequestOp::Put(_) | RequestOp::DeleteRange(_) => {
                    unreachable!("read-only txn has no writes")
                }
            })
            .collect();
        TxnResponse {
            header: ResponseHeader::default(),
            succeeded: plan.succeeded,
            responses,
        }
    }

    fn validate_txn(&self, txn: &TxnRequest) -> Result<Plan, EtcdError> {
        check_txn_request(txn, self.options.max_txn_ops)?;
        check_intervals(&txn.success)?;
        check_intervals(&txn.failure)?;
        let plan = self.plan(txn);
        self.check_planned(txn, &plan)?;
        Ok(plan)
    }

    fn read_only_txn(&self, txn: &TxnRequest) -> Result<TxnResponse, EtcdError> {
        let plan = self.validate_txn(txn)?;
        let mut response = self.exec_read_only(txn, &plan);
        response.header = header(self.current_rev);
        Ok(response)
    }

    fn apply_txn(&mut self, txn: &TxnRequest) -> Result<TxnResponse, EtcdError> {
        if !txn_has_write(txn) {
            return self.read_only_txn(txn);
        }
        let plan = self.validate_txn(txn)?;
        let mut tx = WriteTxn::new(self.current_rev);
        let mut response = self.exec_txn(&mut tx, txn, &plan);
        response.header = header(tx.view_rev());
        self.commit(tx);
        Ok(response)
    }

    fn apply_put(&mut self, put: &PutRequest) -> Result<PutResponse, EtcdError> {
        check_put_request(put)?;
        // etcd's order: lease lookup, then the previous KV for ignore_value/ignore_lease.
        if put.lease != 0 && !self.leases.contains_key(&put.lease) {
            return Err(EtcdError::LeaseNotFound);
        }
        self.check_put_state(put)?;
        let mut tx = WriteTxn::new(self.current_rev);
        let response = self.exec_put(&mut tx, put);
        self.commit(tx);
        assert_eq!(response.header.revision, self.current_rev);
        Ok(response)
    }

    fn apply_delete_range(
        &mut self,
        del: &DeleteRangeRequest,
    ) -> Result<DeleteRangeResponse, EtcdError> {
        check_delete_request(del)?;
        let mut tx = WriteTxn::new(self.current_rev);
        let response = self.exec_delete_range(&mut tx, del);
        self.commit(tx);
        assert_eq!(response.header.revision, self.current_rev);
        Ok(response)
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
        let mut tx = WriteTxn::new(self.current_rev);
        for key in &keys {
            self.delete_key(&mut tx, key);
        }
        self.commit(tx);
        let lease = self.leases.remove(&req.id).expect("present");
        assert!(lease.keys.is_empty());
        Ok(LeaseRevokeResponse {
            header: header(self.current_rev),
        })
    }
}
