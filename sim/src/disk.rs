//! Power loss on the simulator's disks: the nemesis decides, from its seeded stream, what
//! happens to each file's unsynced tail. Synced bytes are never touched.

use faultline_storage::{ByteFlip, CrashFault, MemDisk, TailFate};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

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
