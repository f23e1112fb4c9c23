//! Unit tests of the WAL's segments, snapshot markers and release.

use super::tests::{entries, entry, hs};
use super::*;
use crate::mem_disk::{CrashFault, MemDisk, TailFate};

/// Every save begins a new segment.
const TINY: WalOptions = WalOptions {
    segment_size_bytes: 1,
};

fn open_with(disk: MemDisk, options: WalOptions) -> (Wal<MemDisk>, WalState) {
    Wal::open_with_options(disk, options).expect("recovery succeeds")
}

fn power_loss(wal: Wal<MemDisk>) -> (Wal<MemDisk>, WalState) {
    let options = wal.options;
    let mut disk = wal.into_disk();
    disk.crash(&CrashFault::lose_all_unsynced());
    open_with(disk, options)
}

/// Entries 1..=`last` of term 1, one save (so one segment with `TINY`) each, committed up to
/// `commit`, all synced.
fn log_of(last: u64, commit: u64, options: WalOptions) -> Wal<MemDisk> {
    let (mut wal, _) = open_with(MemDisk::new(), options);
    wal.save(Some(hs(1, Some(1), 0)), &[]).unwrap();
    for index in 1..=last {
        let commit = index.min(commit);
        wal.save(Some(hs(1, Some(1), commit)), &[entry(1, index)])
            .unwrap();
    }
    wal.sync().unwrap();
    wal
}

fn indexes(state: &WalState) -> Vec<u64> {
    state.entries.iter().map(|e| e.index.0).collect()
}

#[test]
fn a_full_segment_is_synced_and_the_next_begins_with_the_whole_state() {
    let (mut wal, _) = open_with(MemDisk::new(), TINY);
    wal.save(Some(hs(2, Some(1), 0)), &entries(2, 1..=3))
        .unwrap();
    wal.save(Some(hs(2, Some(1), 2)), &entries(2, 4..=4))
        .unwrap();
    // The first segment was synced when the second began; only the second is at risk.
    let files = wal.segment_files();
    assert_eq!(
        files,
        vec![
            "wal-0000000000000000-0000000000000001.log",
            "wal-0000000000000001-0000000000000004.log",
        ]
    );
    let at_risk: Vec<String> = wal.disk().unsynced_lengths().into_keys().collect();
    assert_eq!(at_risk, vec![files[1].clone()]);
    let (wal, state) = power_loss(wal);
    assert_eq!(state.hard_state, hs(2, Some(1), 0));
    assert_eq!(indexes(&state), vec![1, 2, 3]);
    assert_eq!(wal.segment_files(), vec![files[0].clone()]);
    // With the second segment synced, both come back.
    let (mut wal, _) = open_with(wal.into_disk(), TINY);
    wal.save(Some(hs(2, Some(1), 2)), &entries(2, 4..=4))
        .unwrap();
    wal.sync().unwrap();
    let (wal, state) = power_loss(wal);
    assert_eq!(state.hard_state, hs(2, Some(1), 2));
    assert_eq!(indexes(&state), vec![1, 2, 3, 4]);
    assert_eq!(wal.segment_files().len(), 2);
}

#[test]
fn a_marker_inside_the_log_keeps_the_entries_after_it() {
    let mut wal = log_of(10, 8, WalOptions::default());
    wal.save_snapshot_marker(LogIndex(5), Term(1)).unwrap();
    assert_eq!(wal.last_index(), LogIndex(10));
    wal.save(None, &entries(1, 11..=11)).unwrap();
    wal.sync().unwrap();
    let (wal, state) = power_loss(wal);
    assert_eq!(state.snapshot, Some((LogIndex(5), Term(1))));
    assert_eq!(indexes(&state), (6..=11).collect::<Vec<_>>());
    assert_eq!(wal.snapshot(), Some((LogIndex(5), Term(1))));
}

#[test]
fn a_marker_beyond_or_in_conflict_with_the_log_empties_it() {
    // A follower jumping ahead.
    let mut wal = log_of(3, 2, WalOptions::default());
    wal.save_snapshot_marker(LogIndex(10), Term(2)).unwrap();
    assert_eq!(wal.last_index(), LogIndex(10));
    wal.save(Some(hs(2, None, 10)), &entries(2, 11..=12))
        .unwrap();
    wal.sync().unwrap();
    let (_, state) = power_loss(wal);
    assert_eq!(state.snapshot, Some((LogIndex(10), Term(2))));
    assert_eq!(indexes(&state), vec![11, 12]);
    assert_eq!(state.hard_state, hs(2, None, 10));
    // A snapshot whose term differs from the (uncommitted) entry at its index.
    let mut wal = log_of(5, 2, WalOptions::default());
    wal.save_snapshot_marker(LogIndex(4), Term(3)).unwrap();
    assert_eq!(wal.last_index(), LogIndex(4));
    wal.sync().unwrap();
    let (_, state) = power_loss(wal);
    assert_eq!(state.snapshot, Some((LogIndex(4), Term(3))));
    assert!(state.entries.is_empty());
}

