//! Raft's write-ahead log: hard states and entry appends, framed and checksummed, in one file.
//!
//! # File format
//! A sequence of records, one per [`Wal::save`]:
//! ```text
//! [payload length: u32 LE][crc32 of (length bytes ++ payload): u32 LE][payload]
//! ```
//! The payload is a bincode (varint) `Record`: the optional new hard state, the entries
//! appended, and `synced_len_bytes`, how much of the file was durable when the record was
//! written. That last field is what lets recovery tell a damaged unsynced tail (truncate it)
//! from damaged synced data (an error), even when valid records follow the damaged one.
//!
//! # Recovery
//! [`Wal::open`] replays records in order. At the first record that is torn (shorter than its
//! header says) or fails its checksum, it looks at the valid records that follow: if any of
//! them was written when the damaged record was already synced, synced data was damaged and
//! `open` fails with [`WalError::Corrupt`]. Otherwise the damaged record lies in the unsynced
//! tail of the last run; the file is truncated there. Only whole records survive, so one
//! `save` is atomic: after a crash it is either fully there or not at all.
//!
//! If the length field of a damaged record is itself damaged, the records after it cannot be
//! located, and damage to synced data there would pass for a torn tail. The threat model is
//! power loss, under which synced bytes never change; detecting bit rot is best effort.
//!
//! # Out of scope for now
//! Log compaction and snapshots: the file only grows, and `open` reads all of it. Entries
//! overwritten by a conflicting append stay in the file as dead records.

use serde::{Deserialize, Serialize};

use crate::disk::{Disk, DiskError};
use faultline_raft::{Entry, HardState, LogIndex, NodeId, PersistedState, Term};

/// The one file the WAL writes.
pub const WAL_FILE: &str = "raft.wal";
/// The largest payload of one record (one `save`): 64 MiB.
pub const MAX_RECORD_BYTES: u32 = 64 << 20;
const HEADER_BYTES: usize = 8;

/// An error from the WAL.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    #[error(transparent)]
    Disk(#[from] DiskError),
    /// Data that was synced is damaged. Never caused by a power loss; never silently dropped.
    #[error("WAL corrupt at byte {offset_bytes}: {reason}; a record written later at byte {evidence_offset_bytes} proves it was synced")]
    Corrupt {
        offset_bytes: u64,
        reason: String,
        evidence_offset_bytes: u64,
    },
    /// A record passed its checksum but cannot be decoded or breaks a log invariant: written by
    /// a buggy or different version of this code.
    #[error("WAL record at byte {offset_bytes} is invalid: {reason}")]
    Invalid { offset_bytes: u64, reason: String },
    /// One `save` would exceed [`MAX_RECORD_BYTES`]; nothing was written.
    #[error("WAL record of {len_bytes} bytes exceeds the limit of {MAX_RECORD_BYTES}")]
    RecordTooLarge { len_bytes: u64 },
    /// An earlier write or sync failed, so the file's state is unknown (a failed fsync cannot
    /// be retried: the kernel may have dropped the dirty pages). Restart and recover.
    #[error("WAL unusable after an earlier disk error; restart to recover")]
    Failed,
}

/// A broken log invariant. On `save` it is a bug in the caller (a panic); on recovery it makes
/// the record [`WalError::Invalid`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    #[error("term decreases from {from:?} to {to:?}")]
    TermDecreased { from: Term, to: Term },
    #[error("vote in {term:?} changes from {from:?} to {to:?}")]
    VoteChanged {
        term: Term,
        from: Option<NodeId>,
        to: Option<NodeId>,
    },
    #[error("commit decreases from {from:?} to {to:?}")]
    CommitDecreased { from: LogIndex, to: LogIndex },
    #[error("commit {commit:?} is beyond the last index {last:?}")]
    CommitBeyondLog { commit: LogIndex, last: LogIndex },
    #[error("entries start at {first:?}, leaving a gap after the last index {last:?}")]
    Gap { first: LogIndex, last: LogIndex },
    #[error("entry {index:?} follows {prev:?}: entries must be contiguous")]
    NotContiguous { prev: LogIndex, index: LogIndex },
    #[error("entries starting at {first:?} would overwrite committed entries (commit {commit:?})")]
    TruncatesCommitted { first: LogIndex, commit: LogIndex },
    #[error("entry {index:?} has term {term:?}, below the {prev_term:?} of the entry before it")]
    EntryTermDecreased {
        index: LogIndex,
        term: Term,
        prev_term: Term,
    },
}

