//! Pruning a step with what the history showed: a state is rejected as soon as no completion
//! can match the key facts, the lease facts, or the intervals in which keys are shown
//! unmodified; and historical reads are judged at the step that makes their revision
//! (`ReadsAt`). Every rule is a necessary condition, so pruning is exact.

use faultline_api::{LeaseId, RangeRequest, RangeResponse, Revision};

use super::{EtcdModel, EtcdState};

impl EtcdModel {
    /// Whether every lease that `next` (reached from `before`) adds or removes can still meet
    /// the known operations that need it present or absent (see `LeaseFacts`).
    pub fn leases_feasible(&self, before: &EtcdState, next: &EtcdState) -> bool {
        let Some(f) = &self.lease_facts else {
            return true;
        };
        if before.leases == next.leases {
            return true;
        }
        let changed = |id: &LeaseId, present: bool| -> bool {
            let Ok(l) = self.lease_universe.binary_search(id) else {
                return true;
            };
            f.leases[l].feasible(
                present,
                next.revision,
                &next.unknown_lease_ops_applied,
                f.unknown_grant_of_any_id,
            )
        };
        next.leases
            .iter()
            .filter(|id| before.leases.binary_search(id).is_err())
            .all(|id| changed(id, true))
            && before
                .leases
                .iter()
                .filter(|id| next.leases.binary_search(id).is_err())
                .all(|id| changed(id, false))
    }

    /// Whether every key of `next` (reached from `before`) can still match its next
    /// observation (see `KeyFacts`). Small key universes check every key, which also catches
    /// a key whose last chance to be written has just passed; large ones check only the keys
    /// that changed, to keep a step cheap (less pruning, never less exact).
    pub fn feasible(&self, before: &EtcdState, next: &EtcdState) -> bool {
        const CHECK_ALL_KEYS_MAX: usize = 256;
        let Some(f) = &self.facts else { return true };
        debug_assert_eq!(f.obs.len(), next.keys.len());
        if next.keys.len() <= CHECK_ALL_KEYS_MAX {
            next.keys
                .iter()
                .enumerate()
                .all(|(k, ks)| f.key_feasible(k, ks.as_ref(), next.revision))
        } else {
            next.keys
                .changes(&before.keys)
                .all(|(k, ks, _)| f.key_feasible(k, ks.as_ref(), next.revision))
        }
    }

    /// Whether the step `before` -> `after` (to revision `rev`) changes a key that responses or
    /// watches show unmodified at `rev` (any key a txn wrote, not only a single written key).
    pub(super) fn modifies_unmodified(
        &self,
        before: &EtcdState,
        after: &EtcdState,
        rev: Revision,
    ) -> bool {
        !self.unmodified.is_empty()
            && before
                .keys
                .changes(&after.keys)
                .any(|(k, _, _)| self.is_unmodified(&self.keys[k], rev))
    }

    /// Whether responses show `key` unmodified at revision `rev`.
    pub fn is_unmodified(&self, key: &[u8], rev: Revision) -> bool {
        let Some(iv) = self.unmodified.get(key) else {
            return false;
        };
        let i = iv.partition_point(|&(a, _)| a < rev);
        i > 0 && iv[i - 1].1 >= rev
    }

    /// Whether every historical read at the revision of `next` (reached from `before`) shows
    /// what `next` holds. Only a step that makes a new revision is judged; a step from the
    /// initial revision 1 also judges the reads at 1 on `before` (the empty store), which no
    /// step reaches.
    pub fn reads_at_feasible(&self, before: &EtcdState, next: &EtcdState) -> bool {
        let Some(reads) = &self.reads_at else {
            return true;
        };
        if next.revision == before.revision || reads.is_empty() {
            return true;
        }
        let at = |st: &EtcdState| {
            reads
                .by_revision
                .get(&st.revision)
                .is_none_or(|list| list.iter().all(|(req, resp)| self.shows(st, req, resp)))
        };
        (before.revision != 1 || at(before)) && at(next)
    }

    /// Whether a range on the keys of `st` gives the KVs, `more` and `count` of `resp` (the
    /// header is the read's own, checked where the read is placed).
    fn shows(&self, st: &EtcdState, req: &RangeRequest, resp: &RangeResponse) -> bool {
        let expected = self.range_on(&st.keys, req, resp.header.revision);
        expected.kvs == resp.kvs && expected.more == resp.more && expected.count == resp.count
    }
}
