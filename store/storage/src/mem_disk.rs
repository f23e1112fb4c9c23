//! The simulator's disk: in memory, owned by the simulator so it outlives a node's crash, and
//! able to lose, tear or corrupt exactly the bytes a real disk may lose at power loss.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::disk::{check_name, Disk, DiskError};

/// What happens at power loss to the unsynced tail of one file (the bytes appended since the
/// file's last sync). Offsets and lengths are relative to the start of that tail.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TailFate {
    /// Nothing of the tail reached the platter.
    Lost,
    /// All of the tail reached the platter intact.
    Kept,
    /// A torn write: the first `keep_bytes` bytes of the tail survive, the rest is lost.
    Torn { keep_bytes: u64 },
    /// The first `keep_bytes` bytes survive, but the bytes named in `flips` are damaged.
    /// Every flip must lie inside the kept bytes.
    Corrupted {
        keep_bytes: u64,
        flips: Vec<ByteFlip>,
    },
}

/// One damaged byte: `byte ^= xor_mask` at `offset` from the start of the unsynced tail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ByteFlip {
    pub offset: u64,
    /// Non-zero, so the byte really changes.
    pub xor_mask: u8,
}

/// The simulator's decision for one power loss: the fate of each file's unsynced tail.
/// Files with an unsynced tail that are not named here lose it ([`TailFate::Lost`]).
///
/// Draw it from [`MemDisk::unsynced_lengths`] with the seeded RNG, record it in the trace, then
/// pass it to [`MemDisk::crash`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrashFault {
    pub tails: BTreeMap<String, TailFate>,
}

impl CrashFault {
    /// Every unsynced byte of every file is lost: the plainest power loss.
    pub fn lose_all_unsynced() -> Self {
        CrashFault::default()
    }
}

/// Counters for traces and benchmarks. They survive crashes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskStats {
    /// Bytes passed to `append`, whether or not they survived.
    pub bytes_written: u64,
    /// Calls to `sync` that returned `Ok`.
    pub syncs: u64,
    /// Calls to [`MemDisk::crash`].
    pub crashes: u64,
    /// Unsynced bytes that did not survive a crash (lost or torn off).
    pub bytes_lost: u64,
    /// Bytes damaged by [`TailFate::Corrupted`].
    pub bytes_corrupted: u64,
}

#[derive(Clone, Debug, Default)]
struct MemFile {
    data: Vec<u8>,
    /// Invariant: `synced_len <= data.len()`. Bytes below it never change.
    synced_len: usize,
    /// Whether the file's existence is durable (it has been synced at least once).
    created_durably: bool,
}

/// An in-memory [`Disk`] with power-loss faults. Deterministic: no clock, no randomness of its
/// own; every fault is decided by the caller.
#[derive(Clone, Debug, Default)]
pub struct MemDisk {
    files: BTreeMap<String, MemFile>,
    stats: DiskStats,
}

impl MemDisk {
    pub fn new() -> Self {
        MemDisk::default()
    }

    /// For each file with unsynced bytes, how many: what a [`CrashFault`] may decide about.
    /// Files whose content is fully synced are not listed.
    pub fn unsynced_lengths(&self) -> BTreeMap<String, u64> {
        self.files
            .iter()
            .filter(|(_, f)| f.data.len() > f.synced_len)
            .map(|(name, f)| (name.clone(), to_u64(f.data.len() - f.synced_len)))
            .collect()
    }

    /// Bytes of `file` that are durable, or `None` if it does not exist.
    pub fn synced_len(&self, file: &str) -> Option<u64> {
        self.files.get(file).map(|f| to_u64(f.synced_len))
    }

    pub fn stats(&self) -> DiskStats {
        self.stats
    }

    /// Power loss. Each file's unsynced tail meets the fate `fault` gives it (lost if not
    /// named); whatever survives is then on the platter, hence durable. A file that was never
    /// synced and keeps no byte disappears. Synced bytes are never touched.
    ///
    /// Panics if `fault` is inconsistent with the disk (names a missing file, keeps more bytes
    /// than the tail has, flips outside the kept bytes or with a zero mask): that is a bug in
    /// the simulator, which must draw faults from [`MemDisk::unsynced_lengths`].
    pub fn crash(&mut self, fault: &CrashFault) {
        for name in fault.tails.keys() {
            assert!(
                self.files.contains_key(name),
                "crash fault names file {name:?}, which does not exist"
            );
        }
        let lost = TailFate::Lost;
        for (name, file) in &mut self.files {
            let fate = fault.tails.get(name).unwrap_or(&lost);
            let tail_len = file.data.len() - file.synced_len;
            let keep_len = match fate {
                TailFate::Lost => 0,
                TailFate::Kept => tail_len,
                TailFate::Torn { keep_bytes } | TailFate::Corrupted { keep_bytes, .. } => {
                    to_usize(*keep_bytes)
                }
            };
            assert!(
                keep_len <= tail_len,
                "crash fault keeps {keep_len} bytes of {name:?}, whose unsynced tail has {tail_len}"
            );
            if let TailFate::Corrupted { flips, .. } = fate {
                for flip in flips {
                    let offset = to_usize(flip.offset);
                    assert!(
                        offset < keep_len,
                        "flip {flip:?} outside the kept tail of {name:?}"
                    );
                    assert_ne!(
                        flip.xor_mask, 0,
                        "flip {flip:?} of {name:?} changes nothing"
                    );
                    file.data[file.synced_len + offset] ^= flip.xor_mask;
                }
                self.stats.bytes_corrupted += to_u64(flips.len());
            }
            file.data.truncate(file.synced_len + keep_len);
            self.stats.bytes_lost += to_u64(tail_len - keep_len);
            file.synced_len = file.data.len();
            if !file.data.is_empty() {
                file.created_durably = true;
            }
        }
        self.files.retain(|_, f| f.created_durably);
        self.stats.crashes += 1;
    }

