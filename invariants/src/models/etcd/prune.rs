//! Pruning a step with what the history showed: a state is rejected as soon as no completion
//! can match the key facts, the lease facts, or the intervals in which keys are shown
//! unmodified. Every rule is a necessary condition, so pruning is exact.

use faultline_api::{LeaseId, Revision};

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
        let all = next.keys.len() <= CHECK_ALL_KEYS_MAX;
        next.keys
            .iter()
            .zip(before.keys.iter())
            .enumerate()
            .all(|(k, (ks, old))| {
                (!all && ks == old) || f.key_feasible(k, ks.as_ref(), next.revision)
            })
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
                .iter()
                .zip(after.keys.iter())
                .enumerate()
                .any(|(k, (a, b))| a != b && self.is_unmodified(&self.keys[k], rev))
    }

    /// Whether responses show `key` unmodified at revision `rev`.
    pub fn is_unmodified(&self, key: &[u8], rev: Revision) -> bool {
        let Some(iv) = self.unmodified.get(key) else {
            return false;
        };
        let i = iv.partition_point(|&(a, _)| a < rev);
        i > 0 && iv[i - 1].1 >= rev
    }
}