/// The panic message of saving a marker at (`index`, `term`) on entries 1..=8 (commit 4)
/// with a first marker at `first`, if any; empty if it did not panic.
fn marker_panic(first: Option<(u64, u64)>, index: u64, term: u64) -> String {
    let result = std::panic::catch_unwind(|| {
        let mut wal = log_of(8, 4, WalOptions::default());
        if let Some((index, term)) = first {
            wal.save_snapshot_marker(LogIndex(index), Term(term))
                .unwrap();
        }
        wal.save_snapshot_marker(LogIndex(index), Term(term))
            .unwrap();
    });
    match result {
        Err(payload) => *payload.downcast::<String>().expect("a formatted panic"),
        Ok(()) => String::new(),
    }
}

#[test]
fn markers_that_break_the_log_are_caller_bugs() {
    for (index, term) in [(5, 1), (7, 0), (6, 2)] {
        let message = marker_panic(Some((6, 1)), index, term);
        assert!(
            message.contains("does not move forward"),
            "{index} {term}: {message}"
        );
    }
    // Entry 2 is committed with term 1: a snapshot cannot say otherwise.
    let message = marker_panic(None, 2, 2);
    assert!(message.contains("conflicts with the entries"), "{message}");
    // The same marker again changes nothing.
    assert_eq!(marker_panic(Some((6, 1)), 6, 1), "");
}

#[test]
#[should_panic(expected = "inside the snapshot")]
fn entries_inside_the_snapshot_are_a_caller_bug() {
    let mut wal = log_of(3, 1, WalOptions::default());
    wal.save_snapshot_marker(LogIndex(10), Term(1)).unwrap();
    wal.save(None, &entries(1, 10..=10)).unwrap();
}

#[test]
fn release_removes_the_covered_segments_and_keeps_the_state() {
    let mut wal = log_of(10, 10, TINY);
    let before = wal.segment_files();
    assert_eq!(before.len(), 11); // a hard state alone, then one entry each
    wal.save_snapshot_marker(LogIndex(6), Term(1)).unwrap();
    // Segments holding entries up to 6 (and the one with only a hard state) go.
    assert_eq!(wal.release_to(LogIndex(6)).unwrap(), 7);
    let mut expected = before[7..].to_vec();
    expected.extend(wal.segment_files().last().cloned()); // the marker's segment
    assert_eq!(wal.segment_files(), expected);
    assert_eq!(wal.release_to(LogIndex(6)).unwrap(), 0);
    let (mut wal, state) = power_loss(wal);
    assert_eq!(state.snapshot, Some((LogIndex(6), Term(1))));
    assert_eq!(indexes(&state), vec![7, 8, 9, 10]);
    assert_eq!(state.hard_state, hs(1, Some(1), 10));
    // The newest segment stays even when everything is covered.
    wal.save_snapshot_marker(LogIndex(10), Term(1)).unwrap();
    wal.release_to(LogIndex(10)).unwrap();
    assert_eq!(wal.segment_files().len(), 1);
    let (_, state) = power_loss(wal);
    assert_eq!(state.snapshot, Some((LogIndex(10), Term(1))));
    assert!(state.entries.is_empty());
    assert_eq!(state.hard_state, hs(1, Some(1), 10));
}

#[test]
#[should_panic(expected = "beyond the snapshot marker")]
fn releasing_entries_no_snapshot_covers_is_a_caller_bug() {
    let mut wal = log_of(5, 5, TINY);
    wal.save_snapshot_marker(LogIndex(3), Term(1)).unwrap();
    wal.release_to(LogIndex(4)).unwrap();
}

#[test]
fn a_release_interrupted_by_power_loss_leaves_a_readable_wal() {
    let mut wal = log_of(6, 6, TINY);
    wal.save_snapshot_marker(LogIndex(4), Term(1)).unwrap();
    wal.sync().unwrap();
    let files = wal.segment_files();
    let mut disk = wal.into_disk();
    // Release removes segments 0..=4; the power fails before sync_dir and only some of the
    // removals reach the platter: one in the middle (a gap), or none.
    for kept in [vec![2u64], vec![], vec![0, 1, 2, 3, 4]] {
        let mut disk = disk.clone();
        for file in &files[..5] {
            disk.remove(file).unwrap();
        }
        disk.crash(&CrashFault {
            dir_ops_kept: kept.iter().copied().collect(),
            ..CrashFault::default()
        });
        let (wal, state) = open_with(disk, TINY);
        assert_eq!(state.snapshot, Some((LogIndex(4), Term(1))), "{kept:?}");
        assert_eq!(indexes(&state), vec![5, 6], "{kept:?}");
        // Segments before a gap are removed at open.
        let first_kept = if kept == vec![2] { 3 } else { kept.len() };
        assert_eq!(
            wal.segment_files(),
            files[first_kept..].to_vec(),
            "{kept:?}"
        );
    }
    disk.crash(&CrashFault::lose_all_unsynced());
}

