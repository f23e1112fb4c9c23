//! Generators of etcd histories for tests and benchmarks: a sequential reference (the etcd
//! model's `apply`) run on a random concurrent schedule, so every generated history is
//! linearizable by construction.
//!
//! Each client runs operations back to back. An operation takes effect at a random instant
//! inside its interval; an unknown-outcome write takes effect (possibly after the client gave
//! up) or never, each with probability 1/2. Values are unique per write, as in etcd's
//! robustness tests.

use std::collections::BTreeMap;

use faultline_api::{
    CompactionRequest, Compare, CompareResult, CompareTarget, DeleteRangeRequest,
    LeaseGrantRequest, LeaseId, LeaseKeepAliveRequest, LeaseKeepAliveResponse, LeaseRevokeRequest,
    PutRequest, RangeRequest, Request, RequestOp, Response, ResponseHeader, TxnRequest,
};

use crate::history::{History, Operation, Outcome};
use crate::linearizability::Model;
use crate::models::etcd::EtcdModel;

/// A small deterministic PRNG (splitmix64), so generation needs no dependency.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x853c_49e6_748f_ea9b)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, n).
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0);
        self.next_u64() % n
    }
    /// True with probability `percent`/100.
    pub fn percent(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// Options of `generate_etcd_history`.
#[derive(Clone, Debug)]
pub struct GenOptions {
    pub seed: u64,
    pub clients: u64,
    pub ops: usize,
    pub keys: usize,
    /// Percentage of operations whose outcome is unknown.
    pub unknown_percent: u64,
    /// Percentage of reads that are serializable.
    pub serializable_percent: u64,
    /// Include leases and compactions.
    pub leases_and_compaction: bool,
    /// Mean operation latency in nanoseconds.
    pub latency_ns: u64,
}

impl GenOptions {
    /// The benchmark shape: 100,000 operations, 16 clients, 10% unknown outcomes.
    pub fn benchmark(seed: u64) -> Self {
        GenOptions {
            seed,
            clients: 16,
            ops: 100_000,
            keys: 10,
            unknown_percent: 10,
            serializable_percent: 10,
            leases_and_compaction: true,
            latency_ns: 2_000_000,
        }
    }
}

struct Planned {
    client: u64,
    invoke: u64,
    complete: u64,
    effect_at: Option<u64>,
    unknown: bool,
    request: Request,
}

fn key(i: u64) -> Vec<u8> {
    format!("key{i}").into_bytes()
}

/// Short leases (`generate_short_lease_history`): grants of this TTL, keep-alives instead of
/// revokes, and expiry.
type ShortTtl = Option<i64>;

fn random_request(
    rng: &mut Rng,
    o: &GenOptions,
    n: usize,
    revision_guess: i64,
    short: ShortTtl,
) -> Request {
    let k = rng.below(o.keys as u64);
    let value = format!("v{n}").into_bytes();
    let dice = rng.below(100);
    let lease_id = 1000 + rng.below(20) as i64;
    match dice {
        0..=29 => Request::Range(RangeRequest {
            key: key(k),
            serializable: rng.percent(o.serializable_percent),
            ..Default::default()
        }),
        30..=34 => Request::Range(RangeRequest {
            key: b"key".to_vec(),
            range_end: b"kez".to_vec(),
            limit: rng.below(4) as i64,
            keys_only: rng.percent(30),
            serializable: rng.percent(o.serializable_percent),
            ..Default::default()
        }),
        35..=69 => Request::Put(PutRequest {
            key: key(k),
            value,
            prev_kv: rng.percent(50),
            ..Default::default()
        }),
        70..=74 => Request::DeleteRange(DeleteRangeRequest {
            key: key(k),
            prev_kv: rng.percent(50),
            ..Default::default()
        }),
        75..=89 => random_cas(rng, key(k), value, revision_guess),
        90..=93 if o.leases_and_compaction => Request::Put(PutRequest {
            key: key(k),
            value,
            lease: lease_id,
            ..Default::default()
        }),
        94..=95 if o.leases_and_compaction => Request::LeaseGrant(LeaseGrantRequest {
            ttl_seconds: short.unwrap_or(7200),
            id: lease_id,
        }),
        // Half of the leases are kept alive, the other half expire.
        96..=97 if o.leases_and_compaction && short.is_some() => {
            Request::LeaseKeepAlive(LeaseKeepAliveRequest {
                id: 1000 + (lease_id - 1000) % 10,
            })
        }
        96..=97 if o.leases_and_compaction => {
            Request::LeaseRevoke(LeaseRevokeRequest { id: lease_id })
        }
        98..=99 if o.leases_and_compaction => Request::Compact(CompactionRequest {
            revision: (revision_guess - 5).max(1),
            physical: false,
        }),
        _ => Request::Range(RangeRequest {
            key: key(k),
            ..Default::default()
        }),
    }
}

/// A txn that puts `value` if the key's mod revision or version compares as guessed, and
/// reads the key otherwise.
fn random_cas(rng: &mut Rng, key: Vec<u8>, value: Vec<u8>, revision_guess: i64) -> Request {
    let target = if rng.percent(50) {
        CompareTarget::ModRevision(revision_guess - rng.below(8) as i64)
    } else {
        CompareTarget::Version(rng.below(3) as i64)
    };
    Request::Txn(TxnRequest {
        compare: vec![Compare {
            result: if rng.percent(80) {
                CompareResult::Equal
            } else {
                CompareResult::Less
            },
            target,
            key: key.clone(),
            range_end: vec![],
        }],
        success: vec![RequestOp::Put(PutRequest {
            key: key.clone(),
            value,
            ..Default::default()
        })],
        failure: vec![RequestOp::Range(RangeRequest {
            key,
            ..Default::default()
        })],
    })
}

/// Generate a linearizable etcd history.
pub fn generate_etcd_history(o: &GenOptions) -> History {
    generate_etcd_history_with_witness(o).0
}

/// Like `generate_etcd_history`, and also the ids of the operations that took effect, in the
/// order they took effect (a witness linearization, for debugging the checker).
pub fn generate_etcd_history_with_witness(o: &GenOptions) -> (History, Vec<u64>) {
    generate_with(o, None)
}

/// Like `generate_etcd_history` with leases of `ttl_seconds` that expire: grants of that TTL,
/// keep-alives (of lease ids 1000-1009) instead of revokes, and a lease expires (its keys
/// deleted at a new revision) `ttl_seconds` after its grant or last keep-alive took effect,
/// as a leader with an exact clock and no leader change expires it.
pub fn generate_short_lease_history(o: &GenOptions, ttl_seconds: i64) -> History {
    assert!(ttl_seconds > 0);
    generate_with(o, Some(ttl_seconds)).0
}

fn generate_with(o: &GenOptions, short: ShortTtl) -> (History, Vec<u64>) {
    assert!(o.clients > 0 && o.keys > 0);
    let mut rng = Rng::new(o.seed);
    let planned = plan_ops(&mut rng, o, short);
    let (outcomes, effect_order) = take_effect(&mut rng, o, &planned, short);
    record(planned, outcomes, effect_order)
}

/// The operations of the clients, back to back, each with the instant it takes effect (if it
/// does).
fn plan_ops(rng: &mut Rng, o: &GenOptions, short: ShortTtl) -> Vec<Planned> {
    let mut next_free: Vec<u64> = (0..o.clients).map(|c| c * 1000).collect();
    let mut planned: Vec<Planned> = Vec::with_capacity(o.ops);
    // Writes so far, to guess plausible revisions for compares and compactions.
    let mut writes_so_far: i64 = 1;
    for n in 0..o.ops {
        // The client that is free first goes next.
        let client = (0..o.clients)
            .min_by_key(|&c| (next_free[c as usize], c))
            .expect("clients > 0");
        let invoke = next_free[client as usize] + rng.below(o.latency_ns / 4 + 1);
        let latency = 1 + rng.below(2 * o.latency_ns);
        let complete = invoke + latency;
        let request = random_request(rng, o, n, writes_so_far, short);
        if request.is_write() {
            writes_so_far += 1;
        }
        let unknown = rng.percent(o.unknown_percent);
        let effect_at = if unknown {
            if request.is_write() && rng.percent(50) {
                Some(invoke + rng.below(3 * latency))
            } else {
                None
            }
        } else {
            Some(invoke + rng.below(latency))
        };
        next_free[client as usize] = complete;
        planned.push(Planned {
            client,
            invoke,
            complete,
            effect_at,
            unknown,
            request,
        });
    }
    planned
}

/// Apply the operations that take effect, in the order they do, to the etcd model: the
/// outcome of each (by plan index) and that order.
fn take_effect(
    rng: &mut Rng,
    o: &GenOptions,
    planned: &[Planned],
    short: ShortTtl,
) -> (Vec<Option<Outcome>>, Vec<usize>) {
    let model = EtcdModel {
        keys: (0..o.keys as u64).map(key).collect(),
        lease_universe: vec![],
        claimed: vec![],
        max_revision: i64::MAX,
        unmodified: Default::default(),
        facts: None,
        lease_facts: None,
        reads_at: None,
    };
    let mut order: Vec<usize> = (0..planned.len())
        .filter(|&i| planned[i].effect_at.is_some())
        .collect();
    order.sort_by_key(|&i| (planned[i].effect_at, i));
    let mut state = model.init().remove(0);
    let mut outcomes: Vec<Option<Outcome>> = (0..planned.len()).map(|_| None).collect();
    // Short leases: when each lease expires (ns).
    let mut due: BTreeMap<LeaseId, u64> = BTreeMap::new();
    for &i in &order {
        let p = &planned[i];
        let at = p.effect_at.expect("ordered operations take effect");
        if let Some(ttl) = short {
            expire_due(&model, &mut state, &mut due, at);
            if let Some(outcome) = keep_alive(rng, &state, &mut due, &p.request, at, ttl) {
                outcomes[i] = Some(outcome);
                continue;
            }
        }
        let outcome = match model.apply(&state, &p.request, None) {
            Ok((next, mut resp, _)) => {
                state = next;
                if let (Some(ttl), Response::LeaseGrant(g)) = (short, &mut resp) {
                    g.ttl_seconds = ttl;
                    due.insert(g.id, at + ttl_ns(ttl));
                }
                let member = 1 + rng.below(3);
                let h = resp.header_mut();
                h.member_id = member;
                h.cluster_id = 7;
                h.raft_term = 2;
                Outcome::Ok(resp)
            }
            Err(e) => Outcome::Failed(e),
        };
        outcomes[i] = Some(outcome);
    }
    (outcomes, order)
}

fn ttl_ns(ttl_seconds: i64) -> u64 {
    u64::try_from(ttl_seconds).expect("positive TTL") * 1_000_000_000
}

/// Revoke every lease due at or before `at`, in the order they fall due.
fn expire_due(
    model: &EtcdModel,
    state: &mut <EtcdModel as Model>::State,
    due: &mut BTreeMap<LeaseId, u64>,
    at: u64,
) {
    let mut expired: Vec<(u64, LeaseId)> = due
        .iter()
        .filter(|(_, &t)| t <= at)
        .map(|(&l, &t)| (t, l))
        .collect();
    expired.sort_unstable();
    for (_, lease) in expired {
        due.remove(&lease);
        let revoke = Request::LeaseRevoke(LeaseRevokeRequest { id: lease });
        if let Ok((next, _, _)) = model.apply(state, &revoke, None) {
            *state = next;
        }
    }
}

/// The outcome of a keep-alive taking effect at `at` (renewing a live lease), or `None` for
/// another request.
fn keep_alive(
    rng: &mut Rng,
    state: &<EtcdModel as Model>::State,
    due: &mut BTreeMap<LeaseId, u64>,
    request: &Request,
    at: u64,
    ttl: i64,
) -> Option<Outcome> {
    let Request::LeaseKeepAlive(k) = request else {
        return None;
    };
    let alive = state.leases.binary_search(&k.id).is_ok();
    if alive {
        due.insert(k.id, at + ttl_ns(ttl));
    }
    Some(Outcome::Ok(Response::LeaseKeepAlive(
        LeaseKeepAliveResponse {
            header: ResponseHeader {
                revision: state.revision,
                member_id: 1 + rng.below(3),
                cluster_id: 7,
                raft_term: 2,
            },
            id: k.id,
            ttl_seconds: if alive { ttl } else { 0 },
        },
    )))
}

/// The history the clients saw (unknown outcomes for the operations planned so), in
/// invocation order, and the witness: the ids of `effect_order`.
fn record(
    planned: Vec<Planned>,
    outcomes: Vec<Option<Outcome>>,
    effect_order: Vec<usize>,
) -> (History, Vec<u64>) {
    let ops: Vec<(usize, Operation)> = planned
        .into_iter()
        .zip(outcomes)
        .enumerate()
        .map(|(pi, (p, outcome))| {
            let outcome = if p.unknown {
                Outcome::Unknown("request timed out".to_string())
            } else {
                outcome.expect("known operations took effect")
            };
            let member = match &outcome {
                Outcome::Ok(r) => Some(r.header().member_id),
                _ => None,
            };
            (
                pi,
                Operation {
                    id: 0,
                    client: p.client,
                    member,
                    invoke_ns: p.invoke,
                    complete_ns: p.complete,
                    request: p.request,
                    outcome,
                },
            )
        })
        .collect();
    // Sort positions, not the large operations themselves; ties in plan order, as a stable
    // sort of the operations would leave them.
    let mut by_invoke: Vec<usize> = (0..ops.len()).collect();
    by_invoke.sort_unstable_by_key(|&i| (ops[i].1.invoke_ns, ops[i].1.client, i));
    let mut slots: Vec<Option<(usize, Operation)>> = ops.into_iter().map(Some).collect();
    let mut ops: Vec<(usize, Operation)> = by_invoke
        .into_iter()
        .map(|i| slots[i].take().expect("each position once"))
        .collect();
    let mut id_of = vec![0u64; ops.len()];
    for (i, (pi, op)) in ops.iter_mut().enumerate() {
        op.id = i as u64;
        id_of[*pi] = i as u64;
    }
    let witness = effect_order.into_iter().map(|pi| id_of[pi]).collect();
    (
        History {
            ops: ops.into_iter().map(|(_, op)| op).collect(),
            watches: Vec::new(),
        },
        witness,
    )
}

/// Whether a response is a successful one (for tests that mutate histories).
pub fn is_ok_response(op: &Operation) -> Option<&Response> {
    match &op.outcome {
        Outcome::Ok(r) => Some(r),
        _ => None,
    }
}
