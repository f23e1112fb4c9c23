//! Power loss on the simulator's disks: the nemesis decides, from its seeded stream, what
//! happens to each file's unsynced tail. Synced bytes are never touched, except by
//! [`rot_synced_byte`] (the `CorruptSynced` fault). The faults a disk shows while it runs
//! (failing fsyncs, a full disk) are `faultline_storage::DiskFaults`, switched by the cluster.

use faultline_storage::{ByteFlip, CrashFault, Disk, MemDisk, TailFate};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Draw the fate of every unsynced tail, apply it, and return the decision for the trace.
pub fn crash_disk(disk: &mut MemDisk, rng: &mut ChaCha8Rng) -> CrashFault {
    let mut fault = CrashFault::default();
    for (file, unsynced_bytes) in disk.unsynced_lengths() {
        if unsynced_bytes == 0 {
            continue;
        }
        let fate = match rng.random_range(0..100) {
            0..50 => TailFate::Lost,
            50..70 => TailFate::Kept,
            70..90 => TailFate::Torn {
                keep_bytes: rng.random_range(0..unsynced_bytes),
            },
            // Damaged bytes anywhere in the tail; the WAL's checksums must cut it there.
            _ => TailFate::Corrupted {
                keep_bytes: unsynced_bytes,
                flips: vec![ByteFlip {
                    offset: rng.random_range(0..unsynced_bytes),
                    xor_mask: rng.random_range(1..=255),
                }],
            },
        };
        fault.tails.insert(file, fate);
    }
    disk.crash(&fault);
    fault
}

/// One synced byte that rotted: `byte ^= xor_mask` at `offset` of `file`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncedRot {
    pub file: String,
    pub offset: u64,
    pub xor_mask: u8,
}

/// Rot one synced byte of a stopped member's disk, chosen by `pick`: in a WAL segment that a
/// later segment follows (synced whole, so the WAL's checksums can tell rot from a torn
/// write), or in the newest snapshot file (which a restart must load). `None` when the disk
/// holds neither (early in a run): there is nothing a checksum could be asked to find.
pub fn rot_synced_byte(disk: &mut MemDisk, pick: u64) -> Option<SyncedRot> {
    let files = disk.list().expect("a simulated disk lists its files");
    // Segment names sort by sequence number, snapshot names by term and index.
    let segments: Vec<&String> = files
        .iter()
        .filter(|f| f.starts_with("wal-") && f.ends_with(".log"))
        .collect();
    let newest_snapshot = files.iter().rfind(|f| f.ends_with(".snap"));
    let sealed = &segments[..segments.len().saturating_sub(1)];
    let candidates: Vec<(&String, u64)> = sealed
        .iter()
        .copied()
        .chain(newest_snapshot)
        .filter_map(|file| Some((file, disk.synced_len(file)?)))
        .filter(|&(_, synced_bytes)| synced_bytes > 0)
        .collect();
    if candidates.is_empty() {
        return None;
    }
    let count = candidates.len() as u64;
    let (file, synced_bytes) = candidates[(pick % count) as usize];
    let rest = pick / count;
    let rot = SyncedRot {
        file: file.clone(),
        offset: rest % synced_bytes,
        xor_mask: 1 << ((rest / synced_bytes) % 8),
    };
    disk.corrupt_synced(&rot.file, rot.offset, rot.xor_mask);
    Some(rot)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rot_hits_a_sealed_segment_or_the_newest_snapshot_never_the_open_segment() {
        let mut disk = MemDisk::new();
        for file in [
            "wal-0000000000000001-0000000000000001.log",
            "wal-0000000000000002-0000000000000009.log",
            "snap-0000000000000001-0000000000000004.snap",
            "snap-0000000000000001-0000000000000008.snap",
        ] {
            disk.append(file, &[0u8; 64]).unwrap();
            disk.sync(file).unwrap();
        }
        let mut hit = std::collections::BTreeSet::new();
        for pick in 0..64 {
            let mut disk = disk.clone();
            let rot = rot_synced_byte(&mut disk, pick).expect("candidates exist");
            assert!(rot.offset < 64 && rot.xor_mask.count_ones() == 1, "{rot:?}");
            assert_eq!(
                disk.read(&rot.file).unwrap()[rot.offset as usize],
                rot.xor_mask
            );
            hit.insert(rot.file);
        }
        let expected = [
            "snap-0000000000000001-0000000000000008.snap",
            "wal-0000000000000001-0000000000000001.log",
        ];
        assert_eq!(hit.into_iter().collect::<Vec<_>>(), expected);
    }

    #[test]
    fn rot_finds_nothing_on_a_disk_with_only_the_open_segment() {
        let mut disk = MemDisk::new();
        disk.append("wal-0000000000000001-0000000000000001.log", b"abc")
            .unwrap();
        disk.sync("wal-0000000000000001-0000000000000001.log")
            .unwrap();
        assert_eq!(rot_synced_byte(&mut disk, 7), None);
    }
}