#[test]
fn released_entries_no_marker_covers_are_invalid() {
    let wal = log_of(4, 4, TINY);
    let files = wal.segment_files();
    let mut disk = wal.into_disk();
    disk.remove(&files[0]).unwrap();
    disk.remove(&files[1]).unwrap();
    disk.sync_dir().unwrap();
    match Wal::open_with_options(disk, TINY) {
        Err(WalError::Invalid { reason, .. }) => {
            assert!(
                reason.contains("no snapshot marker covers them"),
                "{reason}"
            )
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn entries_overwritten_after_a_release_boundary_are_read_back() {
    // Segment k begins with entries 1..=4 behind it; entry 3 and 4 are then overwritten in
    // it, before the marker that covers 1..=4 arrives in a later segment.
    let (mut wal, _) = open_with(MemDisk::new(), TINY);
    wal.save(Some(hs(1, Some(1), 2)), &entries(1, 1..=4))
        .unwrap();
    wal.save(Some(hs(2, Some(2), 2)), &entries(2, 3..=5))
        .unwrap();
    wal.save(Some(hs(2, Some(2), 5)), &[]).unwrap();
    wal.save_snapshot_marker(LogIndex(4), Term(2)).unwrap();
    wal.save(None, &entries(2, 6..=6)).unwrap();
    assert_eq!(wal.release_to(LogIndex(4)).unwrap(), 1);
    let (_, state) = power_loss(wal);
    assert_eq!(state.snapshot, Some((LogIndex(4), Term(2))));
    assert_eq!(state.entries, entries(2, 5..=6));
}

#[test]
fn damage_in_an_earlier_segment_is_corruption() {
    let wal = log_of(3, 3, TINY);
    let files = wal.segment_files();
    let mut disk = wal.into_disk();
    let mut bytes = disk.read(&files[1]).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    disk.remove(&files[1]).unwrap();
    disk.append(&files[1], &bytes).unwrap();
    match Wal::open_with_options(disk, TINY) {
        Err(WalError::Corrupt { file, evidence, .. }) => {
            assert_eq!(file, files[1]);
            assert!(evidence.contains("later segment"), "{evidence}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

/// The `RotTakenForTornTail` canary turns the corruption above into a silent cut: the log
/// ends inside segment 1 and the later segments, synced entries among them, are gone.
#[cfg(feature = "canaries")]
#[test]
fn the_rot_taken_for_torn_tail_canary_cuts_the_log_at_the_damage() {
    let wal = log_of(3, 3, TINY);
    let files = wal.segment_files();
    assert!(files.len() >= 3, "{files:?}");
    let mut disk = wal.into_disk();
    let mut bytes = disk.read(&files[1]).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    disk.remove(&files[1]).unwrap();
    disk.append(&files[1], &bytes).unwrap();
    let canary = Some(crate::snap::StorageCanary::RotTakenForTornTail);
    let (wal, state) = Wal::open_with_canary(disk, TINY, canary).expect("the canary opens");
    assert_eq!(wal.segment_files(), files[..2].to_vec());
    assert!(
        state.entries.last().map_or(0, |e| e.index.0) < 3,
        "synced entries lost: {:?}",
        state.entries
    );
}

#[test]
fn a_new_segment_torn_inside_its_header_is_removed() {
    let mut wal = log_of(2, 2, TINY);
    wal.save(None, &entries(1, 3..=3)).unwrap();
    let files = wal.segment_files();
    let new = files.last().unwrap().clone();
    let mut disk = wal.into_disk();
    let mut fault = CrashFault {
        dir_ops_kept: [0].into(),
        ..CrashFault::default()
    };
    fault
        .tails
        .insert(new.clone(), TailFate::Torn { keep_bytes: 5 });
    disk.crash(&fault);
    assert!(disk.list().unwrap().contains(&new));
    let (wal, state) = open_with(disk, TINY);
    assert_eq!(indexes(&state), vec![1, 2]);
    assert_eq!(wal.segment_files(), files[..files.len() - 1].to_vec());
    assert!(!wal.disk().list().unwrap().contains(&new));
    // The next segment takes its place.
    let mut wal = wal;
    wal.save(None, &entries(1, 3..=3)).unwrap();
    assert_eq!(wal.segment_files().last(), Some(&new));
}

#[test]
fn a_segment_whose_name_disagrees_with_its_header_is_invalid() {
    let wal = log_of(2, 2, TINY);
    let files = wal.segment_files();
    let mut disk = wal.into_disk();
    let wrong = SegmentName::parse(&files[2]).unwrap();
    let renamed = SegmentName {
        first_index: LogIndex(wrong.first_index.0 + 1),
        ..wrong
    };
    disk.rename(&files[2], &renamed.file()).unwrap();
    match Wal::open_with_options(disk, TINY) {
        Err(WalError::Invalid { reason, .. }) => {
            assert!(reason.contains("does not match the file name"), "{reason}")
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn into_persisted_converts_a_log_without_marker() {
    let wal = log_of(2, 1, WalOptions::default());
    let (_, state) = power_loss(wal);
    let persisted = state.clone().into_persisted();
    assert_eq!(persisted.hard_state, state.hard_state);
    assert_eq!(persisted.entries, state.entries);
}
