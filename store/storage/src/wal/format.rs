//! How WAL records are framed, encoded and read back.
//!
//! ```text
//! [payload length: u32 LE][crc32 of (length bytes ++ payload): u32 LE][payload]
//! ```
//! The payload is a bincode (varint) [`Frame`]: `synced_len_bytes`, how much of its segment
//! was durable when the record was written (what lets recovery tell a damaged unsynced tail
//! from damaged synced data), and the record itself.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use faultline_raft::{Entry, HardState, LogIndex, Term};

/// The largest payload of one record (one `save`): 64 MiB.
pub const MAX_RECORD_BYTES: u32 = 64 << 20;
pub(crate) const HEADER_BYTES: usize = 8;

/// A point in the log: an index and the term of the entry there.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub(crate) struct LogPoint {
    pub index: LogIndex,
    pub term: Term,
}

/// The first record of every segment: enough to read the segment without the ones before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SegmentHeader {
    /// The segment's sequence number, as in its name.
    pub seq: u64,
    /// The full hard state when the segment began.
    pub hard_state: HardState,
    /// The latest snapshot marker when the segment began ((0, 0) if none).
    pub snapshot: LogPoint,
    /// The last index of the log, and its term, when the segment began.
    pub last: LogPoint,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Record<'a> {
    Header(SegmentHeader),
    /// One `Wal::save`: entries replace every entry at or after `entries[0].index`.
    Save {
        hard_state: Option<HardState>,
        entries: Cow<'a, [Entry]>,
    },
    /// The log now starts after a snapshot at `at`; it keeps the entries up to
    /// `retained_last` (the old last index if the log held `at`, else `at.index`: none).
    Marker {
        at: LogPoint,
        retained_last: LogIndex,
    },
}

#[derive(Serialize, Deserialize)]
pub(crate) struct Frame<'a> {
    pub synced_len_bytes: u64,
    pub record: Record<'a>,
}

fn codec() -> impl bincode::Options {
    use bincode::Options;
    bincode::DefaultOptions::new()
        .with_limit(u64::from(MAX_RECORD_BYTES))
        .reject_trailing_bytes()
}

/// The framed bytes of `frame`, or the encoded length if it exceeds [`MAX_RECORD_BYTES`].
pub(crate) fn encode(frame: &Frame<'_>) -> Result<Vec<u8>, u64> {
    // `codec()`'s bytes without its limit (a limit only stops the encoder, it changes no
    // byte), so the frame is walked once, not measured first and then written; the limit is
    // checked on the result.
    let payload = bincode::Options::serialize(bincode::DefaultOptions::new(), frame)
        .unwrap_or_else(|e| panic!("encoding a WAL record cannot fail: {e}"));
    let len = match u32::try_from(payload.len()) {
        Ok(len) if len <= MAX_RECORD_BYTES => len,
        _ => return Err(payload.len() as u64),
    };
    let mut bytes = Vec::with_capacity(HEADER_BYTES + payload.len());
    bytes.extend_from_slice(&len.to_le_bytes());
    bytes.extend_from_slice(&checksum(len.to_le_bytes(), &payload).to_le_bytes());
    bytes.extend_from_slice(&payload);
    Ok(bytes)
}

fn checksum(len_field: [u8; 4], payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&len_field);
    hasher.update(payload);
    hasher.finalize()
}

pub(crate) enum Parsed {
    /// No bytes left.
    End,
    /// A whole record with a valid checksum, and where the next one starts.
    Record { frame: Frame<'static>, next: usize },
    /// A checksummed record that does not decode.
    Undecodable { reason: String, next: usize },
    /// Torn or failing its checksum. `next` is where the next record would start if the
    /// length field can be trusted.
    Damaged { reason: String, next: Option<usize> },
}

pub(crate) fn parse_at(bytes: &[u8], pos: usize) -> Parsed {
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
    match bincode::Options::deserialize::<Frame<'static>>(codec(), payload) {
        Ok(frame) => Parsed::Record { frame, next },
        Err(e) => Parsed::Undecodable {
            reason: format!("undecodable payload: {e}"),
            next,
        },
    }
}

/// The offset of a valid record after the damaged one at `damaged_at` that was written when
/// `damaged_at` was already durable, if there is one: proof that synced data was damaged.
pub(crate) fn synced_evidence(
    bytes: &[u8],
    damaged_at: usize,
    mut next: Option<usize>,
) -> Option<usize> {
    // Every step moves forward by at least one header, so this ends.
    while let Some(pos) = next {
        next = match parse_at(bytes, pos) {
            Parsed::End => None,
            Parsed::Record { frame, next } => {
                if frame.synced_len_bytes > damaged_at as u64 {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn save_frame(synced_len_bytes: u64, data_len: usize) -> Frame<'static> {
        let entry = Entry {
            term: Term(1),
            index: LogIndex(1),
            data: vec![7; data_len],
            kind: faultline_raft::EntryKind::Normal,
        };
        Frame {
            synced_len_bytes,
            record: Record::Save {
                hard_state: None,
                entries: Cow::Owned(vec![entry]),
            },
        }
    }

    #[test]
    fn every_record_kind_round_trips() {
        let header = SegmentHeader {
            seq: 3,
            hard_state: HardState {
                term: Term(2),
                vote: None,
                commit: LogIndex(4),
            },
            snapshot: LogPoint {
                index: LogIndex(2),
                term: Term(1),
            },
            last: LogPoint {
                index: LogIndex(5),
                term: Term(2),
            },
        };
        let marker = Record::Marker {
            at: header.snapshot,
            retained_last: LogIndex(5),
        };
        let records = [Record::Header(header), marker, save_frame(9, 3).record];
        let mut bytes = Vec::new();
        for record in &records {
            let frame = Frame {
                synced_len_bytes: 9,
                record: record.clone(),
            };
            bytes.extend(encode(&frame).unwrap());
        }
        let mut pos = 0;
        for expected in &records {
            match parse_at(&bytes, pos) {
                Parsed::Record { frame, next } => {
                    assert_eq!(&frame.record, expected);
                    assert_eq!(frame.synced_len_bytes, 9);
                    pos = next;
                }
                _ => panic!("record at {pos} does not parse"),
            }
        }
        assert!(matches!(parse_at(&bytes, pos), Parsed::End));
    }

    #[test]
    fn damage_is_classified() {
        let bytes = encode(&save_frame(0, 5)).unwrap();
        let torn = &bytes[..bytes.len() - 1];
        assert!(matches!(
            parse_at(torn, 0),
            Parsed::Damaged { next: None, .. }
        ));
        assert!(matches!(
            parse_at(&bytes[..3], 0),
            Parsed::Damaged { next: None, .. }
        ));
        let mut flipped = bytes.clone();
        *flipped.last_mut().unwrap() ^= 1;
        let next = Some(bytes.len());
        assert!(matches!(parse_at(&flipped, 0), Parsed::Damaged { next: n, .. } if n == next));
        // A later record written when the damaged one was synced is the evidence.
        let mut two = flipped.clone();
        two.extend(encode(&save_frame(bytes.len() as u64, 1)).unwrap());
        assert_eq!(synced_evidence(&two, 0, next), Some(bytes.len()));
        let mut unsynced = flipped;
        unsynced.extend(encode(&save_frame(0, 1)).unwrap());
        assert_eq!(synced_evidence(&unsynced, 0, next), None);
    }

    #[test]
    fn an_oversized_record_reports_its_length() {
        let frame = save_frame(0, MAX_RECORD_BYTES as usize);
        let len = encode(&frame).unwrap_err();
        assert!(len > u64::from(MAX_RECORD_BYTES));
    }
}
