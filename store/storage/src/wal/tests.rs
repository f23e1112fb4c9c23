//! Unit tests of the WAL: recovery, rotation, markers and release.

use super::*;
use crate::disk::DiskError;
use crate::mem_disk::{ByteFlip, CrashFault, MemDisk, TailFate};
use faultline_raft::NodeId;

pub(super) fn entry(term: u64, index: u64) -> Entry {
    Entry {
        term: Term(term),
        index: LogIndex(index),
        data: format!("t{term}i{index}").into_bytes(),
        kind: faultline_raft::EntryKind::Normal,
    }
}

pub(super) fn entries(term: u64, indexes: std::ops::RangeInclusive<u64>) -> Vec<Entry> {
    indexes.map(|i| entry(term, i)).collect()
}

pub(super) fn hs(term: u64, vote: Option<u64>, commit: u64) -> HardState {
    HardState {
        term: Term(term),
        vote: vote.map(NodeId),
        commit: LogIndex(commit),
    }
}

fn open(disk: MemDisk) -> (Wal<MemDisk>, WalState) {
    Wal::open(disk).expect("recovery succeeds")
}

/// The segment records are appended to.
fn current(wal: &Wal<MemDisk>) -> String {
    wal.segment_files().last().expect("a segment").clone()
}

fn crash_and_reopen(wal: Wal<MemDisk>, fate: TailFate) -> (Wal<MemDisk>, WalState) {
    let file = current(&wal);
    let mut disk = wal.into_disk();
    let mut fault = CrashFault::default();
    if disk.unsynced_lengths().contains_key(&file) {
        fault.tails.insert(file, fate);
    }
    disk.crash(&fault);
    open(disk)
}

/// Record A synced; records B and C saved but not synced. Returns the byte lengths of B
/// and C as well.
fn synced_a_unsynced_b_c() -> (Wal<MemDisk>, u64, u64) {
    let (mut wal, _) = open(MemDisk::new());
    wal.save(Some(hs(1, Some(1), 0)), &entries(1, 1..=2))
        .unwrap();
    wal.sync().unwrap();
    wal.save(Some(hs(1, Some(1), 2)), &entries(1, 3..=3))
        .unwrap();
    let b_len = wal.unsynced_bytes();
    wal.save(Some(hs(2, None, 3)), &entries(2, 4..=5)).unwrap();
    let c_len = wal.unsynced_bytes() - b_len;
    (wal, b_len, c_len)
}

fn last_index(state: &WalState) -> u64 {
    state.entries.last().map_or(0, |e| e.index.0)
}

#[test]
fn empty_disk_recovers_empty_and_writes_nothing() {
    let (wal, state) = open(MemDisk::new());
    assert_eq!(state.hard_state, HardState::default());
    assert!(state.entries.is_empty());
    assert_eq!(wal.last_index(), LogIndex(0));
    assert!(wal.disk().list().unwrap().is_empty());
}

#[test]
fn saved_and_synced_records_survive_a_crash() {
    let (wal, _, _) = synced_a_unsynced_b_c();
    let mut wal = wal;
    wal.sync().unwrap();
    let (wal, state) = crash_and_reopen(wal, TailFate::Lost);
    assert_eq!(state.hard_state, hs(2, None, 3));
    assert_eq!(
        state.entries,
        [entries(1, 1..=3), entries(2, 4..=5)].concat()
    );
    assert_eq!(wal.last_index(), LogIndex(5));
    assert_eq!(wal.hard_state(), hs(2, None, 3));
}

#[test]
fn lost_tail_recovers_the_synced_prefix() {
    let (wal, _, _) = synced_a_unsynced_b_c();
    let (wal, state) = crash_and_reopen(wal, TailFate::Lost);
    assert_eq!(state.hard_state, hs(1, Some(1), 0));
    assert_eq!(state.entries, entries(1, 1..=2));
    assert_eq!(wal.unsynced_bytes(), 0);
}

#[test]
fn kept_tail_recovers_everything() {
    let (wal, _, _) = synced_a_unsynced_b_c();
    let (_, state) = crash_and_reopen(wal, TailFate::Kept);
    assert_eq!(state.hard_state, hs(2, None, 3));
    assert_eq!(last_index(&state), 5);
}

