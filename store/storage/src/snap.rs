//! Snapshot files: one file per snapshot, written atomically, checksummed, the newest few kept.
//!
//! # File format
//! `snap-<term:016x>-<index:016x>.snap`, holding
//! ```text
//! [magic "FLSNAP01"][index: u64 LE][term: u64 LE][payload length: u64 LE]
//! [crc32 of everything before it and of the payload: u32 LE][payload]
//! ```
//! The payload is opaque here: the node's bytes (Raft's snapshot metadata and the MVCC state).
//!
//! # Atomic save
//! [`SnapshotFiles::save`] writes `snap-…​.tmp`, syncs it, renames it to `snap-…​.snap`, syncs
//! the directory, and only then removes snapshots beyond the newest
//! [`SnapshotOptions::retain_count`] (and syncs the directory again). A power loss at any point
//! leaves the previous snapshots readable and the new one either whole or absent; a `.tmp`
//! left behind is removed by [`SnapshotFiles::open`].
//!
//! # Loading
//! [`SnapshotFiles::load_newest`] returns the newest snapshot that passes its checks, and
//! reports every newer one it had to skip (which file, and why): a torn or damaged newest
//! snapshot falls back to the previous one instead of failing or passing garbage on.

use crate::disk::{Disk, DiskError};
use faultline_raft::{LogIndex, Term};

const MAGIC: &[u8; 8] = b"FLSNAP01";
/// Magic, index, term, payload length, crc32.
const HEADER_BYTES: usize = 8 + 8 + 8 + 8 + 4;
const PREFIX: &str = "snap-";
const FINAL_SUFFIX: &str = ".snap";
const TEMP_SUFFIX: &str = ".tmp";

/// An error from the snapshot files.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error(transparent)]
    Disk(#[from] DiskError),
}

/// How many snapshots to keep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnapshotOptions {
    /// Snapshots kept after a save, newest first; at least 1. Keeping two lets a damaged
    /// newest snapshot fall back to the one before it.
    pub retain_count: usize,
    /// A planted bug (simulation only; `SnapshotFiles::open` refuses one unless the crate is
    /// built with `canaries`).
    pub canary: Option<StorageCanary>,
}

impl Default for SnapshotOptions {
    fn default() -> Self {
        SnapshotOptions {
            retain_count: 2,
            canary: None,
        }
    }
}

/// A re-introducible storage bug (a canary).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StorageCanary {
    /// Modelled on etcd #18055 (a snapshot file deleted by cleanup while it was still needed,
    /// found when two snapshots arrived in a short period): a save renames the new snapshot
    /// into place before its bytes are durable and purges every older one at once, so a power
    /// loss before the bytes reach the disk leaves no whole snapshot, while the WAL was
    /// already released up to the new one.
    PurgeBeforeDurable,
    /// A failed fsync of the WAL is taken as done and the member goes on (what PostgreSQL did
    /// until 2018, "fsyncgate": retrying fsync after an error, which Linux then reports as a
    /// success although the kernel dropped the dirty pages). etcd instead treats a failed WAL
    /// fsync as fatal (its raft loop calls `Fatal` when saving hard state and entries fails).
    /// The bytes unsynced at the failure are lost at the next power loss, after the member
    /// acknowledged them (etcd #14370's cousin). Only [`crate::Wal`] acts on it.
    IgnoreFsyncError,
    /// Recovery takes a damaged WAL record for a torn tail wherever it lies: it cuts the log
    /// there and drops the later segments, where a damaged record that later synced data
    /// follows is corruption (etcd's WAL repair, likewise, only ever cuts the last segment's
    /// torn tail; a damaged earlier record makes etcd refuse to start). Power loss never
    /// damages synced bytes, so only rot of synced bytes reaches it: the member restarts
    /// without entries, votes and commits it had made durable and acknowledged.
    RotTakenForTornTail,
}

/// One snapshot: the last log entry it covers, and the node's bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub index: LogIndex,
    pub term: Term,
    pub payload: Vec<u8>,
}

/// A snapshot file [`SnapshotFiles::load_newest`] skipped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RejectedSnapshot {
    pub file: String,
    pub reason: String,
}

