//! BUGGIFY points (FoundationDB's idea): rare paths of the member taken on purpose in
//! simulation, each with the chance its seed drew (`NodeConfig::buggify`). Draws come from
//! the member's own seeded stream and happen only for a point that is on, so a run without
//! BUGGIFY draws exactly what it always drew. A real build (no `cfg(madsim)`) never fires.

use faultline_api::{EtcdError, WatchResponse};
use faultline_raft::{LogIndex, Role};
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
        if self
            .dropped_proposals
            .iter()
            .all(|(_, deadline)| *deadline > now)
        {
            return; // every tick: no allocation when nothing expired
        }
        let (expired, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut self.dropped_proposals)
            .into_iter()
            .partition(|(_, deadline)| *deadline <= now);
        self.dropped_proposals = kept;
        for (reply, _) in expired {
            let _ = reply.send(Err(EtcdError::Timeout));
        }
    }

    /// BUGGIFY: a leader at least a catch-up margin of applied entries past its last
    /// snapshot compacts now, without waiting for the margin (`maybe_compact`), so a follower
    /// only slightly behind needs the snapshot where it would have been sent entries.
    /// Drawn only on a leader with that much applied, and only while the point is on.
    pub(super) fn buggify_snapshot_early(&mut self, last_snapshot: LogIndex) -> bool {
        let percent = self.config.buggify.snapshot_early_percent;
        let margin = self.config.snapshot_catch_up_entries.max(1);
        percent > 0
            && self.role == Role::Leader
            && self.applied.0 >= last_snapshot.0 + margin
            && self.buggify_fires("snapshot-early", percent)
    }

    /// BUGGIFY: a watch response with events of more than one revision (or, on a watch that
    /// asked for `fragment`, more than one event) is split into parts (see [`split_response`]).
    /// Drawn only for a response that can be split, and only while the point is on.
    pub(super) fn buggify_split_watch(
        &mut self,
        response: WatchResponse,
        fragment_watch: bool,
    ) -> Vec<WatchResponse> {
        let percent = self.config.buggify.split_watch_percent;
        if percent == 0 || cut_points(&response, fragment_watch).is_empty() {
            return vec![response];
        }
        if !self.buggify_fires("split-watch-response", percent) {
            return vec![response];
        }
        split_response(response, fragment_watch)
    }
}

/// Where a response may be cut: before an event of a new revision (etcd's Atomic guarantee:
/// a response holds whole revisions), or, on a `fragment` watch, before any event.
fn cut_points(response: &WatchResponse, fragment_watch: bool) -> Vec<usize> {
    let events = &response.events;
    (1..events.len())
        .filter(|&i| fragment_watch || events[i].kv.mod_revision != events[i - 1].kv.mod_revision)
        .collect()
}

/// The response cut at every cut point, each part with the response's header and watch.
/// On a `fragment` watch every part but the last says `fragment: true` (etcd: all parts but
/// the last of a split response), the last keeps the response's own flag; elsewhere no part
/// is a fragment, and each holds whole revisions.
pub(crate) fn split_response(response: WatchResponse, fragment_watch: bool) -> Vec<WatchResponse> {
    let cuts = cut_points(&response, fragment_watch);
    let mut parts = Vec::with_capacity(cuts.len() + 1);
    let mut template = response;
    let mut events = std::mem::take(&mut template.events);
    for &cut in cuts.iter().rev() {
        let tail = events.split_off(cut);
        parts.push(tail);
    }
    parts.push(events);
    parts.reverse();
    let count = parts.len();
    parts
        .into_iter()
        .enumerate()
        .map(|(i, events)| WatchResponse {
            events,
            fragment: if i + 1 < count {
                fragment_watch
            } else {
                template.fragment
            },
            ..template.clone()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use faultline_api::{Event, EventType, KeyValue, WatchResponse};

    use super::split_response;

    fn response(revisions: &[i64]) -> WatchResponse {
        WatchResponse {
            watch_id: 7,
            events: revisions
                .iter()
                .enumerate()
                .map(|(i, &rev)| Event {
                    kind: EventType::Put,
                    kv: KeyValue {
                        key: format!("k{i}").into_bytes(),
                        mod_revision: rev,
                        ..KeyValue::default()
                    },
                    prev_kv: None,
                })
                .collect(),
            ..WatchResponse::default()
        }
    }

    fn shape(parts: &[WatchResponse]) -> Vec<(Vec<i64>, bool)> {
        parts
            .iter()
            .map(|p| {
                let revs = p.events.iter().map(|e| e.kv.mod_revision).collect();
                (revs, p.fragment)
            })
            .collect()
    }

    /// Without `fragment`, a revision is never split (etcd's Atomic guarantee); with it, every
    /// event is a part and all parts but the last say `fragment: true`.
    #[test]
    fn a_split_keeps_revisions_whole_unless_the_watch_asked_for_fragments() {
        let parts = split_response(response(&[3, 3, 4, 5, 5]), false);
        assert_eq!(
            shape(&parts),
            vec![(vec![3, 3], false), (vec![4], false), (vec![5, 5], false)]
        );
        assert!(parts.iter().all(|p| p.watch_id == 7));
        let parts = split_response(response(&[3, 3, 4]), true);
        assert_eq!(
            shape(&parts),
            vec![(vec![3], true), (vec![3], true), (vec![4], false)]
        );
        // A fragment of the hub's own (size) split stays one in all its parts.
        let mut big = response(&[6, 6]);
        big.fragment = true;
        let parts = split_response(big, true);
        assert_eq!(shape(&parts), vec![(vec![6], true), (vec![6], true)]);
        // One revision, no fragments: nothing to cut.
        assert_eq!(split_response(response(&[8, 8]), false).len(), 1);
    }
}
