//! `SnapshotFiles::save` against power loss at every step.
//!
//! For every prefix of the disk operations a save makes (the power fails after the k-th, so
//! the rest fail), and for every outcome of that power loss the disk can produce (each unsynced
//! tail lost, kept, torn at every byte or corrupted at every byte; each pending directory
//! operation kept or undone, in every combination), the snapshot loaded after a restart is the
//! new one or the previous one, byte for byte: never garbage, never nothing. A save that
//! returned `Ok` is always the one loaded.

use std::collections::BTreeSet;

use faultline_raft::{LogIndex, Term};
use faultline_storage::{
    ByteFlip, CrashFault, Disk, DiskError, MemDisk, Snapshot, SnapshotFiles, SnapshotOptions,
    TailFate,
};

/// A disk whose power fails after `ops_left` more changing operations: each one after that
/// fails. With `lies_about_sync`, `sync` returns `Ok` without syncing (a broken disk).
struct PowerCut {
    disk: MemDisk,
    ops_left: usize,
    ops_done: usize,
    lies_about_sync: bool,
}

impl PowerCut {
    fn spend(&mut self, op: &'static str, file: &str) -> Result<(), DiskError> {
        if self.ops_left == 0 {
            return Err(DiskError::Io {
                op,
                file: file.to_owned(),
                source: std::io::Error::other("power lost"),
            });
        }
        self.ops_left -= 1;
        self.ops_done += 1;
        Ok(())
    }
}

impl Disk for PowerCut {
    fn append(&mut self, file: &str, bytes: &[u8]) -> Result<(), DiskError> {
        self.spend("append", file)?;
        self.disk.append(file, bytes)
    }
    fn sync(&mut self, file: &str) -> Result<(), DiskError> {
        self.spend("sync", file)?;
        if self.lies_about_sync {
            return Ok(());
        }
        self.disk.sync(file)
    }
    fn read(&self, file: &str) -> Result<Vec<u8>, DiskError> {
        self.disk.read(file)
    }
    fn truncate(&mut self, file: &str, len_bytes: u64) -> Result<(), DiskError> {
        self.spend("truncate", file)?;
        self.disk.truncate(file, len_bytes)
    }
    fn remove(&mut self, file: &str) -> Result<(), DiskError> {
        self.spend("remove", file)?;
        self.disk.remove(file)
    }
    fn rename(&mut self, from: &str, to: &str) -> Result<(), DiskError> {
        self.spend("rename", from)?;
        self.disk.rename(from, to)
    }
    fn sync_dir(&mut self) -> Result<(), DiskError> {
        self.spend("sync_dir", ".")?;
        self.disk.sync_dir()
    }
    fn list(&self) -> Result<Vec<String>, DiskError> {
        self.disk.list()
    }
}

fn snapshot(index: u64, term: u64, payload: &str) -> Snapshot {
    Snapshot {
        index: LogIndex(index),
        term: Term(term),
        payload: payload.as_bytes().to_vec(),
    }
}

/// A disk holding durable snapshots at 10 and 20.
fn disk_with_two_snapshots(options: SnapshotOptions) -> MemDisk {
    let mut files = SnapshotFiles::open(MemDisk::new(), options).unwrap();
    for s in [snapshot(10, 1, "ten"), snapshot(20, 2, "twenty")] {
        files.save(s.index, s.term, &s.payload).unwrap();
    }
    let mut disk = files.into_disk();
    assert!(disk.unsynced_lengths().is_empty() && disk.pending_dir_ops().is_empty());
    disk.crash(&CrashFault::lose_all_unsynced());
    disk
}

/// Every fate of an unsynced tail of `len` bytes.
fn tail_fates(len: u64) -> Vec<TailFate> {
    let mut fates = vec![TailFate::Lost, TailFate::Kept];
    fates.extend((0..len).map(|keep_bytes| TailFate::Torn { keep_bytes }));
    fates.extend((0..len).map(|offset| TailFate::Corrupted {
        keep_bytes: len,
        flips: vec![ByteFlip {
            offset,
            xor_mask: 0x01,
        }],
    }));
    fates
}

