//! Transactions: the plan (which branch every txn and nested txn takes, from the compares
//! against the state before the txn), the state-dependent checks of the chosen path, and
//! execution, read-only or as one write txn.

use faultline_api::{
    Compare, CompareResult, CompareTarget, EtcdError, KeyValue, PutRequest, RequestOp,
    ResponseHeader, ResponseOp, TxnRequest, TxnResponse,
};

use super::check::{check_txn, txn_has_write};
use super::write::WriteTxn;
use super::{header, KvStore};

/// The compares' outcome for a txn and, in order, for every nested txn of the chosen branch
/// (etcd's `compareToPath`): all evaluated against the state before the txn runs.
#[derive(Debug)]
struct Plan {
    succeeded: bool,
    nested: Vec<Plan>,
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

impl KvStore {
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
        let succeeded = txn
            .compare
            .iter()
            .all(|c| self.eval_compare(c) || self.canary_ignores_lock_compare(txn, c));
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

    /// The `LockCompareIgnored` canary's path: `compare` is a create-if-absent guard
    /// (create_revision == 0) on a key that exists with a lease other than the one the
    /// success branch puts it with. Always false without the canary.
    fn canary_ignores_lock_compare(&self, txn: &TxnRequest, compare: &Compare) -> bool {
        if !self.canary_active(super::KvCanary::LockCompareIgnored)
            || !compare.range_end.is_empty()
            || compare.result != CompareResult::Equal
            || compare.target != CompareTarget::CreateRevision(0)
        {
            return false;
        }
        let Some(held) = self.live_kv(&compare.key, self.current_rev) else {
            return false;
        };
        txn.success.iter().any(|op| {
            matches!(op, RequestOp::Put(put)
                if put.key == compare.key && put.lease != 0 && put.lease != held.lease)
        })
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
    pub(super) fn check_put_state(&self, put: &PutRequest) -> Result<(), EtcdError> {
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

    fn exec_txn(
        &mut self,
        tx: &mut WriteTxn,
        txn: &TxnRequest,
        plan: &Plan,
    ) -> Result<TxnResponse, EtcdError> {
        let ops = if plan.succeeded {
            &txn.success
        } else {
            &txn.failure
        };
        let mut nested = plan.nested.iter();
        let mut responses = Vec::with_capacity(ops.len());
        for op in ops {
            let response = match op {
                // Checked before execution (`check_planned`); any error still aborts the
                // whole txn (`KvStore::write`).
                RequestOp::Range(r) => ResponseOp::Range(self.range_at(r, tx.view_rev())?),
                RequestOp::Put(p) => ResponseOp::Put(self.exec_put(tx, p)?),
                RequestOp::DeleteRange(d) => ResponseOp::DeleteRange(self.exec_delete_range(tx, d)),
                RequestOp::Txn(inner) => {
                    let inner_plan = nested.next().expect("a plan per nested txn");
                    ResponseOp::Txn(self.exec_txn(tx, inner, inner_plan)?)
                }
            };
            responses.push(response);
        }
        // Nested txn headers stay zero (etcd's newTxnResp); the caller sets the outer one.
        Ok(TxnResponse {
            header: ResponseHeader::default(),
            succeeded: plan.succeeded,
            responses,
        })
    }

    /// Read-only execution (no writes anywhere in the chosen path).
    fn exec_read_only(&self, txn: &TxnRequest, plan: &Plan) -> Result<TxnResponse, EtcdError> {
        let ops = if plan.succeeded {
            &txn.success
        } else {
            &txn.failure
        };
        let mut nested = plan.nested.iter();
        let responses = ops
            .iter()
            .map(|op| match op {
                RequestOp::Range(r) => Ok(ResponseOp::Range(self.range_at(r, self.current_rev)?)),
                RequestOp::Txn(inner) => {
                    let inner_plan = nested.next().expect("a plan per nested txn");
                    Ok(ResponseOp::Txn(self.exec_read_only(inner, inner_plan)?))
                }
                RequestOp::Put(_) | RequestOp::DeleteRange(_) => {
                    unreachable!("read-only txn has no writes")
                }
            })
            .collect::<Result<Vec<ResponseOp>, EtcdError>>()?;
        Ok(TxnResponse {
            header: ResponseHeader::default(),
            succeeded: plan.succeeded,
            responses,
        })
    }

    /// Every check of a txn, in etcd's order: the request in itself (the same checks as
    /// before proposal), then the chosen path against the state before the txn.
    fn validate_txn(&self, txn: &TxnRequest) -> Result<Plan, EtcdError> {
        check_txn(txn, self.options.max_txn_ops, self.rules())?;
        let plan = self.plan(txn);
        self.check_planned(txn, &plan)?;
        Ok(plan)
    }

    pub(super) fn read_only_txn(&self, txn: &TxnRequest) -> Result<TxnResponse, EtcdError> {
        let plan = self.validate_txn(txn)?;
        let mut response = self.exec_read_only(txn, &plan)?;
        response.header = header(self.current_rev);
        Ok(response)
    }

    pub(super) fn apply_txn(&mut self, txn: &TxnRequest) -> Result<TxnResponse, EtcdError> {
        if !txn_has_write(txn) {
            return self.read_only_txn(txn);
        }
        let plan = self.validate_txn(txn)?;
        let mut response = self.write(|store, tx| store.exec_txn(tx, txn, &plan))?;
        // After the commit the current revision is the txn's view (begin + 1 after a change).
        response.header = header(self.current_rev);
        Ok(response)
    }
}

#[cfg(test)]
mod tests {
    use faultline_api::{
        DeleteRangeRequest, EtcdError, LeaseGrantRequest, PutRequest, Request, RequestOp,
        TxnRequest,
    };

    use crate::KvStore;

    fn put(key: &str, lease: i64) -> RequestOp {
        RequestOp::Put(PutRequest {
            key: key.into(),
            value: b"v".to_vec(),
            lease,
            ..PutRequest::default()
        })
    }

    fn txn(success: Vec<RequestOp>) -> TxnRequest {
        TxnRequest {
            compare: Vec::new(),
            success,
            failure: Vec::new(),
        }
    }

    /// "a" attached to lease 5, "b" without a lease.
    fn store() -> KvStore {
        let mut store = KvStore::new();
        let grant = LeaseGrantRequest {
            ttl_seconds: 100,
            id: 5,
        };
        store.apply(&Request::LeaseGrant(grant)).expect("grant");
        store
            .apply(&Request::Txn(txn(vec![put("a", 5), put("b", 0)])))
            .expect("puts");
        store.take_events();
        store
    }

    /// Execution that meets an error (here: the checks were bypassed, as if they had missed
    /// a case) undoes everything it wrote, lease attachments included, and emits no event.
    #[test]
    fn an_error_during_execution_undoes_the_whole_txn() {
        let mut store = store();
        let before = store.clone();
        let request = txn(vec![
            put("c", 5),
            put("b", 5),
            RequestOp::DeleteRange(DeleteRangeRequest {
                key: "a".into(),
                range_end: vec![0],
                prev_kv: true,
            }),
            put("d", 5),
            RequestOp::Put(PutRequest {
                key: "a".into(),
                ignore_lease: true,
                ignore_value: true,
                ..PutRequest::default()
            }),
        ]);
        let plan = store.plan(&request);
        let result = store.write(|s, tx| s.exec_txn(tx, &request, &plan));
        assert_eq!(result, Err(EtcdError::KeyNotFound));
        store.check_invariants();
        assert_eq!(store, before);
        assert!(store.take_events().is_empty());
        // The store goes on as if the txn had never been there.
        store
            .apply(&Request::Txn(txn(vec![put("e", 5)])))
            .expect("later write");
        store.check_invariants();
        assert_eq!(store.current_revision(), before.current_revision() + 1);
    }

    /// A lock campaign: create "a" with `lease` only if it does not exist.
    fn campaign(lease: i64) -> Request {
        Request::Txn(TxnRequest {
            compare: vec![faultline_api::Compare {
                key: "a".into(),
                range_end: Vec::new(),
                result: faultline_api::CompareResult::Equal,
                target: faultline_api::CompareTarget::CreateRevision(0),
            }],
            success: vec![put("a", lease)],
            failure: Vec::new(),
        })
    }

    fn won(store: &mut KvStore, lease: i64) -> bool {
        match store.apply(&campaign(lease)).expect("campaign") {
            faultline_api::Response::Txn(response) => response.succeeded,
            other => panic!("a txn answers a txn: {other:?}"),
        }
    }

    /// "a" is held under lease 5: a campaign with another lease loses, unless the
    /// `LockCompareIgnored` canary is on, and then both campaigners won.
    #[test]
    fn a_held_lock_is_not_taken_twice_unless_the_canary_is_on() {
        let mut store = store();
        let grant = LeaseGrantRequest {
            ttl_seconds: 100,
            id: 6,
        };
        store.apply(&Request::LeaseGrant(grant)).expect("grant");
        let mut canary_store = store.clone();
        assert!(!won(&mut store, 6));
        assert!(!won(&mut store, 0), "the canary's path needs a lease");
        if cfg!(feature = "canaries") {
            canary_store.set_canary(Some(crate::KvCanary::LockCompareIgnored));
            assert!(
                !won(&mut canary_store, 5),
                "the holder's own lease: compare kept"
            );
            assert!(
                won(&mut canary_store, 6),
                "the planted bug: a second winner"
            );
            canary_store.check_invariants();
        }
    }
}
