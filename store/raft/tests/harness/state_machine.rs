//! The harness's state machine is the list of applied entries; its snapshot is that list,
//! encoded self-contained (per entry: index, term, data length, data, then the kind:
//! little-endian integers), so a restored state machine can be compared entry by entry with
//! the committed log.

use faultline_raft::{
    ConfChange, ConfChangeType, ConfState, Entry, EntryKind, LogIndex, NodeId, Term,
};

fn put(bytes: &mut Vec<u8>, value: u64) {
    bytes.extend_from_slice(&value.to_le_bytes());
}

pub fn encode(entries: &[Entry]) -> Vec<u8> {
    let mut bytes = Vec::new();
    for entry in entries {
        put(&mut bytes, entry.index.0);
        put(&mut bytes, entry.term.0);
        put(&mut bytes, entry.data.len() as u64);
        bytes.extend_from_slice(&entry.data);
        match &entry.kind {
            EntryKind::Normal => put(&mut bytes, 0),
            EntryKind::ConfChange { change, conf_state } => {
                put(&mut bytes, 1 + change.change_type as u64);
                put(&mut bytes, change.node.0);
                for set in [&conf_state.voters, &conf_state.learners] {
                    put(&mut bytes, set.len() as u64);
                    for id in set {
                        put(&mut bytes, id.0);
                    }
                }
            }
        }
    }
    bytes
}

/// Reads little-endian words and byte strings off the front of a snapshot.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn bytes(&mut self, count: usize) -> Vec<u8> {
        let (head, tail) = self.0.split_at(count);
        self.0 = tail;
        head.to_vec()
    }

    fn word(&mut self) -> Option<u64> {
        (self.0.len() >= 8).then(|| u64::from_le_bytes(self.bytes(8).try_into().expect("8")))
    }
}

pub fn decode(bytes: &[u8]) -> Vec<Entry> {
    let mut reader = Reader(bytes);
    let mut entries = Vec::new();
    while let Some(index) = reader.word() {
        let mut next = || reader.word();
        let term = next().expect("term");
        let len = next().expect("length");
        let data = reader.bytes(len as usize);
        let mut next = || reader.word();
        let kind = match next().expect("kind") {
            0 => EntryKind::Normal,
            tag => {
                let change_type = [
                    ConfChangeType::AddVoter,
                    ConfChangeType::AddLearner,
                    ConfChangeType::PromoteLearner,
                    ConfChangeType::RemoveNode,
                ][(tag - 1) as usize];
                let node = NodeId(next().expect("node"));
                let mut set = || {
                    let count = next().expect("count");
                    (0..count).map(|_| NodeId(next().expect("id"))).collect()
                };
                let (voters, learners) = (set(), set());
                EntryKind::ConfChange {
                    change: ConfChange { change_type, node },
                    conf_state: ConfState { voters, learners },
                }
            }
        };
        entries.push(Entry {
            term: Term(term),
            index: LogIndex(index),
            data,
            kind,
        });
    }
    entries
}
