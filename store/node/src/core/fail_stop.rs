//! Fail-stop on a storage error: a member whose WAL or snapshot write or sync failed stops for
//! good (until restarted), as etcd does: its raft loop calls `lg.Fatal` when saving the hard
//! state and entries (WAL write and fsync) or a snapshot fails, so the process exits. After a
//! failed fsync nothing on disk can be trusted (Linux may have dropped the dirty pages and
//! will not report it again), so the member must neither acknowledge nor send anything that
//! depended on that write; recovery from what the disk holds after a restart is the only way on.

use crate::NodeEvent;

use super::NodeCore;

/// A failed write or sync of the member's storage: what the member was doing, and the error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct DiskFailure(String);

impl DiskFailure {
    pub(crate) fn new(what: &str, error: impl std::fmt::Display) -> DiskFailure {
        DiskFailure(format!("{what} failed: {error}"))
    }
}

impl std::fmt::Display for DiskFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl NodeCore {
    /// Stop for good: from now on `process_ready` returns no message and the member's loop
    /// ends (`stopped_by_disk`). Reported once.
    pub(super) fn fail_stop(&mut self, failure: DiskFailure) {
        if self.stopped_by_disk.is_some() {
            return;
        }
        tracing::error!(member = self.config.id, "stopping: {failure}");
        self.observer.on_event(
            self.config.id,
            NodeEvent::StoppedByDisk {
                error: failure.to_string(),
            },
        );
        self.stopped_by_disk = Some(failure);
    }

    /// True when the disk's operations so far took simulated time (a slow disk), which the
    /// member's loop must wait out before anything that depended on them happens.
    pub(super) fn disk_was_slow(&mut self) -> bool {
        self.disk_latency_ms += self.wal.take_latency_ms();
        self.disk_latency_ms > 0
    }

    /// The simulated time a slow disk's operations took since the last call (zero on a
    /// real disk): the member's loop sleeps it before this Ready's messages leave and
    /// before the next Ready, as a real fsync blocks etcd's raft loop.
    pub fn take_disk_stall(&mut self) -> std::time::Duration {
        self.disk_was_slow();
        std::time::Duration::from_millis(std::mem::take(&mut self.disk_latency_ms))
    }

    /// Why the member stopped, if a storage error stopped it.
    pub fn stopped_by_disk(&self) -> Option<String> {
        self.stopped_by_disk.as_ref().map(ToString::to_string)
    }
}