#[derive(Serialize)]
struct RecordRef<'a> {
    synced_len_bytes: u64,
    hard_state: Option<HardState>,
    entries: &'a [Entry],
}

#[derive(Deserialize)]
struct Record {
    synced_len_bytes: u64,
    hard_state: Option<HardState>,
    entries: Vec<Entry>,
}

fn codec() -> impl bincode::Options {
    use bincode::Options;
    bincode::DefaultOptions::new()
        .with_limit(u64::from(MAX_RECORD_BYTES))
        .reject_trailing_bytes()
}

/// What the log holds, reduced to what checking a new record needs.
#[derive(Debug, Clone, Default)]
struct LogShape {
    hard_state: HardState,
    /// `entry_terms[i]` is the term of the entry at index `i + 1`.
    entry_terms: Vec<Term>,
}

impl LogShape {
    fn last_index(&self) -> LogIndex {
        LogIndex(self.entry_terms.len() as u64)
    }

    /// Checks that appending a record with `hard_state` and `entries` keeps the log a valid
    /// Raft log. Runs before writing and after reading.
    fn check(&self, hard_state: Option<&HardState>, entries: &[Entry]) -> Result<(), Violation> {
        let old = &self.hard_state;
        let new = hard_state.unwrap_or(old);
        if new.term < old.term {
            return Err(Violation::TermDecreased {
                from: old.term,
                to: new.term,
            });
        }
        if new.term == old.term && old.vote.is_some() && new.vote != old.vote {
            return Err(Violation::VoteChanged {
                term: old.term,
                from: old.vote,
                to: new.vote,
            });
        }
        if new.commit < old.commit {
            return Err(Violation::CommitDecreased {
                from: old.commit,
                to: new.commit,
            });
        }
        let mut last = self.last_index();
        if let Some(first) = entries.first() {
            if first.index.0 == 0 || first.index.0 > last.0 + 1 {
                return Err(Violation::Gap {
                    first: first.index,
                    last,
                });
            }
            if first.index <= old.commit {
                return Err(Violation::TruncatesCommitted {
                    first: first.index,
                    commit: old.commit,
                });
            }
            let mut prev_index = LogIndex(first.index.0 - 1);
            let mut prev_term = match prev_index.0 {
                0 => Term(0),
                i => self.entry_terms[(i - 1) as usize],
            };
            for entry in entries {
                if entry.index.0 != prev_index.0 + 1 {
                    return Err(Violation::NotContiguous {
                        prev: prev_index,
                        index: entry.index,
                    });
                }
                if entry.term < prev_term {
                    return Err(Violation::EntryTermDecreased {
                        index: entry.index,
                        term: entry.term,
                        prev_term,
                    });
                }
                prev_index = entry.index;
                prev_term = entry.term;
            }
            last = prev_index;
        }
        if new.commit > last {
            return Err(Violation::CommitBeyondLog {
                commit: new.commit,
                last,
            });
        }
        Ok(())
    }

