//! The checks of a request in itself, before any state is read: etcd's v3rpc checks
//! (`checkPutRequest`, `checkTxnRequest`, `checkIntervals`) plus the store's own rule against
//! a put that needs a key its own txn may already have deleted (issue 16). They run before
//! proposal (`KvStore::check_request`) and again at apply, so an entry that skipped them (an
//! older member's proposal) gets the same error on every member.

use std::collections::BTreeSet;

use faultline_api::{
    key_in_range, DeleteRangeRequest, EtcdError, PutRequest, RangeRequest, Request, RequestOp,
    TxnRequest,
};

/// Which of the store's own rules (beyond etcd's) apply; a canary turns one off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Rules {
    /// Reject a put with ignore_value/ignore_lease after a delete that may remove its key.
    pub ignore_put_after_delete: bool,
}

/// Every check of `request` that does not depend on the store's state (see the module docs).
/// Requests without such checks (compaction, leases, HashKV) pass.
pub(super) fn check_request(
    request: &Request,
    max_txn_ops: usize,
    rules: Rules,
) -> Result<(), EtcdError> {
    match request {
        Request::Range(range) => check_range_request(range),
        Request::Put(put) => check_put_request(put),
        Request::DeleteRange(del) => check_delete_request(del),
        Request::Txn(txn) => check_txn(txn, max_txn_ops, rules),
        Request::Compact(_)
        | Request::LeaseGrant(_)
        | Request::LeaseRevoke(_)
        | Request::LeaseKeepAlive(_)
        | Request::LeaseTimeToLive(_)
        | Request::LeaseLeases
        | Request::HashKv(_) => Ok(()),
    }
}

/// A txn's state-independent checks, in etcd's order (op counts and keys, then duplicate
/// keys), then the store's own rule.
pub(super) fn check_txn(
    txn: &TxnRequest,
    max_txn_ops: usize,
    rules: Rules,
) -> Result<(), EtcdError> {
    check_txn_request(txn, max_txn_ops)?;
    check_intervals(&txn.success)?;
    check_intervals(&txn.failure)?;
    if rules.ignore_put_after_delete {
        check_ignore_puts(&txn.success, &mut Vec::new())?;
        check_ignore_puts(&txn.failure, &mut Vec::new())?;
    }
    Ok(())
}

/// Issue 16: a put with ignore_value or ignore_lease needs its key to exist when it runs, but
/// etcd's ErrKeyNotFound check reads the state BEFORE the txn, and its duplicate-key check
/// skips `"\0"` delete ranges; so a branch that deletes a key to the end of the key space and
/// then puts it with ignore_* passed both and failed mid-apply (etcd 3.4.23 panics there, on
/// every member and on every replay of the log). This rejects, with etcd's ErrKeyNotFound, any
/// such put that a delete executed earlier in the same branch can reach: the branch's own
/// deletes before it, and those anywhere in an earlier nested txn (either side, since which
/// side runs depends on the state). The then and else sides of one nested txn never run
/// together, so a delete on one side does not count for a put on the other.
/// `earlier`: the deletes that may have run before `ops` (extended with those of `ops`).
fn check_ignore_puts(ops: &[RequestOp], earlier: &mut Vec<DelInterval>) -> Result<(), EtcdError> {
    for op in ops {
        match op {
            RequestOp::Range(_) => {}
            RequestOp::DeleteRange(d) => earlier.push(DelInterval {
                key: d.key.clone(),
                range_end: d.range_end.clone(),
            }),
            RequestOp::Put(p) if p.ignore_value || p.ignore_lease => {
                if earlier
                    .iter()
                    .any(|d| key_in_range(&p.key, &d.key, &d.range_end))
                {
                    return Err(EtcdError::KeyNotFound);
                }
            }
            RequestOp::Put(_) => {}
            RequestOp::Txn(inner) => {
                let before_inner = earlier.len();
                check_ignore_puts(&inner.success, earlier)?;
                let then_deletes = earlier.split_off(before_inner);
                check_ignore_puts(&inner.failure, earlier)?;
                earlier.extend(then_deletes);
            }
        }
    }
    Ok(())
}

pub(super) fn check_range_request(req: &RangeRequest) -> Result<(), EtcdError> {
    if req.key.is_empty() {
        return Err(EtcdError::EmptyKey);
    }
    Ok(())
}

pub(super) fn check_put_request(req: &PutRequest) -> Result<(), EtcdError> {
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

pub(super) fn check_delete_request(req: &DeleteRangeRequest) -> Result<(), EtcdError> {
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
pub(super) fn txn_has_write(txn: &TxnRequest) -> bool {
    txn.success
        .iter()
        .chain(txn.failure.iter())
        .any(|op| match op {
            RequestOp::Range(_) => false,
            RequestOp::Put(_) | RequestOp::DeleteRange(_) => true,
            RequestOp::Txn(inner) => txn_has_write(inner),
        })
}
