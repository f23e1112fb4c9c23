//! The Kubernetes profiles (etcd robustness Kubernetes and KubernetesCreateDelete): pods
//! under `/registry/pods/default/`, created if absent under ever-new names, updated and
//! deleted guarded by the mod revision the client last knew (the apiserver's
//! resourceVersion), read by gets, historical gets and paginated lists; and the list-watch
//! clients (a paginated list, then a watch from the list's revision + 1).

use faultline_api::{
    prefix_range_end, DeleteRangeRequest, RangeRequest, RangeResponse, Request, RequestOp,
    WatchCreateRequest,
};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::profile::{guarded, pick, plan_steps, put_op};
use super::scenario::Scenario;
use super::workload::{Fill, PlannedOp, PlannedWatch, WatchStart};

/// The namespace the pods live in: lists and list-watches cover it.
pub const NAMESPACE_PREFIX: &[u8] = b"/registry/pods/default/";
/// Page size of Kubernetes lists (etcd robustness: limit 10).
pub const LIST_PAGE_LIMIT: i64 = 10;
/// Fewer live pods than this force a create, more than `MAX_PODS` a delete (etcd
/// robustness: 5 and 15).
const MIN_PODS: usize = 5;
const MAX_PODS: usize = 15;

pub fn pod_key(name: &str) -> Vec<u8> {
    let mut key = NAMESPACE_PREFIX.to_vec();
    key.extend_from_slice(name.as_bytes());
    key
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum KubernetesOp {
    Get,
    /// A serializable get (served by any member from its own state).
    GetStale,
    /// A get at a recent revision.
    GetRev,
    /// A paginated list at a recent revision.
    ListStale,
    /// A paginated linearizable list (the list of etcd's ListAndWatch; the watch half runs
    /// in the list-watch clients, `generate_list_watches`).
    List,
    /// `mod_revision == last known → put`, else read.
    Update,
    /// `mod_revision == last known → delete`, else read.
    Delete,
    /// `mod_revision == 0 → put` on a new name, else read.
    Create,
}

/// Reads and writes alternate at random, half and half.
pub const KUBERNETES_READ_WEIGHTS: &[(KubernetesOp, u32)] = &[
    (KubernetesOp::Get, 5),
    (KubernetesOp::GetStale, 2),
    (KubernetesOp::GetRev, 8),
    (KubernetesOp::ListStale, 5),
    (KubernetesOp::List, 80),
];
pub const KUBERNETES_WRITE_WEIGHTS: &[(KubernetesOp, u32)] = &[
    (KubernetesOp::Update, 90),
    (KubernetesOp::Delete, 5),
    (KubernetesOp::Create, 5),
];
pub const KUBERNETES_CREATE_DELETE_WRITE_WEIGHTS: &[(KubernetesOp, u32)] =
    &[(KubernetesOp::Delete, 40), (KubernetesOp::Create, 60)];

/// The pods one client believes exist while its plan is drawn. Every client starts from the
/// same `keys` names (so clients contend on them); creates add ever-new names of its own.
struct Pods {
    client: u64,
    live: Vec<Vec<u8>>,
    created: u32,
}

impl Pods {
    fn new(keys: u32, client: u64) -> Pods {
        Pods {
            client,
            live: (0..keys).map(|i| pod_key(&format!("pod-{i}"))).collect(),
            created: 0,
        }
    }

    /// A create below the lower bound, a delete above the upper one.
    fn forced(&self) -> Option<KubernetesOp> {
        if self.live.len() < MIN_PODS {
            Some(KubernetesOp::Create)
        } else if self.live.len() > MAX_PODS {
            Some(KubernetesOp::Delete)
        } else {
            None
        }
    }

    fn request(
        &mut self,
        rng: &mut ChaCha8Rng,
        op: KubernetesOp,
        value: Vec<u8>,
    ) -> (Request, Fill) {
        if self.live.is_empty() && op != KubernetesOp::Create {
            return self.request(rng, KubernetesOp::Create, value);
        }
        let index = rng.random_range(0..self.live.len().max(1));
        let key = self.live.get(index).cloned().unwrap_or_default();
        let get = RangeRequest {
            key: key.clone(),
            ..RangeRequest::default()
        };
        let back = rng.random_range(0..10);
        match op {
            KubernetesOp::Get => (Request::Range(get), Fill::None),
            KubernetesOp::GetStale => (
                Request::Range(RangeRequest {
                    serializable: true,
                    ..get
                }),
                Fill::None,
            ),
            KubernetesOp::GetRev => (Request::Range(get), Fill::RevisionsBack(back)),
            KubernetesOp::ListStale => (
                Request::Range(list_request()),
                Fill::Paginate {
                    revisions_back: Some(back),
                },
            ),
            KubernetesOp::List => (Request::Range(list_request()), Fill::paginate()),
            KubernetesOp::Update => (
                guarded(key.clone(), put_op(key, value)),
                Fill::CompareLastKnown,
            ),
            KubernetesOp::Delete => {
                self.live.swap_remove(index);
                let delete = RequestOp::DeleteRange(DeleteRangeRequest {
                    key: key.clone(),
                    ..DeleteRangeRequest::default()
                });
                (guarded(key, delete), Fill::CompareLastKnown)
            }
            KubernetesOp::Create => {
                let key = pod_key(&format!("pod-c{}-{}", self.client, self.created));
                self.created += 1;
                self.live.push(key.clone());
                // Planned with mod_revision == 0: create if absent.
                (guarded(key.clone(), put_op(key, value)), Fill::None)
            }
        }
    }
}

/// The first page of a list of the namespace.
pub fn list_request() -> RangeRequest {
    RangeRequest {
        key: NAMESPACE_PREFIX.to_vec(),
        range_end: prefix_range_end(NAMESPACE_PREFIX),
        limit: LIST_PAGE_LIMIT,
        ..RangeRequest::default()
    }
}

/// The ops of one Kubernetes client; `writes` are the profile's write weights.
pub(super) fn generate_kubernetes_ops(
    rng: &mut ChaCha8Rng,
    scenario: &Scenario,
    client: u64,
    writes: &[(KubernetesOp, u32)],
) -> Vec<PlannedOp> {
    let mut pods = Pods::new(scenario.keys, client);
    plan_steps(rng, scenario, &mut |rng, step| {
        let op = if rng.random_bool(0.5) {
            pick(rng, KUBERNETES_READ_WEIGHTS)
        } else {
            pods.forced().unwrap_or_else(|| pick(rng, writes))
        };
        let value = format!("c{client}-{step}").into_bytes();
        vec![pods.request(rng, op, value)]
    })
}

/// The page after `page`, given its answer: from the key after the last one returned, at
/// the first page's revision (so every page reads one snapshot), with the same range and
/// limit; `None` when the answer was the last page.
pub fn next_page(page: &RangeRequest, response: &RangeResponse) -> Option<RangeRequest> {
    if !response.more {
        return None;
    }
    let last = response.kvs.last()?;
    let mut key = last.key.clone();
    key.push(0);
    let revision = if page.revision > 0 {
        page.revision
    } else {
        response.header.revision
    };
    Some(RangeRequest {
        key,
        revision,
        ..page.clone()
    })
}

/// The sessions of one list-watch client (Kubernetes' reflector): list the namespace in
/// pages, then watch it from the list's revision + 1 for a while (re-listing when
/// compaction cancels the watch).
pub(super) fn generate_list_watches(
    rng: &mut ChaCha8Rng,
    scenario: &Scenario,
) -> Vec<PlannedWatch> {
    let mut sessions = Vec::new();
    let mut elapsed_ms = 0;
    while elapsed_ms < scenario.workload_duration_ms {
        let think_time_ms = rng.random_range(0..=100);
        let duration_ms = rng.random_range(1000..=3000);
        elapsed_ms += think_time_ms + duration_ms;
        sessions.push(PlannedWatch {
            think_time_ms,
            member: rng.random_range(1..=u64::from(scenario.members)),
            start: WatchStart::List {
                page_limit: LIST_PAGE_LIMIT,
            },
            request: WatchCreateRequest {
                key: NAMESPACE_PREFIX.to_vec(),
                range_end: prefix_range_end(NAMESPACE_PREFIX),
                progress_notify: true,
                prev_kv: true,
                ..WatchCreateRequest::default()
            },
            duration_ms,
            progress_request_interval_ms: if rng.random_bool(0.5) { 100 } else { 0 },
        });
    }
    sessions
}
