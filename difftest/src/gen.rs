//! The operation generator: from a seed, a single-client sequence covering etcd-semantics.md
//! §1-§9 as far as etcd 3.4 supports it (see DIFFERENCES.md for what is left out and why).
//!
//! Generation is online: each step is drawn from the seed's ChaCha8 stream and the store's
//! current state (revisions, leases), so revisions and lease IDs point at interesting places
//! (the compact revision, one past the current one, a lease that exists). Both sides agree on
//! that state as long as they agree on every response, so the sequence is a function of the
//! seed and the starting state.

use faultline_api::{
    prefix_range_end, CompactionRequest, Compare, CompareResult, CompareTarget, DeleteRangeRequest,
    EtcdError, LeaseGrantRequest, LeaseId, LeaseKeepAliveRequest, LeaseRevokeRequest,
    LeaseTimeToLiveRequest, PutRequest, RangeRequest, Request, RequestOp, Revision, SortOrder,
    SortTarget, TxnRequest, WatchCreateRequest, WatchFilter,
};
use faultline_mvcc::{KvStore, MAX_LEASE_TTL_SECONDS, MAX_TXN_OPS_DEFAULT};
use rand::{Rng, RngCore};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// One step of a sequence: a unary request, or opening a watch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Step {
    Request(Request),
    Watch(WatchCreateRequest),
}

/// The key universe. At most 11 keys are ever live (these 10 plus the padding key), which
/// keeps sorted ranges at or below 12 elements: there Go's sort (etcd) is an insertion sort,
/// stable like the store's, so ties order identically (see DIFFERENCES.md).
pub const KEYS: [&[u8]; 10] = [
    b"a",
    b"a/1",
    b"a/2",
    b"a/x",
    b"ab",
    b"b",
    b"b/1",
    b"b\xff",
    b"c",
    b"c\xff\xff",
];
/// Written at the end of a seed before the watch sentinels (see `run`).
pub const PAD_KEY: &[u8] = b"zz-pad";
/// Values: a few shared ones (ties for value sorts and compares) and unique ones.
const VALUES: [&[u8]; 5] = [b"", b"v0", b"v1", b"v2", b"\xffv"];
/// Explicit lease IDs the generator asks for (server-chosen ones are far larger).
const EXPLICIT_LEASE_IDS: std::ops::RangeInclusive<LeaseId> = 1..=6;
/// Leases granted with a TTL below this are revoked by the very next step, so real time
/// never expires them in etcd while the sequence runs.
pub const SHORT_TTL_SECONDS: i64 = 60;
/// Watches opened per seed, at most.
pub const MAX_WATCHES_PER_SEED: usize = 6;

/// Generator state for one seed.
pub struct Generator {
    rng: ChaCha8Rng,
    /// The store revision when the seed's own steps began.
    base_rev: Revision,
    value_counter: u64,
    watches: usize,
}

fn pick<'a, T>(rng: &mut ChaCha8Rng, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

impl Generator {
    pub fn new(rng: ChaCha8Rng, base_rev: Revision) -> Generator {
        Generator {
            rng,
            base_rev,
            value_counter: 0,
            watches: 0,
        }
    }

    pub fn watches_opened(&self) -> usize {
        self.watches
    }

    fn chance(&mut self, percent: u32) -> bool {
        self.rng.random_range(0..100) < percent
    }

    fn key(&mut self) -> Vec<u8> {
        pick(&mut self.rng, &KEYS).to_vec()
    }

    fn value(&mut self) -> Vec<u8> {
        if self.chance(50) {
            pick(&mut self.rng, &VALUES).to_vec()
        } else {
            self.value_counter += 1;
            format!("u{}-{}", self.value_counter, self.rng.next_u32() % 1000).into_bytes()
        }
    }

