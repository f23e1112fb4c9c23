//! The simulator's disk: in memory, owned by the simulator so it outlives a node's crash, and
//! able to lose, tear or corrupt exactly the bytes a real disk may lose at power loss, and to
//! undo the directory operations (creations, renames, removals) not yet made durable.

use std::collections::{BTreeMap, BTreeSet};

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

/// A directory operation that is not yet durable (no [`Disk::sync_dir`] since it was made).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DirOp {
    /// The file was created (by its first append).
    Create { file: String },
    /// `from` was renamed to `to`, replacing what `to` named.
    Rename { from: String, to: String },
    /// The file was removed.
    Remove { file: String },
}

/// The simulator's decision for one power loss: the fate of each file's unsynced tail, and
/// which pending directory operations reach the platter.
///
/// Files with an unsynced tail that are not named in `tails` lose it ([`TailFate::Lost`]).
/// Pending directory operations whose position in [`MemDisk::pending_dir_ops`] is not in
/// `dir_ops_kept` are undone. So the default (empty) fault loses everything not synced.
///
/// Draw it from [`MemDisk::unsynced_lengths`] and [`MemDisk::pending_dir_ops`] with the
/// seeded RNG, record it in the trace, then pass it to [`MemDisk::crash`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrashFault {
    pub tails: BTreeMap<String, TailFate>,
    /// Positions in [`MemDisk::pending_dir_ops`] of the operations that survive.
    ///
    /// Left out when empty, so a fault that keeps none serializes exactly as before this
    /// field existed (traces are hashed over their JSON). Use a self-describing format
    /// (JSON, TOML): bincode cannot read a left-out field.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub dir_ops_kept: BTreeSet<u64>,
}

impl CrashFault {
    /// Every unsynced byte of every file and every unsynced directory operation is lost: the
    /// plainest power loss.
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
    /// Calls to `sync_dir` that returned `Ok`.
    pub dir_syncs: u64,
    /// Calls to [`MemDisk::crash`].
    pub crashes: u64,
    /// Unsynced bytes that did not survive a crash (lost or torn off).
    pub bytes_lost: u64,
    /// Bytes damaged by [`TailFate::Corrupted`].
    pub bytes_corrupted: u64,
    /// Directory operations undone by a crash.
    pub dir_ops_lost: u64,
    /// Calls to `sync` or `sync_dir` refused by [`DiskFaults::fail_syncs`].
    pub syncs_failed: u64,
    /// Calls to `append` refused by [`DiskFaults::full`].
    pub appends_refused: u64,
    /// Simulated milliseconds the operations took under [`DiskFaults::sync_delay_ms`].
    #[serde(default)]
    pub delayed_ms: u64,
}

/// Faults the simulator switches on for a while, besides power loss ([`MemDisk::crash`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskFaults {
    /// `sync` and `sync_dir` fail with EIO. As on Linux after a failed fsync (the "fsyncgate"
    /// behaviour of ext4 and XFS: the kernel marks the dirty pages clean and reports the error
    /// once), the bytes that were unsynced when a sync failed are lost at the next crash even
    /// if a later sync of the file returns `Ok`.
    pub fail_syncs: bool,
    /// The disk is full: `append` fails with ENOSPC and writes nothing.
    pub full: bool,
    /// Reads fail with EIO (a failing sector, a controller error): `read` returns an error
    /// naming the file, never partial or empty content. Nothing is changed on the disk.
    #[serde(default)]
    pub fail_reads: bool,
    /// A slow disk: each `sync` and `sync_dir` takes this many simulated milliseconds, each
    /// `append` a tenth of it (0: none). The disk is synchronous, so it only counts the time
    /// ([`Disk::take_latency_ms`]); the member's loop waits it out on the simulator's clock.
    #[serde(default)]
    pub sync_delay_ms: u64,
}

impl DiskFaults {
    /// Some operation fails (a sync, a write, a read), where a member must stop; a slow disk
    /// alone fails nothing.
    pub fn fails_operations(&self) -> bool {
        self.fail_syncs || self.full || self.fail_reads
    }
}

/// The content of one file, whatever names it has had.
#[derive(Clone, Debug, Default)]
struct Inode {
    data: Vec<u8>,
    /// Invariant: `synced_len <= data.len()`. Bytes below it never change, except below
    /// `dropped_from` and by [`MemDisk::corrupt_synced`].
    synced_len: usize,
    /// Where the bytes a failed sync dropped begin (see [`DiskFaults::fail_syncs`]): everything
    /// from here is lost at the next crash, whatever a later sync said.
    dropped_from: Option<usize>,
}

