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
///
/// ```
/// use faultline_raft::{Entry, HardState, LogIndex, NodeId, Term};
/// use faultline_storage::{CrashFault, MemDisk, Wal};
///
/// let (mut wal, recovered) = Wal::open(MemDisk::new())?;
/// assert!(recovered.entries.is_empty());
/// let hard_state = HardState { term: Term(1), vote: Some(NodeId(1)), commit: LogIndex(0) };
/// let entry = Entry { term: Term(1), index: LogIndex(1), data: b"put a=1".to_vec() };
/// wal.save(Some(hard_state), &[entry.clone()])?;
/// wal.sync()?; // only now may the Ready's messages leave
/// wal.save(None, &[Entry { term: Term(1), index: LogIndex(2), data: vec![] }])?;
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
    shape: LogShape,
    /// Bytes in the file, all written by whole records.
    len_bytes: u64,
    /// Invariant: `synced_len_bytes <= len_bytes`, and both are record boundaries.
    synced_len_bytes: u64,
    /// Whether the file's name is durable (a `sync_dir` since it was created).
    name_durable: bool,
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
    Damaged { reason: String, next: Option<usize> },
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
            disk.sync_dir()?;
        }
        assert_eq!(entries.len(), shape.entry_terms.len());
        assert!(entries
            .iter()
            .enumerate()
            .all(|(i, e)| e.index.0 == i as u64 + 1));
        let state = PersistedState {
            hard_state: shape.hard_state,
            entries,
        };
        let wal = Wal {
            disk,
            shape,
            len_bytes: pos as u64,
            synced_len_bytes: pos as u64,
            name_durable: bytes.is_some(),
            failed: false,
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
        if !self.name_durable {
            if let Err(e) = self.disk.sync_dir() {
                self.failed = true;
                return Err(e.into());
            }
            self.name_durable = true;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mem_disk::{ByteFlip, CrashFault, MemDisk, TailFate};
    use faultline_raft::NodeId;

    fn entry(term: u64, index: u64) -> Entry {
        Entry {
            term: Term(term),
            index: LogIndex(index),
            data: format!("t{term}i{index}").into_bytes(),
        }
    }

    fn entries(term: u64, indexes: std::ops::RangeInclusive<u64>) -> Vec<Entry> {
        indexes.map(|i| entry(term, i)).collect()
    }

    fn hs(term: u64, vote: Option<u64>, commit: u64) -> HardState {
        HardState {
            term: Term(term),
            vote: vote.map(NodeId),
            commit: LogIndex(commit),
        }
    }

    fn open(disk: MemDisk) -> (Wal<MemDisk>, PersistedState) {
        Wal::open(disk).expect("recovery succeeds")
    }

    fn crash_and_reopen(wal: Wal<MemDisk>, fate: TailFate) -> (Wal<MemDisk>, PersistedState) {
        let mut disk = wal.into_disk();
        let mut fault = CrashFault::default();
        if disk.unsynced_lengths().contains_key(WAL_FILE) {
            fault.tails.insert(WAL_FILE.to_owned(), fate);
        }
        disk.crash(&fault);
        open(disk)
    }

    /// Record A synced; records B and C saved but not synced. Returns the byte lengths of B
    /// and C as well.
    fn synced_a_unsynced_b_c() -> (Wal<MemDisk>, u64, u64) {
        let (mut wal, _) = open(MemDisk::new());
        wal.save(Some(hs(1, Some(1), 0)), &entries(1, 1..=2))
            .unwrap();
        wal.sync().unwrap();
        wal.save(Some(hs(1, Some(1), 2)), &entries(1, 3..=3))
            .unwrap();
        let b_len = wal.unsynced_bytes();
        wal.save(Some(hs(2, None, 3)), &entries(2, 4..=5)).unwrap();
        let c_len = wal.unsynced_bytes() - b_len;
        (wal, b_len, c_len)
    }

    fn last_index(state: &PersistedState) -> u64 {
        state.entries.last().map_or(0, |e| e.index.0)
    }

    #[test]
    fn empty_disk_recovers_empty_and_writes_nothing() {
        let (wal, state) = open(MemDisk::new());
        assert_eq!(state.hard_state, HardState::default());
        assert!(state.entries.is_empty());
        assert_eq!(wal.last_index(), LogIndex(0));
        assert!(wal.disk().list().unwrap().is_empty());
    }

    #[test]
    fn saved_and_synced_records_survive_a_crash() {
        let (wal, _, _) = synced_a_unsynced_b_c();
        let mut wal = wal;
        wal.sync().unwrap();
        let (wal, state) = crash_and_reopen(wal, TailFate::Lost);
        assert_eq!(state.hard_state, hs(2, None, 3));
        assert_eq!(
            state.entries,
            [entries(1, 1..=3), entries(2, 4..=5)].concat()
        );
        assert_eq!(wal.last_index(), LogIndex(5));
        assert_eq!(wal.hard_state(), hs(2, None, 3));
    }

    #[test]
    fn lost_tail_recovers_the_synced_prefix() {
        let (wal, _, _) = synced_a_unsynced_b_c();
        let (wal, state) = crash_and_reopen(wal, TailFate::Lost);
        assert_eq!(state.hard_state, hs(1, Some(1), 0));
        assert_eq!(state.entries, entries(1, 1..=2));
        assert_eq!(wal.unsynced_bytes(), 0);
    }

    #[test]
    fn kept_tail_recovers_everything() {
        let (wal, _, _) = synced_a_unsynced_b_c();
        let (_, state) = crash_and_reopen(wal, TailFate::Kept);
        assert_eq!(state.hard_state, hs(2, None, 3));
        assert_eq!(last_index(&state), 5);
    }

    #[test]
    fn torn_tail_keeps_whole_records_only_and_is_cut_off() {
        let (_, b_len, c_len) = synced_a_unsynced_b_c();
        // Torn inside B, at B's end, inside C's header, inside C's payload.
        let cases = [
            (b_len - 1, 2, hs(1, Some(1), 0)),
            (b_len, 3, hs(1, Some(1), 2)),
            (b_len + 3, 3, hs(1, Some(1), 2)),
            (b_len + c_len - 1, 3, hs(1, Some(1), 2)),
        ];
        for (keep_bytes, last, hard_state) in cases {
            let (wal, _, _) = synced_a_unsynced_b_c();
            let synced = wal.disk().synced_len(WAL_FILE).unwrap();
            let (wal, state) = crash_and_reopen(wal, TailFate::Torn { keep_bytes });
            assert_eq!(last_index(&state), last, "keep {keep_bytes}");
            assert_eq!(state.hard_state, hard_state, "keep {keep_bytes}");
            let kept_records = if keep_bytes >= b_len { b_len } else { 0 };
            let file_len = wal.disk().read(WAL_FILE).unwrap().len() as u64;
            assert_eq!(file_len, synced + kept_records, "torn bytes are truncated");
            // The log goes on after the cut, and a later recovery sees the new record.
            let mut wal = wal;
            wal.save(None, &[entry(3, last + 1)]).unwrap();
            wal.sync().unwrap();
            let (_, state) = crash_and_reopen(wal, TailFate::Lost);
            assert_eq!(last_index(&state), last + 1);
        }
    }

    #[test]
    fn corrupted_unsynced_record_is_cut_off_even_when_valid_records_follow() {
        let (_, b_len, c_len) = synced_a_unsynced_b_c();
        // A flip in B (C after it is intact), and a flip in C.
        for (offset, last) in [
            (0, 2),
            (HEADER_BYTES as u64 + 1, 2),
            (b_len - 1, 2),
            (b_len + c_len - 1, 3),
        ] {
            let (wal, _, _) = synced_a_unsynced_b_c();
            let fate = TailFate::Corrupted {
                keep_bytes: b_len + c_len,
                flips: vec![ByteFlip {
                    offset,
                    xor_mask: 0x10,
                }],
            };
            let (_, state) = crash_and_reopen(wal, fate);
            assert_eq!(last_index(&state), last, "flip at {offset}");
        }
    }

    #[test]
    fn corrupted_synced_record_followed_by_valid_ones_is_an_error() {
        let (mut wal, _, _) = synced_a_unsynced_b_c();
        wal.sync().unwrap();
        let mut image = wal.disk().read(WAL_FILE).unwrap();
        image[HEADER_BYTES + 2] ^= 0x01; // inside A's payload
        let mut disk = MemDisk::new();
        disk.append(WAL_FILE, &image).unwrap();
        disk.sync(WAL_FILE).unwrap();
        disk.sync_dir().unwrap();
        match Wal::open(disk) {
            Err(WalError::Corrupt {
                offset_bytes,
                evidence_offset_bytes,
                ..
            }) => {
                assert_eq!(offset_bytes, 0);
                assert!(evidence_offset_bytes > 0);
            }
            other => panic!("expected Corrupt, got {other:?}"),
        }
    }

    #[test]
    fn conflicting_append_truncates_the_log_from_its_first_index() {
        let (mut wal, _) = open(MemDisk::new());
        wal.save(Some(hs(1, Some(1), 1)), &entries(1, 1..=5))
            .unwrap();
        wal.save(Some(hs(2, Some(2), 1)), &entries(2, 3..=4))
            .unwrap();
        assert_eq!(wal.last_index(), LogIndex(4));
        wal.save(None, &entries(3, 2..=2)).unwrap();
        assert_eq!(wal.last_index(), LogIndex(2));
        wal.sync().unwrap();
        let (_, state) = crash_and_reopen(wal, TailFate::Lost);
        assert_eq!(state.entries, vec![entry(1, 1), entry(3, 2)]);
        assert_eq!(state.hard_state, hs(2, Some(2), 1));
    }

    #[test]
    fn hard_state_last_save_wins() {
        let (mut wal, _) = open(MemDisk::new());
        wal.save(None, &entries(1, 1..=3)).unwrap();
        for hard_state in [
            hs(1, None, 0),
            hs(1, Some(3), 1),
            hs(4, None, 2),
            hs(4, Some(2), 3),
        ] {
            wal.save(Some(hard_state), &[]).unwrap();
        }
        wal.save(None, &entries(4, 4..=4)).unwrap();
        wal.sync().unwrap();
        let (_, state) = crash_and_reopen(wal, TailFate::Lost);
        assert_eq!(state.hard_state, hs(4, Some(2), 3));
        assert_eq!(last_index(&state), 4);
    }

    #[test]
    fn saving_nothing_writes_nothing() {
        let (mut wal, _) = open(MemDisk::new());
        wal.save(None, &[]).unwrap();
        wal.sync().unwrap();
        assert_eq!(wal.disk().stats().bytes_written, 0);
        assert_eq!(wal.disk().stats().syncs, 0);
    }

    #[test]
    fn invariant_violations_on_save_are_caught() {
        let cur = LogShape {
            hard_state: hs(3, Some(1), 2),
            entry_terms: vec![Term(1), Term(2), Term(3)],
        };
        let cases: Vec<(Option<HardState>, Vec<Entry>, &str)> = vec![
            (Some(hs(2, None, 2)), vec![], "TermDecreased"),
            (Some(hs(3, Some(2), 2)), vec![], "VoteChanged"),
            (Some(hs(3, None, 2)), vec![], "VoteChanged"),
            (Some(hs(3, Some(1), 1)), vec![], "CommitDecreased"),
            (Some(hs(3, Some(1), 4)), vec![], "CommitBeyondLog"),
            (None, vec![entry(3, 5)], "Gap"),
            (None, vec![entry(3, 0)], "Gap"),
            (None, vec![entry(3, 4), entry(3, 6)], "NotContiguous"),
            (None, vec![entry(3, 2)], "TruncatesCommitted"),
            (None, vec![entry(2, 4)], "EntryTermDecreased"),
            (None, vec![entry(3, 4), entry(2, 5)], "EntryTermDecreased"),
        ];
        for (hard_state, new_entries, expected) in cases {
            let violation = cur.check(hard_state.as_ref(), &new_entries).unwrap_err();
            assert!(
                format!("{violation:?}").starts_with(expected),
                "{violation:?}"
            );
        }
        // Allowed: a new vote in a new term, the first vote of a term, replacing uncommitted
        // entries, and a commit that covers entries saved in the same record.
        assert!(cur.check(Some(&hs(4, None, 2)), &[]).is_ok());
        let no_vote = LogShape {
            hard_state: hs(3, None, 2),
            ..cur.clone()
        };
        assert!(no_vote.check(Some(&hs(3, Some(2), 2)), &[]).is_ok());
        assert!(cur
            .check(Some(&hs(4, Some(1), 4)), &[entry(4, 3), entry(4, 4)])
            .is_ok());
    }

    #[test]
    #[should_panic(expected = "breaks a log invariant")]
    fn save_panics_on_a_gap() {
        let (mut wal, _) = open(MemDisk::new());
        wal.save(None, &[entry(1, 2)]).unwrap();
    }

    #[test]
    fn a_failed_sync_makes_the_wal_refuse_further_work() {
        struct SyncFails(MemDisk);
        impl Disk for SyncFails {
            fn append(&mut self, file: &str, bytes: &[u8]) -> Result<(), DiskError> {
                self.0.append(file, bytes)
            }
            fn sync(&mut self, file: &str) -> Result<(), DiskError> {
                Err(DiskError::Io {
                    op: "sync",
                    file: file.to_owned(),
                    source: std::io::Error::other("injected"),
                })
            }
            fn read(&self, file: &str) -> Result<Vec<u8>, DiskError> {
                self.0.read(file)
            }
            fn truncate(&mut self, file: &str, len_bytes: u64) -> Result<(), DiskError> {
                self.0.truncate(file, len_bytes)
            }
            fn remove(&mut self, file: &str) -> Result<(), DiskError> {
                self.0.remove(file)
            }
            fn rename(&mut self, from: &str, to: &str) -> Result<(), DiskError> {
                self.0.rename(from, to)
            }
            fn sync_dir(&mut self) -> Result<(), DiskError> {
                self.0.sync_dir()
            }
            fn list(&self) -> Result<Vec<String>, DiskError> {
                self.0.list()
            }
        }
        let (mut wal, _) = Wal::open(SyncFails(MemDisk::new())).unwrap();
        wal.save(None, &[entry(1, 1)]).unwrap();
        assert!(matches!(
            wal.sync(),
            Err(WalError::Disk(DiskError::Io { .. }))
        ));
        assert!(matches!(wal.sync(), Err(WalError::Failed)));
        assert!(matches!(
            wal.save(None, &[entry(1, 2)]),
            Err(WalError::Failed)
        ));
    }

    #[test]
    fn an_oversized_record_is_refused_before_writing() {
        let (mut wal, _) = open(MemDisk::new());
        let big = Entry {
            term: Term(1),
            index: LogIndex(1),
            data: vec![0; MAX_RECORD_BYTES as usize],
        };
        assert!(matches!(
            wal.save(None, &[big]),
            Err(WalError::RecordTooLarge { .. })
        ));
        assert_eq!(wal.disk().stats().bytes_written, 0);
        wal.save(None, &[entry(1, 1)]).unwrap();
    }

    #[test]
    fn the_node_can_use_a_shared_boxed_disk() {
        use std::sync::{Arc, Mutex};
        let shared = Arc::new(Mutex::new(MemDisk::new()));
        let node_disk: Box<dyn Disk + Send> = Box::new(Arc::clone(&shared));
        let (mut wal, _): (Wal, PersistedState) = Wal::open(node_disk).unwrap();
        wal.save(Some(hs(1, Some(1), 0)), &entries(1, 1..=2))
            .unwrap();
        wal.sync().unwrap();
        wal.save(None, &entries(1, 3..=3)).unwrap();
        drop(wal); // the node dies; the simulator still holds the disk
        shared
            .lock()
            .unwrap()
            .crash(&CrashFault::lose_all_unsynced());
        let node_disk: Box<dyn Disk + Send> = Box::new(shared);
        let (_, state): (Wal, PersistedState) = Wal::open(node_disk).unwrap();
        assert_eq!(last_index(&state), 2);
    }
}