    /// (key, range_end) covering every shape etcd knows; `allow_empty_key` lets ErrEmptyKey
    /// through now and then.
    fn key_range(&mut self, allow_empty_key: bool) -> (Vec<u8>, Vec<u8>) {
        let roll = self.rng.random_range(0..100);
        match roll {
            0..=39 => (self.key(), Vec::new()),
            40..=59 => {
                let prefix =
                    pick(&mut self.rng, &[&b"a"[..], b"a/", b"b", b"b\xff", b"c\xff"]).to_vec();
                let end = prefix_range_end(&prefix);
                (prefix, end)
            }
            60..=74 => {
                // [key, end) with end possibly <= key (an empty range).
                (self.key(), self.key())
            }
            75..=84 => (self.key(), vec![0]),
            85..=94 => (vec![0], vec![0]),
            _ if allow_empty_key && roll >= 98 => (Vec::new(), Vec::new()),
            _ => (self.key(), prefix_range_end(b"a")),
        }
    }

    /// A revision for reads: latest, current, historical, compacted, future, negative.
    fn read_revision(&mut self, store: &KvStore) -> Revision {
        let current = store.current_revision();
        let compact = store.compact_revision();
        let oldest_readable = compact.max(1);
        match self.rng.random_range(0..100) {
            0..=54 => 0,
            55..=59 => current,
            60..=79 => self.rng.random_range(oldest_readable..=current),
            80..=84 => self
                .rng
                .random_range(self.base_rev.max(oldest_readable)..=current),
            85..=89 if compact > 1 => self.rng.random_range(1..compact),
            85..=89 => compact.max(1),
            90..=95 => current + self.rng.random_range(1..=3),
            _ => -1,
        }
    }

    fn lease_id(&mut self, store: &KvStore, existing_percent: u32) -> LeaseId {
        let leases = store.leases();
        if !leases.is_empty() && self.chance(existing_percent) {
            pick(&mut self.rng, &leases).0
        } else {
            // A lease that most likely does not exist.
            self.rng.random_range(100..200)
        }
    }

    fn range_request(&mut self, store: &KvStore, in_txn: bool) -> RangeRequest {
        let (key, range_end) = self.key_range(!in_txn);
        let mut req = RangeRequest {
            key,
            range_end,
            revision: self.read_revision(store),
            serializable: self.chance(20),
            keys_only: self.chance(15),
            count_only: self.chance(10),
            ..RangeRequest::default()
        };
        if self.chance(40) {
            req.limit = self.rng.random_range(1..=4);
        }
        if self.chance(35) {
            req.sort_order = *pick(
                &mut self.rng,
                &[SortOrder::None, SortOrder::Ascend, SortOrder::Descend],
            );
            req.sort_target = *pick(
                &mut self.rng,
                &[
                    SortTarget::Key,
                    SortTarget::Version,
                    SortTarget::Create,
                    SortTarget::Mod,
                    SortTarget::Value,
                ],
            );
        }
        let current = store.current_revision();
        let low = self.base_rev.max(1);
        if self.chance(12) {
            req.min_mod_revision = self.rng.random_range(low..=current + 1);
        }
        if self.chance(12) {
            req.max_mod_revision = self.rng.random_range(low..=current + 1);
        }
        if self.chance(12) {
            req.min_create_revision = self.rng.random_range(low..=current + 1);
        }
        if self.chance(12) {
            req.max_create_revision = self.rng.random_range(low..=current + 1);
        }
        req
    }

    fn put_request(&mut self, store: &KvStore, key: Vec<u8>) -> PutRequest {
        let mut req = PutRequest {
            key,
            value: self.value(),
            prev_kv: self.chance(40),
            ..PutRequest::default()
        };
        let roll = self.rng.random_range(0..100);
        if roll < 25 {
            req.lease = self.lease_id(store, 90);
        }
        if self.chance(8) {
            req.ignore_value = true;
            if self.chance(80) {
                req.value = Vec::new();
            }
        }
        if self.chance(8) {
            req.ignore_lease = true;
            if self.chance(70) {
                req.lease = 0;
            }
        }
        req
    }

    fn delete_request(&mut self, key_range: (Vec<u8>, Vec<u8>)) -> DeleteRangeRequest {
        DeleteRangeRequest {
            key: key_range.0,
            range_end: key_range.1,
            prev_kv: self.chance(50),
        }
    }

