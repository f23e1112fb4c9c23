//! A member's restart from the snapshot files and the WAL, after the power fails at each point
//! of the node's write order (snapshot file, then marker, then release).

use std::sync::{Arc, Mutex};

use faultline_raft::{Entry, HardState, LogIndex, NodeId, Term};
use faultline_storage::{
    open_member_storage, CrashFault, Disk, MemDisk, MemberStorage, RestartError, StorageOptions,
    WalOptions,
};

type Shared = Arc<Mutex<MemDisk>>;

fn options() -> StorageOptions {
    StorageOptions {
        wal: WalOptions {
            segment_size_bytes: 200,
        },
        ..StorageOptions::default()
    }
}

fn open(disk: &Shared) -> Result<MemberStorage, RestartError> {
    open_member_storage(Box::new(Arc::clone(disk)), options())
}

fn power_loss(disk: &Shared) {
    disk.lock().unwrap().crash(&CrashFault::lose_all_unsynced());
}

fn entries(term: u64, indexes: std::ops::RangeInclusive<u64>) -> Vec<Entry> {
    indexes
        .map(|i| Entry {
            term: Term(term),
            index: LogIndex(i),
            data: vec![i as u8; 30],
            kind: faultline_raft::EntryKind::Normal,
        })
        .collect()
}

fn hs(term: u64, commit: u64) -> HardState {
    HardState {
        term: Term(term),
        vote: Some(NodeId(1)),
        commit: LogIndex(commit),
    }
}

/// A member with entries 1..=`last` of term 1 committed up to `commit`, all synced.
fn member(last: u64, commit: u64) -> (Shared, MemberStorage) {
    let disk: Shared = Arc::default();
    let mut storage = open(&disk).unwrap();
    assert_eq!(storage.restart, Default::default());
    for index in 1..=last {
        let hard_state = hs(1, commit.min(index));
        storage
            .wal
            .save(Some(hard_state), &entries(1, index..=index))
            .unwrap();
        storage.wal.sync().unwrap();
    }
    (disk, storage)
}

fn indexes(storage: &MemberStorage) -> Vec<u64> {
    storage.restart.entries.iter().map(|e| e.index.0).collect()
}

#[test]
fn compaction_restarts_from_the_snapshot_and_the_wal_tail() {
    let (disk, mut storage) = member(20, 18);
    let segments = storage.wal.segment_files().len();
    // The node's order: snapshot file, marker, release.
    storage
        .snapshots
        .save(LogIndex(15), Term(1), b"kv at 15")
        .unwrap();
    storage
        .wal
        .save_snapshot_marker(LogIndex(15), Term(1))
        .unwrap();
    assert!(storage.wal.release_to(LogIndex(15)).unwrap() > 0);
    assert!(storage.wal.segment_files().len() < segments);
    drop(storage);
    power_loss(&disk);
    let storage = open(&disk).unwrap();
    let snapshot = storage.restart.snapshot.clone().unwrap();
    assert_eq!(
        (snapshot.index, snapshot.payload),
        (LogIndex(15), b"kv at 15".to_vec())
    );
    assert_eq!(indexes(&storage), (16..=20).collect::<Vec<_>>());
    assert_eq!(storage.restart.hard_state, hs(1, 18));
}

#[test]
fn a_power_loss_between_snapshot_and_marker_writes_the_marker_at_restart() {
    let (disk, mut storage) = member(20, 18);
    storage
        .snapshots
        .save(LogIndex(15), Term(1), b"kv at 15")
        .unwrap();
    drop(storage); // the marker never made it
    power_loss(&disk);
    let storage = open(&disk).unwrap();
    assert_eq!(indexes(&storage), (16..=20).collect::<Vec<_>>());
    assert_eq!(storage.wal.snapshot(), Some((LogIndex(15), Term(1))));
    drop(storage);
    power_loss(&disk);
    let storage = open(&disk).unwrap();
    assert_eq!(storage.wal.snapshot(), Some((LogIndex(15), Term(1))));
}

#[test]
fn a_follower_installing_a_snapshot_beyond_its_log_continues_after_it() {
    let (disk, mut storage) = member(3, 2);
    // The leader's snapshot at 10 (term 2): snapshot file, marker, the Ready's hard state.
    storage
        .snapshots
        .save(LogIndex(10), Term(2), b"kv at 10")
        .unwrap();
    storage
        .wal
        .save_snapshot_marker(LogIndex(10), Term(2))
        .unwrap();
    storage
        .wal
        .save(Some(hs(2, 10)), &entries(2, 11..=12))
        .unwrap();
    storage.wal.sync().unwrap();
    storage.wal.release_to(LogIndex(10)).unwrap();
    drop(storage);
    power_loss(&disk);
    let storage = open(&disk).unwrap();
    assert_eq!(
        storage.restart.snapshot.as_ref().unwrap().index,
        LogIndex(10)
    );
    assert_eq!(indexes(&storage), vec![11, 12]);
    assert_eq!(storage.restart.hard_state, hs(2, 10));
}

