//! The workload profiles draw their operations with their weights, Kubernetes lists chain
//! their pages, event clients keep their leases alive, election requests have their shape.

use std::collections::BTreeMap;

use faultline_api::{
    CompareTarget, KeyValue, RangeRequest, RangeResponse, Request, RequestOp, ResponseHeader,
};

use super::kubernetes::{KubernetesOp, KUBERNETES_READ_WEIGHTS, KUBERNETES_WRITE_WEIGHTS};
use super::profile::{
    EtcdOp, ETCD_DELETE_WEIGHTS, ETCD_PUT_DELETE_LEASE_WEIGHTS, ETCD_PUT_WEIGHTS,
};
use super::*;

fn scenario_with(profile: WorkloadProfile) -> Scenario {
    let mut scenario = Scenario::default_scenario().without_swarm();
    scenario.workload = profile;
    scenario.workload_duration_ms = 60_000;
    scenario
}

/// The etcd traffic operation a planned op starts (`None` for the second op of a
/// two-op step: the put after a grant). A CompareAndSet's read counts as a Get here and is
/// subtracted by `etcd_op_shares`.
fn etcd_kind(op: &PlannedOp) -> Option<EtcdOp> {
    Some(match (&op.request, op.fill) {
        (Request::LeaseGrant(_), _) => EtcdOp::PutWithLease,
        (Request::Put(put), _) if put.lease != 0 => return None,
        (Request::Put(_), _) => EtcdOp::Put,
        (Request::DeleteRange(_), _) => EtcdOp::Delete,
        (Request::LeaseRevoke(_), _) => EtcdOp::LeaseRevoke,
        (Request::Txn(_), Fill::CompareLastSeen) => EtcdOp::CompareAndSet,
        (Request::Txn(_), Fill::None) => EtcdOp::MultiOpTxn,
        (Request::Range(r), Fill::None) if r.range_end.is_empty() => EtcdOp::Get,
        (Request::Range(r), Fill::RevisionsBack(_)) if r.range_end.is_empty() => EtcdOp::StaleGet,
        (Request::Range(_), Fill::RevisionsBack(_)) => EtcdOp::StaleList,
        (Request::Range(r), Fill::None) if r.keys_only => EtcdOp::ListKeyOnly,
        (Request::Range(_), Fill::None) => EtcdOp::List,
        (
            Request::Range(_),
            Fill::Paginate {
                revisions_back: Some(_),
            },
        ) => EtcdOp::StaleListStream,
        (Request::Range(r), Fill::Paginate { .. }) if r.keys_only => EtcdOp::ListStreamKeyOnly,
        (Request::Range(_), Fill::Paginate { .. }) => EtcdOp::ListStream,
        other => panic!("not an etcd traffic op: {other:?}"),
    })
}

/// Each operation's share of the steps over `seeds` plans.
fn etcd_op_shares(profile: WorkloadProfile, seeds: u64) -> BTreeMap<EtcdOp, f64> {
    let mut counts: BTreeMap<EtcdOp, u64> = BTreeMap::new();
    for seed in 0..seeds {
        let plan = Plan::generate(seed, &scenario_with(profile));
        let ops = plan
            .clients
            .iter()
            .filter(|c| c.id < 4)
            .flat_map(|c| &c.ops);
        for kind in ops.filter_map(etcd_kind) {
            *counts.entry(kind).or_default() += 1;
        }
    }
    if let Some(&cas) = counts.get(&EtcdOp::CompareAndSet) {
        *counts.get_mut(&EtcdOp::Get).expect("gets") -= cas;
    }
    let steps: u64 = counts.values().sum();
    counts
        .into_iter()
        .map(|(kind, n)| (kind, n as f64 / steps as f64))
        .collect()
}

