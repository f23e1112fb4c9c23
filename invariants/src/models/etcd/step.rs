//! The etcd model as the linearizability search sees it (`Model`): a step checks a known
//! response against `apply` and the revision it must show, places an unknown write only in a
//! revision nobody claims, and prunes with the facts; plus the search's hints (order, cheap
//! rejection, progress, symmetry classes, lazy lease steps).

use std::rc::Rc;

use faultline_api::{LeaseId, Request, RequestOp, Response};

use super::{kv_of, normalize_in_place, EtcdInput, EtcdModel, EtcdState, KeyTable, RangeKind};
use crate::describe::{describe_kv, describe_request, describe_response};
use crate::linearizability::Model;

impl Model for EtcdModel {
    type State = EtcdState;
    type Input = EtcdInput;
    type Output = Response;

    fn name(&self) -> String {
        "etcd".to_string()
    }

    fn init(&self) -> Vec<EtcdState> {
        vec![EtcdState {
            revision: 1,
            compact_revision: -1,
            keys: KeyTable::new(self.keys.len()),
            leases: Rc::default(),
            unknown_lease_ops_applied: Rc::default(),
        }]
    }

    fn step_into(
        &self,
        st: &EtcdState,
        input: &EtcdInput,
        output: Option<&Response>,
        out: &mut Vec<EtcdState>,
    ) {
        // Revision checks first: they reject almost every wrong candidate in O(1).
        if let Some(resp) = output {
            let h = resp.header().revision;
            let ok = match input.mutating {
                Some(true) => h == st.revision + 1,
                Some(false) => h == st.revision,
                None => h == st.revision || h == st.revision + 1,
            };
            if !ok {
                return;
            }
        } else if let Some(pin) = input.pin {
            if pin != st.revision + 1 {
                return;
            }
        }
        match output {
            Some(actual) => out.extend(self.step_known(st, input, actual)),
            None => self.step_unknown(st, input, out),
        }
    }

    fn order_hint(&self, input: &EtcdInput, output: Option<&Response>) -> i64 {
        match (output, input.pin) {
            (Some(resp), _) => {
                let h = resp.header().revision;
                match input.mutating {
                    Some(false) => 2 * h,
                    _ => 2 * h - 1,
                }
            }
            (None, Some(pin)) => 2 * pin - 1,
            // A server expiry before any other unknown write: where it is wrong (its keys are
            // seen later, its lease needed later), the facts reject it at once, while an
            // unknown put wrongly taking its revision shows only at the expiry's deadline,
            // thousands of levels later.
            (None, None) if input.expiry.is_some() => i64::MAX / 2 - (input.invoke_ns >> 1) as i64,
            (None, None) => i64::MAX - (input.invoke_ns >> 1) as i64,
        }
    }

    fn quick_reject(&self, st: &EtcdState, input: &EtcdInput, output: Option<&Response>) -> bool {
        match output {
            Some(resp) => {
                let h = resp.header().revision;
                match input.mutating {
                    Some(true) => h != st.revision + 1,
                    Some(false) => h != st.revision,
                    None => h != st.revision && h != st.revision + 1,
                }
            }
            None => match (input.pin, &input.request) {
                (Some(pin), _) => pin != st.revision + 1,
                // A required expiry is a no-op on a lease already gone, so always possible.
                (None, Request::LeaseRevoke(_)) if input.is_required_expiry() => false,
                // `apply` fails on a grant of an existing lease and a revoke of a missing one.
                (None, Request::LeaseGrant(g)) if g.id != 0 => {
                    st.leases.binary_search(&g.id).is_ok()
                }
                (None, Request::LeaseRevoke(r)) => st.leases.binary_search(&r.id).is_err(),
                (None, Request::LeaseGrant(_)) => false,
                // Only lease operations can change the state without a new revision; any
                // other unknown write must produce the next revision, which must be free.
                (None, _) => {
                    st.revision + 1 > self.max_revision
                        || self
                            .claimed
                            .get((st.revision + 1) as usize)
                            .copied()
                            .unwrap_or(false)
                }
            },
        }
    }