#[test]
fn torn_tail_keeps_whole_records_only_and_is_cut_off() {
    let (_, b_len, c_len) = synced_a_unsynced_b_c();
    // Torn inside B, at B's end, inside C's header, inside C's payload.
    let cases = [
        (b_len - 1, 2, hs(1, Some(1), 0)),
        (b_len, 3, hs(1, Some(1), 2)),
        (b_len + 3, 3, hs(1, Some(1), 2)),
        (b_len + c_len - 1, 3, hs(1, Some(1), 2)),
    ];
    for (keep_bytes, last, hard_state) in cases {
        let (wal, _, _) = synced_a_unsynced_b_c();
        let file = current(&wal);
        let synced = wal.disk().synced_len(&file).unwrap();
        let (wal, state) = crash_and_reopen(wal, TailFate::Torn { keep_bytes });
        assert_eq!(last_index(&state), last, "keep {keep_bytes}");
        assert_eq!(state.hard_state, hard_state, "keep {keep_bytes}");
        let kept_records = if keep_bytes >= b_len { b_len } else { 0 };
        let file_len = wal.disk().read(&file).unwrap().len() as u64;
        assert_eq!(file_len, synced + kept_records, "torn bytes are truncated");
        // The log goes on after the cut, and a later recovery sees the new record.
        let mut wal = wal;
        wal.save(None, &[entry(3, last + 1)]).unwrap();
        wal.sync().unwrap();
        let (_, state) = crash_and_reopen(wal, TailFate::Lost);
        assert_eq!(last_index(&state), last + 1);
    }
}

#[test]
fn corrupted_unsynced_record_is_cut_off_even_when_valid_records_follow() {
    let (_, b_len, c_len) = synced_a_unsynced_b_c();
    // A flip in B (C after it is intact), and a flip in C.
    for (offset, last) in [
        (0, 2),
        (format::HEADER_BYTES as u64 + 1, 2),
        (b_len - 1, 2),
        (b_len + c_len - 1, 3),
    ] {
        let (wal, _, _) = synced_a_unsynced_b_c();
        let fate = TailFate::Corrupted {
            keep_bytes: b_len + c_len,
            flips: vec![ByteFlip {
                offset,
                xor_mask: 0x10,
            }],
        };
        let (_, state) = crash_and_reopen(wal, fate);
        assert_eq!(last_index(&state), last, "flip at {offset}");
    }
}

