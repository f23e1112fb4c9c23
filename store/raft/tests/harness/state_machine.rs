//! The harness's state machine is the list of applied entries; its snapshot is that list,
//! encoded self-contained (index, term, length, data per entry, little-endian), so a restored
//! state machine can be compared entry by entry with the committed log.

use faultline_raft::{Entry, LogIndex, Term};

pub fn encode(entries: &[Entry]) -> Vec<u8> {
    let mut bytes = Vec::new();
    for entry in entries {
        bytes.extend_from_slice(&entry.index.0.to_le_bytes());
        bytes.extend_from_slice(&entry.term.0.to_le_bytes());
        bytes.extend_from_slice(&(entry.data.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&entry.data);
    }
    bytes
}

pub fn decode(mut bytes: &[u8]) -> Vec<Entry> {
    fn take<'a>(bytes: &mut &'a [u8], count: usize) -> &'a [u8] {
        let (head, tail) = bytes.split_at(count);
        *bytes = tail;
        head
    }
    let mut entries = Vec::new();
    while !bytes.is_empty() {
        let index = u64::from_le_bytes(take(&mut bytes, 8).try_into().expect("8 bytes"));
        let term = u64::from_le_bytes(take(&mut bytes, 8).try_into().expect("8 bytes"));
        let len = u32::from_le_bytes(take(&mut bytes, 4).try_into().expect("4 bytes"));
        let data = take(&mut bytes, len as usize).to_vec();
        entries.push(Entry {
            term: Term(term),
            index: LogIndex(index),
            data,
        });
    }
    entries
}