    fn quick_reject_gate(&self, input: &EtcdInput, output: Option<&Response>) -> Option<u64> {
        // The unpinned arms of `quick_reject` for unknown writes: they depend on the state's
        // revision alone (gate 0), or on whether one lease exists (a gate per lease id and
        // kind, numbered by the id's place in the sorted lease universe).
        if output.is_some() || input.pin.is_some() || input.is_required_expiry() {
            return None;
        }
        let lease_gate = |id: &LeaseId, kind: u64| {
            self.lease_universe
                .binary_search(id)
                .ok()
                .map(|p| 1 + 2 * p as u64 + kind)
        };
        match &input.request {
            Request::LeaseGrant(g) if g.id != 0 => lease_gate(&g.id, 0),
            Request::LeaseGrant(_) => None,
            Request::LeaseRevoke(r) => lease_gate(&r.id, 1),
            _ => Some(0),
        }
    }

    fn progress(&self, st: &EtcdState) -> i64 {
        st.revision
    }

    fn latest_progress(&self, input: &EtcdInput, output: Option<&Response>) -> Option<i64> {
        // Mirrors the revision check at the top of `step`.
        let h = output?.header().revision;
        Some(match input.mutating {
            Some(true) => h - 1,
            Some(false) | None => h,
        })
    }

    fn interchangeable_class(&self, input: &EtcdInput, output: Option<&Response>) -> Option<u64> {
        (output.is_none() && !input.is_required_expiry())
            .then_some(input.class)
            .flatten()
    }

    fn required(&self, input: &EtcdInput, output: Option<&Response>) -> bool {
        output.is_some() || input.is_required_expiry()
    }

    fn may_be_lazy(&self, input: &EtcdInput, output: Option<&Response>) -> bool {
        // A required expiry too: the search places it at its deadline at the latest.
        output.is_none()
            && input.pin.is_none()
            && matches!(&input.request, Request::LeaseGrant(g) if g.id != 0)
            || output.is_none() && matches!(&input.request, Request::LeaseRevoke(_))
    }

    fn lazy_resource(
        &self,
        input: &EtcdInput,
        output: Option<&Response>,
        before: &EtcdState,
        after: &EtcdState,
    ) -> Option<u64> {
        // Only the lease set changed (no key, no revision): nothing but operations naming
        // this lease can tell when it happened.
        if output.is_some() || before.revision != after.revision || before.keys != after.keys {
            return None;
        }
        match &input.request {
            Request::LeaseGrant(g) if g.id != 0 => Some(g.id as u64),
            Request::LeaseRevoke(r) => Some(r.id as u64),
            _ => None,
        }
    }

    fn resources(&self, input: &EtcdInput) -> Vec<u64> {
        // Lease ids an operation reads: puts naming a lease, grants (which need the id
        // absent; a grant without id may pick any) and revokes. A put with ignore_lease reads
        // no lease: it keeps the lease its key has (`apply`: only the key must exist), and a
        // lazy step never changes a key (`lazy_resource`), nor can it concern the lease of
        // a key (a revoke of a lease with keys deletes them; a granted lease has none). So
        // it commutes with every lazy step, like a put without a lease. (It used to count
        // as reading every lease: then any run of lazy lease steps could wait for it, and on
        // lossy-leader-churn seed 0 the search enumerated every subset of ten pending unknown
        // lease operations at each level, out of its budget.)
        fn txn_leases(ops: &[RequestOp], out: &mut Vec<i64>) {
            for op in ops {
                match op {
                    RequestOp::Put(p) if p.lease != 0 => out.push(p.lease),
                    RequestOp::Txn(t) => {
                        txn_leases(&t.success, out);
                        txn_leases(&t.failure, out);
                    }
                    _ => {}
                }
            }
        }
        let mut out = Vec::new();
        let mut any = false;
        match &input.request {
            Request::Put(p) if p.lease != 0 => out.push(p.lease),
            Request::Txn(t) => {
                txn_leases(&t.success, &mut out);
                txn_leases(&t.failure, &mut out);
            }
            Request::LeaseGrant(g) if g.id != 0 => out.push(g.id),
            Request::LeaseGrant(_) => any = true,
            Request::LeaseRevoke(r) => out.push(r.id),
            _ => {}
        }
        if any {
            out.extend(self.lease_universe.iter().copied());
        }
        let mut out: Vec<u64> = out.into_iter().map(|l| l as u64).collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    fn describe_input(&self, input: &EtcdInput) -> String {
        match (&input.request, input.expiry) {
            (Request::LeaseRevoke(r), Some(required)) => format!(
                "lease {:#x} expired (by the server; {})",
                r.id,
                if required {
                    "must have expired by the end of this window"
                } else {
                    "deadline not enforced"
                }
            ),
            _ => describe_request(&input.request),
        }
    }

    fn describe_output(&self, output: Option<&Response>) -> String {
        match output {
            Some(r) => describe_response(r),
            None => "unknown outcome".to_string(),
        }
    }

    fn describe_state(&self, st: &EtcdState) -> String {
        let keys: Vec<String> = st
            .keys
            .iter()
            .enumerate()
            .filter_map(|(i, k)| k.as_ref().map(|k| describe_kv(&kv_of(&self.keys[i], k))))
            .collect();
        format!(
            "revision {}, compact revision {}, keys [{}], leases {:?}",
            st.revision,
            st.compact_revision,
            keys.join(", "),
            st.leases
        )
    }
}

impl EtcdModel {
    /// The step of an operation with a known response (its revision already checked): the
    /// response must be the model's, and the state must stay feasible.
    #[inline]
    fn step_known(
        &self,
        st: &EtcdState,
        input: &EtcdInput,
        actual: &Response,
    ) -> Option<EtcdState> {
        let grant = match actual {
            Response::LeaseGrant(g) => Some(g.id),
            _ => None,
        };
        let Ok((next, mut expected, kind)) = self.apply(st, &input.request, grant) else {
            return None;
        };
        let matches = match kind {
            RangeKind::Historical => actual.header().revision == expected.header().revision,
            RangeKind::Current => {
                normalize_in_place(&mut expected);
                expected == *actual
            }
        };
        if matches
            && (next == *st
                || (self.feasible(st, &next)
                    && self.leases_feasible(st, &next)
                    && self.reads_at_feasible(st, &next)))
        {
            Some(next)
        } else {
            None
        }
    }

