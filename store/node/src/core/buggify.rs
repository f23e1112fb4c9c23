//! BUGGIFY points (FoundationDB's idea): rare paths of the member taken on purpose in
//! simulation, each with the chance its seed drew (`NodeConfig::buggify`). Draws come from
//! the member's own seeded stream and happen only for a point that is on, so a run without
//! BUGGIFY draws exactly what it always drew. A real build (no `cfg(madsim)`) never fires.

use faultline_api::EtcdError;
use rand::Rng;
use tokio::time::Instant;

use crate::{NodeEvent, Reply};

use super::NodeCore;

impl NodeCore {
    /// Does the point fire now? `percent` is its chance per pass.
    fn buggify_fires(&mut self, point: &str, percent: u32) -> bool {
        if !cfg!(madsim) || percent == 0 {
            return false;
        }
        let fired = self.buggify_rng.random_range(0..100) < percent;
        if fired {
            let point = point.to_owned();
            self.observer
                .on_event(self.config.id, NodeEvent::Buggified { point });
        }
        fired
    }

    /// BUGGIFY: the proposal is dropped before Raft appends it; its client waits until its
    /// deadline and gets `Timeout` (an unknown outcome: it must retry or give up). True when
    /// the reply was taken.
    pub(super) fn buggify_drop_proposal(
        &mut self,
        reply: Reply,
        deadline: Instant,
    ) -> Option<Reply> {
        let percent = self.config.buggify.drop_proposal_percent;
        if !self.buggify_fires("drop-proposal", percent) {
            return Some(reply);
        }
        self.dropped_proposals.push((reply, deadline));
        None
    }

    /// Answer the dropped proposals whose deadline passed.
    pub(super) fn expire_dropped_proposals(&mut self, now: Instant) {
        let (expired, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut self.dropped_proposals)
            .into_iter()
            .partition(|(_, deadline)| *deadline <= now);
        self.dropped_proposals = kept;
        for (reply, _) in expired {
            let _ = reply.send(Err(EtcdError::Timeout));
        }
    }
}
