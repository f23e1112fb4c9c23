//! The minimal file interface the WAL and snapshot files need, and the wrappers that let one disk be shared.

use std::sync::{Arc, Mutex};

/// An error from a [`Disk`]. I/O failures carry the file and the operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    #[error("file {file:?} does not exist")]
    NotFound { file: String },
    #[error("invalid file name {file:?}: a name is one non-empty path component")]
    InvalidName { file: String },
    #[error("cannot truncate {file:?} to {len_bytes} bytes: it has only {actual_bytes}")]
    TruncateBeyondEnd {
        file: String,
        len_bytes: u64,
        actual_bytes: u64,
    },
    #[error("{op} {file:?}: {source}")]
    Io {
        op: &'static str,
        file: String,
        #[source]
        source: std::io::Error,
    },
}

/// A flat directory of named, append-only files: what a write-ahead log and snapshot files need.
///
/// Durability contract, which every implementation keeps and the WAL and snapshot files rely
/// on. It is what POSIX promises (`fsync` of a file covers its data, not its directory entry):
/// - [`append`](Disk::append) creates the file if needed and adds bytes at its end. Appended
///   bytes are at risk (lost, torn or corrupted at power loss) until [`sync`](Disk::sync) of
///   that file returns `Ok`. Bytes that were synced are never lost or changed.
/// - The directory is separate: a file's creation, a [`rename`](Disk::rename) and a
///   [`remove`](Disk::remove) are durable only once [`sync_dir`](Disk::sync_dir) returns
///   `Ok`. Until then a power loss may undo each of them, independently: a created file
///   vanishes (even if its data was synced), a removed file comes back with its synced bytes,
///   a renamed file is back under its old name and the new name shows what it showed before
///   (or nothing). Syncing a file does not make its name durable.
/// - [`truncate`](Disk::truncate) is durable when it returns (it changes the file, not the
///   directory: implementations sync the file).
/// - [`read`](Disk::read) and [`list`](Disk::list) show every operation so far, durable or
///   not (what the page cache shows); after a crash that is what the restarted process sees.
///
/// Names are single path components: non-empty, no `/`, `\` or NUL, not `.` or `..`.
/// All methods are synchronous: in simulation they take no simulated time.
pub trait Disk {
    /// Appends `bytes` at the end of `file`, creating it if it does not exist.
    fn append(&mut self, file: &str, bytes: &[u8]) -> Result<(), DiskError>;
    /// The durability point of a file's data: returns once every byte appended to `file` is on
    /// stable storage. Its name is durable only after [`sync_dir`](Disk::sync_dir).
    fn sync(&mut self, file: &str) -> Result<(), DiskError>;
    /// The whole content of `file`. [`DiskError::NotFound`] if it does not exist.
    fn read(&self, file: &str) -> Result<Vec<u8>, DiskError>;
    /// Cuts `file` down to `len_bytes` bytes, durably. Growing a file is an error.
    fn truncate(&mut self, file: &str, len_bytes: u64) -> Result<(), DiskError>;
    /// Deletes `file`; durable after `sync_dir`. [`DiskError::NotFound`] if it does not exist.
    fn remove(&mut self, file: &str) -> Result<(), DiskError>;
    /// Renames `from` to `to`, atomically replacing `to` if it exists: a reader sees the old
    /// or the new `to`, never a mix. Durable after `sync_dir`. [`DiskError::NotFound`] if
    /// `from` does not exist.
    fn rename(&mut self, from: &str, to: &str) -> Result<(), DiskError>;
    /// The durability point of the directory: returns once every creation, rename and
    /// removal so far is on stable storage.
    fn sync_dir(&mut self) -> Result<(), DiskError>;
    /// The names of all files, sorted.
    fn list(&self) -> Result<Vec<String>, DiskError>;
    /// Simulated milliseconds the operations since the last call took, for a disk that counts
    /// time instead of taking it (the simulator's slow disk); the caller waits them out on
    /// its clock. A real disk takes real time and answers 0.
    fn take_latency_ms(&mut self) -> u64 {
        0
    }
}

/// Checks that `file` is one plain path component, the same way for every implementation.
pub(crate) fn check_name(file: &str) -> Result<(), DiskError> {
    // Bytes, not chars: the three are ASCII, and no byte of a multi-byte UTF-8 character is
    // (a char pattern decoded every character of every name on every disk call: ~1% of a seed).
    let valid = !file.is_empty()
        && file != "."
        && file != ".."
        && !file.bytes().any(|b| matches!(b, b'/' | b'\\' | b'\0'));
    if valid {
        Ok(())
    } else {
        Err(DiskError::InvalidName {
            file: file.to_owned(),
        })
    }
}

