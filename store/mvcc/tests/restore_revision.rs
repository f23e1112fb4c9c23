//! A restored store keeps the snapshot's revision even when compaction removed its newest
//! records (the tombstone of a delete at the compact revision): etcd #17780 was a revision
//! decrease after a restart in exactly that state. With the `revision-from-records` canary
//! (mvcc built with `canaries`) the planted bug takes the revision from the newest record.

use faultline_api::*;
use faultline_mvcc::*;

/// put k, delete k, compact at the delete's revision: the newest record is gone.
fn compacted_after_delete() -> KvStore {
    let mut store = KvStore::new();
    store
        .apply(&Request::Put(PutRequest {
            key: b"k".to_vec(),
            value: b"v".to_vec(),
            ..PutRequest::default()
        }))
        .unwrap();
    store
        .apply(&Request::DeleteRange(DeleteRangeRequest {
            key: b"k".to_vec(),
            ..DeleteRangeRequest::default()
        }))
        .unwrap();
    let revision = store.current_revision();
    store
        .apply(&Request::Compact(CompactionRequest {
            revision,
            physical: true,
        }))
        .unwrap();
    store
}

#[test]
fn a_restored_store_keeps_the_snapshot_revision_after_compaction() {
    let store = compacted_after_delete();
    let restored = KvStore::restore_with_canary(store.snapshot(), None);
    assert_eq!(restored.current_revision(), store.current_revision());
    assert_eq!(restored, store);
}

#[cfg(feature = "canaries")]
#[test]
fn the_planted_bug_restores_below_the_revision_served() {
    let store = compacted_after_delete();
    let restored =
        KvStore::restore_with_canary(store.snapshot(), Some(KvCanary::RevisionFromRecords));
    assert!(
        restored.current_revision() < store.current_revision(),
        "{} >= {}",
        restored.current_revision(),
        store.current_revision()
    );
}
