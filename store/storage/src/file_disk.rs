//! Real files in one directory, for the real-tokio build of the server.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use crate::disk::{check_name, Disk, DiskError};

/// A [`Disk`] over a directory of real files. `sync` is `fdatasync` of the file, plus an
/// `fsync` of the directory when files were created or removed since the last one, so that a
/// synced file also survives as a directory entry. `truncate` and `remove` sync before
/// returning.
///
/// Blocking I/O: the node calls it from its own task, accepting that a slow disk stalls it.
#[derive(Debug)]
pub struct FileDisk {
    dir: PathBuf,
    /// Append handles opened so far, so each append is one `write` call.
    handles: BTreeMap<String, File>,
    /// Files created since the directory was last synced.
    created: BTreeSet<String>,
}

impl FileDisk {
    /// Uses `dir`, creating it (and its parents) if needed. Existing files are kept: that is
    /// how a restarted server finds its log.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, DiskError> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(|e| io("create directory", &dir, e))?;
        Ok(FileDisk {
            dir,
            handles: BTreeMap::new(),
            created: BTreeSet::new(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, file: &str) -> Result<PathBuf, DiskError> {
        check_name(file)?;
        Ok(self.dir.join(file))
    }

    fn sync_dir(&mut self) -> Result<(), DiskError> {
        // Directories can be opened and fsynced on Unix; elsewhere directory entries are
        // made durable by the file system itself.
        #[cfg(unix)]
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io("sync directory", &self.dir, e))?;
        self.created.clear();
        Ok(())
    }
}

impl Disk for FileDisk {
    fn append(&mut self, file: &str, bytes: &[u8]) -> Result<(), DiskError> {
        let path = self.path(file)?;
        if !self.handles.contains_key(file) {
            let existed = path.exists();
            let handle = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|e| io("open for append", &path, e))?;
            if !existed {
                self.created.insert(file.to_owned());
            }
            self.handles.insert(file.to_owned(), handle);
        }
        let handle = self.handles.get_mut(file).expect("handle inserted above");
        handle
            .write_all(bytes)
            .map_err(|e| io("append to", &path, e))
    }

    fn sync(&mut self, file: &str) -> Result<(), DiskError> {
        let path = self.path(file)?;
        match self.handles.get(file) {
            Some(handle) => handle.sync_data().map_err(|e| io("sync", &path, e))?,
            None => File::open(&path)
                .and_then(|f| f.sync_data())
                .map_err(|e| not_found_or_io("sync", file, &path, e))?,
        }
        if self.created.contains(file) {
            self.sync_dir()?;
        }
        Ok(())
    }

    fn read(&self, file: &str) -> Result<Vec<u8>, DiskError> {
        let path = self.path(file)?;
        fs::read(&path).map_err(|e| not_found_or_io("read", file, &path, e))
    }

    fn truncate(&mut self, file: &str, len_bytes: u64) -> Result<(), DiskError> {
        let path = self.path(file)?;
        let handle = OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(|e| not_found_or_io("open for truncate", file, &path, e))?;
        let actual_bytes = handle.metadata().map_err(|e| io("stat", &path, e))?.len();
        if len_bytes > actual_bytes {
            return Err(DiskError::TruncateBeyondEnd {
                file: file.to_owned(),
                len_bytes,
                actual_bytes,
            });
        }
        // Append handles write at the current end, so they follow the cut.
        handle
            .set_len(len_bytes)
            .and_then(|()| handle.sync_all())
            .map_err(|e| io("truncate", &path, e))?;
        if self.created.contains(file) {
            self.sync_dir()?;
        }
        Ok(())
    }

    fn remove(&mut self, file: &str) -> Result<(), DiskError> {
        let path = self.path(file)?;
        self.handles.remove(file);
        fs::remove_file(&path).map_err(|e| not_found_or_io("remove", file, &path, e))?;
        self.sync_dir()
    }

    fn list(&self) -> Result<Vec<String>, DiskError> {
        let entries = fs::read_dir(&self.dir).map_err(|e| io("list", &self.dir, e))?;
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| io("list", &self.dir, e))?;
            let is_file = entry
                .file_type()
                .map_err(|e| io("stat", &entry.path(), e))?
                .is_file();
            // Names that are not UTF-8 cannot have been written through this interface.
            if let (true, Ok(name)) = (is_file, entry.file_name().into_string()) {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }
}

fn io(op: &'static str, path: &Path, source: std::io::Error) -> DiskError {
    DiskError::Io {
        op,
        file: path.display().to_string(),
        source,
    }
}

fn not_found_or_io(op: &'static str, file: &str, path: &Path, source: std::io::Error) -> DiskError {
    if source.kind() == ErrorKind::NotFound {
        DiskError::NotFound {
            file: file.to_owned(),
        }
    } else {
        io(op, path, source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory named after the test, removed when dropped.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(test_name: &str) -> Self {
            let dir = std::env::temp_dir().join(format!(
                "faultline-storage-{test_name}-{}",
                std::process::id()
            ));
            let _ = fs::remove_dir_all(&dir);
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn file_disk_round_trip() {
        let tmp = TempDir::new("file_disk_round_trip");
        let mut disk = FileDisk::open(&tmp.0).unwrap();
        assert!(disk.list().unwrap().is_empty());
        assert!(matches!(disk.read("a"), Err(DiskError::NotFound { .. })));
        assert!(matches!(
            disk.append("../escape", b"x"),
            Err(DiskError::InvalidName { .. })
        ));

        disk.append("a", b"hello ").unwrap();
        disk.append("a", b"world").unwrap();
        disk.sync("a").unwrap();
        disk.append("b", b"bee").unwrap();
        assert_eq!(disk.read("a").unwrap(), b"hello world");
        assert_eq!(disk.list().unwrap(), vec!["a".to_owned(), "b".to_owned()]);

        disk.truncate("a", 5).unwrap();
        assert!(matches!(
            disk.truncate("a", 50),
            Err(DiskError::TruncateBeyondEnd { .. })
        ));
        disk.append("a", b"!").unwrap();
        assert_eq!(disk.read("a").unwrap(), b"hello!");

        disk.remove("b").unwrap();
        assert!(matches!(disk.remove("b"), Err(DiskError::NotFound { .. })));

        // A new process sees what the old one wrote.
        drop(disk);
        let disk = FileDisk::open(&tmp.0).unwrap();
        assert_eq!(disk.read("a").unwrap(), b"hello!");
        assert_eq!(disk.list().unwrap(), vec!["a".to_owned()]);
    }
}
