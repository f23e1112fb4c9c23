//! The WAL and the snapshot files on real files, sharing one directory.

use std::sync::{Arc, Mutex};

use faultline_raft::{Entry, HardState, LogIndex, NodeId, Term};
use faultline_storage::{Disk, FileDisk, SnapshotFiles, SnapshotOptions, Wal, WalOptions};

/// A fresh directory named after the test, removed when dropped.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(test_name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "faultline-storage-{test_name}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn entries(indexes: std::ops::RangeInclusive<u64>) -> Vec<Entry> {
    indexes
        .map(|i| Entry {
            term: Term(2),
            index: LogIndex(i),
            data: vec![i as u8; 100],
            kind: faultline_raft::EntryKind::Normal,
        })
        .collect()
}

fn hard_state(commit: u64) -> HardState {
    HardState {
        term: Term(2),
        vote: Some(NodeId(1)),
        commit: LogIndex(commit),
    }
}

#[test]
fn wal_round_trip_on_real_files() {
    let tmp = TempDir::new("wal_round_trip_on_real_files");
    {
        let (mut wal, state) = Wal::open(FileDisk::open(&tmp.0).unwrap()).unwrap();
        assert!(state.entries.is_empty());
        wal.save(Some(hard_state(2)), &entries(1..=3)).unwrap();
        wal.sync().unwrap();
    }
    // A torn record at the end, as a crash mid-write leaves it.
    let mut disk = FileDisk::open(&tmp.0).unwrap();
    let files = disk.list().unwrap();
    assert_eq!(files, vec!["wal-0000000000000000-0000000000000001.log"]);
    let len = disk.read(&files[0]).unwrap().len() as u64;
    disk.append(&files[0], &[7, 0, 0]).unwrap();
    disk.sync(&files[0]).unwrap();

    let (wal, state) = Wal::open(disk).unwrap();
    assert_eq!(state.hard_state, hard_state(2));
    assert_eq!(state.entries, entries(1..=3));
    assert_eq!(wal.disk().read(&files[0]).unwrap().len() as u64, len);
    assert_eq!(wal.disk().list().unwrap(), files);
}

/// The node's arrangement: one directory, a WAL and the snapshot files each holding a handle.
#[test]
fn snapshot_marker_and_release_on_real_files_in_one_directory() {
    let tmp = TempDir::new("snapshot_marker_and_release_on_real_files");
    let shared = Arc::new(Mutex::new(FileDisk::open(&tmp.0).unwrap()));
    let options = WalOptions {
        segment_size_bytes: 300,
    };
    let (mut wal, _) = Wal::open_with_options(Arc::clone(&shared), options).unwrap();
    let mut snapshots =
        SnapshotFiles::open(Arc::clone(&shared), SnapshotOptions::default()).unwrap();
    for index in 1..=20 {
        wal.save(Some(hard_state(index - 1)), &entries(index..=index))
            .unwrap();
        wal.sync().unwrap();
    }
    let segments_before = wal.segment_files().len();
    assert!(segments_before > 5, "{segments_before}");
    // Compact at 15: snapshot file first, then the marker, then release.
    snapshots
        .save(LogIndex(15), Term(2), b"state at 15")
        .unwrap();
    wal.save_snapshot_marker(LogIndex(15), Term(2)).unwrap();
    wal.release_to(LogIndex(15)).unwrap();
    assert!(wal.segment_files().len() < segments_before);
    drop((wal, snapshots));

    let shared = Arc::new(Mutex::new(FileDisk::open(&tmp.0).unwrap()));
    let snapshots = SnapshotFiles::open(Arc::clone(&shared), SnapshotOptions::default()).unwrap();
    let loaded = snapshots.load_newest().unwrap();
    let snapshot = loaded.snapshot.expect("a snapshot");
    assert_eq!(
        (snapshot.index, snapshot.payload),
        (LogIndex(15), b"state at 15".to_vec())
    );
    let (_, state) = Wal::open_with_options(shared, options).unwrap();
    assert_eq!(state.snapshot, Some((LogIndex(15), Term(2))));
    assert_eq!(state.entries, entries(16..=20));
    assert_eq!(state.hard_state, hard_state(19));
}
