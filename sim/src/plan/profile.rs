//! Workload profiles: which traffic a scenario's clients send. The mixed profile is the
//! original workload (`workload::generate_ops`); the others follow etcd's robustness traffic
//! profiles (../shared/etcd-semantics.md section 10) and the patterns of etcd's main users:
//! Kubernetes (`kubernetes`), events on short leases (`events`), leader election
//! (`election`).

use super::keyspace::KEY_PREFIX;
use super::scenario::Scenario;
use super::workload::{key_name, lease_id, random_multi_op_txn, Fill, PlannedOp};
use faultline_api::{
    prefix_range_end, Compare, CompareResult, CompareTarget, DeleteRangeRequest, LeaseGrantRequest,
    LeaseRevokeRequest, PutRequest, RangeRequest, Request, RequestOp, TxnRequest,
};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// One operation kind of etcd's key-value traffic profiles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum EtcdOp {
    Get,
    List,
    ListKeyOnly,
    /// A list in pages (etcd's RangeStream), here a paginated list (`Fill::Paginate`).
    ListStream,
    ListStreamKeyOnly,
    StaleGet,
    StaleList,
    StaleListStream,
    Delete,
    MultiOpTxn,
    /// A lease grant, then a put attached to that lease.
    PutWithLease,
    LeaseRevoke,
    /// A read of the key, then a txn `mod_revision == <read's> → put`.
    CompareAndSet,
    Put,
}

/// etcd robustness EtcdPutDeleteLease's weights (they sum to 100).
pub const ETCD_PUT_DELETE_LEASE_WEIGHTS: &[(EtcdOp, u32)] = &[
    (EtcdOp::Get, 15),
    (EtcdOp::List, 4),
    (EtcdOp::ListKeyOnly, 4),
    (EtcdOp::ListStream, 4),
    (EtcdOp::ListStreamKeyOnly, 3),
    (EtcdOp::StaleGet, 10),
    (EtcdOp::StaleList, 5),
    (EtcdOp::StaleListStream, 5),
    (EtcdOp::Delete, 5),
    (EtcdOp::MultiOpTxn, 10),
    (EtcdOp::PutWithLease, 5),
    (EtcdOp::LeaseRevoke, 5),
    (EtcdOp::CompareAndSet, 5),
    (EtcdOp::Put, 20),
];

/// etcd robustness EtcdPut's weights.
pub const ETCD_PUT_WEIGHTS: &[(EtcdOp, u32)] = &[
    (EtcdOp::Get, 15),
    (EtcdOp::List, 4),
    (EtcdOp::ListKeyOnly, 4),
    (EtcdOp::ListStream, 4),
    (EtcdOp::ListStreamKeyOnly, 3),
    (EtcdOp::StaleGet, 10),
    (EtcdOp::StaleList, 5),
    (EtcdOp::StaleListStream, 5),
    (EtcdOp::MultiOpTxn, 10),
    (EtcdOp::Put, 40),
];

/// etcd robustness EtcdDelete's weights.
pub const ETCD_DELETE_WEIGHTS: &[(EtcdOp, u32)] = &[(EtcdOp::Put, 50), (EtcdOp::Delete, 50)];

/// Page size of the paginated lists of the etcd profiles (small, so lists of the few keys
/// take several pages).
const ETCD_LIST_PAGE_LIMIT: i64 = 2;

/// Draw one item by weight.
pub(super) fn pick<T: Copy>(rng: &mut ChaCha8Rng, weights: &[(T, u32)]) -> T {
    let total: u32 = weights.iter().map(|(_, w)| w).sum();
    assert!(total > 0, "a weight table with a positive total");
    let mut roll = rng.random_range(0..total);
    for &(item, weight) in weights {
        if roll < weight {
            return item;
        }
        roll -= weight;
    }
    unreachable!("roll < total")
}

/// The requests of one step of a client and what it fills in at run time.
pub(super) type Step = Vec<(Request, Fill)>;

/// Plan the ops of one client until the workload's time is used up: `draw` gives the
/// requests of one step (the first one after the think time, the rest right after it, all
/// on one member). `draw` gets the step's number, for unique values.
pub(super) fn plan_steps(
    rng: &mut ChaCha8Rng,
    scenario: &Scenario,
    draw: &mut dyn FnMut(&mut ChaCha8Rng, usize) -> Step,
) -> Vec<PlannedOp> {
    let mut ops = Vec::new();
    let mut elapsed_ms = 0;
    let mut step = 0;
    while elapsed_ms < scenario.workload_duration_ms {
        let think_time_ms = rng.random_range(0..=scenario.think_time_ms_max);
        let requests = draw(rng, step);
        step += 1;
        elapsed_ms += think_time_ms + scenario.tick_interval_ms * requests.len() as u64;
        let member = rng.random_range(1..=u64::from(scenario.members));
        for (i, (request, fill)) in requests.into_iter().enumerate() {
            ops.push(PlannedOp {
                think_time_ms: if i == 0 { think_time_ms } else { 0 },
                member,
                request,
                fill,
            });
        }
    }
    ops
}

