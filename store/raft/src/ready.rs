//! The hand-off between the pure state machine and the node that does the I/O.

use serde::{Deserialize, Serialize};

use crate::types::{Entry, HardState, Message, ReadState, Snapshot, SoftState};

/// Everything the node must do since the last `Ready`, taken by `Raft::ready` and
/// acknowledged by `Raft::advance`.
///
/// # Order contract
/// 1. Durably persist, in this order: `snapshot` (if `Some`: it replaces the whole persisted
///    log, so drop every persisted entry), then `hard_state` (if `Some`) and `entries`,
///    truncating any persisted entries at index `>= entries[0].index` first. A follower's vote
///    and term, the entries a follower acknowledges and a snapshot it acknowledges must be on
///    disk before anyone hears about them.
/// 2. Only then send `messages`, in any order (the network reorders them anyway).
/// 3. Apply, after step 1: first `snapshot` (replace the state machine with one restored from
///    `snapshot.data`; its `metadata.conf_state` is the membership from then on), then
///    `committed_entries` in order (they may include entries from this `Ready`'s `entries`,
///    and follow the snapshot); skip entries with empty `data` as commands: a new leader's
///    no-op, or a membership change (`EntryKind::ConfChange`), which Raft has already put in
///    force and which tells the node who joined or left.
/// 4. Serve each of `read_states` once the applied index is `>= index`.
/// 5. Call `Raft::advance(&ready)`, and only then `Raft::ready` again.
///
/// `soft_state` is informational and needs no persistence.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ready {
    /// `Some` when leader, role or term changed since the previous `Ready`.
    pub soft_state: Option<SoftState>,
    /// `Some` when term, vote or commit changed since the previous `Ready`.
    pub hard_state: Option<HardState>,
    /// A snapshot from the leader that replaced this follower's log (its commit index lay
    /// below the snapshot's index): persist it, then restore the state machine from it.
    /// Never the node's own snapshot from `Raft::compact`, which the node already holds.
    pub snapshot: Option<Snapshot>,
    /// Entries to append to stable storage, contiguous; the first may overwrite (truncate)
    /// entries persisted earlier. After a `snapshot`, they start just after its index.
    pub entries: Vec<Entry>,
    /// To send after `snapshot`, `hard_state` and `entries` are durable.
    pub messages: Vec<Message>,
    /// Entries known committed, to apply in order (after `snapshot`, if any).
    pub committed_entries: Vec<Entry>,
    /// Confirmed ReadIndex requests.
    pub read_states: Vec<ReadState>,
}

impl Ready {
    /// True if there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.soft_state.is_none()
            && self.hard_state.is_none()
            && self.snapshot.is_none()
            && self.entries.is_empty()
            && self.messages.is_empty()
            && self.committed_entries.is_empty()
            && self.read_states.is_empty()
    }
}
