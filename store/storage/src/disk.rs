//! The minimal file interface the WAL needs, and the wrappers that let one disk be shared.

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

/// A flat directory of named, append-only files: exactly what a write-ahead log needs.
///
/// Durability contract, which every implementation keeps and the WAL relies on:
/// - [`append`](Disk::append) creates the file if needed and adds bytes at its end. Appended
///   bytes are at risk (lost, torn or corrupted at power loss) until [`sync`](Disk::sync) of
///   that file returns `Ok`. The file's existence is also only durable after its first sync.
/// - Bytes that were synced are never lost or changed.
/// - [`truncate`](Disk::truncate) and [`remove`](Disk::remove) are durable when they return.
/// - [`read`](Disk::read) returns every byte appended so far, synced or not (what the page
///   cache shows); after a crash that is what the restarted process sees.
///
/// Names are single path components: non-empty, no `/`, `\` or NUL, not `.` or `..`.
/// All methods are synchronous: in simulation they take no simulated time.
pub trait Disk {
    /// Appends `bytes` at the end of `file`, creating it if it does not exist.
    fn append(&mut self, file: &str, bytes: &[u8]) -> Result<(), DiskError>;
    /// The durability point: returns once every byte appended to `file` is on stable storage.
    fn sync(&mut self, file: &str) -> Result<(), DiskError>;
    /// The whole content of `file`. [`DiskError::NotFound`] if it does not exist.
    fn read(&self, file: &str) -> Result<Vec<u8>, DiskError>;
    /// Cuts `file` down to `len_bytes` bytes, durably. Growing a file is an error.
    fn truncate(&mut self, file: &str, len_bytes: u64) -> Result<(), DiskError>;
    /// Deletes `file`, durably. [`DiskError::NotFound`] if it does not exist.
    fn remove(&mut self, file: &str) -> Result<(), DiskError>;
    /// The names of all files, sorted.
    fn list(&self) -> Result<Vec<String>, DiskError>;
}

/// Checks that `file` is one plain path component, the same way for every implementation.
pub(crate) fn check_name(file: &str) -> Result<(), DiskError> {
    let valid =
        !file.is_empty() && file != "." && file != ".." && !file.contains(['/', '\\', '\0']);
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
    fn list(&self) -> Result<Vec<String>, DiskError> {
        (**self).list()
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
    fn list(&self) -> Result<Vec<String>, DiskError> {
        (**self).list()
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
    fn list(&self) -> Result<Vec<String>, DiskError> {
        lock(self).list()
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
