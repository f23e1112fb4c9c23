//! Mutual exclusion of leader-election locks: no two clients believed they held the lock on
//! one key during overlapping intervals of their own validity.
//!
//! A campaign is recognised by its shape alone (any key, any prefix): a Txn whose only
//! compare is `create_revision(key) == 0` or `version(key) == 0`, whose success branch is one
//! Put of that key with a lease L != 0, and whose failure branch is empty or ranges over the
//! key. A campaign whose response says `succeeded` makes its client believe it holds the lock
//! from that response's arrival until the earliest of:
//! * the invocation of the first revoke of L after it (the resignation), and
//! * the end of its validity: (invocation of the grant of L, or of an acknowledged keep-alive
//!   of L with TTL > 0 invoked while the validity lasted) + the TTL that response showed,
//!   shrunk by the clock-rate bound (`T·100/(100+p)`: a server clock up to p% fast may expire
//!   the lease that much earlier; the server processed the request after its invocation).
//!
//! Only keys that no other operation writes are locks (a delete by anyone else frees a key
//! outside the protocol, so a mixed workload that happens to send a campaign-shaped txn is
//! not judged). Keep-alives and revokes are matched by lease id, not by client: a client that gave up on a
//! request continues under a new client id. A correct store cannot make two such intervals
//! overlap: the second campaign only succeeds once the first key is gone, which happens no
//! earlier than the first validity ends (or after the resignation was invoked).

use std::collections::BTreeMap;
use std::fmt;

use faultline_api::{
    key_in_range, CompareResult, CompareTarget, LeaseId, Request, RequestOp, Response, TxnRequest,
};
use serde::{Deserialize, Serialize};

use crate::history::{History, Operation, Outcome, TimeNs};

/// One client's belief that it held a lock.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockHold {
    pub client: u64,
    /// The successful campaign.
    pub campaign_op: u64,
    pub lease: LeaseId,
    pub from_ns: TimeNs,
    pub until_ns: TimeNs,
    /// When the lease's life began for this belief: the invocation of its first renewal
    /// (normally the grant).
    pub lease_from_ns: TimeNs,
    /// What ended it: "resigned (op N)" or "validity ended (TTL from op N)".
    pub ended_by: String,
}

/// Two overlapping beliefs on one key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockViolation {
    pub key: Vec<u8>,
    pub first: LockHold,
    pub second: LockHold,
}

impl LockViolation {
    /// Whether a clock ran outside the bound while the first holder's lease lived, up to the
    /// second win: a fast clock may then expire the lease early, and etcd promises no mutual
    /// exclusion under such a clock (the lock rests on lease expiry).
    pub fn excused_by_clock(&self, skewed_windows_ns: &[(TimeNs, TimeNs)]) -> bool {
        let (from, to) = (self.first.lease_from_ns, self.second.from_ns);
        skewed_windows_ns
            .iter()
            .any(|&(start, end)| start <= to && from <= end)
    }
}

impl fmt::Display for LockViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hold = |h: &LockHold| {
            format!(
                "client {} (campaign op {}, lease {:#x}) from {:.3} ms until {:.3} ms, {}",
                h.client,
                h.campaign_op,
                h.lease,
                h.from_ns as f64 / 1e6,
                h.until_ns as f64 / 1e6,
                h.ended_by
            )
        };
        write!(
            f,
            "lock {:?} held by two clients at once: {}; and {}",
            String::from_utf8_lossy(&self.key),
            hold(&self.first),
            hold(&self.second)
        )
    }
}

/// The key and lease of a campaign txn, if `t` has a campaign's shape.
pub fn campaign_shape(t: &TxnRequest) -> Option<(&[u8], LeaseId)> {
    let [cmp] = t.compare.as_slice() else {
        return None;
    };
    let absent = matches!(
        cmp.target,
        CompareTarget::CreateRevision(0) | CompareTarget::Version(0)
    );
    if !absent || cmp.result != CompareResult::Equal || !cmp.range_end.is_empty() {
        return None;
    }
    let [RequestOp::Put(p)] = t.success.as_slice() else {
        return None;
    };
    if p.key != cmp.key || p.lease == 0 {
        return None;
    }
    let failure_ok = match t.failure.as_slice() {
        [] => true,
        [RequestOp::Range(r)] => r.key == cmp.key,
        _ => false,
    };
    failure_ok.then_some((cmp.key.as_slice(), p.lease))
}

/// The grant, keep-alive and revoke answers of each lease: (invoke ns, TTL s > 0) of the
/// grant and acknowledged keep-alives, and the invocations of revokes, each sorted.
#[derive(Default)]
struct LeaseEvidence {
    renewals: Vec<(TimeNs, i64, u64)>,
    revokes: Vec<(TimeNs, u64)>,
}

fn lease_evidence(history: &History) -> BTreeMap<LeaseId, LeaseEvidence> {
    let mut by_lease: BTreeMap<LeaseId, LeaseEvidence> = BTreeMap::new();
    for op in &history.ops {
        match (&op.request, &op.outcome) {
            (Request::LeaseGrant(_), Outcome::Ok(Response::LeaseGrant(g))) => by_lease
                .entry(g.id)
                .or_default()
                .renewals
                .push((op.invoke_ns, g.ttl_seconds, op.id)),
            (Request::LeaseKeepAlive(k), Outcome::Ok(Response::LeaseKeepAlive(r)))
                if r.ttl_seconds > 0 =>
            {
                by_lease.entry(k.id).or_default().renewals.push((
                    op.invoke_ns,
                    r.ttl_seconds,
                    op.id,
                ))
            }
            (Request::LeaseRevoke(r), outcome) if !matches!(outcome, Outcome::Failed(_)) => {
                by_lease
                    .entry(r.id)
                    .or_default()
                    .revokes
                    .push((op.invoke_ns, op.id))
            }
            _ => {}
        }
    }
    for e in by_lease.values_mut() {
        e.renewals.sort_unstable();
        e.revokes.sort_unstable();
    }
    by_lease
}