    fn file_mut(&mut self, file: &str) -> Result<&mut MemFile, DiskError> {
        check_name(file)?;
        self.files.get_mut(file).ok_or_else(|| DiskError::NotFound {
            file: file.to_owned(),
        })
    }
}

impl Disk for MemDisk {
    fn append(&mut self, file: &str, bytes: &[u8]) -> Result<(), DiskError> {
        check_name(file)?;
        let entry = self.files.entry(file.to_owned()).or_default();
        entry.data.extend_from_slice(bytes);
        self.stats.bytes_written += to_u64(bytes.len());
        Ok(())
    }

    fn sync(&mut self, file: &str) -> Result<(), DiskError> {
        let entry = self.file_mut(file)?;
        entry.synced_len = entry.data.len();
        entry.created_durably = true;
        self.stats.syncs += 1;
        Ok(())
    }

    fn read(&self, file: &str) -> Result<Vec<u8>, DiskError> {
        check_name(file)?;
        match self.files.get(file) {
            Some(f) => Ok(f.data.clone()),
            None => Err(DiskError::NotFound {
                file: file.to_owned(),
            }),
        }
    }

    fn truncate(&mut self, file: &str, len_bytes: u64) -> Result<(), DiskError> {
        let entry = self.file_mut(file)?;
        let actual_bytes = to_u64(entry.data.len());
        if len_bytes > actual_bytes {
            return Err(DiskError::TruncateBeyondEnd {
                file: file.to_owned(),
                len_bytes,
                actual_bytes,
            });
        }
        let len = to_usize(len_bytes);
        entry.data.truncate(len);
        // Durable on return: the cut is synced, and so is the file's existence.
        entry.synced_len = entry.synced_len.min(len);
        entry.created_durably = true;
        Ok(())
    }

    fn remove(&mut self, file: &str) -> Result<(), DiskError> {
        self.file_mut(file)?;
        self.files.remove(file);
        Ok(())
    }

    fn list(&self) -> Result<Vec<String>, DiskError> {
        Ok(self.files.keys().cloned().collect())
    }
}

fn to_u64(n: usize) -> u64 {
    u64::try_from(n).expect("length fits in u64")
}

fn to_usize(n: u64) -> usize {
    usize::try_from(n).expect("length fits in usize")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn disk_with(synced: &[u8], unsynced: &[u8]) -> MemDisk {
        let mut disk = MemDisk::new();
        disk.append("f", synced).unwrap();
        disk.sync("f").unwrap();
        disk.append("f", unsynced).unwrap();
        disk
    }

    fn crash_with(disk: &mut MemDisk, fate: TailFate) {
        let mut fault = CrashFault::default();
        fault.tails.insert("f".to_owned(), fate);
        disk.crash(&fault);
    }

    #[test]
    fn unsynced_lengths_lists_only_files_at_risk() {
        let mut disk = disk_with(b"abc", b"de");
        disk.append("g", b"x").unwrap();
        disk.sync("g").unwrap();
        let expected = BTreeMap::from([("f".to_owned(), 2)]);
        assert_eq!(disk.unsynced_lengths(), expected);
        assert_eq!(disk.synced_len("f"), Some(3));
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
    fn unnamed_files_lose_their_tail_and_never_synced_empty_files_vanish() {
        let mut disk = disk_with(b"abc", b"def");
        disk.append("new", b"xyz").unwrap();
        disk.crash(&CrashFault::lose_all_unsynced());
        assert_eq!(disk.read("f").unwrap(), b"abc");
        assert!(matches!(disk.read("new"), Err(DiskError::NotFound { .. })));
        assert_eq!(disk.list().unwrap(), vec!["f".to_owned()]);
        let stats = disk.stats();
        assert_eq!(stats.bytes_written, 9);
        assert_eq!(stats.bytes_lost, 6);
        assert_eq!(stats.syncs, 1);
        assert_eq!(stats.crashes, 1);
    }

    #[test]
    fn truncate_and_remove_are_durable() {
        let mut disk = disk_with(b"abcdef", b"gh");
        disk.truncate("f", 4).unwrap();
        assert!(matches!(
            disk.truncate("f", 5),
            Err(DiskError::TruncateBeyondEnd { .. })
        ));
        disk.append("f", b"XY").unwrap();
        crash_with(&mut disk, TailFate::Kept);
        assert_eq!(disk.read("f").unwrap(), b"abcdXY");
        disk.remove("f").unwrap();
        disk.crash(&CrashFault::lose_all_unsynced());
        assert!(disk.list().unwrap().is_empty());
        assert!(matches!(disk.remove("f"), Err(DiskError::NotFound { .. })));
    }

    #[test]
    #[should_panic(expected = "keeps 4 bytes")]
    fn a_fault_keeping_more_than_the_tail_is_a_simulator_bug() {
        let mut disk = disk_with(b"abc", b"def");
        crash_with(&mut disk, TailFate::Torn { keep_bytes: 4 });
    }

    #[test]
    fn crash_fault_round_trips_through_serde() {
        let mut fault = CrashFault::default();
        fault.tails.insert(
            "raft.wal".to_owned(),
            TailFate::Corrupted {
                keep_bytes: 9,
                flips: vec![ByteFlip {
                    offset: 3,
                    xor_mask: 1,
                }],
            },
        );
        let bytes = bincode::serialize(&fault).unwrap();
        let back: CrashFault = bincode::deserialize(&bytes).unwrap();
        assert_eq!(back, fault);
    }
}