impl<D: Disk + ?Sized> Disk for &mut D {
    fn append(&mut self, file: &str, bytes: &[u8]) -> Result<(), DiskError> {
        (**self).append(file, bytes)
    }
    fn sync(&mut self, file: &str) -> Result<(), DiskError> {
        (**self).sync(file)
    }
    fn read(&self, file: &str) -> Result<Vec<u8>, DiskError> {
        (**self).read(file)
    }
    fn truncate(&mut self, file: &str, len_bytes: u64) -> Result<(), DiskError> {
        (**self).truncate(file, len_bytes)
    }
    fn remove(&mut self, file: &str) -> Result<(), DiskError> {
        (**self).remove(file)
    }
    fn rename(&mut self, from: &str, to: &str) -> Result<(), DiskError> {
        (**self).rename(from, to)
    }
    fn sync_dir(&mut self) -> Result<(), DiskError> {
        (**self).sync_dir()
    }
    fn list(&self) -> Result<Vec<String>, DiskError> {
        (**self).list()
    }
    fn take_latency_ms(&mut self) -> u64 {
        (**self).take_latency_ms()
    }
}

impl<D: Disk + ?Sized> Disk for Box<D> {
    fn append(&mut self, file: &str, bytes: &[u8]) -> Result<(), DiskError> {
        (**self).append(file, bytes)
    }
    fn sync(&mut self, file: &str) -> Result<(), DiskError> {
        (**self).sync(file)
    }
    fn read(&self, file: &str) -> Result<Vec<u8>, DiskError> {
        (**self).read(file)
    }
    fn truncate(&mut self, file: &str, len_bytes: u64) -> Result<(), DiskError> {
        (**self).truncate(file, len_bytes)
    }
    fn remove(&mut self, file: &str) -> Result<(), DiskError> {
        (**self).remove(file)
    }
    fn rename(&mut self, from: &str, to: &str) -> Result<(), DiskError> {
        (**self).rename(from, to)
    }
    fn sync_dir(&mut self) -> Result<(), DiskError> {
        (**self).sync_dir()
    }
    fn list(&self) -> Result<Vec<String>, DiskError> {
        (**self).list()
    }
    fn take_latency_ms(&mut self) -> u64 {
        (**self).take_latency_ms()
    }
}

/// A disk shared between a node and the simulator: the simulator keeps one `Arc` so the disk
/// outlives the node's crash, and hands the node `Box::new(Arc::clone(&disk))`.
///
/// A poisoned mutex means another holder panicked mid-operation; that panic is propagated.
impl<D: Disk + ?Sized> Disk for Arc<Mutex<D>> {
    fn append(&mut self, file: &str, bytes: &[u8]) -> Result<(), DiskError> {
        lock(self).append(file, bytes)
    }
    fn sync(&mut self, file: &str) -> Result<(), DiskError> {
        lock(self).sync(file)
    }
    fn read(&self, file: &str) -> Result<Vec<u8>, DiskError> {
        lock(self).read(file)
    }
    fn truncate(&mut self, file: &str, len_bytes: u64) -> Result<(), DiskError> {
        lock(self).truncate(file, len_bytes)
    }
    fn remove(&mut self, file: &str) -> Result<(), DiskError> {
        lock(self).remove(file)
    }
    fn rename(&mut self, from: &str, to: &str) -> Result<(), DiskError> {
        lock(self).rename(from, to)
    }
    fn sync_dir(&mut self) -> Result<(), DiskError> {
        lock(self).sync_dir()
    }
    fn list(&self) -> Result<Vec<String>, DiskError> {
        lock(self).list()
    }
    fn take_latency_ms(&mut self) -> u64 {
        lock(self).take_latency_ms()
    }
}

fn lock<D: ?Sized>(disk: &Mutex<D>) -> std::sync::MutexGuard<'_, D> {
    disk.lock()
        .expect("disk mutex poisoned: another holder panicked")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_single_components() {
        for good in ["wal", "raft.wal", "a-b_c.0"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in ["", ".", "..", "a/b", "/a", "a\\b", "a\0"] {
            assert!(
                matches!(check_name(bad), Err(DiskError::InvalidName { .. })),
                "{bad:?}"
            );
        }
    }
}