#[test]
fn a_snapshot_installed_without_its_marker_empties_a_conflicting_log() {
    // Entries 1..=5 of term 1, committed up to 2; the leader's snapshot at 4 has term 2.
    let (disk, mut storage) = member(5, 2);
    storage
        .snapshots
        .save(LogIndex(4), Term(2), b"kv at 4")
        .unwrap();
    drop(storage);
    power_loss(&disk);
    let mut storage = open(&disk).unwrap();
    assert!(storage.restart.entries.is_empty());
    // The commit rises to the snapshot: it holds only committed entries. The term rises to
    // the snapshot's (the Ready's hard state of term 2 never made it), with no vote: Raft
    // refuses a log whose last term is above its term.
    assert_eq!(
        storage.restart.hard_state,
        HardState {
            term: Term(2),
            vote: None,
            commit: LogIndex(4)
        }
    );
    assert_eq!(storage.wal.last_index(), LogIndex(4));
    storage.wal.save(None, &entries(2, 5..=5)).unwrap();
}

#[test]
fn a_snapshot_contradicting_committed_entries_is_an_error() {
    let (disk, mut storage) = member(5, 5);
    storage
        .snapshots
        .save(LogIndex(4), Term(2), b"kv at 4")
        .unwrap();
    drop(storage);
    match open(&disk) {
        Err(RestartError::Inconsistent { reason, .. }) => {
            assert!(reason.contains("committed up to"), "{reason}")
        }
        other => panic!("expected Inconsistent, got {:?}", other.map(|s| s.restart)),
    }
}

#[test]
fn a_marker_without_a_loadable_snapshot_is_an_error_naming_the_damaged_file() {
    let (disk, mut storage) = member(20, 18);
    storage
        .snapshots
        .save(LogIndex(15), Term(1), b"kv at 15")
        .unwrap();
    storage
        .wal
        .save_snapshot_marker(LogIndex(15), Term(1))
        .unwrap();
    storage.wal.release_to(LogIndex(15)).unwrap();
    drop(storage);
    // Bit rot in the only snapshot (synced bytes change: not a power loss).
    let file = "snap-0000000000000001-000000000000000f.snap";
    {
        let mut disk = disk.lock().unwrap();
        let mut bytes = disk.read(file).unwrap();
        *bytes.last_mut().unwrap() ^= 1;
        disk.remove(file).unwrap();
        disk.append(file, &bytes).unwrap();
    }
    match open(&disk) {
        Err(RestartError::SnapshotMissing {
            marker_index,
            newest,
            rejected,
            ..
        }) => {
            assert_eq!((marker_index, newest), (LogIndex(15), None));
            assert_eq!(rejected[0].file, file);
            assert!(rejected[0].reason.contains("checksum"));
        }
        other => panic!(
            "expected SnapshotMissing, got {:?}",
            other.map(|s| s.restart)
        ),
    }
}

/// Segment files of the WAL, oldest first.
fn wal_segments(disk: &Shared) -> Vec<String> {
    let files = disk.lock().unwrap().list().unwrap();
    files
        .into_iter()
        .filter(|f| f.starts_with("wal-"))
        .collect()
}

#[test]
fn bit_rot_in_a_sealed_wal_segment_refuses_the_restart_naming_file_and_offset() {
    let (disk, storage) = member(20, 18);
    drop(storage);
    let segments = wal_segments(&disk);
    assert!(segments.len() >= 2, "{segments:?}");
    let sealed = &segments[0];
    let offset = disk.lock().unwrap().synced_len(sealed).unwrap() / 2;
    disk.lock().unwrap().corrupt_synced(sealed, offset, 0x40);
    power_loss(&disk);
    let error = open(&disk).map(|_| ()).unwrap_err().to_string();
    assert!(
        error.contains(&format!("WAL segment {sealed} corrupt at byte ")),
        "{error}"
    );
    assert!(error.contains("a later segment exists"), "{error}");
    // The offset named is the damaged record's start, at or before the flipped byte.
    let named: u64 = error
        .split("corrupt at byte ")
        .nth(1)
        .and_then(|rest| rest.split(':').next())
        .and_then(|n| n.parse().ok())
        .expect("an offset");
    assert!(named <= offset, "{named} > {offset}: {error}");
}