    /// Applies a record that passed [`LogShape::check`].
    fn apply(&mut self, hard_state: Option<&HardState>, entries: &[Entry]) {
        if let Some(hs) = hard_state {
            self.hard_state = *hs;
        }
        if let Some(first) = entries.first() {
            self.entry_terms.truncate((first.index.0 - 1) as usize);
            self.entry_terms.extend(entries.iter().map(|e| e.term));
        }
        debug_assert!(self.hard_state.commit <= self.last_index());
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
/// never passes the last index; entries are contiguous, start at most one past the last index,
/// never overwrite committed entries, and their terms never decrease along the log.
///
/// `D` defaults to the boxed disk the node uses, so the node can name the type as `Wal`.
pub struct Wal<D: Disk = Box<dyn Disk + Send>> {
    disk: D,
    shape: LogShape,
    /// Bytes in the file, all written by whole records.
    len_bytes: u64,
    /// Invariant: `synced_len_bytes <= len_bytes`, and both are record boundaries.
    synced_len_bytes: u64,
    failed: bool,
}

impl<D: Disk> std::fmt::Debug for Wal<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wal")
            .field("hard_state", &self.shape.hard_state)
            .field("last_index", &self.shape.last_index())
            .field("len_bytes", &self.len_bytes)
            .field("synced_len_bytes", &self.synced_len_bytes)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

enum Parsed {
    /// No bytes left.
    End,
    /// A whole record with a valid checksum, and where the next one starts.
    Record { record: Record, next: usize },
    /// A checksummed record that does not decode.
    Undecodable { reason: String, next: usize },
    /// Torn or failing its checksum. `next` is where the next record would start if the
    /// length field can be trusted.
    Damaged {
        reason: String,
        next: Option<usize>,
    },
}

fn parse_at(bytes: &[u8], pos: usize) -> Parsed {
    let remaining = bytes.len() - pos;
    if remaining == 0 {
        return Parsed::End;
    }
    if remaining < HEADER_BYTES {
        return Parsed::Damaged {
            reason: format!("torn header ({remaining} bytes)"),
            next: None,
        };
    }
    let len_field: [u8; 4] = bytes[pos..pos + 4].try_into().expect("4 bytes");
    let crc_field: [u8; 4] = bytes[pos + 4..pos + 8].try_into().expect("4 bytes");
    let len = u32::from_le_bytes(len_field);
    if len > MAX_RECORD_BYTES {
        return Parsed::Damaged {
            reason: format!("length {len} exceeds the limit"),
            next: None,
        };
    }
    let len = len as usize;
    if remaining - HEADER_BYTES < len {
        return Parsed::Damaged {
            reason: format!(
                "torn record: {len} bytes announced, {} present",
                remaining - HEADER_BYTES
            ),
            next: None,
        };
    }
    let payload = &bytes[pos + HEADER_BYTES..pos + HEADER_BYTES + len];
    let next = pos + HEADER_BYTES + len;
    if checksum(len_field, payload) != u32::from_le_bytes(crc_field) {
        return Parsed::Damaged {
            reason: "checksum mismatch".to_owned(),
            next: Some(next),
        };
    }
    match bincode::Options::deserialize::<Record>(codec(), payload) {
        Ok(record) => Parsed::Record { record, next },
        Err(e) => Parsed::Undecodable {
            reason: format!("undecodable payload: {e}"),
            next,
        },
    }
}

fn checksum(len_field: [u8; 4], payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&len_field);
    hasher.update(payload);
    hasher.finalize()
}

/// The offset of a valid record after the damaged one at `damaged_at` that was written when
/// `damaged_at` was already durable, if there is one: proof that synced data was damaged.
fn synced_evidence(bytes: &[u8], damaged_at: usize, mut next: Option<usize>) -> Option<usize> {
    // Every step moves forward by at least one header, so this ends.
    while let Some(pos) = next {
        next = match parse_at(bytes, pos) {
            Parsed::End => None,
            Parsed::Record { record, next } => {
                if record.synced_len_bytes > damaged_at as u64 {
                    return Some(pos);
                }
                Some(next)
            }
            Parsed::Undecodable { next, .. } => Some(next),
            Parsed::Damaged { next, .. } => next,
        };
    }
    None
}

impl<D: Disk> Wal<D> {
    /// Recovers the log from `disk` and opens it for appending. Returns what was durable: the
    /// last saved hard state (default if none) and the entries, contiguous from index 1.
    ///
    /// A damaged unsynced tail is cut off (durably). Everything recovered is then synced, since
    /// after a process crash (without power loss) it may still sit only in the page cache.
    pub fn open(mut disk: D) -> Result<(Self, PersistedState), WalError> {
        let bytes = match disk.read(WAL_FILE) {
            Ok(bytes) => Some(bytes),
            Err(DiskError::NotFound { .. }) => None,
            Err(e) => return Err(e.into()),
        };
        let mut shape = LogShape::default();
        let mut entries: Vec<Entry> = Vec::new();
        let mut pos = 0;
        if let Some(bytes) = &bytes {
            loop {
                match parse_at(bytes, pos) {
                    Parsed::End => break,
                    Parsed::Record { record, next } => {
                        shape
                            .check(record.hard_state.as_ref(), &record.entries)
                            .map_err(|v| WalError::Invalid {
                                offset_bytes: pos as u64,
                                reason: v.to_string(),
                            })?;
                        shape.apply(record.hard_state.as_ref(), &record.entries);
                        if let Some(first) = record.entries.first() {
                            entries.truncate((first.index.0 - 1) as usize);
                            entries.extend(record.entries);
                        }
                        pos = next;
                    }
                    Parsed::Undecodable { reason, .. } => {
                        return Err(WalError::Invalid {
                            offset_bytes: pos as u64,
                            reason,
                        })
                    }
                    Parsed::Damaged { reason, next } => {
                        if let Some(evidence) = synced_evidence(bytes, pos, next) {
                            return Err(WalError::Corrupt {
                                offset_bytes: pos as u64,
                                reason,
                                evidence_offset_bytes: evidence as u64,
                            });
                        }
                        disk.truncate(WAL_FILE, pos as u64)?;
                        break;
                    }
                }
            }
            disk.sync(WAL_FILE)?;
        }
        assert_eq!(entries.len(), shape.entry_terms.len());
        assert!(entries.iter().enumerate().all(|(i, e)| e.index.0 == i as u64 + 1));
        let state = PersistedState {
            hard_state: shape.hard_state,
            entries,
        };
        let wal = Wal {
            disk,
            shape,
            len_bytes: pos as u64,
            synced_len_bytes: pos as u64,
            failed: false,
        };
        Ok((wal, state))
    }

