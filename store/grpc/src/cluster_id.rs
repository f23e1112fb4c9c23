//! The cluster ID a real server process serves: every response header carries it. One process
//! is one member of one cluster, so a process-wide value is the truth there; the simulator
//! (many members, many clusters in one process) never sets it, and headers keep the member's.

use std::sync::OnceLock;

static SERVED_CLUSTER_ID: OnceLock<u64> = OnceLock::new();

pub fn served_cluster_id() -> Option<u64> {
    SERVED_CLUSTER_ID.get().copied()
}

/// Set once by `faultline-server` when its identity is known.
pub fn serve_cluster_id(cluster_id: u64) {
    let first = *SERVED_CLUSTER_ID.get_or_init(|| cluster_id);
    assert_eq!(first, cluster_id, "one process serves one cluster");
}