/// A record a later snapshot makes unnecessary is still read and checked at restart (the
/// segment holding it is kept until every entry in it is covered): the member refuses to
/// start, as etcd does (its WAL reader checks every record's CRC in the segments it opens).
#[test]
fn bit_rot_before_the_snapshot_in_a_kept_segment_still_refuses_the_restart() {
    let (disk, mut storage) = member(20, 18);
    storage
        .snapshots
        .save(LogIndex(15), Term(1), b"kv at 15")
        .unwrap();
    storage
        .wal
        .save_snapshot_marker(LogIndex(15), Term(1))
        .unwrap();
    storage.wal.release_to(LogIndex(15)).unwrap();
    drop(storage);
    let segments = wal_segments(&disk);
    assert!(segments.len() >= 2, "{segments:?}");
    // The oldest segment kept begins at or before entry 15, which the snapshot covers.
    disk.lock().unwrap().corrupt_synced(&segments[0], 20, 0x01);
    let error = open(&disk).map(|_| ()).unwrap_err().to_string();
    assert!(
        error.contains(&format!("WAL segment {} corrupt at byte", segments[0])),
        "{error}"
    );
}

#[test]
fn bit_rot_in_the_newest_snapshot_refuses_the_restart_naming_the_file_and_its_bytes() {
    let (disk, mut storage) = member(20, 18);
    storage
        .snapshots
        .save(LogIndex(15), Term(1), b"kv at 15")
        .unwrap();
    storage
        .wal
        .save_snapshot_marker(LogIndex(15), Term(1))
        .unwrap();
    storage.wal.sync().unwrap();
    drop(storage);
    let file = "snap-0000000000000001-000000000000000f.snap";
    let len = disk.lock().unwrap().synced_len(file).unwrap();
    disk.lock().unwrap().corrupt_synced(file, len - 1, 0x80);
    let error = open(&disk).map(|_| ()).unwrap_err().to_string();
    assert!(error.contains(file), "{error}");
    assert!(
        error.contains(&format!("checksum mismatch over bytes 0..{len}")),
        "{error}"
    );
}

/// Issue 13's read errors: a disk that fails reads makes the restart fail with an I/O error
/// naming the file it could not read (the WAL segment, or the newest snapshot when there is
/// one), never a restart from part of the log or an empty one; the disk is left as it was,
/// and once reads work again everything synced comes back.
#[test]
fn failing_reads_fail_the_restart_naming_the_file_and_lose_nothing() {
    let read_errors = faultline_storage::DiskFaults {
        fail_reads: true,
        ..Default::default()
    };
    for with_snapshot in [false, true] {
        let (disk, mut storage) = member(20, 18);
        if with_snapshot {
            storage
                .snapshots
                .save(LogIndex(15), Term(1), b"kv at 15")
                .unwrap();
            storage
                .wal
                .save_snapshot_marker(LogIndex(15), Term(1))
                .unwrap();
            storage.wal.sync().unwrap();
        }
        drop(storage);
        let files = disk.lock().unwrap().list().unwrap();
        disk.lock().unwrap().set_faults(read_errors);
        let error = open(&disk).err().expect("reads fail");
        assert!(error.is_io(), "{error}");
        let text = error.to_string();
        let expected = if with_snapshot { ".snap" } else { ".log" };
        assert!(text.contains("read") && text.contains("EIO"), "{text}");
        assert!(text.contains(expected), "{text}");
        assert_eq!(
            disk.lock().unwrap().list().unwrap(),
            files,
            "nothing removed"
        );
        disk.lock().unwrap().set_faults(Default::default());
        power_loss(&disk);
        let storage = open(&disk).unwrap();
        let first = if with_snapshot { 16 } else { 1 };
        assert_eq!(indexes(&storage), (first..=20).collect::<Vec<_>>());
        assert_eq!(storage.restart.hard_state.commit, LogIndex(18));
    }
}

/// A slow disk counts the simulated time its operations took (a sync the most), which the
/// member waits out; a fast one counts nothing.
#[test]
fn a_slow_disk_counts_the_time_its_syncs_take() {
    let (disk, mut storage) = member(3, 3);
    assert_eq!(storage.wal.take_latency_ms(), 0);
    disk.lock()
        .unwrap()
        .set_faults(faultline_storage::DiskFaults {
            sync_delay_ms: 200,
            ..Default::default()
        });
    storage
        .wal
        .save(Some(hs(1, 3)), &entries(1, 4..=4))
        .unwrap();
    storage.wal.sync().unwrap();
    // One append (a tenth) and one sync.
    assert_eq!(storage.wal.take_latency_ms(), 220);
    assert_eq!(storage.wal.take_latency_ms(), 0, "taken once");
    assert_eq!(disk.lock().unwrap().stats().delayed_ms, 220);
    disk.lock().unwrap().set_faults(Default::default());
    storage
        .wal
        .save(Some(hs(1, 4)), &entries(1, 5..=5))
        .unwrap();
    storage.wal.sync().unwrap();
    assert_eq!(storage.wal.take_latency_ms(), 0);
}