#[test]
fn etcd_profiles_draw_their_operations_with_their_weights() {
    for (profile, weights) in [
        (
            WorkloadProfile::EtcdPutDeleteLease,
            ETCD_PUT_DELETE_LEASE_WEIGHTS,
        ),
        (WorkloadProfile::EtcdPut, ETCD_PUT_WEIGHTS),
        (WorkloadProfile::EtcdDelete, ETCD_DELETE_WEIGHTS),
    ] {
        let shares = etcd_op_shares(profile, 10);
        let expected: BTreeMap<EtcdOp, f64> = weights
            .iter()
            .map(|&(k, w)| (k, f64::from(w) / 100.0))
            .collect();
        assert_eq!(
            shares.keys().collect::<Vec<_>>(),
            expected.keys().collect::<Vec<_>>(),
            "{profile:?} draws exactly its operations"
        );
        for (kind, share) in &shares {
            let want = expected[kind];
            assert!(
                (share - want).abs() < 0.015,
                "{profile:?}: {kind:?} drawn {share:.3}, weight {want:.3}"
            );
        }
    }
}

fn kubernetes_kind(op: &PlannedOp) -> KubernetesOp {
    match (&op.request, op.fill) {
        (Request::Range(r), Fill::None) if r.serializable => KubernetesOp::GetStale,
        (Request::Range(_), Fill::None) => KubernetesOp::Get,
        (Request::Range(_), Fill::RevisionsBack(_)) => KubernetesOp::GetRev,
        (
            Request::Range(_),
            Fill::Paginate {
                revisions_back: Some(_),
            },
        ) => KubernetesOp::ListStale,
        (
            Request::Range(_),
            Fill::Paginate {
                revisions_back: None,
            },
        ) => KubernetesOp::List,
        (Request::Txn(txn), Fill::CompareLastKnown) => match &txn.success[..] {
            [RequestOp::Put(_)] => KubernetesOp::Update,
            [RequestOp::DeleteRange(_)] => KubernetesOp::Delete,
            other => panic!("not a guarded write: {other:?}"),
        },
        (Request::Txn(txn), Fill::None) => {
            assert_eq!(txn.compare[0].target, CompareTarget::ModRevision(0));
            KubernetesOp::Create
        }
        other => panic!("not a Kubernetes op: {other:?}"),
    }
}

#[test]
fn kubernetes_profiles_draw_reads_and_writes_with_their_weights() {
    let mut counts: BTreeMap<KubernetesOp, u64> = BTreeMap::new();
    let mut create_delete: BTreeMap<KubernetesOp, u64> = BTreeMap::new();
    for seed in 0..10 {
        for (profile, counts) in [
            (WorkloadProfile::Kubernetes, &mut counts),
            (WorkloadProfile::KubernetesCreateDelete, &mut create_delete),
        ] {
            let plan = Plan::generate(seed, &scenario_with(profile));
            for client in plan.clients.iter().filter(|c| c.id < 4) {
                for op in &client.ops {
                    *counts.entry(kubernetes_kind(op)).or_default() += 1;
                    assert!(request_keys(op)
                        .iter()
                        .all(|k| k.starts_with(PODS_PREFIX_FOR_TEST)));
                }
            }
        }
    }
    let reads: u64 = KUBERNETES_READ_WEIGHTS.iter().map(|(k, _)| counts[k]).sum();
    for &(kind, weight) in KUBERNETES_READ_WEIGHTS {
        let share = counts[&kind] as f64 / reads as f64;
        assert!(
            (share - f64::from(weight) / 100.0).abs() < 0.015,
            "{kind:?} {share:.3}"
        );
    }
    let writes: u64 = KUBERNETES_WRITE_WEIGHTS
        .iter()
        .map(|(k, _)| counts[k])
        .sum();
    let updates = counts[&KubernetesOp::Update] as f64 / writes as f64;
    // Forced creates and deletes (outside 5..=15 live pods) move a few percent.
    assert!((updates - 0.9).abs() < 0.04, "updates {updates:.3}");
    let total = reads + writes;
    assert!((reads as f64 / total as f64 - 0.5).abs() < 0.02);
    assert_eq!(create_delete.get(&KubernetesOp::Update), None);
    assert!(create_delete[&KubernetesOp::Create] > create_delete[&KubernetesOp::Delete]);
}

