//! Passes over leases: when an unknown grant or revoke can still matter (`LeaseNeeds`, which
//! gives it a deadline or drops it), and the lease facts (`LeaseFacts`) the model prunes with.

use std::collections::BTreeMap;

use faultline_api::{Request, RequestOp, Response, Revision};

use super::observations::observations;
use super::requests::{put_leases, takes_part};
use crate::history::{History, Operation, Outcome};
use crate::linearizability::NEVER;
use crate::models::etcd::{response_mutates, LeaseFacts, LeaseTimeline};

/// An unknown lease grant or revoke taking part in the search: (lease, is a grant, invocation
/// ns, tag); a grant without an id has lease 0.
pub(super) type UnknownLeaseOp = (i64, bool, u64, u32);

/// When known operations need leases: the latest completion of one that needs each lease to
/// exist, and of a known grant of it (which needs it absent).
pub(super) struct LeaseNeeds {
    pub needed_by: BTreeMap<i64, u64>,
    pub granted_by: BTreeMap<i64, u64>,
    /// The latest completion of any operation needing any lease.
    pub last_use_any: u64,
}

impl LeaseNeeds {
    /// Pass: lease needs from the operations taking part.
    pub(super) fn of(history: &History) -> Self {
        let mut n = LeaseNeeds {
            needed_by: BTreeMap::new(),
            granted_by: BTreeMap::new(),
            last_use_any: 0,
        };
        for op in history.ops.iter().filter(|op| takes_part(op)) {
            let Outcome::Ok(resp) = &op.outcome else {
                // An unknown write that puts with a lease may have taken effect at any time,
                // and only with its lease granted: the grant must stay (new-leader-cuts seed
                // 44 lost an unknown grant its unknown put needed, and a linearizable history
                // failed).
                for l in put_leases(&op.request) {
                    n.needed_by.insert(l, NEVER);
                    n.last_use_any = NEVER;
                }
                continue;
            };
            let mut needs: Vec<i64> = put_leases(&op.request).collect();
            if let Request::LeaseRevoke(r) = &op.request {
                needs.push(r.id);
            }
            let mut obs = Vec::new();
            observations(&op.request, resp, &mut obs);
            needs.extend(obs.iter().map(|(kv, _)| kv.lease).filter(|&l| l != 0));
            for l in needs {
                let e = n.needed_by.entry(l).or_insert(0);
                *e = (*e).max(op.complete_ns);
                n.last_use_any = n.last_use_any.max(op.complete_ns);
            }
            if let Response::LeaseGrant(g) = resp {
                let e = n.granted_by.entry(g.id).or_insert(0);
                *e = (*e).max(op.complete_ns);
            }
        }
        n
    }
}

/// Pass: `LeaseFacts` from the known responses of the operations taking part and the unknown
/// lease operations taking part in the search.
pub(super) fn lease_facts(
    lease_universe: &[i64],
    history: &History,
    unknown_lease_ops: &[UnknownLeaseOp],
) -> LeaseFacts {
    let mut f = LeaseFacts {
        leases: vec![LeaseTimeline::default(); lease_universe.len()],
        unknown_grant_of_any_id: false,
    };
    let index = |lease: i64| lease_universe.binary_search(&lease).ok();
    for op in &history.ops {
        let (true, Outcome::Ok(resp)) = (takes_part(op), &op.outcome) else {
            continue;
        };
        let ret = op.complete_ns;
        for (lease, at) in known_lease_requirements(op, resp, &mut f, &index) {
            if let Some(l) = index(lease) {
                f.leases[l].present_needed.push((at, ret, ret));
            }
        }
    }
    for &(lease, is_grant, call, tag) in unknown_lease_ops {
        if is_grant && lease == 0 {
            f.unknown_grant_of_any_id = true;
            continue;
        }
        let Some(l) = index(lease) else { continue };
        let t = &mut f.leases[l];
        if is_grant {
            t.unknown_grants.push((call, tag));
        } else {
            t.unknown_revokes.push((call, tag));
        }
    }
    for t in &mut f.leases {
        t.finish();
    }
    f
}

/// What one known operation shows about leases: a grant's need of an absent lease and the
/// known grants and revokes are recorded in `f`; returned are the (lease, lowest state
/// revision at which the operation applies) of every need of a present lease.
fn known_lease_requirements(
    op: &Operation,
    resp: &Response,
    f: &mut LeaseFacts,
    index: &dyn Fn(i64) -> Option<usize>,
) -> Vec<(i64, Revision)> {
    let h = resp.header().revision;
    let ret = op.complete_ns;
    let mut present: Vec<(i64, Revision)> = Vec::new();
    match (&op.request, resp) {
        (Request::LeaseGrant(_), Response::LeaseGrant(g)) => {
            // Applied at revision h (a grant changes no revision) to a store without it.
            if let Some(l) = index(g.id) {
                f.leases[l].absent_needed.push((h, ret, ret));
                f.leases[l].known_grants.push(h);
            }
        }
        (Request::LeaseRevoke(r), _) => {
            // Applied at h - 1 when it deleted keys, else at h.
            present.push((r.id, h - 1));
            if let Some(l) = index(r.id) {
                f.leases[l].known_revokes.push(h);
            }
        }
        (Request::Put(p), _) if p.lease != 0 => present.push((p.lease, h - 1)),
        (Request::Txn(t), Response::Txn(tr))
            if response_mutates(&op.request, resp) == Some(true) =>
        {
            // Every put of the branch taken needs its lease (else the whole txn fails);
            // nested txns are left out (their branch is not known here).
            let branch = if tr.succeeded { &t.success } else { &t.failure };
            for o in branch {
                if let RequestOp::Put(p) = o {
                    if p.lease != 0 {
                        present.push((p.lease, h - 1));
                    }
                }
            }
        }
        (Request::Range(r), Response::Range(rr)) if r.revision <= 0 => {
            // A read of the current state at h: in the model a key's lease always exists.
            for kv in &rr.kvs {
                if kv.lease != 0 {
                    present.push((kv.lease, h));
                }
            }
        }
        _ => {}
    }
    present
}