/// What [`SnapshotFiles::load_newest`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadedSnapshot {
    /// The newest snapshot that passed its checks, if any.
    pub snapshot: Option<Snapshot>,
    /// Newer snapshot files that did not, newest first.
    pub rejected: Vec<RejectedSnapshot>,
}

/// The snapshot files in a [`Disk`] directory. Other files (the WAL's) are left alone, so the
/// WAL and the snapshots may share one directory (see the crate documentation).
pub struct SnapshotFiles<D: Disk = Box<dyn Disk + Send>> {
    disk: D,
    options: SnapshotOptions,
}

impl<D: Disk> std::fmt::Debug for SnapshotFiles<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotFiles")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// A snapshot file name, parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct SnapName {
    // Field order is the order of age: by index, then term.
    index: LogIndex,
    term: Term,
}

impl SnapName {
    fn file(self, suffix: &str) -> String {
        format!("{PREFIX}{:016x}-{:016x}{suffix}", self.term.0, self.index.0)
    }

    fn parse(file: &str, suffix: &str) -> Option<SnapName> {
        let middle = file.strip_prefix(PREFIX)?.strip_suffix(suffix)?;
        let (term, index) = middle.split_once('-')?;
        let hex = |s: &str| {
            (s.len() == 16 && s.bytes().all(|b| b.is_ascii_hexdigit()))
                .then(|| u64::from_str_radix(s, 16).ok())
                .flatten()
        };
        Some(SnapName {
            index: LogIndex(hex(index)?),
            term: Term(hex(term)?),
        })
    }
}

/// The bytes of a snapshot file.
fn encode(index: LogIndex, term: Term, payload: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(HEADER_BYTES + payload.len());
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&index.0.to_le_bytes());
    bytes.extend_from_slice(&term.0.to_le_bytes());
    bytes.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    let crc = checksum(&bytes, payload);
    bytes.extend_from_slice(&crc.to_le_bytes());
    bytes.extend_from_slice(payload);
    assert_eq!(bytes.len(), HEADER_BYTES + payload.len());
    bytes
}

fn checksum(header_fields: &[u8], payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(header_fields);
    hasher.update(payload);
    hasher.finalize()
}

fn le_u64(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}

/// Decodes a snapshot file named `name`; the error says why it is unusable.
fn decode(name: SnapName, bytes: &[u8]) -> Result<Snapshot, String> {
    if bytes.len() < HEADER_BYTES {
        return Err(format!(
            "torn header: {} of {HEADER_BYTES} bytes",
            bytes.len()
        ));
    }
    if &bytes[..8] != MAGIC {
        return Err("not a snapshot file (bad magic in bytes 0..8)".to_owned());
    }
    let (index, term) = (LogIndex(le_u64(bytes, 8)), Term(le_u64(bytes, 16)));
    let payload_len = le_u64(bytes, 24);
    let present = (bytes.len() - HEADER_BYTES) as u64;
    if payload_len != present {
        return Err(format!(
            "torn or overlong: {payload_len} payload bytes announced (bytes 24..32), {present} present"
        ));
    }
    let crc = u32::from_le_bytes(bytes[32..36].try_into().expect("4 bytes"));
    let payload = &bytes[HEADER_BYTES..];
    if checksum(&bytes[..32], payload) != crc {
        // One checksum covers the file, so the damage lies somewhere in these bytes.
        return Err(format!(
            "checksum mismatch over bytes 0..{} (header and payload)",
            bytes.len()
        ));
    }
    if (index, term) != (name.index, name.term) {
        return Err(format!(
            "header says index {} term {} (bytes 8..24), the name says index {} term {}",
            index.0, term.0, name.index.0, name.term.0
        ));
    }
    Ok(Snapshot {
        index,
        term,
        payload: payload.to_vec(),
    })
}

