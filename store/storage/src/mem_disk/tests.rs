//! Unit tests of the simulated disk: tail fates and directory operations at power loss.

use super::*;

/// "f" holds `synced` durably (data and name) and `unsynced` after it.
fn disk_with(synced: &[u8], unsynced: &[u8]) -> MemDisk {
    let mut disk = MemDisk::new();
    disk.append("f", synced).unwrap();
    disk.sync("f").unwrap();
    disk.sync_dir().unwrap();
    disk.append("f", unsynced).unwrap();
    disk
}

fn crash_with(disk: &mut MemDisk, fate: TailFate) {
    let mut fault = CrashFault::default();
    fault.tails.insert("f".to_owned(), fate);
    disk.crash(&fault);
}

fn keep_dir_ops(positions: &[u64]) -> CrashFault {
    CrashFault {
        dir_ops_kept: positions.iter().copied().collect(),
        ..CrashFault::default()
    }
}

#[test]
fn unsynced_lengths_lists_only_files_at_risk() {
    let mut disk = disk_with(b"abc", b"de");
    disk.append("g", b"x").unwrap();
    disk.sync("g").unwrap();
    let expected = BTreeMap::from([("f".to_owned(), 2)]);
    assert_eq!(disk.unsynced_lengths(), expected);
    assert_eq!(disk.synced_len("f"), Some(3));
    let create_g = DirOp::Create {
        file: "g".to_owned(),
    };
    assert_eq!(disk.pending_dir_ops(), vec![create_g]);
}

#[test]
fn each_fate_touches_only_the_unsynced_tail() {
    let cases = [
        (TailFate::Lost, b"abc".to_vec()),
        (TailFate::Kept, b"abcdef".to_vec()),
        (TailFate::Torn { keep_bytes: 2 }, b"abcde".to_vec()),
        (
            TailFate::Corrupted {
                keep_bytes: 3,
                flips: vec![ByteFlip {
                    offset: 1,
                    xor_mask: 0xff,
                }],
            },
            vec![b'a', b'b', b'c', b'd', b'e' ^ 0xff, b'f'],
        ),
    ];
    for (fate, expected) in cases {
        let mut disk = disk_with(b"abc", b"def");
        crash_with(&mut disk, fate.clone());
        assert_eq!(disk.read("f").unwrap(), expected, "{fate:?}");
        // What survived is durable: a second crash changes nothing.
        assert!(disk.unsynced_lengths().is_empty());
        disk.crash(&CrashFault::lose_all_unsynced());
        assert_eq!(disk.read("f").unwrap(), expected, "{fate:?}");
    }
}

#[test]
fn unnamed_files_lose_their_tail_and_unsynced_creations_vanish() {
    let mut disk = disk_with(b"abc", b"def");
    disk.append("new", b"xyz").unwrap();
    // Synced data does not make the name durable.
    disk.append("synced-only", b"s").unwrap();
    disk.sync("synced-only").unwrap();
    disk.crash(&CrashFault::lose_all_unsynced());
    assert_eq!(disk.read("f").unwrap(), b"abc");
    assert!(matches!(disk.read("new"), Err(DiskError::NotFound { .. })));
    assert_eq!(disk.list().unwrap(), vec!["f".to_owned()]);
    let stats = disk.stats();
    assert_eq!(stats.bytes_written, 10);
    assert_eq!(stats.bytes_lost, 6);
    assert_eq!(stats.syncs, 2);
    assert_eq!(stats.dir_syncs, 1);
    assert_eq!(stats.dir_ops_lost, 2);
    assert_eq!(stats.crashes, 1);
}

#[test]
fn a_kept_creation_keeps_the_file_with_its_fate() {
    let mut disk = MemDisk::new();
    disk.append("new", b"xyz").unwrap();
    let mut fault = keep_dir_ops(&[0]);
    fault
        .tails
        .insert("new".to_owned(), TailFate::Torn { keep_bytes: 2 });
    disk.crash(&fault);
    assert_eq!(disk.read("new").unwrap(), b"xy");
    assert!(disk.pending_dir_ops().is_empty());
}