const PODS_PREFIX_FOR_TEST: &[u8] = b"/registry/pods/default/";

/// The keys a planned op touches (its range's start, its txn's compares and ops).
fn request_keys(op: &PlannedOp) -> Vec<Vec<u8>> {
    {
        match &op.request {
            Request::Range(r) => vec![r.key.clone()],
            Request::Txn(txn) => {
                let ops = txn.success.iter().chain(&txn.failure).map(|op| match op {
                    RequestOp::Range(r) => r.key.clone(),
                    RequestOp::Put(p) => p.key.clone(),
                    RequestOp::DeleteRange(d) => d.key.clone(),
                    RequestOp::Txn(_) => panic!("no nested txn"),
                });
                txn.compare
                    .iter()
                    .map(|c| c.key.clone())
                    .chain(ops)
                    .collect()
            }
            other => panic!("not a Kubernetes request: {other:?}"),
        }
    }
}

/// A store's answer to one page: the keys in [key, range_end) in order, at most `limit`.
fn answer(keys: &[Vec<u8>], page: &RangeRequest, revision: i64) -> RangeResponse {
    let mut inside: Vec<&Vec<u8>> = keys
        .iter()
        .filter(|k| **k >= page.key && **k < page.range_end)
        .collect();
    inside.sort();
    let limit = page.limit as usize;
    RangeResponse {
        header: ResponseHeader {
            revision,
            ..ResponseHeader::default()
        },
        more: inside.len() > limit,
        count: inside.len() as i64,
        kvs: inside
            .into_iter()
            .take(limit)
            .map(|k| KeyValue {
                key: k.clone(),
                ..KeyValue::default()
            })
            .collect(),
    }
}

#[test]
fn kubernetes_list_pages_chain_from_the_last_key_at_the_first_pages_revision() {
    let keys: Vec<Vec<u8>> = (0..23).map(|i| pod_key(&format!("pod-{i:02}"))).collect();
    let mut page = kubernetes::list_request();
    let mut listed = Vec::new();
    let mut pages = 0;
    loop {
        // The store moves on while the list runs: later pages must not follow it.
        let response = answer(&keys, &page, 40 + pages);
        pages += 1;
        listed.extend(response.kvs.iter().map(|kv| kv.key.clone()));
        let Some(next) = next_page(&page, &response) else {
            break;
        };
        let last = response.kvs.last().expect("a page with more has keys");
        assert_eq!(next.key, [last.key.as_slice(), &[0]].concat());
        assert_eq!(next.revision, 40, "every page at the first page's revision");
        assert_eq!(
            (next.range_end.clone(), next.limit),
            (page.range_end.clone(), page.limit)
        );
        page = next;
    }
    assert_eq!(pages, 3, "23 pods in pages of 10");
    assert_eq!(listed, keys, "every key once, in order");
    // A count-only answer (no keys to continue from) ends the list.
    let counted = RangeResponse {
        more: true,
        ..RangeResponse::default()
    };
    assert_eq!(next_page(&kubernetes::list_request(), &counted), None);
}

