//! A member's restart: the newest snapshot and the WAL after it, made into one consistent state.
//!
//! The node writes in this order, so a restart can always combine the two:
//! 1. [`SnapshotFiles::save`] (durable when it returns),
//! 2. [`Wal::save_snapshot_marker`] and [`Wal::sync`],
//! 3. [`Wal::release_to`].
//!
//! A power loss between 1 and 2 leaves a snapshot newer than the WAL's marker: the restart uses
//! the snapshot, keeps the WAL entries after it, and writes the missing marker. A WAL marker
//! newer than every loadable snapshot means entries are gone that no snapshot holds: an error,
//! never a silent loss.

use std::sync::{Arc, Mutex};

use faultline_raft::{Entry, HardState, LogIndex, Term};

use crate::disk::{Disk, DiskError};
use crate::snap::{
    LoadedSnapshot, RejectedSnapshot, Snapshot, SnapshotError, SnapshotFiles, SnapshotOptions,
};
use crate::wal::{Wal, WalError, WalOptions, WalState};

/// An error restarting from disk. Every variant means the member must not serve: its durable
/// state is damaged or inconsistent.
#[derive(Debug, thiserror::Error)]
pub enum RestartError {
    #[error(transparent)]
    Wal(#[from] WalError),
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// The WAL starts after a snapshot that cannot be loaded.
    #[error("the WAL starts after a snapshot at index {marker_index:?} term {marker_term:?}, but the newest loadable snapshot is {newest:?} (rejected: {rejected:?})")]
    SnapshotMissing {
        marker_index: LogIndex,
        marker_term: Term,
        newest: Option<(LogIndex, Term)>,
        rejected: Vec<RejectedSnapshot>,
    },
    /// The snapshot and the WAL disagree about committed entries.
    #[error("snapshot at index {index:?} term {term:?} and the WAL disagree: {reason}")]
    Inconsistent {
        index: LogIndex,
        term: Term,
        reason: String,
    },
}

impl RestartError {
    /// The disk failed an operation (a read, a write, a sync: EIO), as opposed to data that
    /// is damaged or inconsistent. etcd exits with a fatal error then (fail-stop), and a later
    /// start may succeed once the disk works again: the member must not serve, but it must
    /// not be taken for a member whose data is lost either.
    pub fn is_io(&self) -> bool {
        matches!(
            self,
            RestartError::Wal(WalError::Disk(DiskError::Io { .. }))
                | RestartError::Snapshot(SnapshotError::Disk(DiskError::Io { .. }))
        )
    }
}

/// What a member restarts from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RestartState {
    /// The WAL's hard state, its commit raised to the snapshot's index if it was below (the
    /// snapshot holds only committed entries).
    pub hard_state: HardState,
    /// The newest loadable snapshot; the node restores Raft's snapshot metadata and the MVCC
    /// state from its payload.
    pub snapshot: Option<Snapshot>,
    /// The entries after the snapshot (or from index 1), contiguous.
    pub entries: Vec<Entry>,
    /// Newer snapshot files that could not be loaded, for the log.
    pub rejected_snapshots: Vec<RejectedSnapshot>,
}

/// Combines the newest loadable snapshot with what the WAL recovered.
pub fn combine(loaded: LoadedSnapshot, wal: WalState) -> Result<RestartState, RestartError> {
    let LoadedSnapshot { snapshot, rejected } = loaded;
    let newest = snapshot.as_ref().map(|s| (s.index, s.term));
    if let Some((marker_index, marker_term)) = wal.snapshot {
        if newest.is_none_or(|(index, _)| index < marker_index) {
            return Err(RestartError::SnapshotMissing {
                marker_index,
                marker_term,
                newest,
                rejected,
            });
        }
    }
    let mut hard_state = wal.hard_state;
    let mut entries = wal.entries;
    if let Some(s) = &snapshot {
        let inconsistent = |reason: String| RestartError::Inconsistent {
            index: s.index,
            term: s.term,
            reason,
        };
        let wal_term = match wal.snapshot {
            Some((index, term)) if index == s.index => Some(term),
            _ => entries.iter().find(|e| e.index == s.index).map(|e| e.term),
        };
        let marker_here = wal.snapshot.is_some_and(|(index, _)| index == s.index);
        match wal_term {
            Some(term) if term == s.term => {}
            Some(term) if marker_here || hard_state.commit >= s.index => {
                let reason = format!(
                    "the WAL has term {term:?} there, committed up to {:?}",
                    hard_state.commit
                );
                return Err(inconsistent(reason));
            }
            // The log does not hold the snapshot's last entry (it is shorter, or conflicts
            // with uncommitted entries): nothing of it stays.
            _ => entries.clear(),
        }
        entries.retain(|e| e.index > s.index);
        hard_state.commit = hard_state.commit.max(s.index);
        hard_state = raise_term_to_snapshot(hard_state, s.term);
    }
    Ok(RestartState {
        hard_state,
        snapshot,
        entries,
        rejected_snapshots: rejected,
    })
}

/// A power loss between a leader's snapshot file and the Ready's hard state (the node makes
/// the snapshot durable first) leaves a snapshot whose term is above the WAL's term. Raft
/// needs a term at least its log's last term, so the restart takes the snapshot's term, with
/// no vote: the member sent no vote in any term above the WAL's (a vote leaves only once the
/// hard state that records it is synced), so voting afresh in that term is safe.
fn raise_term_to_snapshot(hard_state: HardState, snapshot_term: Term) -> HardState {
    if hard_state.term >= snapshot_term {
        return hard_state;
    }
    HardState {
        term: snapshot_term,
        vote: None,
        commit: hard_state.commit,
    }
}

/// How a member lays out its storage directory.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StorageOptions {
    pub wal: WalOptions,
    pub snapshots: SnapshotOptions,
}

/// A member's storage, opened: the WAL and the snapshot files share one directory.
pub struct MemberStorage {
    pub wal: Wal,
    pub snapshots: SnapshotFiles,
    pub restart: RestartState,
}

/// Opens a member's storage on `disk` (one directory for the WAL and the snapshot files) and
/// recovers what it restarts from. If the newest snapshot is newer than the WAL's marker (a
/// power loss came between saving the snapshot and its marker), the marker is written and
/// synced now, so the WAL accepts entries after the snapshot.
pub fn open_member_storage(
    disk: Box<dyn Disk + Send>,
    options: StorageOptions,
) -> Result<MemberStorage, RestartError> {
    // Two handles on one directory; each component only touches its own file names.
    let shared = Arc::new(Mutex::new(disk));
    let canary = options.snapshots.canary;
    let snapshots = SnapshotFiles::open(
        Box::new(Arc::clone(&shared)) as Box<dyn Disk + Send>,
        options.snapshots,
    )?;
    let loaded = snapshots.load_newest()?;
    let (mut wal, wal_state) = Wal::open_with_canary(
        Box::new(shared) as Box<dyn Disk + Send>,
        options.wal,
        canary,
    )?;
    let restart = combine(loaded, wal_state)?;
    if let Some(s) = &restart.snapshot {
        if wal.snapshot().is_none_or(|(index, _)| index < s.index) {
            wal.save_snapshot_marker(s.index, s.term)?;
            wal.sync()?;
        }
    }
    Ok(MemberStorage {
        wal,
        snapshots,
        restart,
    })
}