impl<D: Disk> SnapshotFiles<D> {
    /// Opens the snapshot files of `disk`, removing (durably) any `.tmp` file an interrupted
    /// [`save`](Self::save) left behind.
    pub fn open(mut disk: D, options: SnapshotOptions) -> Result<Self, SnapshotError> {
        assert!(options.retain_count >= 1, "retain at least one snapshot");
        assert!(
            cfg!(feature = "canaries") || options.canary.is_none(),
            "storage canary {:?} requested, but faultline-storage was built without `canaries`",
            options.canary
        );
        let leftovers: Vec<String> = disk
            .list()?
            .into_iter()
            .filter(|file| SnapName::parse(file, TEMP_SUFFIX).is_some())
            .collect();
        for file in &leftovers {
            disk.remove(file)?;
        }
        if !leftovers.is_empty() {
            disk.sync_dir()?;
        }
        Ok(SnapshotFiles { disk, options })
    }

    /// Saves the snapshot covering the log up to `index` (whose entry has `term`), atomically
    /// and durably: when this returns `Ok`, [`load_newest`](Self::load_newest) finds it after
    /// any power loss. Then removes the snapshots beyond the newest `retain_count`.
    ///
    /// Panics if a snapshot newer than (`index`, `term`) is on disk: snapshots only move
    /// forward (a bug in the caller).
    pub fn save(
        &mut self,
        index: LogIndex,
        term: Term,
        payload: &[u8],
    ) -> Result<(), SnapshotError> {
        let name = SnapName { index, term };
        if let Some(newest) = self.names()?.last() {
            assert!(
                *newest <= name,
                "snapshot at index {} term {} is older than the newest on disk ({newest:?})",
                index.0,
                term.0
            );
        }
        let temp = name.file(TEMP_SUFFIX);
        // A failed save earlier in this process may have left it; appending would extend it.
        if self.disk.list()?.contains(&temp) {
            self.disk.remove(&temp)?;
        }
        self.disk.append(&temp, &encode(index, term, payload))?;
        let purge_before_durable = cfg!(feature = "canaries")
            && self.options.canary == Some(StorageCanary::PurgeBeforeDurable);
        // The content must be durable before the name points at it, or a power loss could
        // leave a complete name over an incomplete file.
        if !purge_before_durable {
            self.disk.sync(&temp)?;
        }
        self.disk.rename(&temp, &name.file(FINAL_SUFFIX))?;
        self.disk.sync_dir()?;
        if purge_before_durable {
            // Planted bug: only the newest (not yet durable) snapshot is kept.
            self.options.retain_count = 1;
        }
        self.prune()
    }

    /// Removes the snapshot files beyond the newest `retain_count`, durably.
    fn prune(&mut self) -> Result<(), SnapshotError> {
        let names = self.names()?;
        let excess = names.len().saturating_sub(self.options.retain_count);
        for name in &names[..excess] {
            self.disk.remove(&name.file(FINAL_SUFFIX))?;
        }
        if excess > 0 {
            self.disk.sync_dir()?;
        }
        Ok(())
    }

    /// The snapshot files on disk, oldest first.
    fn names(&self) -> Result<Vec<SnapName>, SnapshotError> {
        let mut names: Vec<SnapName> = self
            .disk
            .list()?
            .iter()
            .filter_map(|file| SnapName::parse(file, FINAL_SUFFIX))
            .collect();
        names.sort();
        Ok(names)
    }

    /// The newest snapshot that is whole and passes its checksum, and the newer files that
    /// are not (torn, damaged, or not matching their name), newest first.
    pub fn load_newest(&self) -> Result<LoadedSnapshot, SnapshotError> {
        let mut loaded = LoadedSnapshot::default();
        for name in self.names()?.into_iter().rev() {
            let file = name.file(FINAL_SUFFIX);
            match decode(name, &self.disk.read(&file)?) {
                Ok(snapshot) => {
                    loaded.snapshot = Some(snapshot);
                    break;
                }
                Err(reason) => loaded.rejected.push(RejectedSnapshot { file, reason }),
            }
        }
        Ok(loaded)
    }

    /// The (index, term) of every snapshot file on disk, oldest first, whether or not it
    /// would pass its checks.
    pub fn list(&self) -> Result<Vec<(LogIndex, Term)>, SnapshotError> {
        Ok(self.names()?.iter().map(|n| (n.index, n.term)).collect())
    }

