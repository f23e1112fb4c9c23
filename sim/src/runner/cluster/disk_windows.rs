//! The disk faults of the cluster's members: windows that open and close on a member's disk
//! (failing syncs, a full disk, failing reads, a slow disk) and rot of its synced bytes.

use faultline_storage::DiskFaults;

use super::Cluster;
use crate::trace::TraceEvent;

impl Cluster {
    /// A disk fault window opens on the member: its disk fails syncs or refuses writes (the
    /// member must stop at the first error) until the window closes.
    pub(in crate::runner) fn start_disk_fault(&mut self, member: u64, fault: DiskFaults) {
        if self.retired.contains(&member) {
            return;
        }
        self.disk_faults.entry(member).or_default().push(fault);
        self.apply_disk_faults(member);
    }

    /// The window closes: the fault is lifted, and the member, stopped by it or not, is
    /// crashed (a power loss: the bytes a failed sync covered are lost) and restarted,
    /// unless the fault only slowed the disk down (the member went on).
    pub(in crate::runner) fn end_disk_fault(&mut self, member: u64, fault: DiskFaults) {
        let Some(windows) = self.disk_faults.get_mut(&member) else {
            return; // retired while the window was open
        };
        let at = windows
            .iter()
            .position(|w| *w == fault)
            .expect("opened before");
        windows.remove(at);
        if windows.is_empty() {
            self.disk_faults.remove(&member);
        }
        self.apply_disk_faults(member);
        if fault.fails_operations() {
            self.crash(member);
            self.restart(member);
        }
    }

    pub(super) fn apply_disk_faults(&mut self, member: u64) {
        let windows = self.disk_faults.get(&member).map_or(&[][..], Vec::as_slice);
        let faults = DiskFaults {
            fail_syncs: windows.iter().any(|w| w.fail_syncs),
            full: windows.iter().any(|w| w.full),
            fail_reads: windows.iter().any(|w| w.fail_reads),
            sync_delay_ms: windows.iter().map(|w| w.sync_delay_ms).max().unwrap_or(0),
        };
        self.disks[&member].lock().expect("disk").set_faults(faults);
    }

    /// Crash the member, then rot one synced byte of its disk (drawn by `pick`).
    pub(in crate::runner) fn crash_and_rot(&mut self, member: u64, pick: u64) {
        if self.retired.contains(&member) {
            return;
        }
        self.crash(member);
        // One member's data at a time: two members that lose theirs before the first is
        // replaced leave three members without a quorum for good, beyond what Raft tolerates
        // (etcd's answer is disaster recovery from a backup, not a fault to survive).
        let mut rot_unresolved = self.rot_unresolved.lock().expect("rot");
        let rot = if rot_unresolved.is_empty() {
            crate::disk::rot_synced_byte(&mut self.disks[&member].lock().expect("disk"), pick)
        } else {
            None
        };
        if rot.is_some() {
            self.rotted.insert(member);
            rot_unresolved.insert(member);
        }
        self.recorder
            .record(TraceEvent::SyncedByteRot { member, rot });
    }

    /// The operator is done with a member whose bytes rotted (it started anyway, or it was
    /// replaced, or the replacement gave up): another member's disk may rot now.
    pub(in crate::runner) fn rot_resolved(&mut self, member: u64) {
        self.rot_unresolved.lock().expect("rot").remove(&member);
    }
}