/// The ops of one client of an etcd key-value profile (`weights`) over `k/<n>` keys.
pub(super) fn generate_etcd_ops(
    rng: &mut ChaCha8Rng,
    scenario: &Scenario,
    client: u64,
    weights: &[(EtcdOp, u32)],
) -> Vec<PlannedOp> {
    let mut leases: u32 = 0;
    plan_steps(rng, scenario, &mut |rng, step| {
        let op = pick(rng, weights);
        let mut values = 0;
        let mut value = || {
            values += 1;
            format!("c{client}-{step}-{values}").into_bytes()
        };
        etcd_op(rng, scenario, client, &mut leases, op, &mut value)
    })
}

/// The requests of one etcd traffic operation. `leases` counts this client's planned leases.
pub(super) fn etcd_op(
    rng: &mut ChaCha8Rng,
    scenario: &Scenario,
    client: u64,
    leases: &mut u32,
    op: EtcdOp,
    value: &mut dyn FnMut() -> Vec<u8>,
) -> Vec<(Request, Fill)> {
    let key = key_name(rng.random_range(0..scenario.keys));
    let get = RangeRequest {
        key: key.clone(),
        ..RangeRequest::default()
    };
    let list = RangeRequest {
        key: KEY_PREFIX.to_vec(),
        range_end: prefix_range_end(KEY_PREFIX),
        ..RangeRequest::default()
    };
    let paged = |keys_only| RangeRequest {
        limit: ETCD_LIST_PAGE_LIMIT,
        keys_only,
        ..list.clone()
    };
    let stale = Fill::RevisionsBack(rng.random_range(0..10));
    let one = |request: RangeRequest, fill| vec![(Request::Range(request), fill)];
    match op {
        EtcdOp::Get => one(get, Fill::None),
        EtcdOp::List => one(list, Fill::None),
        EtcdOp::ListKeyOnly => one(
            RangeRequest {
                keys_only: true,
                ..list.clone()
            },
            Fill::None,
        ),
        EtcdOp::ListStream => one(paged(false), Fill::paginate()),
        EtcdOp::ListStreamKeyOnly => one(paged(true), Fill::paginate()),
        EtcdOp::StaleGet => one(get, stale),
        EtcdOp::StaleList => one(list, stale),
        EtcdOp::StaleListStream => one(
            paged(false),
            Fill::Paginate {
                revisions_back: Some(rng.random_range(0..10)),
            },
        ),
        EtcdOp::Delete => vec![(
            Request::DeleteRange(DeleteRangeRequest {
                key,
                ..DeleteRangeRequest::default()
            }),
            Fill::None,
        )],
        EtcdOp::MultiOpTxn => vec![(
            Request::Txn(random_multi_op_txn(rng, scenario, value, false)),
            Fill::None,
        )],
        EtcdOp::PutWithLease => put_with_lease(scenario, client, leases, key, value),
        EtcdOp::LeaseRevoke if *leases > 0 => vec![(
            Request::LeaseRevoke(LeaseRevokeRequest {
                id: lease_id(client, rng.random_range(0..*leases)),
            }),
            Fill::None,
        )],
        // Nothing to revoke yet: grant one instead (a lease this client then owns).
        EtcdOp::LeaseRevoke => put_with_lease(scenario, client, leases, key, value),
        EtcdOp::CompareAndSet => vec![
            (Request::Range(get), Fill::None),
            (
                guarded(key.clone(), put_op(key, value())),
                Fill::CompareLastSeen,
            ),
        ],
        EtcdOp::Put => vec![(
            Request::Put(PutRequest {
                key,
                value: value(),
                ..PutRequest::default()
            }),
            Fill::None,
        )],
    }
}

/// Grant a new lease of this client, then put `key` on it.
fn put_with_lease(
    scenario: &Scenario,
    client: u64,
    leases: &mut u32,
    key: Vec<u8>,
    value: &mut dyn FnMut() -> Vec<u8>,
) -> Vec<(Request, Fill)> {
    let id = lease_id(client, *leases);
    *leases += 1;
    vec![
        (
            Request::LeaseGrant(LeaseGrantRequest {
                ttl_seconds: scenario.lease_ttl_seconds,
                id,
            }),
            Fill::None,
        ),
        (
            Request::Put(PutRequest {
                key,
                value: value(),
                lease: id,
                ..PutRequest::default()
            }),
            Fill::None,
        ),
    ]
}

pub(super) fn put_op(key: Vec<u8>, value: Vec<u8>) -> RequestOp {
    RequestOp::Put(PutRequest {
        key,
        value,
        ..PutRequest::default()
    })
}

/// `compare mod_revision(key) == 0 (filled at run time) → then; else read the key`: an
/// optimistic write (etcd's CompareAndSet, Kubernetes' guarded update and delete).
pub(super) fn guarded(key: Vec<u8>, then: RequestOp) -> Request {
    Request::Txn(TxnRequest {
        compare: vec![Compare {
            result: CompareResult::Equal,
            target: CompareTarget::ModRevision(0),
            key: key.clone(),
            range_end: Vec::new(),
        }],
        success: vec![then],
        failure: vec![RequestOp::Range(RangeRequest {
            key,
            ..RangeRequest::default()
        })],
    })
}
