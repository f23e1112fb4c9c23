//! Lease checkpoints: the replicated remaining TTL of leases (etcd's fix for etcd #9888).
//!
//! etcd facts this follows (lease/lessor.go, etcdserver's apply): without checkpoints a new
//! leader restarts every lease at its full TTL, so a lease kept alive only by leader changes
//! never expires (#9888). With `--experimental-enable-lease-checkpoint` (3.4; always on from
//! 3.6) the leader periodically proposes a `LeaseCheckpointRequest` through Raft holding the
//! remaining TTL of its leases; every member records it in its lessor (persisted to the
//! lease bucket with `--experimental-enable-lease-checkpoint-persist`, the default in 3.6), a
//! new leader's `Promote` resumes each lease from its checkpointed remaining TTL, and a
//! keep-alive of a checkpointed lease first proposes a checkpoint of remaining TTL 0 ("use
//! the full TTL again") so that a later leader does not use a stale one. Applying a checkpoint
//! touches the lessor only, never the key space: the revision does not move.
//!
//! Ours: the remaining TTL is in milliseconds (etcd's is whole seconds) and `None` stands
//! for etcd's 0. It lives here with the rest of the replicated lessor state, so it is in
//! every member's state and in snapshots (`LeaseRecord::remaining_ttl_ms`).

use faultline_api::LeaseId;
use serde::{Deserialize, Serialize};

use super::KvStore;
use crate::lease_clock::ttl_ms;

/// One lease's checkpoint (etcd's `LeaseCheckpoint{ID, Remaining_TTL}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LeaseCheckpoint {
    pub id: LeaseId,
    /// `None`: the lease was kept alive since, a new leader gives it its full TTL.
    pub remaining_ttl_ms: Option<u64>,
}

impl KvStore {
    /// Apply a committed checkpoint entry: record each lease's remaining TTL, capped at its
    /// TTL (a leader adds the election timeout on promotion; that slack is not carried on).
    /// Unknown leases are ignored (revoked between proposal and apply, as etcd's `Checkpoint`
    /// ignores them). No revision, no watch event.
    pub fn apply_lease_checkpoints(&mut self, checkpoints: &[LeaseCheckpoint]) {
        for checkpoint in checkpoints {
            if let Some(lease) = self.leases.get_mut(&checkpoint.id) {
                let cap_ms = ttl_ms(lease.ttl_seconds);
                lease.remaining_ttl_ms = checkpoint.remaining_ttl_ms.map(|ms| ms.min(cap_ms));
            }
        }
    }

    /// The lease's checkpointed remaining TTL; `None` without a checkpoint or lease.
    pub fn lease_checkpoint(&self, id: LeaseId) -> Option<u64> {
        self.leases
            .get(&id)
            .and_then(|lease| lease.remaining_ttl_ms)
    }

    /// Every checkpointed lease and its remaining TTL, ascending by id (what a new leader
    /// resumes from: `LeaseClock::promote`).
    pub fn lease_checkpoints(&self) -> Vec<(LeaseId, u64)> {
        self.leases
            .iter()
            .filter_map(|(id, lease)| lease.remaining_ttl_ms.map(|ms| (*id, ms)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use faultline_api::{LeaseGrantRequest, PutRequest, Request};

    use super::*;

    fn store_with_lease(id: LeaseId, ttl_seconds: i64) -> KvStore {
        let mut store = KvStore::new();
        store
            .apply(&Request::LeaseGrant(LeaseGrantRequest { ttl_seconds, id }))
            .unwrap();
        store
    }

    // etcd: a checkpoint is lessor state only: no revision, no event; it survives snapshots.
    #[test]
    fn checkpoint_is_replicated_state_without_a_revision() {
        let mut store = store_with_lease(5, 10);
        store
            .apply(&Request::Put(PutRequest {
                key: b"k".to_vec(),
                value: b"v".to_vec(),
                lease: 5,
                ..PutRequest::default()
            }))
            .unwrap();
        store.take_events();
        let revision = store.current_revision();
        let hash = store.hash_kv(0).unwrap().hash;
        store.apply_lease_checkpoints(&[LeaseCheckpoint {
            id: 5,
            remaining_ttl_ms: Some(4_000),
        }]);
        assert_eq!(store.current_revision(), revision);
        assert!(store.take_events().is_empty());
        assert_eq!(
            store.hash_kv(0).unwrap().hash,
            hash,
            "HashKV covers keys only"
        );
        assert_eq!(store.lease_checkpoint(5), Some(4_000));
        let restored = KvStore::restore(store.snapshot());
        assert_eq!(restored.lease_checkpoints(), vec![(5, 4_000)]);
        assert_eq!(restored, store);
        let mut other = store_with_lease(5, 10);
        other
            .apply(&Request::Put(PutRequest {
                key: b"k".to_vec(),
                value: b"v".to_vec(),
                lease: 5,
                ..PutRequest::default()
            }))
            .unwrap();
        assert_ne!(
            other, store,
            "the checkpoint is part of the replicated state"
        );
    }

    // A keep-alive clears the checkpoint (etcd: Remaining_TTL 0); unknown leases are ignored;
    // a remaining TTL above the TTL (the promotion's extension) is capped.
    #[test]
    fn clear_cap_and_unknown_leases() {
        let mut store = store_with_lease(5, 10);
        store.apply_lease_checkpoints(&[
            LeaseCheckpoint {
                id: 5,
                remaining_ttl_ms: Some(12_000),
            },
            LeaseCheckpoint {
                id: 6,
                remaining_ttl_ms: Some(1),
            },
        ]);
        assert_eq!(store.lease_checkpoints(), vec![(5, 10_000)]);
        store.apply_lease_checkpoints(&[LeaseCheckpoint {
            id: 5,
            remaining_ttl_ms: None,
        }]);
        assert_eq!(store.lease_checkpoint(5), None);
        assert!(store.lease_checkpoints().is_empty());
    }
}