/// Every power loss `disk` can suffer: each combination of one fate per unsynced tail and one
/// subset of the pending directory operations.
fn every_crash(disk: &MemDisk) -> Vec<CrashFault> {
    let mut faults = vec![CrashFault::default()];
    for (file, len) in disk.unsynced_lengths() {
        faults = faults
            .into_iter()
            .flat_map(|fault| {
                tail_fates(len).into_iter().map({
                    let file = file.clone();
                    move |fate| {
                        let mut fault = fault.clone();
                        fault.tails.insert(file.clone(), fate);
                        fault
                    }
                })
            })
            .collect();
    }
    let pending = disk.pending_dir_ops().len() as u64;
    assert!(
        pending < 8,
        "{pending} pending operations: too many subsets"
    );
    let subsets: Vec<BTreeSet<u64>> = (0..1u64 << pending)
        .map(|mask| (0..pending).filter(|i| mask & (1 << i) != 0).collect())
        .collect();
    faults
        .into_iter()
        .flat_map(|fault| {
            subsets.iter().map(move |kept| CrashFault {
                dir_ops_kept: kept.clone(),
                ..fault.clone()
            })
        })
        .collect()
}

#[derive(Debug, Default)]
struct Outcomes {
    crashes: usize,
    loaded_new: usize,
    loaded_previous: usize,
}

/// Saves snapshot 30 over snapshots 10 and 20, with the power failing after every prefix of
/// the save's operations, under every crash outcome. Returns the first violation.
fn check_every_crash(options: SnapshotOptions, lies_about_sync: bool) -> Result<Outcomes, String> {
    let (new, previous) = (snapshot(30, 3, "thirty"), snapshot(20, 2, "twenty"));
    let mut outcomes = Outcomes::default();
    for budget in 0.. {
        let cut = PowerCut {
            // The two older snapshots are saved correctly; only the new save is under test.
            disk: disk_with_two_snapshots(SnapshotOptions {
                canary: None,
                ..options
            }),
            ops_left: budget,
            ops_done: 0,
            lies_about_sync,
        };
        let mut files = SnapshotFiles::open(cut, options).unwrap();
        let saved = files.save(new.index, new.term, &new.payload).is_ok();
        let cut = files.into_disk();
        for fault in every_crash(&cut.disk) {
            let mut disk = cut.disk.clone();
            disk.crash(&fault);
            let files = SnapshotFiles::open(disk, options).unwrap();
            let loaded = files.load_newest().unwrap();
            let context = format!("power cut after {} operations, {fault:?}", cut.ops_done);
            match loaded.snapshot {
                Some(s) if s == new => outcomes.loaded_new += 1,
                Some(s) if s == previous && !saved => outcomes.loaded_previous += 1,
                other => return Err(format!("{context}: loaded {other:?}")),
            }
            outcomes.crashes += 1;
            let leftovers = files.disk().list().unwrap();
            if leftovers.iter().any(|f| f.ends_with(".tmp")) {
                return Err(format!(
                    "{context}: a .tmp file survived open: {leftovers:?}"
                ));
            }
        }
        if saved {
            break;
        }
    }
    Ok(outcomes)
}

#[test]
fn a_power_loss_anywhere_in_save_leaves_the_new_or_the_previous_snapshot() {
    for retain_count in [1, 2] {
        let options = SnapshotOptions {
            retain_count,
            ..SnapshotOptions::default()
        };
        let outcomes = check_every_crash(options, false)
            .unwrap_or_else(|violation| panic!("retain {retain_count}: {violation}"));
        println!("retain {retain_count}: {outcomes:?}");
        // Both outcomes happen: the faults really undo unsynced work.
        assert!(outcomes.loaded_new > 0 && outcomes.loaded_previous > 0);
    }
}

#[test]
fn the_check_catches_a_disk_that_lies_about_sync() {
    // With one snapshot kept, a save whose data never reached the platter loses both.
    let one = SnapshotOptions {
        retain_count: 1,
        ..SnapshotOptions::default()
    };
    let violation = check_every_crash(one, true).unwrap_err();
    assert!(violation.contains("loaded None"), "{violation}");
    // With two kept, a save that returned Ok comes back as the previous snapshot.
    let violation = check_every_crash(SnapshotOptions::default(), true).unwrap_err();
    assert!(violation.contains("index: LogIndex(20)"), "{violation}");
}

/// The planted bug of `StorageCanary::PurgeBeforeDurable` (etcd #18055's kind): a power loss
/// while a save is under way, or after it returned Ok, loads neither the new snapshot nor the
/// one before it (an older one, or none).
#[cfg(feature = "canaries")]
#[test]
fn the_purge_before_durable_canary_loses_the_snapshots_still_needed() {
    let options = SnapshotOptions {
        canary: Some(faultline_storage::StorageCanary::PurgeBeforeDurable),
        ..SnapshotOptions::default()
    };
    let violation = check_every_crash(options, false).unwrap_err();
    assert!(
        violation.contains("loaded None") || violation.contains("index: LogIndex(10)"),
        "{violation}"
    );
}