    pub fn disk(&self) -> &D {
        &self.disk
    }

    /// Gives the disk back, e.g. to the simulator after the node stops.
    pub fn into_disk(self) -> D {
        self.disk
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mem_disk::{ByteFlip, CrashFault, MemDisk, TailFate};

    fn snap(index: u64, term: u64) -> Snapshot {
        Snapshot {
            index: LogIndex(index),
            term: Term(term),
            payload: format!("state at {index}").into_bytes(),
        }
    }

    fn save(files: &mut SnapshotFiles<MemDisk>, s: &Snapshot) {
        files.save(s.index, s.term, &s.payload).unwrap();
    }

    fn open(disk: MemDisk) -> SnapshotFiles<MemDisk> {
        SnapshotFiles::open(disk, SnapshotOptions::default()).unwrap()
    }

    fn newest(files: &SnapshotFiles<MemDisk>) -> Option<Snapshot> {
        files.load_newest().unwrap().snapshot
    }

    /// Snapshots at 10 and 20 saved, everything durable.
    fn two_saved() -> SnapshotFiles<MemDisk> {
        let mut files = open(MemDisk::new());
        save(&mut files, &snap(10, 1));
        save(&mut files, &snap(20, 2));
        files
    }

    #[test]
    fn names_round_trip_and_order_by_index() {
        let name = SnapName {
            index: LogIndex(0x1234),
            term: Term(7),
        };
        let file = name.file(FINAL_SUFFIX);
        assert_eq!(file, "snap-0000000000000007-0000000000001234.snap");
        assert_eq!(SnapName::parse(&file, FINAL_SUFFIX), Some(name));
        assert_eq!(SnapName::parse(&file, TEMP_SUFFIX), None);
        for bad in [
            "snap-7-1234.snap",
            "wal-0-0.log",
            "snap-000000000000000g-0000000000000001.snap",
        ] {
            assert_eq!(SnapName::parse(bad, FINAL_SUFFIX), None, "{bad}");
        }
        let older = SnapName {
            index: LogIndex(9),
            term: Term(8),
        };
        assert!(older < name);
    }

    #[test]
    fn empty_directory_has_no_snapshot() {
        let files = open(MemDisk::new());
        assert_eq!(files.load_newest().unwrap(), LoadedSnapshot::default());
    }

    #[test]
    fn save_then_crash_loads_it_and_keeps_the_newest_two() {
        let mut files = two_saved();
        save(&mut files, &snap(30, 2));
        let mut disk = files.into_disk();
        disk.crash(&CrashFault::lose_all_unsynced());
        let files = open(disk);
        assert_eq!(newest(&files), Some(snap(30, 2)));
        assert_eq!(
            files.list().unwrap(),
            vec![(LogIndex(20), Term(2)), (LogIndex(30), Term(2))]
        );
    }

    #[test]
    #[should_panic(expected = "older than the newest")]
    fn saving_an_older_snapshot_is_a_caller_bug() {
        let mut files = two_saved();
        save(&mut files, &snap(15, 1));
    }

    /// The newest snapshot file's bytes replaced by `damage(bytes)`.
    fn with_damaged_newest(damage: impl Fn(&mut Vec<u8>)) -> LoadedSnapshot {
        let mut disk = two_saved().into_disk();
        let file = SnapName {
            index: LogIndex(20),
            term: Term(2),
        }
        .file(FINAL_SUFFIX);
        let mut bytes = disk.read(&file).unwrap();
        damage(&mut bytes);
        disk.remove(&file).unwrap();
        disk.append(&file, &bytes).unwrap();
        open(disk).load_newest().unwrap()
    }

    #[test]
    fn a_torn_or_damaged_newest_snapshot_is_reported_and_the_previous_one_used() {
        type Damage = Box<dyn Fn(&mut Vec<u8>)>;
        let cases: [(&str, Damage); 5] = [
            ("torn header", Box::new(|b| b.truncate(HEADER_BYTES - 1))),
            ("torn or overlong", Box::new(|b| b.truncate(b.len() - 1))),
            ("torn or overlong", Box::new(|b| b.push(0))),
            (
                "checksum mismatch",
                Box::new(|b| *b.last_mut().unwrap() ^= 1),
            ),
            ("bad magic", Box::new(|b| b[0] ^= 1)),
        ];
        for (reason, damage) in cases {
            let loaded = with_damaged_newest(damage);
            assert_eq!(loaded.snapshot, Some(snap(10, 1)), "{reason}");
            assert_eq!(loaded.rejected.len(), 1, "{reason}");
            let rejected = &loaded.rejected[0];
            assert_eq!(rejected.file, "snap-0000000000000002-0000000000000014.snap");
            assert!(rejected.reason.contains(reason), "{rejected:?}");
        }
    }

    #[test]
    fn a_file_whose_header_disagrees_with_its_name_is_rejected() {
        let mut disk = two_saved().into_disk();
        // A whole, checksummed snapshot at 10, under the name of one at 30.
        let bytes = encode(LogIndex(10), Term(1), b"x");
        disk.append("snap-0000000000000002-000000000000001e.snap", &bytes)
            .unwrap();
        let loaded = open(disk).load_newest().unwrap();
        assert_eq!(loaded.snapshot, Some(snap(20, 2)));
        assert!(loaded.rejected[0].reason.contains("the name says index 30"));
    }

    #[test]
    fn a_lost_rename_brings_back_the_previous_snapshot_and_open_removes_the_tmp() {
        let mut disk = two_saved().into_disk();
        // What `save` does up to the rename, then a power loss before sync_dir that keeps the
        // temporary file's creation but loses the rename.
        let name = SnapName {
            index: LogIndex(30),
            term: Term(3),
        };
        disk.append(
            &name.file(TEMP_SUFFIX),
            &encode(name.index, name.term, b"new"),
        )
        .unwrap();
        disk.sync(&name.file(TEMP_SUFFIX)).unwrap();
        disk.rename(&name.file(TEMP_SUFFIX), &name.file(FINAL_SUFFIX))
            .unwrap();
        assert_eq!(disk.pending_dir_ops().len(), 2);
        disk.crash(&CrashFault {
            dir_ops_kept: [0].into(),
            ..CrashFault::default()
        });
        assert!(disk.list().unwrap().contains(&name.file(TEMP_SUFFIX)));
        let files = open(disk);
        assert_eq!(newest(&files), Some(snap(20, 2)));
        assert!(!files
            .disk()
            .list()
            .unwrap()
            .contains(&name.file(TEMP_SUFFIX)));
        // The removal of the leftover is durable.
        let mut disk = files.into_disk();
        disk.crash(&CrashFault::lose_all_unsynced());
        assert_eq!(disk.list().unwrap().len(), 2);
    }

    #[test]
    fn a_torn_tmp_file_never_shadows_a_snapshot() {
        let mut files = two_saved();
        let name = SnapName {
            index: LogIndex(30),
            term: Term(3),
        };
        files
            .disk
            .append(
                &name.file(TEMP_SUFFIX),
                &encode(name.index, name.term, b"new"),
            )
            .unwrap();
        let mut disk = files.into_disk();
        let mut fault = CrashFault {
            dir_ops_kept: [0].into(),
            ..CrashFault::default()
        };
        fault.tails.insert(
            name.file(TEMP_SUFFIX),
            TailFate::Corrupted {
                keep_bytes: 10,
                flips: vec![ByteFlip {
                    offset: 9,
                    xor_mask: 4,
                }],
            },
        );
        disk.crash(&fault);
        let mut files = open(disk);
        assert_eq!(newest(&files), Some(snap(20, 2)));
        // A save over a leftover of this process starts from a fresh file.
        files
            .disk
            .append(&name.file(TEMP_SUFFIX), b"garbage")
            .unwrap();
        save(&mut files, &snap(30, 3));
        assert_eq!(newest(&files), Some(snap(30, 3)));
        assert!(files.load_newest().unwrap().rejected.is_empty());
    }
}