type InodeId = u64;

/// An in-memory [`Disk`] with power-loss faults. Deterministic: no clock, no randomness of its
/// own; every fault is decided by the caller.
///
/// Like a real file system it separates a file's content (an inode, synced by `sync`) from the
/// directory that names it (synced by `sync_dir`): it keeps the directory as it is now, the
/// directory as it is on the platter, and the operations between the two.
#[derive(Clone, Debug, Default)]
pub struct MemDisk {
    inodes: BTreeMap<InodeId, Inode>,
    /// The directory as the running process sees it.
    names: BTreeMap<String, InodeId>,
    /// The directory as of the last `sync_dir` (or crash).
    durable_names: BTreeMap<String, InodeId>,
    /// Directory operations since then, in order. Replaying them all on `durable_names`
    /// gives `names`.
    pending: Vec<(DirOp, InodeId)>,
    next_inode: InodeId,
    stats: DiskStats,
    faults: DiskFaults,
    /// Simulated time the operations since the last [`Disk::take_latency_ms`] took.
    latency_ms: u64,
}

impl MemDisk {
    pub fn new() -> Self {
        MemDisk::default()
    }

    /// For each file with unsynced bytes, how many: what a [`CrashFault`] may decide about.
    /// Files whose content is fully synced are not listed.
    pub fn unsynced_lengths(&self) -> BTreeMap<String, u64> {
        self.names
            .iter()
            .map(|(name, id)| (name, &self.inodes[id]))
            .filter(|(_, f)| f.data.len() > f.synced_len)
            .map(|(name, f)| (name.clone(), to_u64(f.data.len() - f.synced_len)))
            .collect()
    }

    /// The directory operations a crash may undo, oldest first: what
    /// [`CrashFault::dir_ops_kept`] refers to by position.
    pub fn pending_dir_ops(&self) -> Vec<DirOp> {
        self.pending.iter().map(|(op, _)| op.clone()).collect()
    }

    /// Bytes of `file` that are durable, or `None` if it does not exist.
    pub fn synced_len(&self, file: &str) -> Option<u64> {
        self.names
            .get(file)
            .map(|id| to_u64(self.inodes[id].synced_len))
    }

    pub fn stats(&self) -> DiskStats {
        self.stats
    }

    /// The faults switched on now.
    pub fn faults(&self) -> DiskFaults {
        self.faults
    }

    /// Switches faults on or off; they last until the next call (a crash keeps them).
    pub fn set_faults(&mut self, faults: DiskFaults) {
        self.faults = faults;
    }

    /// Silent corruption of durable bytes (bit rot, a misdirected write): `byte ^= xor_mask` at
    /// `offset` of `file`, which must lie in its synced bytes. Only checksums can find it.
    ///
    /// Panics if the file does not exist, the offset is not synced or the mask is zero: the
    /// simulator draws them from [`MemDisk::synced_len`].
    pub fn corrupt_synced(&mut self, file: &str, offset: u64, xor_mask: u8) {
        assert_ne!(xor_mask, 0, "a flip of {file:?} that changes nothing");
        let inode = self
            .inode_mut(file)
            .unwrap_or_else(|e| panic!("corrupting {file:?}: {e}"));
        let offset = to_usize(offset);
        assert!(
            offset < inode.synced_len,
            "byte {offset} of {file:?} is not synced (synced: {})",
            inode.synced_len
        );
        inode.data[offset] ^= xor_mask;
        self.stats.bytes_corrupted += 1;
    }