#[test]
fn truncate_is_durable_and_remove_waits_for_sync_dir() {
    let mut disk = disk_with(b"abcdef", b"gh");
    disk.truncate("f", 4).unwrap();
    assert!(matches!(
        disk.truncate("f", 5),
        Err(DiskError::TruncateBeyondEnd { .. })
    ));
    disk.append("f", b"XY").unwrap();
    crash_with(&mut disk, TailFate::Kept);
    assert_eq!(disk.read("f").unwrap(), b"abcdXY");
    // A removal not followed by sync_dir is undone by a crash: the synced bytes are back.
    disk.remove("f").unwrap();
    assert!(disk.list().unwrap().is_empty());
    disk.crash(&CrashFault::lose_all_unsynced());
    assert_eq!(disk.read("f").unwrap(), b"abcdXY");
    // A kept removal, and a synced one, stay.
    disk.remove("f").unwrap();
    disk.crash(&keep_dir_ops(&[0]));
    assert!(disk.list().unwrap().is_empty());
    assert!(matches!(disk.remove("f"), Err(DiskError::NotFound { .. })));
    let mut disk = disk_with(b"abc", b"");
    disk.remove("f").unwrap();
    disk.sync_dir().unwrap();
    disk.crash(&CrashFault::lose_all_unsynced());
    assert!(disk.list().unwrap().is_empty());
}

/// The old file at "snap", a new file synced at "snap.tmp" and renamed over it.
fn renamed_over() -> MemDisk {
    let mut disk = MemDisk::new();
    disk.append("snap", b"old").unwrap();
    disk.sync("snap").unwrap();
    disk.sync_dir().unwrap();
    disk.append("snap.tmp", b"new").unwrap();
    disk.sync("snap.tmp").unwrap();
    disk.rename("snap.tmp", "snap").unwrap();
    assert_eq!(disk.read("snap").unwrap(), b"new");
    assert_eq!(disk.list().unwrap(), vec!["snap".to_owned()]);
    disk
}

#[test]
fn a_rename_not_followed_by_sync_dir_may_be_lost() {
    let create = DirOp::Create {
        file: "snap.tmp".to_owned(),
    };
    let rename = DirOp::Rename {
        from: "snap.tmp".to_owned(),
        to: "snap".to_owned(),
    };
    assert_eq!(renamed_over().pending_dir_ops(), vec![create, rename]);
    type Files<'a> = &'a [(&'a str, &'a [u8])];
    let cases: [(&[u64], Files); 4] = [
        // Both lost: the old file is back, the new one vanished.
        (&[], &[("snap", b"old")]),
        // Only the creation: the new file is back under its old name.
        (&[0], &[("snap", b"old"), ("snap.tmp", b"new")]),
        // Both, or only the rename (it names the file, with its synced data).
        (&[0, 1], &[("snap", b"new")]),
        (&[1], &[("snap", b"new")]),
    ];
    for (kept, expected) in cases {
        let mut disk = renamed_over();
        disk.crash(&keep_dir_ops(kept));
        let files: Vec<(String, Vec<u8>)> = disk
            .list()
            .unwrap()
            .into_iter()
            .map(|name| (name.clone(), disk.read(&name).unwrap()))
            .collect();
        let expected: Vec<(String, Vec<u8>)> = expected
            .iter()
            .map(|(n, d)| (n.to_string(), d.to_vec()))
            .collect();
        assert_eq!(files, expected, "kept {kept:?}");
    }
    // After sync_dir the rename is durable.
    let mut disk = renamed_over();
    disk.sync_dir().unwrap();
    disk.crash(&CrashFault::lose_all_unsynced());
    assert_eq!(disk.read("snap").unwrap(), b"new");
    assert_eq!(disk.list().unwrap().len(), 1);
}

#[test]
fn rename_errors_and_self_rename() {
    let mut disk = disk_with(b"abc", b"");
    assert!(matches!(
        disk.rename("missing", "x"),
        Err(DiskError::NotFound { .. })
    ));
    assert!(matches!(
        disk.rename("f", "a/b"),
        Err(DiskError::InvalidName { .. })
    ));
    disk.rename("f", "f").unwrap();
    assert!(disk.pending_dir_ops().is_empty());
    assert_eq!(disk.read("f").unwrap(), b"abc");
}

#[test]
#[should_panic(expected = "keeps 4 bytes")]
fn a_fault_keeping_more_than_the_tail_is_a_simulator_bug() {
    let mut disk = disk_with(b"abc", b"def");
    crash_with(&mut disk, TailFate::Torn { keep_bytes: 4 });
}

#[test]
#[should_panic(expected = "keeps directory operation 1")]
fn a_fault_keeping_an_operation_that_is_not_pending_is_a_simulator_bug() {
    let mut disk = disk_with(b"abc", b"");
    disk.remove("f").unwrap();
    disk.crash(&keep_dir_ops(&[1]));
}

