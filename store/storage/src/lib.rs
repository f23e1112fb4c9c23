//! Durable storage for one store member: Raft's write-ahead log and snapshot files over a
//! small [`Disk`] trait.
//!
//! - [`Disk`]: a flat directory of named append-only files, with explicit durability points
//!   for a file's bytes (`sync`) and for the directory (`sync_dir`: creations, renames,
//!   removals).
//! - [`FileDisk`]: real files in a directory, for the real-tokio server.
//! - [`MemDisk`]: the simulator's disk. It outlives a node's crash and, at a simulated power
//!   loss, loses, tears or corrupts exactly the bytes that were not synced and undoes the
//!   directory operations not yet synced, as a [`CrashFault`] drawn by the simulator decides.
//! - [`Wal`]: hard states, entries and snapshot markers, checksummed, in segment files;
//!   recovery cuts a damaged unsynced tail and refuses damaged synced data; `release_to`
//!   removes the segments a snapshot covers.
//! - [`SnapshotFiles`]: snapshots written atomically (temporary file, sync, rename, directory
//!   sync); loading falls back from a damaged newest one to the one before.
//! - [`open_member_storage`]: both over one directory, combined into what a member restarts
//!   from ([`RestartState`]).
//!
//! The node's order of writes for a snapshot, local or received from the leader: the snapshot
//! file ([`SnapshotFiles::save`]), then the WAL marker ([`Wal::save_snapshot_marker`], then
//! [`Wal::sync`]), then [`Wal::release_to`]. A power loss anywhere in it restarts consistently
//! (see `restart.rs`).
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
pub use mem_disk::{ByteFlip, CrashFault, DirOp, DiskFaults, DiskStats, MemDisk, TailFate};
pub use restart::{
    combine, open_member_storage, MemberStorage, RestartError, RestartState, StorageOptions,
};
pub use snap::{
    LoadedSnapshot, RejectedSnapshot, Snapshot, SnapshotError, SnapshotFiles, SnapshotOptions,
    StorageCanary,
};
pub use wal::{Violation, Wal, WalError, WalOptions, WalState, MAX_RECORD_BYTES};
