//! What a running member reports about itself to its operator (a real server's `/readyz` and
//! `/metrics`). Read-only: answering never changes the member's state or its schedule.

use super::NodeCore;
use crate::MemberMetrics;

impl NodeCore {
    pub(crate) fn metrics(&self) -> MemberMetrics {
        let raft = self.raft.status();
        MemberMetrics {
            leader: raft.leader.map(|id| id.0),
            term: raft.term.0,
            commit_index: raft.commit.0,
            applied_index: self.applied.0,
            revision: self.kv.current_revision(),
            db_size_bytes: super::snapshot::encode_kv(&self.kv).len() as u64,
            watchers: self.hub.watcher_count() as u64,
            watch_streams: self.streams.len() as u64,
        }
    }
}
