//! Raft's write-ahead log: hard states, entry appends and snapshot markers, framed and
//! checksummed, in a sequence of segment files.
//!
//! # Files
//! Segments `wal-<seq:016x>-<first_index:016x>.log` (see `segments.rs`), each a sequence of
//! records (framing in `format.rs`). A segment begins with a header record holding the full
//! hard state, the latest snapshot marker and the last index, so any suffix of the segments
//! can be read on its own once a snapshot marker covers what was before it. A new segment
//! begins when the current one has reached [`WalOptions::segment_size_bytes`]; the current one
//! is synced first, so only the last segment can have an unsynced tail.
//!
//! # Recovery
//! [`Wal::open`] replays the segments in order. At the first record of the last segment that
//! is torn (shorter than its header says) or fails its checksum, it looks at the valid records
//! that follow: if any of them was written when the damaged record was already synced, synced
//! data was damaged and `open` fails with [`WalError::Corrupt`]. Otherwise the damaged record
//! lies in the unsynced tail of the last run; the segment is truncated there. Damage in any
//! earlier segment is corruption. Only whole records survive, so one `save` is atomic: after a
//! crash it is either fully there or not at all.
//!
//! If the length field of a damaged record is itself damaged, the records after it cannot be
//! located, and damage to synced data there would pass for a torn tail. The threat model is
//! power loss, under which synced bytes never change; detecting bit rot is best effort.
//!
//! # Compaction
//! [`Wal::save_snapshot_marker`] records that the log now starts after a snapshot; once it is
//! synced, [`Wal::release_to`] removes the oldest segments whose entries the snapshot covers.
//! Entries overwritten by a conflicting append stay in their segment until it is released.

mod error;
mod format;
mod recover;
#[cfg(test)]
mod segment_tests;
mod segments;
mod shape;
#[cfg(test)]
mod tests;

use std::borrow::Cow;

use crate::disk::Disk;
use faultline_raft::{Entry, HardState, LogIndex, PersistedState, Term};
use format::{encode, Frame, LogPoint, Record};
use segments::{Segment, SegmentName};
use shape::LogShape;

pub use error::WalError;
pub use format::MAX_RECORD_BYTES;
pub use shape::Violation;

/// How the WAL lays out its files. Affects only the size of the files, never what is durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WalOptions {
    /// A new segment begins once the current one holds at least this many bytes (records are
    /// never split, so a segment may exceed it by one record). At least 1.
    pub segment_size_bytes: u64,
}

impl Default for WalOptions {
    /// 64 MiB segments, as etcd's.
    fn default() -> Self {
        WalOptions {
            segment_size_bytes: 64 << 20,
        }
    }
}

/// What [`Wal::open`] recovered: what was durable.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WalState {
    /// The last saved hard state (default if none).
    pub hard_state: HardState,
    /// The latest snapshot marker (index, term), if one was saved.
    pub snapshot: Option<(LogIndex, Term)>,
    /// The entries after the marker (or from index 1), contiguous.
    pub entries: Vec<Entry>,
}

impl WalState {
    /// Raft's persisted state for a log that has no snapshot marker.
    ///
    /// Panics if it has one: a node that writes markers must also restore snapshots (see
    /// `restart.rs` for combining the WAL with the snapshot files).
    pub fn into_persisted(self) -> PersistedState {
        assert!(
            self.snapshot.is_none(),
            "the WAL starts after a snapshot at {:?}; restore the snapshot first",
            self.snapshot
        );
        PersistedState {
            hard_state: self.hard_state,
            entries: self.entries,
        }
    }
}

