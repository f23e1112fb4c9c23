//! The workload: what each client, the compactor and each watcher will do, drawn from their
//! own streams (after etcd's robustness traffic).

use std::net::IpAddr;

use faultline_api::{
    prefix_range_end, CompactionRequest, Compare, CompareResult, CompareTarget, DeleteRangeRequest,
    LeaseGrantRequest, LeaseId, LeaseKeepAliveRequest, LeaseRevokeRequest, LeaseTimeToLiveRequest,
    PutRequest, RangeRequest, Request, RequestOp, SortOrder, SortTarget, TxnRequest,
    WatchCreateRequest,
};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::keyspace::KEY_PREFIX;
use super::scenario::Scenario;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedOp {
    pub think_time_ms: u64,
    /// The member the request is sent to first, like a client balancing over endpoints; the
    /// client follows leader hints from there.
    pub member: u64,
    pub request: Request,
    /// What the client fills in at run time from what it has seen (a plan cannot know
    /// revisions in advance); the history records the request as sent.
    #[serde(default)]
    pub fill: Fill,
}

/// Run-time parts of a planned request, filled from the client's own observations: the
/// highest header revision it saw, and the last KV it read for each key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Fill {
    #[default]
    None,
    /// The first compare of a Txn gets the compared field of the last KV this client read
    /// for its key (mod revision, version or value): a compare-and-set. A key it last saw
    /// absent (or never read) compares with 0 (create-if-absent; a value compare stays as
    /// planned and fails).
    CompareLastSeen,
    /// Range: `revision` = highest seen revision - n (at least 1): a historical read.
    RevisionsBack(u32),
    /// Range: `min_mod_revision` = highest seen revision - n (at least 1).
    MinModRevisionBack(u32),
    /// Compact: `revision` = highest seen revision - n (at least 1).
    CompactRevisionsBack(u32),
    /// Range: a paginated list. The planned range is the first page (its `limit` the page
    /// size; `revision` = highest seen - n when `revisions_back` is set); the client then
    /// asks for the next pages (`plan::next_page`) at the first page's revision, each page
    /// one operation of the history.
    Paginate { revisions_back: Option<u32> },
    /// Txn: the first compare (a mod revision) gets the mod revision this client last knew
    /// the key at, from a read or from its own successful txn write (0: absent or never
    /// known), as Kubernetes' optimistic updates do with the object's resourceVersion.
    CompareLastKnown,
}