    fn compare(&mut self, store: &KvStore) -> Compare {
        let current = store.current_revision();
        let result = *pick(
            &mut self.rng,
            &[
                CompareResult::Equal,
                CompareResult::Greater,
                CompareResult::Less,
                CompareResult::NotEqual,
            ],
        );
        let target = match self.rng.random_range(0..5) {
            0 => CompareTarget::Version(self.rng.random_range(0..=3)),
            1 => CompareTarget::CreateRevision(
                self.rng.random_range((current - 6).max(0)..=current + 1),
            ),
            2 => CompareTarget::ModRevision(
                self.rng.random_range((current - 6).max(0)..=current + 1),
            ),
            3 => CompareTarget::Value(self.value()),
            _ => CompareTarget::Lease(if self.chance(50) {
                0
            } else {
                self.lease_id(store, 80)
            }),
        };
        let key = self.key();
        let range_end = if self.chance(20) {
            if self.chance(50) {
                prefix_range_end(&key)
            } else {
                vec![0]
            }
        } else {
            Vec::new()
        };
        Compare {
            result,
            target,
            key,
            range_end,
        }
    }

    /// A branch: ops over mostly distinct keys (a few deliberate overlaps for ErrDuplicateKey).
    fn branch(&mut self, store: &KvStore, depth: u32) -> Vec<RequestOp> {
        let count = self.rng.random_range(0..=3);
        let mut used: Vec<Vec<u8>> = Vec::new();
        let mut ops = Vec::with_capacity(count);
        for _ in 0..count {
            let roll = self.rng.random_range(0..100);
            let mut fresh_key = |g: &mut Generator| {
                for _ in 0..8 {
                    let key = g.key();
                    if !used.contains(&key) || g.chance(5) {
                        used.push(key.clone());
                        return key;
                    }
                }
                g.key()
            };
            let op = match roll {
                0..=39 => RequestOp::Range(self.range_request(store, true)),
                40..=74 => {
                    let key = fresh_key(self);
                    RequestOp::Put(self.put_request(store, key))
                }
                75..=89 => {
                    let range = if self.chance(80) {
                        (fresh_key(self), Vec::new())
                    } else {
                        self.key_range(false)
                    };
                    RequestOp::DeleteRange(self.delete_request(range))
                }
                _ if depth < 2 => RequestOp::Txn(self.txn(store, depth + 1)),
                _ => RequestOp::Range(self.range_request(store, true)),
            };
            ops.push(op);
        }
        ops
    }

    fn txn(&mut self, store: &KvStore, depth: u32) -> TxnRequest {
        let compares = self.rng.random_range(0..=3);
        let compare = (0..compares).map(|_| self.compare(store)).collect();
        TxnRequest {
            compare,
            success: self.branch(store, depth),
            failure: self.branch(store, depth),
        }
    }

    fn lease_grant(&mut self) -> LeaseGrantRequest {
        let id = if self.chance(50) {
            0
        } else {
            self.rng.random_range(EXPLICIT_LEASE_IDS)
        };
        let ttl_seconds = match self.rng.random_range(0..100) {
            0..=64 => self.rng.random_range(600..=3600),
            65..=69 => MAX_LEASE_TTL_SECONDS + 1,
            70..=74 => MAX_LEASE_TTL_SECONDS,
            _ => self.rng.random_range(0..=3),
        };
        LeaseGrantRequest { ttl_seconds, id }
    }

    fn watch(&mut self, store: &KvStore) -> WatchCreateRequest {
        let current = store.current_revision();
        let compact = store.compact_revision();
        // Never an empty key (see DIFFERENCES.md).
        let (key, range_end) = match self.key_range(false) {
            (key, end) if key.is_empty() => (vec![0], end),
            other => other,
        };
        let start_revision = match self.rng.random_range(0..100) {
            0..=29 => 0,
            30..=59 => self.rng.random_range(compact.max(1)..=current),
            60..=69 if compact > 1 => self.rng.random_range(1..compact),
            60..=69 => compact.max(1),
            70..=84 => current + self.rng.random_range(1..=3),
            _ => self.base_rev.max(compact).max(1),
        };
        let filters = match self.rng.random_range(0..100) {
            0..=69 => Vec::new(),
            70..=84 => vec![WatchFilter::NoPut],
            _ => vec![WatchFilter::NoDelete],
        };
        WatchCreateRequest {
            key,
            range_end,
            start_revision,
            filters,
            prev_kv: self.chance(50),
            ..WatchCreateRequest::default()
        }
    }

