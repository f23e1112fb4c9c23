//! Real files in one directory, for the real-tokio build of the server.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use crate::disk::{check_name, Disk, DiskError};

/// A [`Disk`] over a directory of real files. `sync` is `fdatasync` of the file, `sync_dir` an
/// `fsync` of the directory, `rename` is `rename(2)` (atomic on POSIX), `truncate` syncs the
/// file before returning.
///
/// Blocking I/O: the node calls it from its own task, accepting that a slow disk stalls it.
#[derive(Debug)]
pub struct FileDisk {
    dir: PathBuf,
    /// Append handles opened so far, so each append is one `write` call.
    handles: BTreeMap<String, File>,
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
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, file: &str) -> Result<PathBuf, DiskError> {
        check_name(file)?;
        Ok(self.dir.join(file))
    }
}

impl Disk for FileDisk {
    fn append(&mut self, file: &str, bytes: &[u8]) -> Result<(), DiskError> {
        let path = self.path(file)?;
        if !self.handles.contains_key(file) {
            let handle = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|e| io("open for append", &path, e))?;
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
            .map_err(|e| io("truncate", &path, e))
    }

    fn remove(&mut self, file: &str) -> Result<(), DiskError> {
        let path = self.path(file)?;
        self.handles.remove(file);
        fs::remove_file(&path).map_err(|e| not_found_or_io("remove", file, &path, e))
    }

    fn rename(&mut self, from: &str, to: &str) -> Result<(), DiskError> {
        let from_path = self.path(from)?;
        let to_path = self.path(to)?;
        fs::rename(&from_path, &to_path)
            .map_err(|e| not_found_or_io("rename", from, &from_path, e))?;
        // An append handle follows its file (it names the inode, not the path); one for the
        // replaced `to` would write to a file no longer in the directory.
        self.handles.remove(to);
        if let Some(handle) = self.handles.remove(from) {
            self.handles.insert(to.to_owned(), handle);
        }
        Ok(())
    }

    fn sync_dir(&mut self) -> Result<(), DiskError> {
        // Directories can be opened and fsynced on Unix; elsewhere directory entries are
        // made durable by the file system itself.
        #[cfg(unix)]
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io("sync directory", &self.dir, e))?;
        Ok(())
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

        // A rename replaces its target; appends through an open handle follow the file.
        disk.append("c.tmp", b"new").unwrap();
        disk.sync("c.tmp").unwrap();
        disk.append("c", b"old").unwrap();
        disk.rename("c.tmp", "c").unwrap();
        disk.append("c", b"er").unwrap();
        disk.sync_dir().unwrap();
        assert_eq!(disk.read("c").unwrap(), b"newer");
        assert!(matches!(
            disk.rename("c.tmp", "d"),
            Err(DiskError::NotFound { .. })
        ));
        disk.remove("c").unwrap();
        disk.sync_dir().unwrap();

        // A new process sees what the old one wrote.
        drop(disk);
        let disk = FileDisk::open(&tmp.0).unwrap();
        assert_eq!(disk.read("a").unwrap(), b"hello!");
        assert_eq!(disk.list().unwrap(), vec!["a".to_owned()]);
    }
}
