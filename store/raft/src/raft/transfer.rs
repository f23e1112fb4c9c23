//! Leader transfer (Raft thesis §3.10). Not implemented yet: no transfer is ever in progress.

use super::*;

impl Raft {
    /// The node leadership is being handed to, if a transfer is in progress.
    pub(super) fn transfer_target(&self) -> Option<NodeId> {
        None
    }
}