    /// Appends one record: the new hard state, if any, and `entries`, which replace every
    /// logged entry at or after `entries[0].index`. Not durable until [`Wal::sync`].
    /// Saving nothing (`None`, `&[]`) writes nothing.
    ///
    /// Panics if the record breaks a log invariant (see [`Wal`]): that is a bug in the caller.
    pub fn save(&mut self, hard_state: Option<HardState>, entries: &[Entry]) -> Result<(), WalError> {
        if self.failed {
            return Err(WalError::Failed);
        }
        if hard_state.is_none() && entries.is_empty() {
            return Ok(());
        }
        if let Err(violation) = self.shape.check(hard_state.as_ref(), entries) {
            panic!("WAL save breaks a log invariant: {violation}");
        }
        let record = RecordRef {
            synced_len_bytes: self.synced_len_bytes,
            hard_state,
            entries,
        };
        let payload = match bincode::Options::serialize(codec(), &record) {
            Ok(payload) => payload,
            Err(e) => match *e {
                bincode::ErrorKind::SizeLimit => {
                    let len_bytes =
                        bincode::Options::serialized_size(bincode::DefaultOptions::new(), &record)
                            .unwrap_or(u64::MAX);
                    return Err(WalError::RecordTooLarge { len_bytes });
                }
                other => panic!("encoding a WAL record cannot fail: {other}"),
            },
        };
        let len = u32::try_from(payload.len()).expect("payload within MAX_RECORD_BYTES");
        assert!(len <= MAX_RECORD_BYTES);
        let mut frame = Vec::with_capacity(HEADER_BYTES + payload.len());
        frame.extend_from_slice(&len.to_le_bytes());
        frame.extend_from_slice(&checksum(len.to_le_bytes(), &payload).to_le_bytes());
        frame.extend_from_slice(&payload);
        if let Err(e) = self.disk.append(WAL_FILE, &frame) {
            self.failed = true;
            return Err(e.into());
        }
        self.shape.apply(hard_state.as_ref(), entries);
        self.len_bytes += frame.len() as u64;
        Ok(())
    }

    /// The durability point: returns once every saved record is on stable storage. The node
    /// must call it after `save` and before sending any message of the same Ready.
    pub fn sync(&mut self) -> Result<(), WalError> {
        if self.failed {
            return Err(WalError::Failed);
        }
        assert!(self.synced_len_bytes <= self.len_bytes);
        if self.synced_len_bytes == self.len_bytes {
            return Ok(());
        }
        if let Err(e) = self.disk.sync(WAL_FILE) {
            self.failed = true;
            return Err(e.into());
        }
        self.synced_len_bytes = self.len_bytes;
        Ok(())
    }

    /// The hard state of the last save (synced or not).
    pub fn hard_state(&self) -> HardState {
        self.shape.hard_state
    }

    /// The index of the last logged entry (synced or not); 0 if the log is empty.
    pub fn last_index(&self) -> LogIndex {
        self.shape.last_index()
    }

    /// Bytes saved but not yet synced.
    pub fn unsynced_bytes(&self) -> u64 {
        self.len_bytes - self.synced_len_bytes
    }

    pub fn disk(&self) -> &D {
        &self.disk
    }

    /// Gives the disk back, e.g. to the simulator after the node stops.
    pub fn into_disk(self) -> D {
        self.disk
    }
}
