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
            _ => {
                // Garbage at the end of the tail (a damaged last sector): the WAL must detect
                // it by checksum and cut it off. Corruption followed by intact records is not
                // drawn: recovery cannot tell it from rot in synced data, and refuses to start.
                let offset = rng.random_range(0..unsynced_bytes);
                TailFate::Corrupted {
                    keep_bytes: rng.random_range(offset + 1..=unsynced_bytes.min(offset + 16)),
                    flips: vec![ByteFlip {
                        offset,
                        xor_mask: rng.random_range(1..=255),
                    }],
                }
            }
        };
        fault.tails.insert(file, fate);
    }
    disk.crash(&fault);
    fault
}