    /// The steps of an unknown write: one per lease id the server may pick for a grant
    /// without one, else one; each only where it changes the state and is allowed.
    #[inline]
    fn step_unknown(&self, st: &EtcdState, input: &EtcdInput, out: &mut Vec<EtcdState>) {
        match &input.request {
            Request::LeaseGrant(g) if g.id == 0 => {
                for l in self.lease_universe.iter() {
                    if st.leases.binary_search(l).is_err() {
                        out.extend(self.unknown_successor(st, input, Some(*l)));
                    }
                }
            }
            _ => out.extend(self.unknown_successor(st, input, None)),
        }
    }

    /// The state after an unknown write (with the server's lease id `grant`), unless it is a
    /// no-op, fills a revision it may not (claimed, beyond the highest seen, or where a key
    /// it changes is shown unmodified; a pinned write exactly its pin), or is infeasible.
    #[inline]
    fn unknown_successor(
        &self,
        st: &EtcdState,
        input: &EtcdInput,
        grant: Option<LeaseId>,
    ) -> Option<EtcdState> {
        let Ok((mut next, _, _)) = self.apply(st, &input.request, grant) else {
            // A required expiry of a lease already revoked (by a client) changes nothing.
            return input.is_required_expiry().then(|| st.clone());
        };
        if next == *st {
            // A no-op: the same as never happening, except for a required expiry, which
            // must be placed (a lease with no keys).
            return input.is_required_expiry().then(|| st.clone());
        }
        if let Some(tag) = input.lease_op_tag {
            let applied = Rc::make_mut(&mut next.unknown_lease_ops_applied);
            if let Err(pos) = applied.binary_search(&tag) {
                applied.insert(pos, tag);
            }
        }
        if next.revision != st.revision {
            let r = next.revision;
            let allowed = match input.pin {
                Some(pin) => pin == r,
                None => {
                    // A required expiry may come after every revision seen (nothing observed
                    // its keys after it); an optional write there could explain nothing.
                    (r <= self.max_revision || input.is_required_expiry())
                        && !self.claimed.get(r as usize).copied().unwrap_or(false)
                        && !self.modifies_unmodified(st, &next, r)
                }
            };
            if !allowed {
                return None;
            }
        } else if input.pin.is_some() {
            return None;
        }
        if !self.feasible(st, &next)
            || !self.leases_feasible(st, &next)
            || !self.reads_at_feasible(st, &next)
        {
            return None;
        }
        Some(next)
    }
}
