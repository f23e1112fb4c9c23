//! Durable storage for one store member: Raft's write-ahead log over a small [`Disk`] trait.
//!
//! - [`Disk`]: named append-only files with an explicit durability point (`sync`).
//! - [`FileDisk`]: real files in a directory, for the real-tokio server.
//! - [`MemDisk`]: the simulator's disk. It outlives a node's crash and, at a simulated power
//!   loss, loses, tears or corrupts exactly the bytes that were not synced, as a
//!   [`CrashFault`] drawn by the simulator decides.
//! - [`Wal`]: hard states and entries, checksummed; recovery cuts a damaged unsynced tail and
//!   refuses damaged synced data.
//!
//! Synchronous, no clock, no threads, no randomness: deterministic under simulation.

mod disk;
mod file_disk;
mod mem_disk;
mod restart;
mod snap;
mod wal;

pub use disk::{Disk, DiskError};
pub use file_disk::FileDisk;
pub use mem_disk::{ByteFlip, CrashFault, DirOp, DiskStats, MemDisk, TailFate};
pub use restart::{
    combine, open_member_storage, MemberStorage, RestartError, RestartState, StorageOptions,
};
pub use snap::{
    LoadedSnapshot, RejectedSnapshot, Snapshot, SnapshotError, SnapshotFiles, SnapshotOptions,
};
pub use wal::{Violation, Wal, WalError, WalOptions, WalState, MAX_RECORD_BYTES};
