//! Peer cuts, link cuts and new-leader cuts: the nemesis's network faults between members
//! (clients still reach every member). The new-leader cuts fire from inside a member's
//! task (through [`LeaderCutObserver`]), so this file depends on nothing else of the runner.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::peer_net;
use faultline_node::{NodeEvent, Observer};
use madsim::runtime::NodeHandle;
use rand::Rng;

use crate::plan::{Fault, IsolateTarget};
use crate::trace::{Recorder, TraceEvent};

/// Directed links (from, to) between members.
type DirectedLinks = Vec<(u64, u64)>;

#[derive(Clone, Copy, PartialEq, Eq)]
enum LinkState {
    Cut,
    Restored,
}

/// Which members are cut from their peers (links between members only; clients still reach
/// them), and by how many faults at once.
#[derive(Default)]
pub(super) struct PeerCuts {
    pub(super) node_ids: BTreeMap<u64, madsim::task::NodeId>,
    counts: BTreeMap<u64, u32>,
    /// Directed links (from, to) cut by link faults (one-way cuts, bridges, splits, rings),
    /// and by how many at once.
    links: BTreeMap<(u64, u64), u32>,
    /// Set by the final heal: from then on no cut starts or ends (a new-leader cut's timer
    /// may still fire).
    healed: bool,
    /// Groups cut off from the other members (zone cuts), with the links each cut, so that
    /// its end restores those links even if members joined meanwhile.
    groups: Vec<(Vec<u64>, DirectedLinks)>,
}

impl PeerCuts {
    pub(super) fn cut(&mut self, member: u64) {
        if self.healed {
            return;
        }
        let count = self.counts.entry(member).or_insert(0);
        *count += 1;
        if *count == 1 {
            self.set_links(member, LinkState::Cut);
        }
    }

    pub(super) fn restore(&mut self, member: u64) {
        if self.healed {
            return;
        }
        let count = self.counts.get_mut(&member).expect("cut before restored");
        *count -= 1;
        if *count == 0 {
            self.counts.remove(&member);
            self.set_links(member, LinkState::Restored);
        }
    }

    /// Cut the messages from `from` to `to` (the other direction is left alone).
    pub(super) fn cut_link(&mut self, from: u64, to: u64) {
        if self.healed {
            return;
        }
        let count = self.links.entry((from, to)).or_insert(0);
        *count += 1;
        if *count == 1 {
            peer_net::clog_link(self.node_ids[&from], self.node_ids[&to]);
        }
    }

    /// Undo one `cut_link`; the link delivers again once no fault holds it.
    pub(super) fn restore_link(&mut self, from: u64, to: u64) {
        if self.healed {
            return;
        }
        let count = self
            .links
            .get_mut(&(from, to))
            .expect("cut before restored");
        *count -= 1;
        if *count == 0 {
            self.links.remove(&(from, to));
            if self.link_free(from, to) {
                peer_net::unclog_link(self.node_ids[&from], self.node_ids[&to]);
            }
        }
    }

    /// Cut every link between `group` and the other members, both ways (a zone cut off).
    pub(super) fn cut_group(&mut self, group: &[u64]) {
        if self.healed {
            return;
        }
        let all: Vec<u64> = self.node_ids.keys().copied().collect();
        let links = crate::plan::group_cut_links(group, &all);
        for &(from, to) in &links {
            self.cut_link(from, to);
        }
        self.groups.push((group.to_vec(), links));
    }

    /// Undo one `cut_group` of the same group: the links it cut.
    pub(super) fn restore_group(&mut self, group: &[u64]) {
        if self.healed {
            return;
        }
        let at = self
            .groups
            .iter()
            .position(|(g, _)| g == group)
            .expect("cut before restored");
        let (_, links) = self.groups.remove(at);
        for (from, to) in links {
            self.restore_link(from, to);
        }
    }

    /// No fault holds the directed link: neither end is cut from its peers, no link fault
    /// cuts it.
    fn link_free(&self, from: u64, to: u64) -> bool {
        !self.counts.contains_key(&from)
            && !self.counts.contains_key(&to)
            && !self.links.contains_key(&(from, to))
    }