/// Raft's write-ahead log over a [`Disk`].
///
/// The Ready protocol: for each Ready, call [`save`](Wal::save) with its hard state and
/// entries, then [`sync`](Wal::sync), and only then send the Ready's messages. A message that
/// leaves before `sync` returns may promise a vote or an acknowledgement that a crash erases.
///
/// Invariants checked on every `save` (a violation is a bug in the caller and panics) and on
/// every record read back (a violation is [`WalError::Invalid`]): the hard state's term never
/// decreases; its vote never changes within a term once cast; its commit never decreases and
/// never passes the last index; entries are contiguous, start at most one past the last index
/// and after the snapshot marker, never overwrite committed entries, and their terms never
/// decrease along the log. Snapshot markers only move forward and never discard committed
/// entries.
///
/// `D` defaults to the boxed disk the node uses, so the node can name the type as `Wal`.
///
/// ```
/// use faultline_raft::{Entry, HardState, LogIndex, NodeId, Term};
/// use faultline_storage::{CrashFault, MemDisk, Wal};
///
/// let (mut wal, recovered) = Wal::open(MemDisk::new())?;
/// assert!(recovered.entries.is_empty());
/// let hard_state = HardState { term: Term(1), vote: Some(NodeId(1)), commit: LogIndex(0) };
/// let entry = Entry { term: Term(1), index: LogIndex(1), data: b"put a=1".to_vec(), kind: Default::default() };
/// wal.save(Some(hard_state), &[entry.clone()])?;
/// wal.sync()?; // only now may the Ready's messages leave
/// wal.save(None, &[Entry { term: Term(1), index: LogIndex(2), data: vec![], kind: Default::default() }])?;
///
/// // Power loss before the second sync: the simulator owns the disk and decides.
/// let mut disk = wal.into_disk();
/// disk.crash(&CrashFault::lose_all_unsynced());
/// let (_, recovered) = Wal::open(disk)?;
/// assert_eq!(recovered.hard_state, hard_state);
/// assert_eq!(recovered.entries, vec![entry]);
/// # Ok::<(), faultline_storage::WalError>(())
/// ```
pub struct Wal<D: Disk = Box<dyn Disk + Send>> {
    disk: D,
    options: WalOptions,
    shape: LogShape,
    /// Oldest first; records are appended to the last. Empty only before the first save.
    segments: Vec<Segment>,
    /// Bytes of the last segment known durable. Invariant: at most its `len_bytes`, and both
    /// are record boundaries.
    synced_len_bytes: u64,
    /// Whether the last segment's name is durable (no `sync_dir` owed since it was created).
    dir_synced: bool,
    failed: bool,
    /// A planted bug (simulation only; [`Wal::set_canary`] refuses one without `canaries`).
    canary: Option<crate::snap::StorageCanary>,
}

impl<D: Disk> std::fmt::Debug for Wal<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wal")
            .field("hard_state", &self.shape.hard_state)
            .field("snapshot", &self.shape.snapshot)
            .field("last_index", &self.shape.last_index())
            .field("segments", &self.segments.len())
            .field("synced_len_bytes", &self.synced_len_bytes)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

impl<D: Disk> Wal<D> {
    /// [`Wal::open_with_options`] with the default options.
    pub fn open(disk: D) -> Result<(Self, WalState), WalError> {
        Wal::open_with_options(disk, WalOptions::default())
    }

    /// Recovers the log from `disk` and opens it for appending. Returns what was durable: the
    /// last saved hard state, the latest snapshot marker and the entries after it.
    ///
    /// A damaged unsynced tail is cut off (durably). Everything recovered is then synced, since
    /// after a process crash (without power loss) it may still sit only in the page cache.
    pub fn open_with_options(disk: D, options: WalOptions) -> Result<(Self, WalState), WalError> {
        Wal::open_with_canary(disk, options, None)
    }

    /// [`Wal::open_with_options`], with a planted bug (simulation only: refused without the
    /// `canaries` feature) acting on recovery as well as on the running log.
    pub fn open_with_canary(
        mut disk: D,
        options: WalOptions,
        canary: Option<crate::snap::StorageCanary>,
    ) -> Result<(Self, WalState), WalError> {
        assert!(
            options.segment_size_bytes >= 1,
            "segment size must be positive"
        );
        assert!(
            cfg!(feature = "canaries") || canary.is_none(),
            "storage canary {canary:?} requested, but faultline-storage was built without `canaries`"
        );
        let rot_as_torn = canary == Some(crate::snap::StorageCanary::RotTakenForTornTail);
        let recovered = recover::recover(&mut disk, rot_as_torn)?;
        let shape = recovered.shape;
        assert!(!shape.has_released_gap());
        assert_eq!(
            recovered.entries.len() as u64,
            shape.last_index().0 - shape.start_index().0
        );
        assert!(recovered
            .entries
            .iter()
            .zip(shape.start_index().0 + 1..)
            .all(|(e, index)| e.index.0 == index));
        let snapshot = shape.snapshot;
        let state = WalState {
            hard_state: shape.hard_state,
            snapshot: (snapshot.index.0 > 0).then_some((snapshot.index, snapshot.term)),
            entries: recovered.entries,
        };
        let wal = Wal {
            disk,
            options,
            shape,
            synced_len_bytes: recovered.segments.last().map_or(0, |s| s.len_bytes),
            segments: recovered.segments,
            dir_synced: true,
            failed: false,
            canary,
        };
        Ok((wal, state))
    }

