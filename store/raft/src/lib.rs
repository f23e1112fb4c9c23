//! Raft as a pure state machine: no async, no I/O, no clock, no threads.
//!
//! The node owns time, disk and network; this crate only decides. In the style of
//! etcd-io/raft's `RawNode`, the node drives it like this:
//!
//! ```
//! use faultline_raft::{Config, NodeId, PersistedState, Raft};
//!
//! let config = Config {
//!     id: NodeId(1),
//!     voters: vec![NodeId(1)],
//!     election_timeout_ticks: 10,
//!     heartbeat_interval_ticks: 1,
//!     pre_vote: true,
//!     check_quorum: true,
//!     max_entries_per_append: 64,
//!     canary: None,
//! };
//! let mut raft = Raft::new(config, PersistedState::default(), 7);
//! // A single voter elects itself once its election timeout runs out.
//! for _ in 0..20 {
//!     raft.tick();
//! }
//! let mut applied = Vec::new();
//! let mut proposed = false;
//! for _ in 0..10 {
//!     if raft.status().leader == Some(NodeId(1)) && !proposed {
//!         raft.propose(b"x=1".to_vec()).unwrap();
//!         proposed = true;
//!     }
//!     while raft.has_ready() {
//!         let ready = raft.ready();
//!         // 1. persist ready.hard_state and ready.entries; 2. send ready.messages;
//!         // 3. apply ready.committed_entries (skipping empty no-op entries).
//!         for entry in &ready.committed_entries {
//!             if !entry.data.is_empty() {
//!                 applied.push(entry.data.clone());
//!             }
//!         }
//!         raft.advance(&ready);
//!     }
//! }
//! assert_eq!(applied, vec![b"x=1".to_vec()]);
//! ```
//!
//! Besides that loop (see [`Ready`] for the full order contract):
//! - **Log compaction**: once the state machine has applied index `i`, the node persists its
//!   snapshot of it and calls [`Raft::compact`]`(i, data)`; after a restart it passes that
//!   snapshot to [`Raft::recover`]. A follower that falls behind the leader's snapshot gets
//!   it in [`Ready::snapshot`], to persist and apply.
//! - **Membership**: [`Raft::propose_conf_change`] with a single-server [`ConfChange`]
//!   (one at a time, effective on append; see `raft/membership.rs` for the scheme and why
//!   it is safe); [`Raft::conf_state`] and [`Status::membership`] tell where a node stands.
//! - **Leader transfer**: [`Raft::transfer_leader`].
//! - **Flow control**: [`Limits`] and [`Raft::progress`].
//!
//! Everything random (election timeouts) comes from a ChaCha8 stream seeded by the caller, so
//! the same inputs always produce the same outputs.
//!
//! Canaries ([`Canary`]) are known safety bugs that the simulator and this crate's cluster
//! tests switch on at runtime (`Config::canary`) to prove they catch them. Their code paths
//! exist only with the `canaries` cargo feature; without it `Raft::new` refuses a canary.

mod conf;
mod ids;
mod log;
mod progress;
mod raft;
mod read_index;
mod ready;
mod types;

pub use conf::{ConfChange, ConfChangeError, ConfChangeType, ConfState, Membership};
pub use raft::Raft;
pub use ready::Ready;
pub use types::{
    AppendResult, Canary, Config, Entry, EntryKind, HardState, Limits, LogIndex, Message,
    MessageBody, NodeId, PeerProgress, PersistedState, ProgressState, ProposeError, ReadState,
    Role, Snapshot, SnapshotMetadata, SoftState, Status, Term, TransferError,
};

#[cfg(test)]
mod tests;