/// The belief interval of a successful campaign `op` holding `lease`.
fn hold(
    op: &Operation,
    lease: LeaseId,
    evidence: Option<&LeaseEvidence>,
    clock_rate_bound_percent: u64,
) -> Option<LockHold> {
    assert!(
        clock_rate_bound_percent < 100,
        "clock rate bound below 100%"
    );
    let shrink = |ttl_s: i64| {
        let ns = u128::from(u64::try_from(ttl_s.max(0)).unwrap_or(0)) * 1_000_000_000;
        u64::try_from(ns * 100 / u128::from(100 + clock_rate_bound_percent)).unwrap_or(u64::MAX)
    };
    let evidence = evidence?;
    let lease_from_ns = evidence.renewals.first()?.0;
    // Validity: renewals chain while each arrives before the last one ran out.
    let mut valid_until: Option<(TimeNs, u64)> = None;
    for &(at, ttl, id) in &evidence.renewals {
        if valid_until.is_some_and(|(until, _)| at > until) {
            break;
        }
        let until = at.saturating_add(shrink(ttl));
        if valid_until.is_none_or(|(u, _)| until > u) {
            valid_until = Some((until, id));
        }
    }
    let (valid_until, renewal_op) = valid_until?;
    let resign = evidence
        .revokes
        .iter()
        .find(|(at, _)| *at >= op.invoke_ns)
        .copied();
    let (until_ns, ended_by) = match resign {
        Some((at, id)) if at < valid_until => (at, format!("resigned (op {id})")),
        _ => (
            valid_until,
            format!("validity ended (TTL from op {renewal_op})"),
        ),
    };
    (op.complete_ns < until_ns).then_some(LockHold {
        client: op.client,
        campaign_op: op.id,
        lease,
        from_ns: op.complete_ns,
        until_ns,
        lease_from_ns,
        ended_by,
    })
}

/// Whether a request writes (puts or may delete) `key` anywhere, in either branch.
fn writes_key(req: &Request, key: &[u8]) -> bool {
    fn walk(ops: &[RequestOp], key: &[u8]) -> bool {
        ops.iter().any(|op| match op {
            RequestOp::Put(p) => p.key == key,
            RequestOp::DeleteRange(d) => key_in_range(key, &d.key, &d.range_end),
            RequestOp::Txn(t) => walk(&t.success, key) || walk(&t.failure, key),
            RequestOp::Range(_) => false,
        })
    }
    match req {
        Request::Put(p) => p.key == key,
        Request::DeleteRange(d) => key_in_range(key, &d.key, &d.range_end),
        Request::Txn(t) => walk(&t.success, key) || walk(&t.failure, key),
        _ => false,
    }
}

/// Keys some operation other than a campaign may write: not locks (a delete by anyone else
/// frees the key without the holder's lease ending, outside the protocol).
fn keys_written_otherwise(history: &History, lock_keys: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = lock_keys
        .iter()
        .filter(|key| {
            history.ops.iter().any(|op| {
                !matches!(op.outcome, Outcome::Failed(_))
                    && !matches!(&op.request, Request::Txn(t) if campaign_shape(t).is_some())
                    && writes_key(&op.request, key)
            })
        })
        .cloned()
        .collect();
    out.sort();
    out
}

/// Every pair of overlapping lock beliefs on one key (empty: mutual exclusion held). Only
/// keys that nothing but campaigns writes are locks.
pub fn check_locks(history: &History, clock_rate_bound_percent: u64) -> Vec<LockViolation> {
    let evidence = lease_evidence(history);
    let mut holds: BTreeMap<Vec<u8>, Vec<LockHold>> = BTreeMap::new();
    for op in &history.ops {
        let (Request::Txn(t), Outcome::Ok(Response::Txn(r))) = (&op.request, &op.outcome) else {
            continue;
        };
        let Some((key, lease)) = campaign_shape(t) else {
            continue;
        };
        if !r.succeeded {
            continue;
        }
        if let Some(h) = hold(op, lease, evidence.get(&lease), clock_rate_bound_percent) {
            holds.entry(key.to_vec()).or_default().push(h);
        }
    }
    let lock_keys: Vec<Vec<u8>> = holds.keys().cloned().collect();
    for key in keys_written_otherwise(history, &lock_keys) {
        holds.remove(&key);
    }
    let mut violations = Vec::new();
    for (key, mut hs) in holds {
        hs.sort_by_key(|h| (h.from_ns, h.campaign_op));
        // Sorted by start: each hold overlaps a later one iff that starts before it ends.
        let mut longest: Option<&LockHold> = None;
        for h in &hs {
            if let Some(prev) = longest.filter(|p| h.from_ns < p.until_ns) {
                violations.push(LockViolation {
                    key: key.clone(),
                    first: prev.clone(),
                    second: h.clone(),
                });
            }
            if longest.is_none_or(|p| h.until_ns > p.until_ns) {
                longest = Some(h);
            }
        }
    }
    violations
}
