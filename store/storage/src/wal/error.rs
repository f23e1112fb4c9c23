//! The WAL's error type.

use super::format::MAX_RECORD_BYTES;
use crate::disk::DiskError;

/// An error from the WAL.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    #[error(transparent)]
    Disk(#[from] DiskError),
    /// Data that was synced is damaged. Never caused by a power loss; never silently dropped.
    #[error("WAL segment {file} corrupt at byte {offset_bytes}: {reason}; {evidence}")]
    Corrupt {
        file: String,
        offset_bytes: u64,
        reason: String,
        /// Why the damaged bytes must have been synced.
        evidence: String,
    },
    /// A record passed its checksum but cannot be decoded or breaks a log invariant (written
    /// by a buggy or different version of this code), or segments are missing.
    #[error("WAL segment {file}, record at byte {offset_bytes} is invalid: {reason}")]
    Invalid {
        file: String,
        offset_bytes: u64,
        reason: String,
    },
    /// One record would exceed [`MAX_RECORD_BYTES`]; nothing was written.
    #[error("WAL record of {len_bytes} bytes exceeds the limit of {MAX_RECORD_BYTES}")]
    RecordTooLarge { len_bytes: u64 },
    /// An earlier write or sync failed, so the files' state is unknown (a failed fsync cannot
    /// be retried: the kernel may have dropped the dirty pages). Restart and recover.
    #[error("WAL unusable after an earlier disk error; restart to recover")]
    Failed,
}