    /// The next step, given the store's current state.
    pub fn next_step(&mut self, store: &KvStore) -> Step {
        // A short-TTL lease must not live long enough to expire in real time.
        if let Some((id, _)) = store
            .leases()
            .into_iter()
            .find(|(_, ttl)| *ttl < SHORT_TTL_SECONDS)
        {
            return Step::Request(Request::LeaseRevoke(LeaseRevokeRequest { id }));
        }
        let roll = self.rng.random_range(0..1000);
        let request = match roll {
            0..=239 => Request::Range(self.range_request(store, false)),
            240..=459 => {
                let key = if self.chance(2) {
                    Vec::new()
                } else {
                    self.key()
                };
                Request::Put(self.put_request(store, key))
            }
            460..=539 => {
                let range = self.key_range(true);
                Request::DeleteRange(self.delete_request(range))
            }
            540..=719 => Request::Txn(self.txn_etcd_runs(store)),
            720..=729 => Request::Txn(self.oversized_txn()),
            730..=759 => Request::Compact(self.compaction(store)),
            760..=819 => Request::LeaseGrant(self.lease_grant()),
            820..=859 => Request::LeaseRevoke(LeaseRevokeRequest {
                id: self.lease_id(store, 80),
            }),
            860..=899 => Request::LeaseTimeToLive(LeaseTimeToLiveRequest {
                id: self.lease_id(store, 85),
                keys: self.chance(70),
            }),
            900..=919 => Request::LeaseLeases,
            920..=949 => Request::LeaseKeepAlive(LeaseKeepAliveRequest {
                id: self.lease_id(store, 85),
            }),
            _ if self.watches < MAX_WATCHES_PER_SEED => {
                self.watches += 1;
                return Step::Watch(self.watch(store));
            }
            _ => Request::Range(self.range_request(store, false)),
        };
        Step::Request(request)
    }

    /// A txn, drawn again while the store rejects it before proposal with ErrKeyNotFound (a
    /// put with ignore_value/ignore_lease after a delete of its branch that may remove the
    /// key, the only ErrKeyNotFound of `check_request`): etcd 3.4.23 crashes on such a txn,
    /// or runs it when the path is not taken (DIFFERENCES.md, D8). About one txn in a thousand
    /// is drawn again; after 64 draws, an empty txn.
    fn txn_etcd_runs(&mut self, store: &KvStore) -> TxnRequest {
        for _ in 0..64 {
            let txn = self.txn(store, 0);
            if store.check_request(&Request::Txn(txn.clone())) != Err(EtcdError::KeyNotFound) {
                return txn;
            }
        }
        TxnRequest::default()
    }

    /// ErrTooManyOps: more compares (or ops) than etcd's default --max-txn-ops.
    fn oversized_txn(&mut self) -> TxnRequest {
        let n = MAX_TXN_OPS_DEFAULT + if self.chance(50) { 1 } else { 0 };
        let compare = (0..n)
            .map(|i| Compare {
                result: CompareResult::Equal,
                target: CompareTarget::Version(0),
                key: KEYS[i % KEYS.len()].to_vec(),
                range_end: Vec::new(),
            })
            .collect();
        TxnRequest {
            compare,
            success: Vec::new(),
            failure: Vec::new(),
        }
    }

    fn compaction(&mut self, store: &KvStore) -> CompactionRequest {
        let current = store.current_revision();
        let compact = store.compact_revision();
        let revision = match self.rng.random_range(0..100) {
            0..=69 if compact < current => self.rng.random_range((compact + 1).max(1)..=current),
            0..=84 => compact.max(1),
            _ => current + self.rng.random_range(1..=2),
        };
        CompactionRequest {
            revision,
            physical: self.chance(50),
        }
    }
}