    /// Appends one record: the new hard state, if any, and `entries`, which replace every
    /// logged entry at or after `entries[0].index`. Not durable until [`Wal::sync`].
    /// Saving nothing (`None`, `&[]`) writes nothing.
    ///
    /// Panics if the record breaks a log invariant (see [`Wal`]): that is a bug in the caller.
    pub fn save(
        &mut self,
        hard_state: Option<HardState>,
        entries: &[Entry],
    ) -> Result<(), WalError> {
        if self.failed {
            return Err(WalError::Failed);
        }
        if hard_state.is_none() && entries.is_empty() {
            return Ok(());
        }
        if let Err(violation) = self.shape.check(hard_state.as_ref(), entries) {
            panic!("WAL save breaks a log invariant: {violation}");
        }
        let entries_cow = Cow::Borrowed(entries);
        self.append(Record::Save {
            hard_state,
            entries: entries_cow,
        })?;
        self.shape.apply(hard_state.as_ref(), entries);
        if let Some(last) = entries.last() {
            let segment = self.segments.last_mut().expect("appended to");
            segment.max_entry_index = segment.max_entry_index.max(last.index);
        }
        Ok(())
    }

    /// Records that the log now starts after a snapshot at (`index`, `term`), which the caller
    /// has already saved durably (see [`SnapshotFiles`](crate::SnapshotFiles)). The entries
    /// after `index` stay if the log holds the entry at `index` with `term`; otherwise (a
    /// follower installing a snapshot beyond or in conflict with its log) the log is empty
    /// after `index`. Not durable until [`Wal::sync`].
    ///
    /// Panics if the marker moves backwards or would discard committed entries (a bug in the
    /// caller), or if `index` is 0.
    pub fn save_snapshot_marker(&mut self, index: LogIndex, term: Term) -> Result<(), WalError> {
        if self.failed {
            return Err(WalError::Failed);
        }
        assert!(index.0 > 0, "a snapshot covers at least one entry");
        let at = LogPoint { index, term };
        let retained_last = match self.shape.check_marker(at) {
            Ok(retained_last) => retained_last.expect("after open, every term in the log is known"),
            Err(violation) => panic!("WAL snapshot marker breaks a log invariant: {violation}"),
        };
        self.append(Record::Marker { at, retained_last })?;
        self.shape.apply_marker(at, retained_last);
        Ok(())
    }

    /// Frames `record` and appends it to the last segment, first beginning a new segment if
    /// there is none or the last one is full. Writes nothing if the record is too large.
    fn append(&mut self, record: Record<'_>) -> Result<(), WalError> {
        let begin_segment = self
            .segments
            .last()
            .is_none_or(|s| s.len_bytes >= self.options.segment_size_bytes);
        // A new segment is not synced at all when its first record is written.
        let synced_len_bytes = if begin_segment {
            0
        } else {
            self.synced_len_bytes
        };
        let frame = Frame {
            synced_len_bytes,
            record,
        };
        let bytes = encode(&frame).map_err(|len_bytes| WalError::RecordTooLarge { len_bytes })?;
        if begin_segment {
            self.begin_segment()?;
        }
        let segment = self.segments.last_mut().expect("a segment exists");
        if let Err(e) = self.disk.append(&segment.file, &bytes) {
            self.failed = true;
            return Err(e.into());
        }
        segment.len_bytes += bytes.len() as u64;
        Ok(())
    }

    /// Syncs the last segment (so only the newest can ever have an unsynced tail) and begins
    /// the next with a header holding the whole current state.
    fn begin_segment(&mut self) -> Result<(), WalError> {
        self.sync()?;
        let seq = self.segments.last().map_or(0, |s| s.name.seq + 1);
        let name = SegmentName {
            seq,
            first_index: self.shape.last_index().next(),
        };
        let mut segment = Segment::new(name);
        let header = Frame {
            synced_len_bytes: 0,
            record: Record::Header(self.shape.header(seq)),
        };
        let bytes = encode(&header).expect("a header is small");
        if let Err(e) = self.disk.append(&segment.file, &bytes) {
            self.failed = true;
            return Err(e.into());
        }
        segment.len_bytes = bytes.len() as u64;
        self.segments.push(segment);
        self.synced_len_bytes = 0;
        self.dir_synced = false;
        Ok(())
    }