impl Fill {
    /// A linearizable paginated list.
    pub fn paginate() -> Fill {
        Fill::Paginate {
            revisions_back: None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientPlan {
    pub id: u64,
    pub ip: IpAddr,
    pub ops: Vec<PlannedOp>,
}

/// Where a planned watch starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WatchStart {
    /// start_revision 0: events after the member's current revision.
    Now,
    /// The revision of a linearizable read just before, minus n (at least 1); may be compacted
    /// (then the watch is canceled with the compact revision and reopened from it).
    RevisionsBack(u32),
    /// The beginning of history (usually compacted away in a long run).
    First,
    /// A paginated list of the watched range (pages of `page_limit` keys, all at the first
    /// page's revision), then a watch from the list's revision + 1; when compaction cancels
    /// the watch, list again (Kubernetes' reflector).
    List { page_limit: i64 },
}

/// One watch session: read the current revision, open a watch on a member, receive for
/// `duration_ms` (reopening it when the stream is lost or compaction cancels it), cancel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedWatch {
    pub think_time_ms: u64,
    pub member: u64,
    pub start: WatchStart,
    /// Key, range and options; `start_revision` is set at run time from `start`.
    pub request: WatchCreateRequest,
    pub duration_ms: u64,
    /// Send a progress request this often (0: never).
    pub progress_request_interval_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatcherPlan {
    pub id: u64,
    pub ip: IpAddr,
    pub sessions: Vec<PlannedWatch>,
}

pub fn key_name(index: u32) -> Vec<u8> {
    format!("k/{index}").into_bytes()
}

/// The lease ids of one client: chosen by the client (etcd accepts a client-chosen id), so a
/// plan can refer to them before they exist, and distinct across clients.
pub fn lease_id(client: u64, n: u32) -> LeaseId {
    let id = ((client + 1) << 20) | u64::from(n + 1);
    i64::try_from(id).expect("small lease ids")
}

/// The key-value workload of one client, after etcd's robustness traffic (EtcdPutDeleteLease
/// with more range options): every request type the linearizability model judges, plus
/// lease requests it does not judge (KeepAlive, TimeToLive, Leases; recorded anyway).
pub(super) fn generate_ops(
    rng: &mut ChaCha8Rng,
    scenario: &Scenario,
    client: u64,
) -> Vec<PlannedOp> {
    let mut ops = Vec::new();
    let mut elapsed_ms = 0;
    // Leases of this client planned so far (granted or not by the time they are used).
    let mut leases: u32 = 0;
    // Budget the ops by think time so a client's schedule ends near the workload's end.
    while elapsed_ms < scenario.workload_duration_ms {
        let think_time_ms = rng.random_range(0..=scenario.think_time_ms_max);
        elapsed_ms += think_time_ms + scenario.tick_interval_ms;
        let seq = ops.len();
        // Unique values let a checker tell every write apart.
        let mut values = 0;
        let mut value = || {
            values += 1;
            format!("c{client}-{seq}-{values}").into_bytes()
        };
        let (request, fill) = random_request(rng, scenario, client, &mut leases, &mut value);
        let member = rng.random_range(1..=u64::from(scenario.members));
        ops.push(PlannedOp {
            think_time_ms,
            member,
            request,
            fill,
        });
    }
    ops
}

/// One request of the key-value workload and what the client fills in at run time.
/// `leases` counts the leases this client planned so far (granted or not by the time they
/// are used); `value` makes each written value unique.
fn random_request(
    rng: &mut ChaCha8Rng,
    scenario: &Scenario,
    client: u64,
    leases: &mut u32,
    value: &mut dyn FnMut() -> Vec<u8>,
) -> (Request, Fill) {
    // Leases planned before this request.
    let planned = *leases;
    let key = key_name(rng.random_range(0..scenario.keys));
    let mut fill = Fill::None;
    let request = match rng.random_range(0..100) {
        0..22 => random_put(rng, key, client, planned, value),
        22..34 => Request::Range(RangeRequest {
            key,
            serializable: rng.random_bool(0.25),
            ..RangeRequest::default()
        }),
        34..44 => {
            let mut range = random_range_options(rng);
            if rng.random_bool(0.15) {
                fill = Fill::MinModRevisionBack(rng.random_range(0..20));
            }
            range.serializable = rng.random_bool(0.2);
            Request::Range(range)
        }
        44..50 => {
            // Historical read: a recent revision, sometimes already compacted.
            fill = Fill::RevisionsBack(rng.random_range(0..40));
            if rng.random_bool(0.5) {
                Request::Range(RangeRequest {
                    key,
                    ..RangeRequest::default()
                })
            } else {
                Request::Range(random_range_options(rng))
            }
        }
        50..57 => Request::DeleteRange(DeleteRangeRequest {
            key,
            prev_kv: rng.random_bool(0.5),
            ..DeleteRangeRequest::default()
        }),
        57..58 => Request::DeleteRange(DeleteRangeRequest {
            key: KEY_PREFIX.to_vec(),
            range_end: prefix_range_end(KEY_PREFIX),
            prev_kv: true,
        }),
        58..68 => {
            fill = Fill::CompareLastSeen;
            compare_and_set(rng, key, value)
        }
        68..78 => Request::Txn(random_multi_op_txn(rng, scenario, value, true)),
        78..83 => {
            *leases += 1;
            Request::LeaseGrant(LeaseGrantRequest {
                ttl_seconds: scenario.lease_ttl_seconds,
                id: lease_id(client, planned),
            })
        }
        83..87 if planned > 0 => Request::LeaseRevoke(LeaseRevokeRequest {
            id: lease_id(client, rng.random_range(0..planned)),
        }),
        87..91 if planned > 0 => Request::LeaseKeepAlive(LeaseKeepAliveRequest {
            id: lease_id(client, rng.random_range(0..planned)),
        }),
        91..95 if planned > 0 => Request::LeaseTimeToLive(LeaseTimeToLiveRequest {
            id: lease_id(client, rng.random_range(0..planned)),
            keys: rng.random_bool(0.5),
        }),
        95..97 => Request::LeaseLeases,
        _ => Request::Range(RangeRequest {
            key,
            ..RangeRequest::default()
        }),
    };
    (request, fill)
}

/// A put, with prev_kv 30% of the time, on one of this client's `leases` planned so far 20%
/// of the time (once there is one).
fn random_put(
    rng: &mut ChaCha8Rng,
    key: Vec<u8>,
    client: u64,
    leases: u32,
    value: &mut dyn FnMut() -> Vec<u8>,
) -> Request {
    let with_lease = leases > 0 && rng.random_bool(0.2);
    Request::Put(PutRequest {
        key,
        value: value(),
        prev_kv: rng.random_bool(0.3),
        lease: if with_lease {
            lease_id(client, rng.random_range(0..leases))
        } else {
            0
        },
        ..PutRequest::default()
    })
}

/// Compare-and-set on what this client last read of the key (etcd's CompareAndSet traffic;
/// Kubernetes' guarded update by mod_revision): the compared field is filled at run time
/// (`Fill::CompareLastSeen`).
fn compare_and_set(
    rng: &mut ChaCha8Rng,
    key: Vec<u8>,
    value: &mut dyn FnMut() -> Vec<u8>,
) -> Request {
    let target = match rng.random_range(0..4) {
        0 | 1 => CompareTarget::ModRevision(0),
        2 => CompareTarget::Version(0),
        _ => CompareTarget::Value(Vec::new()),
    };
    let success = vec![RequestOp::Put(PutRequest {
        key: key.clone(),
        value: value(),
        prev_kv: rng.random_bool(0.3),
        ..PutRequest::default()
    })];
    let failure = vec![RequestOp::Range(RangeRequest {
        key: key.clone(),
        ..RangeRequest::default()
    })];
    Request::Txn(TxnRequest {
        compare: vec![Compare {
            result: CompareResult::Equal,
            target,
            key,
            range_end: Vec::new(),
        }],
        success,
        failure,
    })
}

/// A range over the whole prefix with random options (limit, keys_only, count_only, sort).
fn random_range_options(rng: &mut ChaCha8Rng) -> RangeRequest {
    let (sort_order, sort_target) = if rng.random_bool(0.3) {
        let order =
            [SortOrder::None, SortOrder::Ascend, SortOrder::Descend][rng.random_range(0..3)];
        let target = [
            SortTarget::Key,
            SortTarget::Version,
            SortTarget::Create,
            SortTarget::Mod,
            SortTarget::Value,
        ][rng.random_range(0..5)];
        // Every combination, including descending on a non-key target (ties stay in key
        // order) and order NONE with a non-key target and a limit (etcd sorts only the first
        // limit + 1 keys): the model follows etcd in both.
        (order, target)
    } else {
        (SortOrder::None, SortTarget::Key)
    };
    let count_only = rng.random_bool(0.1);
    RangeRequest {
        key: KEY_PREFIX.to_vec(),
        range_end: prefix_range_end(KEY_PREFIX),
        // With count_only too: etcd then answers `more = false` (no KVs to truncate).
        limit: [0, 0, 1, 2][rng.random_range(0..4)],
        keys_only: rng.random_bool(0.2),
        count_only,
        sort_order,
        sort_target,
        ..RangeRequest::default()
    }
}

/// etcd's MultiOpTxn: up to four ops on distinct keys (10% delete, 40% range, 50% put, at
/// least one put), sometimes guarded by a compare, rarely with a nested txn.
pub(super) fn random_multi_op_txn(
    rng: &mut ChaCha8Rng,
    scenario: &Scenario,
    value: &mut dyn FnMut() -> Vec<u8>,
    allow_nested: bool,
) -> TxnRequest {
    let mut keys: Vec<u32> = (0..scenario.keys).collect();
    let count = rng.random_range(1..=keys.len().min(4));
    let mut chosen = Vec::new();
    for _ in 0..count {
        chosen.push(keys.swap_remove(rng.random_range(0..keys.len())));
    }
    let mut success = Vec::new();
    let mut has_put = false;
    for (i, &k) in chosen.iter().enumerate() {
        let key = key_name(k);
        let last = i + 1 == chosen.len();
        let op = match rng.random_range(0..10) {
            _ if last && !has_put => 9,
            roll => roll,
        };
        success.push(match op {
            0 => RequestOp::DeleteRange(DeleteRangeRequest {
                key,
                prev_kv: rng.random_bool(0.5),
                ..DeleteRangeRequest::default()
            }),
            1..5 => RequestOp::Range(RangeRequest {
                key,
                ..RangeRequest::default()
            }),
            _ => {
                has_put = true;
                RequestOp::Put(PutRequest {
                    key,
                    value: value(),
                    ..PutRequest::default()
                })
            }
        });
    }
    let compare = random_guard(rng, scenario);
    // The failure branch reads the keys of the success branch.
    let failure = chosen
        .iter()
        .map(|&k| {
            RequestOp::Range(RangeRequest {
                key: key_name(k),
                ..RangeRequest::default()
            })
        })
        .collect();
    let mut txn = TxnRequest {
        compare,
        success,
        failure,
    };
    if allow_nested && !keys.is_empty() && rng.random_bool(0.1) {
        let inner = nested_txn(rng, scenario, value, &keys);
        txn.success.push(RequestOp::Txn(inner));
    }
    if allow_nested && rng.random_bool(0.04) {
        risky_ignore_put(rng, &mut txn, key_name(chosen[0]), value);
    }
    txn
}

/// Issue 16's shape, so that a member crash on it shows up as a failing seed: the txn's
/// success branch ends with a delete of `key` to the end of the key space followed by a put
/// of `key` with ignore_value or ignore_lease, flat or in two nested txns. A correct member
/// refuses the whole txn before proposal (ErrKeyNotFound, whatever the state); etcd 3.4.23
/// panics on every member applying it.
fn risky_ignore_put(
    rng: &mut ChaCha8Rng,
    txn: &mut TxnRequest,
    key: Vec<u8>,
    value: &mut dyn FnMut() -> Vec<u8>,
) {
    let delete = RequestOp::DeleteRange(DeleteRangeRequest {
        key: key.clone(),
        range_end: vec![0],
        prev_kv: false,
    });
    let ignore_value = rng.random_bool(0.5);
    let put = RequestOp::Put(PutRequest {
        key,
        // Written values stay unique: only an ignore_value put writes none.
        value: if ignore_value { Vec::new() } else { value() },
        ignore_value,
        ignore_lease: !ignore_value,
        ..PutRequest::default()
    });
    // Any key the earlier ops of the branch put would be a duplicate of the delete's range.
    txn.success.retain(|op| matches!(op, RequestOp::Range(_)));
    if rng.random_bool(0.5) {
        txn.success.extend([delete, put]);
    } else {
        let nested = |op| {
            RequestOp::Txn(TxnRequest {
                compare: Vec::new(),
                success: vec![op],
                failure: Vec::new(),
            })
        };
        txn.success.extend([nested(delete), nested(put)]);
    }
}

/// The compare of a multi-op txn: 40% of txns are guarded by one random compare.
fn random_guard(rng: &mut ChaCha8Rng, scenario: &Scenario) -> Vec<Compare> {
    if rng.random_bool(0.4) {
        let key = key_name(rng.random_range(0..scenario.keys));
        let result = [
            CompareResult::Equal,
            CompareResult::Greater,
            CompareResult::Less,
            CompareResult::NotEqual,
        ][rng.random_range(0..4)];
        let target = match rng.random_range(0..4) {
            0 => CompareTarget::Version(rng.random_range(0..3)),
            1 => CompareTarget::CreateRevision(rng.random_range(0..50)),
            2 => CompareTarget::ModRevision(rng.random_range(0..50)),
            _ => CompareTarget::Lease(0),
        };
        // Sometimes the predicate spans the whole prefix, in nested txns too: etcd evaluates
        // a nested txn's compares against the state before the whole txn, which a prefix
        // (or a key the outer ops write) tells apart from the state after the outer ops.
        let range_end = if rng.random_bool(0.2) {
            prefix_range_end(KEY_PREFIX)
        } else {
            Vec::new()
        };
        let key = if range_end.is_empty() {
            key
        } else {
            KEY_PREFIX.to_vec()
        };
        vec![Compare {
            result,
            target,
            key,
            range_end,
        }]
    } else {
        Vec::new()
    }
}

/// A nested txn on the keys the outer one does not touch (`keys`; no duplicate-key error).
fn nested_txn(
    rng: &mut ChaCha8Rng,
    scenario: &Scenario,
    value: &mut dyn FnMut() -> Vec<u8>,
    keys: &[u32],
) -> TxnRequest {
    let mut nested_scenario = scenario.clone();
    nested_scenario.keys = keys.len() as u32;
    let mut inner = random_multi_op_txn(rng, &nested_scenario, value, false);
    let rename = |op: &mut RequestOp| match op {
        RequestOp::Range(r) => r.key = rename_key(keys, &r.key),
        RequestOp::Put(p) => p.key = rename_key(keys, &p.key),
        RequestOp::DeleteRange(d) => d.key = rename_key(keys, &d.key),
        RequestOp::Txn(_) => unreachable!("nested only one level deep"),
    };
    inner.success.iter_mut().for_each(rename);
    inner.failure.iter_mut().for_each(rename);
    // The nested compare's key is not renamed: `k/i` of the reduced space is also a key
    // of the whole one, often one the outer ops write just before (etcd compares it as
    // it was before the txn).
    inner
}

/// Map `k/i` of a reduced key space onto the i-th of `keys`.
fn rename_key(keys: &[u32], key: &[u8]) -> Vec<u8> {
    let text = std::str::from_utf8(key).expect("workload keys are text");
    let index: usize = text
        .strip_prefix("k/")
        .and_then(|i| i.parse().ok())
        .expect("workload keys are k/<n>");
    key_name(keys[index])
}

/// The compaction loop (etcd robustness: compact at a recent revision every 200 ms): read the
/// current revision, then compact a few revisions below it.
pub(super) fn generate_compactions(rng: &mut ChaCha8Rng, scenario: &Scenario) -> Vec<PlannedOp> {
    let mut ops = Vec::new();
    let mut elapsed_ms = 0;
    while elapsed_ms < scenario.workload_duration_ms {
        let think_time_ms = scenario.compaction_interval_ms;
        elapsed_ms += think_time_ms;
        let member = rng.random_range(1..=u64::from(scenario.members));
        ops.push(PlannedOp {
            think_time_ms,
            member,
            request: Request::Range(RangeRequest {
                key: KEY_PREFIX.to_vec(),
                range_end: prefix_range_end(KEY_PREFIX),
                count_only: true,
                ..RangeRequest::default()
            }),
            fill: Fill::None,
        });
        ops.push(PlannedOp {
            think_time_ms: 0,
            member,
            request: Request::Compact(CompactionRequest {
                revision: 0,
                physical: rng.random_bool(0.5),
            }),
            fill: Fill::CompactRevisionsBack(
                rng.random_range(0..scenario.compact_back_max_revisions.max(1)),
            ),
        });
    }
    ops
}

/// Watch sessions of one watcher (etcd robustness watch traffic: read, then watch the prefix
/// from around that revision with progress notifications and prev_kv).
pub(super) fn generate_watches(
    rng: &mut ChaCha8Rng,
    scenario: &Scenario,
    prefix: &[u8],
) -> Vec<PlannedWatch> {
    let mut sessions = Vec::new();
    let mut elapsed_ms = 0;
    while elapsed_ms < scenario.workload_duration_ms {
        let think_time_ms = rng.random_range(0..=100);
        let duration_ms = rng.random_range(300..=1500);
        elapsed_ms += think_time_ms + duration_ms;
        let start = match rng.random_range(0..10) {
            0..2 => WatchStart::Now,
            2..9 => WatchStart::RevisionsBack(rng.random_range(0..30)),
            _ => WatchStart::First,
        };
        sessions.push(PlannedWatch {
            think_time_ms,
            member: rng.random_range(1..=u64::from(scenario.members)),
            start,
            request: WatchCreateRequest {
                key: prefix.to_vec(),
                range_end: prefix_range_end(prefix),
                progress_notify: rng.random_bool(0.7),
                prev_kv: rng.random_bool(0.5),
                ..WatchCreateRequest::default()
            },
            duration_ms,
            progress_request_interval_ms: if rng.random_bool(0.5) { 100 } else { 0 },
        });
    }
    sessions
}