    /// Power loss. Each file's unsynced tail meets the fate `fault` gives it (lost if not
    /// named); then the directory on the platter is replayed with the pending operations
    /// `fault` keeps, in order (a kept rename whose source creation was lost still names its
    /// file under the new name, with whatever content reached the platter). Whatever survives
    /// is then durable. Synced bytes are never touched.
    ///
    /// Panics if `fault` is inconsistent with the disk (names a missing file, keeps more bytes
    /// than the tail has, flips outside the kept bytes or with a zero mask, keeps a directory
    /// operation that is not pending): that is a bug in the simulator, which must draw faults
    /// from [`MemDisk::unsynced_lengths`] and [`MemDisk::pending_dir_ops`].
    pub fn crash(&mut self, fault: &CrashFault) {
        for name in fault.tails.keys() {
            assert!(
                self.names.contains_key(name),
                "crash fault names file {name:?}, which does not exist"
            );
        }
        for &position in &fault.dir_ops_kept {
            assert!(
                position < to_u64(self.pending.len()),
                "crash fault keeps directory operation {position}, but only {} are pending",
                self.pending.len()
            );
        }
        let lost = TailFate::Lost;
        let named: BTreeMap<InodeId, &str> = self
            .names
            .iter()
            .map(|(name, &id)| (id, name.as_str()))
            .collect();
        for (id, inode) in &mut self.inodes {
            // A file no longer named (removed or replaced) loses its tail.
            let (name, fate) = match named.get(id) {
                Some(&name) => (name, fault.tails.get(name).unwrap_or(&lost)),
                None => ("(unnamed)", &lost),
            };
            let (mut lost_bytes, corrupted_bytes) = apply_fate(inode, name, fate);
            if let Some(from) = inode.dropped_from.take() {
                if from < inode.data.len() {
                    lost_bytes += to_u64(inode.data.len() - from);
                    inode.data.truncate(from);
                    inode.synced_len = from;
                }
            }
            self.stats.bytes_lost += lost_bytes;
            self.stats.bytes_corrupted += corrupted_bytes;
        }
        let mut directory = std::mem::take(&mut self.durable_names);
        for (position, (op, id)) in self.pending.drain(..).enumerate() {
            if fault.dir_ops_kept.contains(&to_u64(position)) {
                replay(&mut directory, &op, id);
            } else {
                self.stats.dir_ops_lost += 1;
            }
        }
        self.names = directory.clone();
        self.durable_names = directory;
        self.forget_unnamed_inodes();
        self.stats.crashes += 1;
    }

    /// Drops the content of files no directory can name any more. Only valid with no pending
    /// operation (they may refer to such files).
    fn forget_unnamed_inodes(&mut self) {
        assert!(self.pending.is_empty());
        assert_eq!(self.names, self.durable_names);
        let named: BTreeSet<InodeId> = self.names.values().copied().collect();
        self.inodes.retain(|id, _| named.contains(id));
    }

    /// A slow disk's operation took `ms` more simulated milliseconds.
    fn delay(&mut self, ms: u64) {
        self.latency_ms += ms;
        self.stats.delayed_ms += ms;
    }

    fn inode_mut(&mut self, file: &str) -> Result<&mut Inode, DiskError> {
        check_name(file)?;
        match self.names.get(file) {
            Some(id) => Ok(self.inodes.get_mut(id).expect("a named inode exists")),
            None => Err(DiskError::NotFound {
                file: file.to_owned(),
            }),
        }
    }
}

/// Applies `fate` to the unsynced tail of `inode` (named `name` in messages); afterwards all of
/// it is durable. Returns (bytes lost, bytes corrupted).
fn apply_fate(inode: &mut Inode, name: &str, fate: &TailFate) -> (u64, u64) {
    let tail_len = inode.data.len() - inode.synced_len;
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
    let mut corrupted = 0;
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
            inode.data[inode.synced_len + offset] ^= flip.xor_mask;
        }
        corrupted = to_u64(flips.len());
    }
    inode.data.truncate(inode.synced_len + keep_len);
    inode.synced_len = inode.data.len();
    (to_u64(tail_len - keep_len), corrupted)
}

/// Replays one directory operation that reached the platter on `directory`.
fn replay(directory: &mut BTreeMap<String, InodeId>, op: &DirOp, id: InodeId) {
    match op {
        DirOp::Create { file } => {
            directory.insert(file.clone(), id);
        }
        DirOp::Rename { from, to } => {
            if directory.get(from) == Some(&id) {
                directory.remove(from);
            }
            directory.insert(to.clone(), id);
        }
        DirOp::Remove { file } => {
            if directory.get(file) == Some(&id) {
                directory.remove(file);
            }
        }
    }
}

impl Disk for MemDisk {
    fn append(&mut self, file: &str, bytes: &[u8]) -> Result<(), DiskError> {
        check_name(file)?;
        if self.faults.full {
            self.stats.appends_refused += 1;
            return Err(simulated_io_error(
                "append",
                file,
                "no space left on device (ENOSPC)",
            ));
        }
        let id = match self.names.get(file) {
            Some(&id) => id,
            None => {
                let id = self.next_inode;
                self.next_inode += 1;
                self.inodes.insert(id, Inode::default());
                self.names.insert(file.to_owned(), id);
                let op = DirOp::Create {
                    file: file.to_owned(),
                };
                self.pending.push((op, id));
                id
            }
        };
        let inode = self.inodes.get_mut(&id).expect("a named inode exists");
        inode.data.extend_from_slice(bytes);
        self.stats.bytes_written += to_u64(bytes.len());
        self.delay(self.faults.sync_delay_ms / 10);
        Ok(())
    }