#[test]
fn crash_fault_round_trips_through_json_and_keeps_its_old_form_when_no_dir_op_is_kept() {
    let mut fault = keep_dir_ops(&[0, 2]);
    fault.tails.insert(
        "wal".to_owned(),
        TailFate::Corrupted {
            keep_bytes: 9,
            flips: vec![ByteFlip {
                offset: 3,
                xor_mask: 1,
            }],
        },
    );
    for fault in [fault, CrashFault::lose_all_unsynced()] {
        let json = serde_json::to_string(&fault).unwrap();
        let back: CrashFault = serde_json::from_str(&json).unwrap();
        assert_eq!(back, fault);
    }
    // Exactly what traces held before directory operations were modelled.
    let json = serde_json::to_string(&CrashFault::lose_all_unsynced()).unwrap();
    assert_eq!(json, r#"{"tails":{}}"#);
}

#[test]
fn failed_sync_reports_eio_and_its_bytes_are_lost_at_the_next_crash_despite_a_later_sync() {
    let mut disk = disk_with(b"abc", b"de");
    disk.set_faults(DiskFaults {
        fail_syncs: true,
        ..DiskFaults::default()
    });
    let error = disk.sync("f").unwrap_err();
    assert!(
        matches!(&error, DiskError::Io { op: "sync", file, .. } if file == "f"),
        "{error}"
    );
    assert!(error.to_string().contains("EIO"), "{error}");
    assert!(disk.sync_dir().is_err());
    assert_eq!(disk.stats().syncs_failed, 2);
    // The page cache still shows the bytes; the disk will not have them.
    assert_eq!(disk.read("f").unwrap(), b"abcde");
    disk.set_faults(DiskFaults::default());
    disk.append("f", b"fg").unwrap();
    disk.sync("f").unwrap(); // reports success, as Linux does after the error was reported
    assert_eq!(disk.synced_len("f"), Some(7));
    crash_with(&mut disk, TailFate::Kept);
    assert_eq!(disk.read("f").unwrap(), b"abc");
    assert_eq!(disk.stats().bytes_lost, 4);
}

#[test]
fn failing_reads_report_eio_naming_the_file_and_change_nothing() {
    let mut disk = disk_with(b"abc", b"de");
    disk.set_faults(DiskFaults {
        fail_reads: true,
        ..DiskFaults::default()
    });
    let error = disk.read("f").unwrap_err();
    assert!(
        matches!(&error, DiskError::Io { op: "read", file, .. } if file == "f"),
        "{error}"
    );
    assert!(error.to_string().contains("EIO"), "{error}");
    // A missing file is still missing, not an I/O error; writes and the listing still work.
    assert!(matches!(disk.read("g"), Err(DiskError::NotFound { .. })));
    disk.append("f", b"f").unwrap();
    disk.sync("f").unwrap();
    assert_eq!(disk.list().unwrap(), vec!["f".to_string()]);
    disk.set_faults(DiskFaults::default());
    assert_eq!(disk.read("f").unwrap(), b"abcdef");
}

#[test]
fn failed_sync_with_nothing_unsynced_drops_nothing() {
    let mut disk = disk_with(b"abc", b"");
    disk.set_faults(DiskFaults {
        fail_syncs: true,
        ..DiskFaults::default()
    });
    assert!(disk.sync("f").is_err());
    disk.crash(&CrashFault::lose_all_unsynced());
    assert_eq!(disk.read("f").unwrap(), b"abc");
}

#[test]
fn full_disk_refuses_appends_and_writes_nothing() {
    let mut disk = disk_with(b"abc", b"");
    disk.set_faults(DiskFaults {
        full: true,
        ..DiskFaults::default()
    });
    let error = disk.append("f", b"xyz").unwrap_err();
    assert!(error.to_string().contains("ENOSPC"), "{error}");
    assert!(disk.append("new", b"x").is_err());
    assert_eq!(disk.read("f").unwrap(), b"abc");
    assert!(matches!(disk.read("new"), Err(DiskError::NotFound { .. })));
    assert_eq!(disk.stats().appends_refused, 2);
    // Syncs, reads and removals still work; the fault ends when switched off.
    disk.sync("f").unwrap();
    disk.set_faults(DiskFaults::default());
    disk.append("f", b"d").unwrap();
    assert_eq!(disk.read("f").unwrap(), b"abcd");
}

#[test]
fn corrupt_synced_flips_one_durable_byte_and_survives_a_crash() {
    let mut disk = disk_with(b"abc", b"de");
    disk.corrupt_synced("f", 1, 0x20);
    assert_eq!(disk.read("f").unwrap(), b"aBcde");
    disk.crash(&CrashFault::lose_all_unsynced());
    assert_eq!(disk.read("f").unwrap(), b"aBc");
    assert_eq!(disk.stats().bytes_corrupted, 1);
}

#[test]
#[should_panic(expected = "is not synced")]
fn corrupt_synced_refuses_an_unsynced_byte() {
    let mut disk = disk_with(b"abc", b"de");
    disk.corrupt_synced("f", 3, 1);
}