#[test]
fn event_clients_put_new_keys_on_leases_they_keep_alive_for_a_while() {
    let mut scenario = Scenario::embedded("events").expect("embedded");
    scenario.workload_duration_ms = 20_000;
    let interval = scenario.keep_alive_interval_ms();
    assert_eq!(interval, 1000, "a third of the 3 s TTL");
    let plan = Plan::generate(3, &scenario);
    for client in plan.clients.iter().filter(|c| c.id < 4) {
        let mut granted = Vec::new();
        let mut keys = std::collections::BTreeSet::new();
        let mut keep_alives: BTreeMap<i64, Vec<u64>> = BTreeMap::new();
        let mut puts_per_lease: BTreeMap<i64, u32> = BTreeMap::new();
        let mut elapsed_ms = 0;
        for op in &client.ops {
            elapsed_ms += op.think_time_ms + scenario.tick_interval_ms;
            match &op.request {
                Request::LeaseGrant(grant) => {
                    assert_eq!(grant.ttl_seconds, 3);
                    granted.push(grant.id);
                }
                Request::Put(put) => {
                    assert_eq!(Some(&put.lease), granted.last(), "on the newest lease");
                    assert!(keys.insert(put.key.clone()), "ever-new keys");
                    *puts_per_lease.entry(put.lease).or_default() += 1;
                }
                Request::LeaseKeepAlive(k) => {
                    assert!(granted.contains(&k.id));
                    keep_alives.entry(k.id).or_default().push(elapsed_ms);
                }
                Request::Range(_) => assert!(matches!(op.fill, Fill::Paginate { .. })),
                other => panic!("not an event op: {other:?}"),
            }
        }
        assert!(granted.len() >= 8, "a new lease every so often");
        let average = puts_per_lease.values().sum::<u32>() as usize / granted.len();
        assert!(average >= 10, "many keys per lease: {average}");
        for times in keep_alives.values() {
            assert!(
                times.len() <= 5,
                "kept alive at most 4 s, then left to expire"
            );
            for pair in times.windows(2) {
                let gap = pair[1] - pair[0];
                // Due at a planned time, sent with the first op at or after it.
                let jitter = scenario.think_time_ms_max + scenario.tick_interval_ms;
                assert!(gap.abs_diff(interval) <= jitter, "keep-alive gap {gap}");
            }
        }
        assert!(
            keep_alives.len() * 2 >= granted.len(),
            "most leases are kept alive"
        );
    }
}

#[test]
fn election_requests_have_the_lock_shape() {
    let Request::Txn(txn) = campaign(7, b"v".to_vec()) else {
        panic!("a campaign is a txn");
    };
    assert_eq!(txn.compare.len(), 1);
    assert_eq!(txn.compare[0].key, ELECTION_KEY);
    assert_eq!(txn.compare[0].target, CompareTarget::CreateRevision(0));
    assert_eq!(txn.compare[0].result, faultline_api::CompareResult::Equal);
    match (&txn.success[..], &txn.failure[..]) {
        ([RequestOp::Put(put)], [RequestOp::Range(range)]) => {
            assert_eq!((put.key.as_slice(), put.lease), (ELECTION_KEY, 7));
            assert_eq!(range.key, ELECTION_KEY);
            assert!(range.range_end.is_empty());
        }
        other => panic!("campaign branches {other:?}"),
    }
    assert!(matches!(keep_alive(7), Request::LeaseKeepAlive(k) if k.id == 7));
    assert!(matches!(resign(7), Request::LeaseRevoke(r) if r.id == 7));
    let Request::Txn(write) = guarded_write(12, b"w".to_vec()) else {
        panic!("a guarded write is a txn");
    };
    assert_eq!(write.compare[0].target, CompareTarget::CreateRevision(12));
    assert!(matches!(&write.success[..], [RequestOp::Put(p)] if p.key == GUARDED_KEY));
    // The election profile plans election clients, not key-value clients.
    let scenario = Scenario::embedded("leader-election").expect("embedded");
    let plan = Plan::generate(1, &scenario);
    assert_eq!(plan.elections.len(), 4);
    assert!(plan.clients.iter().all(|c| c.id == 4), "only the compactor");
    assert!(plan.elections.iter().all(|e| e.rounds.len() >= 3));
    assert_eq!(plan.watchers[0].id, 5);
}

#[test]
fn the_mixed_profile_is_the_default_and_not_serialized() {
    let scenario = Scenario::default_scenario().without_swarm();
    assert_eq!(scenario.workload, WorkloadProfile::Mixed);
    let text = toml::to_string(&scenario).expect("serializes");
    assert!(!text.contains("workload =") && !text.contains("lease_keep_alive"));
    let with = format!("workload = \"etcd-put-delete-lease\"\n{text}");
    let parsed: Scenario = toml::from_str(&with).expect("the knob parses");
    assert_eq!(parsed.workload, WorkloadProfile::EtcdPutDeleteLease);
}