    fn sync(&mut self, file: &str) -> Result<(), DiskError> {
        let fail = self.faults.fail_syncs;
        let inode = self.inode_mut(file)?;
        if fail {
            // The kernel drops the dirty pages and reports the error once.
            if inode.data.len() > inode.synced_len {
                let from = inode.dropped_from.unwrap_or(inode.synced_len);
                inode.dropped_from = Some(from.min(inode.synced_len));
            }
            self.stats.syncs_failed += 1;
            return Err(simulated_io_error("sync", file, "input/output error (EIO)"));
        }
        inode.synced_len = inode.data.len();
        self.stats.syncs += 1;
        self.delay(self.faults.sync_delay_ms);
        Ok(())
    }

    fn read(&self, file: &str) -> Result<Vec<u8>, DiskError> {
        check_name(file)?;
        if self.faults.fail_reads && self.names.contains_key(file) {
            return Err(simulated_io_error("read", file, "input/output error (EIO)"));
        }
        match self.names.get(file) {
            Some(id) => Ok(self.inodes[id].data.clone()),
            None => Err(DiskError::NotFound {
                file: file.to_owned(),
            }),
        }
    }

    fn truncate(&mut self, file: &str, len_bytes: u64) -> Result<(), DiskError> {
        let inode = self.inode_mut(file)?;
        let actual_bytes = to_u64(inode.data.len());
        if len_bytes > actual_bytes {
            return Err(DiskError::TruncateBeyondEnd {
                file: file.to_owned(),
                len_bytes,
                actual_bytes,
            });
        }
        let len = to_usize(len_bytes);
        inode.data.truncate(len);
        // Durable on return: the cut reaches the synced bytes too.
        inode.synced_len = inode.synced_len.min(len);
        inode.dropped_from = inode.dropped_from.filter(|&from| from < len);
        Ok(())
    }

    fn remove(&mut self, file: &str) -> Result<(), DiskError> {
        self.inode_mut(file)?;
        let id = self.names.remove(file).expect("checked above");
        let op = DirOp::Remove {
            file: file.to_owned(),
        };
        self.pending.push((op, id));
        Ok(())
    }

    fn rename(&mut self, from: &str, to: &str) -> Result<(), DiskError> {
        check_name(to)?;
        self.inode_mut(from)?;
        if from == to {
            return Ok(()); // POSIX: renaming a file to itself does nothing
        }
        let id = self.names.remove(from).expect("checked above");
        self.names.insert(to.to_owned(), id);
        let op = DirOp::Rename {
            from: from.to_owned(),
            to: to.to_owned(),
        };
        self.pending.push((op, id));
        Ok(())
    }

    fn sync_dir(&mut self) -> Result<(), DiskError> {
        if self.faults.fail_syncs {
            self.stats.syncs_failed += 1;
            return Err(simulated_io_error(
                "sync_dir",
                ".",
                "input/output error (EIO)",
            ));
        }
        self.pending.clear();
        self.durable_names = self.names.clone();
        self.forget_unnamed_inodes();
        self.stats.dir_syncs += 1;
        self.delay(self.faults.sync_delay_ms);
        Ok(())
    }

    fn take_latency_ms(&mut self) -> u64 {
        std::mem::take(&mut self.latency_ms)
    }

    fn list(&self) -> Result<Vec<String>, DiskError> {
        Ok(self.names.keys().cloned().collect())
    }
}

/// The error a [`DiskFaults`] fault returns, as the real disk's would read.
fn simulated_io_error(op: &'static str, file: &str, what: &str) -> DiskError {
    DiskError::Io {
        op,
        file: file.to_owned(),
        source: std::io::Error::other(format!("{what}, simulated")),
    }
}

fn to_u64(n: usize) -> u64 {
    u64::try_from(n).expect("length fits in u64")
}

fn to_usize(n: u64) -> usize {
    usize::try_from(n).expect("length fits in usize")
}

#[cfg(test)]
mod tests;