#[test]
fn corrupted_synced_record_followed_by_valid_ones_is_an_error() {
    let (mut wal, _, _) = synced_a_unsynced_b_c();
    let file = current(&wal);
    let a_end = wal.disk().synced_len(&file).unwrap();
    wal.sync().unwrap();
    let mut image = wal.disk().read(&file).unwrap();
    image[a_end as usize - 1] ^= 0x01; // inside A's payload
    let mut disk = MemDisk::new();
    disk.append(&file, &image).unwrap();
    disk.sync(&file).unwrap();
    disk.sync_dir().unwrap();
    match Wal::open(disk) {
        Err(WalError::Corrupt {
            offset_bytes,
            evidence,
            ..
        }) => {
            assert!(offset_bytes > 0 && offset_bytes < a_end, "{offset_bytes}");
            assert!(evidence.contains("proves it was synced"), "{evidence}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn conflicting_append_truncates_the_log_from_its_first_index() {
    let (mut wal, _) = open(MemDisk::new());
    wal.save(Some(hs(1, Some(1), 1)), &entries(1, 1..=5))
        .unwrap();
    wal.save(Some(hs(2, Some(2), 1)), &entries(2, 3..=4))
        .unwrap();
    assert_eq!(wal.last_index(), LogIndex(4));
    wal.save(None, &entries(3, 2..=2)).unwrap();
    assert_eq!(wal.last_index(), LogIndex(2));
    wal.sync().unwrap();
    let (_, state) = crash_and_reopen(wal, TailFate::Lost);
    assert_eq!(state.entries, vec![entry(1, 1), entry(3, 2)]);
    assert_eq!(state.hard_state, hs(2, Some(2), 1));
}

#[test]
fn hard_state_last_save_wins() {
    let (mut wal, _) = open(MemDisk::new());
    wal.save(None, &entries(1, 1..=3)).unwrap();
    for hard_state in [
        hs(1, None, 0),
        hs(1, Some(3), 1),
        hs(4, None, 2),
        hs(4, Some(2), 3),
    ] {
        wal.save(Some(hard_state), &[]).unwrap();
    }
    wal.save(None, &entries(4, 4..=4)).unwrap();
    wal.sync().unwrap();
    let (_, state) = crash_and_reopen(wal, TailFate::Lost);
    assert_eq!(state.hard_state, hs(4, Some(2), 3));
    assert_eq!(last_index(&state), 4);
}

#[test]
fn saving_nothing_writes_nothing() {
    let (mut wal, _) = open(MemDisk::new());
    wal.save(None, &[]).unwrap();
    wal.sync().unwrap();
    assert_eq!(wal.disk().stats().bytes_written, 0);
    assert_eq!(wal.disk().stats().syncs, 0);
}

#[test]
fn invariant_violations_on_save_are_caught() {
    let shape = |hard_state| {
        let mut shape = LogShape::default();
        shape.apply(Some(&hard_state), &[entry(1, 1), entry(2, 2), entry(3, 3)]);
        shape
    };
    let cur = shape(hs(3, Some(1), 2));
    let cases: Vec<(Option<HardState>, Vec<Entry>, &str)> = vec![
        (Some(hs(2, None, 2)), vec![], "TermDecreased"),
        (Some(hs(3, Some(2), 2)), vec![], "VoteChanged"),
        (Some(hs(3, None, 2)), vec![], "VoteChanged"),
        (Some(hs(3, Some(1), 1)), vec![], "CommitDecreased"),
        (Some(hs(3, Some(1), 4)), vec![], "CommitBeyondLog"),
        (None, vec![entry(3, 5)], "Gap"),
        (None, vec![entry(3, 0)], "Gap"),
        (None, vec![entry(3, 4), entry(3, 6)], "NotContiguous"),
        (None, vec![entry(3, 2)], "TruncatesCommitted"),
        (None, vec![entry(2, 4)], "EntryTermDecreased"),
        (None, vec![entry(3, 4), entry(2, 5)], "EntryTermDecreased"),
    ];
    for (hard_state, new_entries, expected) in cases {
        let violation = cur.check(hard_state.as_ref(), &new_entries).unwrap_err();
        assert!(
            format!("{violation:?}").starts_with(expected),
            "{violation:?}"
        );
    }
    // Allowed: a new vote in a new term, the first vote of a term, replacing uncommitted
    // entries, and a commit that covers entries saved in the same record.
    assert!(cur.check(Some(&hs(4, None, 2)), &[]).is_ok());
    let no_vote = shape(hs(3, None, 2));
    assert!(no_vote.check(Some(&hs(3, Some(2), 2)), &[]).is_ok());
    assert!(cur
        .check(Some(&hs(4, Some(1), 4)), &[entry(4, 3), entry(4, 4)])
        .is_ok());
}

#[test]
#[should_panic(expected = "breaks a log invariant")]
fn save_panics_on_a_gap() {
    let (mut wal, _) = open(MemDisk::new());
    wal.save(None, &[entry(1, 2)]).unwrap();
}

#[test]
fn a_failed_sync_makes_the_wal_refuse_further_work() {
    struct SyncFails(MemDisk);
    impl Disk for SyncFails {
        fn append(&mut self, file: &str, bytes: &[u8]) -> Result<(), DiskError> {
            self.0.append(file, bytes)
        }
        fn sync(&mut self, file: &str) -> Result<(), DiskError> {
            Err(DiskError::Io {
                op: "sync",
                file: file.to_owned(),
                source: std::io::Error::other("injected"),
            })
        }
        fn read(&self, file: &str) -> Result<Vec<u8>, DiskError> {
            self.0.read(file)
        }
        fn truncate(&mut self, file: &str, len_bytes: u64) -> Result<(), DiskError> {
            self.0.truncate(file, len_bytes)
        }
        fn remove(&mut self, file: &str) -> Result<(), DiskError> {
            self.0.remove(file)
        }
        fn rename(&mut self, from: &str, to: &str) -> Result<(), DiskError> {
            self.0.rename(from, to)
        }
        fn sync_dir(&mut self) -> Result<(), DiskError> {
            self.0.sync_dir()
        }
        fn list(&self) -> Result<Vec<String>, DiskError> {
            self.0.list()
        }
    }
    let (mut wal, _) = Wal::open(SyncFails(MemDisk::new())).unwrap();
    wal.save(None, &[entry(1, 1)]).unwrap();
    assert!(matches!(
        wal.sync(),
        Err(WalError::Disk(DiskError::Io { .. }))
    ));
    assert!(matches!(wal.sync(), Err(WalError::Failed)));
    assert!(matches!(
        wal.save(None, &[entry(1, 2)]),
        Err(WalError::Failed)
    ));
}

#[test]
fn an_oversized_record_is_refused_before_writing() {
    let (mut wal, _) = open(MemDisk::new());
    let big = Entry {
        term: Term(1),
        index: LogIndex(1),
        data: vec![0; MAX_RECORD_BYTES as usize],
        kind: faultline_raft::EntryKind::Normal,
    };
    assert!(matches!(
        wal.save(None, &[big]),
        Err(WalError::RecordTooLarge { .. })
    ));
    assert_eq!(wal.disk().stats().bytes_written, 0);
    wal.save(None, &[entry(1, 1)]).unwrap();
}

#[test]
fn the_node_can_use_a_shared_boxed_disk() {
    use std::sync::{Arc, Mutex};
    let shared = Arc::new(Mutex::new(MemDisk::new()));
    let node_disk: Box<dyn Disk + Send> = Box::new(Arc::clone(&shared));
    let (mut wal, _): (Wal, WalState) = Wal::open(node_disk).unwrap();
    wal.save(Some(hs(1, Some(1), 0)), &entries(1, 1..=2))
        .unwrap();
    wal.sync().unwrap();
    wal.save(None, &entries(1, 3..=3)).unwrap();
    drop(wal); // the node dies; the simulator still holds the disk
    shared
        .lock()
        .unwrap()
        .crash(&CrashFault::lose_all_unsynced());
    let node_disk: Box<dyn Disk + Send> = Box::new(shared);
    let (_, state): (Wal, WalState) = Wal::open(node_disk).unwrap();
    assert_eq!(last_index(&state), 2);
}

fn failing_syncs() -> crate::mem_disk::DiskFaults {
    crate::mem_disk::DiskFaults {
        fail_syncs: true,
        ..Default::default()
    }
}

#[test]
fn recovery_refuses_when_its_sync_fails() {
    let (mut wal, _) = open(MemDisk::new());
    wal.save(Some(hs(1, Some(1), 0)), &entries(1, 1..=2))
        .unwrap();
    let mut disk = wal.into_disk();
    disk.set_faults(failing_syncs());
    let error = Wal::open(disk).map(|_| ()).unwrap_err();
    assert!(
        matches!(error, WalError::Disk(DiskError::Io { op: "sync", .. })),
        "recovery must not hide a failed sync: {error}"
    );
}

#[test]
fn failed_sync_is_an_error_then_the_wal_is_failed_and_the_tail_is_lost() {
    let (mut wal, _) = open(MemDisk::new());
    wal.save(Some(hs(1, Some(1), 0)), &entries(1, 1..=2))
        .unwrap();
    wal.sync().unwrap();
    wal.save(Some(hs(1, Some(1), 2)), &entries(1, 3..=3))
        .unwrap();
    // The simulator switches the fault on under the running WAL (it shares the disk).
    let disk_handle = std::sync::Arc::new(std::sync::Mutex::new(wal.into_disk()));
    let (mut wal, _) = Wal::open(Box::new(disk_handle.clone()) as Box<dyn Disk + Send>).unwrap();
    wal.save(None, &entries(1, 4..=4)).unwrap();
    disk_handle.lock().unwrap().set_faults(failing_syncs());
    assert!(matches!(
        wal.sync(),
        Err(WalError::Disk(DiskError::Io { op: "sync", .. }))
    ));
    assert!(matches!(wal.sync(), Err(WalError::Failed)));
    assert!(matches!(
        wal.save(None, &entries(1, 5..=5)),
        Err(WalError::Failed)
    ));
    drop(wal);
    let mut disk = std::sync::Arc::try_unwrap(disk_handle)
        .unwrap()
        .into_inner()
        .unwrap();
    disk.set_faults(Default::default());
    disk.crash(&CrashFault::lose_all_unsynced());
    let (_, state) = open(disk);
    assert_eq!(
        last_index(&state),
        3,
        "what the failed sync covered is gone"
    );
}

#[cfg(feature = "canaries")]
#[test]
fn canary_ignores_a_failed_sync_and_loses_what_it_claimed_durable() {
    let (mut wal, _) = open(MemDisk::new());
    wal.save(Some(hs(1, Some(1), 0)), &entries(1, 1..=2))
        .unwrap();
    wal.sync().unwrap();
    let disk_handle = std::sync::Arc::new(std::sync::Mutex::new(wal.into_disk()));
    let (mut wal, _) = Wal::open(Box::new(disk_handle.clone()) as Box<dyn Disk + Send>).unwrap();
    wal.set_canary(Some(crate::snap::StorageCanary::IgnoreFsyncError));
    wal.save(None, &entries(1, 3..=3)).unwrap();
    disk_handle.lock().unwrap().set_faults(failing_syncs());
    wal.sync()
        .expect("the canary takes the failed sync as done");
    disk_handle.lock().unwrap().set_faults(Default::default());
    wal.save(None, &entries(1, 4..=4)).unwrap();
    wal.sync().unwrap();
    drop(wal);
    let mut disk = std::sync::Arc::try_unwrap(disk_handle)
        .unwrap()
        .into_inner()
        .unwrap();
    disk.crash(&CrashFault::lose_all_unsynced());
    let (_, state) = open(disk);
    assert_eq!(
        last_index(&state),
        2,
        "entries 3 and 4 were 'synced' but are gone"
    );
}