    /// The durability point: returns once every saved record is on stable storage (and the
    /// name of a segment begun since the last sync). The node must call it after `save` and
    /// before sending any message of the same Ready.
    pub fn sync(&mut self) -> Result<(), WalError> {
        if self.failed {
            return Err(WalError::Failed);
        }
        let Some(segment) = self.segments.last() else {
            return Ok(());
        };
        assert!(self.synced_len_bytes <= segment.len_bytes);
        if self.synced_len_bytes < segment.len_bytes {
            if let Err(e) = self.disk.sync(&segment.file) {
                if !self.ignores_sync_errors() {
                    self.failed = true;
                    return Err(e.into());
                }
            }
            self.synced_len_bytes = segment.len_bytes;
        }
        if !self.dir_synced {
            if let Err(e) = self.disk.sync_dir() {
                if !self.ignores_sync_errors() {
                    self.failed = true;
                    return Err(e.into());
                }
            }
            self.dir_synced = true;
        }
        Ok(())
    }

    /// Plants a storage bug in this WAL (`None` removes it). Panics without the crate's
    /// `canaries` feature: a normal build cannot contain one.
    pub fn set_canary(&mut self, canary: Option<crate::snap::StorageCanary>) {
        assert!(
            cfg!(feature = "canaries") || canary.is_none(),
            "storage canary {canary:?} requested, but faultline-storage was built without `canaries`"
        );
        self.canary = canary;
    }

    /// The `IgnoreFsyncError` canary: a failed sync is taken as done.
    fn ignores_sync_errors(&self) -> bool {
        cfg!(feature = "canaries")
            && self.canary == Some(crate::snap::StorageCanary::IgnoreFsyncError)
    }

    /// Syncs, then removes (durably) the oldest segments whose entries all lie at or before
    /// `index`. The newest segment always stays; every later segment's header holds the hard
    /// state and marker, so nothing else is lost. Returns how many segments were removed.
    ///
    /// Panics if `index` is beyond the latest snapshot marker: those entries are not covered
    /// by a snapshot (a bug in the caller).
    pub fn release_to(&mut self, index: LogIndex) -> Result<usize, WalError> {
        assert!(
            index <= self.shape.snapshot.index,
            "release to {index:?} beyond the snapshot marker at {:?}",
            self.shape.snapshot.index
        );
        // The marker must be durable before the entries it replaces go.
        self.sync()?;
        let older = self.segments.len().saturating_sub(1);
        let removable = self.segments[..older]
            .iter()
            .take_while(|s| s.max_entry_index <= index)
            .count();
        for segment in &self.segments[..removable] {
            if let Err(e) = self.disk.remove(&segment.file) {
                self.failed = true;
                return Err(e.into());
            }
        }
        if removable > 0 {
            if let Err(e) = self.disk.sync_dir() {
                self.failed = true;
                return Err(e.into());
            }
        }
        self.segments.drain(..removable);
        Ok(removable)
    }

    /// The hard state of the last save (synced or not).
    pub fn hard_state(&self) -> HardState {
        self.shape.hard_state
    }

    /// The index of the last logged entry (synced or not), or of the snapshot marker if no
    /// entry follows it; 0 if the log is empty.
    pub fn last_index(&self) -> LogIndex {
        self.shape.last_index()
    }

    /// The latest snapshot marker (index, term), synced or not.
    pub fn snapshot(&self) -> Option<(LogIndex, Term)> {
        let s = self.shape.snapshot;
        (s.index.0 > 0).then_some((s.index, s.term))
    }

    /// Bytes saved but not yet synced.
    pub fn unsynced_bytes(&self) -> u64 {
        self.segments
            .last()
            .map_or(0, |s| s.len_bytes - self.synced_len_bytes)
    }

    /// Bytes in all segments.
    pub fn len_bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.len_bytes).sum()
    }

    /// The segment files, oldest first; records are appended to the last.
    pub fn segment_files(&self) -> Vec<String> {
        self.segments.iter().map(|s| s.file.clone()).collect()
    }

    pub fn disk(&self) -> &D {
        &self.disk
    }

    /// Simulated milliseconds the disk's operations took since the last call (a slow
    /// simulated disk; 0 on a real one): the member waits them out before going on. The
    /// snapshot files share the disk, so their syncs are counted here too.
    pub fn take_latency_ms(&mut self) -> u64 {
        self.disk.take_latency_ms()
    }

    /// Gives the disk back, e.g. to the simulator after the node stops.
    pub fn into_disk(self) -> D {
        self.disk
    }
}
