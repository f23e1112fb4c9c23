//! Continuous writes with periodic snapshots keep the WAL bounded, where without releases it
//! grows with every write. Prints the figures (`cargo test -p faultline-storage --test
//! wal_bounded -- --nocapture`).

use std::sync::{Arc, Mutex};

use faultline_raft::{Entry, HardState, LogIndex, NodeId, Term};
use faultline_storage::{open_member_storage, Disk, MemDisk, StorageOptions, WalOptions};

/// Ten minutes at 100 writes per second.
const WRITES: u64 = 60_000;
const PAYLOAD_BYTES: usize = 100;
const SEGMENT_BYTES: u64 = 64 << 10;
/// A snapshot every this many entries, covering the log up to this many entries behind.
const SNAPSHOT_INTERVAL: u64 = 1_000;
const APPLY_LAG: u64 = 50;
const SNAPSHOT_PAYLOAD_BYTES: usize = 16 << 10;

#[derive(Debug, Default)]
struct Figures {
    max_wal_bytes: u64,
    max_segments: usize,
    max_files: usize,
    max_record_bytes: u64,
    final_wal_bytes: u64,
    segments_released: usize,
}

/// One Ready per write (hard state + one entry, then sync), like a member under steady load;
/// with `snapshots`, a snapshot every `SNAPSHOT_INTERVAL` entries, then marker and release.
fn run(snapshots: bool) -> Figures {
    let disk: Arc<Mutex<MemDisk>> = Arc::default();
    let options = StorageOptions {
        wal: WalOptions {
            segment_size_bytes: SEGMENT_BYTES,
        },
        ..StorageOptions::default()
    };
    let mut storage = open_member_storage(Box::new(Arc::clone(&disk)), options).unwrap();
    let mut figures = Figures::default();
    for index in 1..=WRITES {
        let hard_state = HardState {
            term: Term(1),
            vote: Some(NodeId(1)),
            commit: LogIndex(index - 1),
        };
        let entry = Entry {
            term: Term(1),
            index: LogIndex(index),
            data: vec![(index % 251) as u8; PAYLOAD_BYTES],
            kind: faultline_raft::EntryKind::Normal,
        };
        let before = storage.wal.len_bytes();
        storage.wal.save(Some(hard_state), &[entry]).unwrap();
        storage.wal.sync().unwrap();
        figures.max_record_bytes = figures
            .max_record_bytes
            .max(storage.wal.len_bytes() - before);
        if snapshots && index % SNAPSHOT_INTERVAL == 0 {
            let at = LogIndex(index - APPLY_LAG);
            let payload = vec![7; SNAPSHOT_PAYLOAD_BYTES];
            storage.snapshots.save(at, Term(1), &payload).unwrap();
            storage.wal.save_snapshot_marker(at, Term(1)).unwrap();
            figures.segments_released += storage.wal.release_to(at).unwrap();
        }
        figures.max_wal_bytes = figures.max_wal_bytes.max(storage.wal.len_bytes());
        figures.max_segments = figures.max_segments.max(storage.wal.segment_files().len());
        figures.max_files = figures
            .max_files
            .max(disk.lock().unwrap().list().unwrap().len());
    }
    figures.final_wal_bytes = storage.wal.len_bytes();
    figures
}

#[test]
fn periodic_snapshots_and_release_bound_the_wal() {
    let bounded = run(true);
    let unbounded = run(false);
    println!("with snapshots every {SNAPSHOT_INTERVAL} entries: {bounded:?}");
    println!("without: {unbounded:?}");
    // After a release only segments holding entries past the snapshot stay (plus the newest);
    // until the next one the WAL grows by one interval of records.
    let bound = SEGMENT_BYTES + (SNAPSHOT_INTERVAL + APPLY_LAG + 1) * bounded.max_record_bytes;
    assert!(
        bounded.max_wal_bytes <= bound,
        "{} > {bound}",
        bounded.max_wal_bytes
    );
    let segment_bound = (bound / SEGMENT_BYTES + 2) as usize;
    assert!(bounded.max_segments <= segment_bound, "{bounded:?}");
    // WAL segments plus at most two snapshots.
    assert!(bounded.max_files <= segment_bound + 2, "{bounded:?}");
    assert!(bounded.segments_released > 0);
    // Without releases everything written stays.
    assert!(unbounded.final_wal_bytes >= WRITES * PAYLOAD_BYTES as u64);
    assert!(unbounded.final_wal_bytes > 10 * bound);
}