    pub(super) fn heal_all(&mut self) {
        for member in std::mem::take(&mut self.counts).into_keys() {
            self.set_links(member, LinkState::Restored);
        }
        for (from, to) in std::mem::take(&mut self.links).into_keys() {
            peer_net::unclog_link(self.node_ids[&from], self.node_ids[&to]);
        }
        self.groups.clear();
        self.healed = true;
    }

    /// Cut or restore both directions of every link between `member` and the other members.
    /// A link stays cut while either end is cut off from its peers.
    fn set_links(&self, member: u64, state: LinkState) {
        let this = self.node_ids[&member];
        for (&other, &node) in &self.node_ids {
            if other == member {
                continue;
            }
            match state {
                LinkState::Cut => {
                    peer_net::clog_link(this, node);
                    peer_net::clog_link(node, this);
                }
                LinkState::Restored => {
                    if self.link_free(member, other) {
                        peer_net::unclog_link(this, node);
                    }
                    if self.link_free(other, member) {
                        peer_net::unclog_link(node, this);
                    }
                }
            }
        }
    }
}

/// The `CutNewLeaders` nemesis. It acts from inside the member's task, at the moment the
/// member reports leadership: madsim decides a message's fate when it is sent, so only then
/// does a delay of zero beat the new leader's first append.
pub(super) struct LeaderCuts {
    /// Open windows as (delay_max_ms, hold_max_ms); the latest opened applies.
    pub(super) open: Vec<(u64, u64)>,
    pub(super) rng: rand_chacha::ChaCha8Rng,
    pub(super) peer_cuts: Arc<Mutex<PeerCuts>>,
    pub(super) recorder: Arc<Recorder>,
    /// A node of the simulator's own runs the cut timers (a member's node dies with it).
    pub(super) timer: NodeHandle,
}

impl LeaderCuts {
    pub(super) fn leader_elected(cuts: &Mutex<LeaderCuts>, member: u64) {
        let mut this = cuts.lock().expect("leader cuts");
        let Some(&(delay_max_ms, hold_max_ms)) = this.open.last() else {
            return;
        };
        let delay_ms = if this.rng.random_bool(0.5) {
            0
        } else {
            this.rng.random_range(1..=delay_max_ms.max(1))
        };
        let hold_ms = this
            .rng
            .random_range((hold_max_ms / 2).max(1)..=hold_max_ms.max(1));
        let peer_cuts = this.peer_cuts.clone();
        let recorder = this.recorder.clone();
        if delay_ms == 0 {
            set_leader_cut(&peer_cuts, &recorder, member, true);
        }
        this.timer.spawn(async move {
            if delay_ms > 0 {
                madsim::time::sleep(Duration::from_millis(delay_ms)).await;
                set_leader_cut(&peer_cuts, &recorder, member, true);
            }
            madsim::time::sleep(Duration::from_millis(hold_ms)).await;
            set_leader_cut(&peer_cuts, &recorder, member, false);
        });
    }
}

/// One new-leader cut starts or ends; recorded as a peer partition of that member.
fn set_leader_cut(peer_cuts: &Mutex<PeerCuts>, recorder: &Recorder, member: u64, cut: bool) {
    let mut peer_cuts = peer_cuts.lock().expect("peer cuts");
    if peer_cuts.healed {
        return;
    }
    let fault = Fault::PartitionFromPeers {
        target: IsolateTarget::Member(member),
    };
    let members = vec![member];
    if cut {
        recorder.record(TraceEvent::FaultStart { fault, members });
        peer_cuts.cut(member);
    } else {
        recorder.record(TraceEvent::FaultEnd { fault, members });
        peer_cuts.restore(member);
    }
}

/// Members' observer when the plan has new-leader cuts: records, and tells the nemesis of
/// each new leader.
pub(super) struct LeaderCutObserver {
    pub(super) recorder: Arc<Recorder>,
    pub(super) cuts: Arc<Mutex<LeaderCuts>>,
}

impl Observer for LeaderCutObserver {
    fn on_moment(
        &self,
        member: u64,
        moment: faultline_node::Moment,
    ) -> faultline_node::MomentAction {
        self.recorder.on_moment(member, moment)
    }
    fn on_event(&self, member: u64, event: NodeEvent) {
        let elected = matches!(&event, NodeEvent::RoleChanged { role, .. } if role == "Leader");
        self.recorder.on_event(member, event);
        if elected {
            LeaderCuts::leader_elected(&self.cuts, member);
        }
    }
}
