//! Start and end of the fault kinds appended for issue 13's network and clock list: zone
//! cuts (link cuts through `PeerCuts::cut_group`), delay spikes, duplicated and reordered
//! messages (`messages.rs`), and clock jumps (`crate::clock::SkewClock::jump`). Kept out of
//! `nemesis.rs`, which only dispatches here.

use super::cluster::Cluster;
use crate::plan::Fault;
use crate::trace::TraceEvent;

/// Start one of this file's faults on the members it resolved to; false for other faults.
pub(super) fn start(fault: Fault, members: &[u64], cluster: &mut Cluster) -> bool {
    match fault {
        Fault::ZoneCut { .. } => cluster
            .peer_cuts
            .lock()
            .expect("peer cuts")
            .cut_group(members),
        Fault::DelaySpike { .. }
        | Fault::DuplicateMessages { .. }
        | Fault::ReorderMessages { .. } => {
            let chaos = cluster
                .message_chaos
                .as_ref()
                .expect("created for the plan");
            chaos
                .lock()
                .expect("message chaos")
                .open_window(fault, members);
        }
        Fault::ClockJump { jump_ms, .. } => {
            for member in members {
                cluster.clocks[member].jump(jump_ms);
            }
        }
        _ => return false,
    }
    true
}

/// End one of this file's faults (started by [`start`] on `members`); false for others.
pub(super) fn end(fault: Fault, members: &[u64], cluster: &mut Cluster) -> bool {
    match fault {
        Fault::ZoneCut { .. } => cluster
            .peer_cuts
            .lock()
            .expect("peer cuts")
            .restore_group(members),
        Fault::DelaySpike { .. }
        | Fault::DuplicateMessages { .. }
        | Fault::ReorderMessages { .. } => {
            let chaos = cluster
                .message_chaos
                .as_ref()
                .expect("created for the plan");
            let tally = chaos
                .lock()
                .expect("message chaos")
                .close_window(fault, members);
            if let Some(batches) = tally {
                cluster.recorder.record(TraceEvent::MessagesTampered {
                    fault,
                    members: members.to_vec(),
                    batches,
                });
            }
        }
        // A forward jump is not undone; a standstill that has not caught up yet ends.
        Fault::ClockJump { jump_ms, .. } => {
            if jump_ms < 0 {
                for member in members {
                    cluster.clocks[member].end_standstill();
                }
            }
        }
        _ => return false,
    }
    true
}
