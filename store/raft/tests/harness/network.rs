//! The simulated network and the faults: cuts, partitions, crashes, loss, duplication and
//! delay.

use std::collections::BTreeSet;

use faultline_raft::{Message, NodeId};
use rand::seq::SliceRandom;
use rand::Rng;

use super::{describe, Cluster, InFlight, Violation};

impl Cluster {
    // -- Faults ----------------------------------------------------------------------------

    pub fn cut(&mut self, from: NodeId, to: NodeId) {
        self.cut_links.insert((from, to));
    }

    /// Cuts every link between `id` and the others, both ways.
    pub fn isolate(&mut self, id: NodeId) {
        for other in self.ids() {
            if other != id {
                self.cut(id, other);
                self.cut(other, id);
            }
        }
    }

    /// Cuts every link between the two sides of a split, both ways.
    pub fn partition(&mut self, side: &BTreeSet<NodeId>) {
        let ids = self.ids();
        for a in ids.iter().copied() {
            for b in ids.iter().copied() {
                if side.contains(&a) != side.contains(&b) {
                    self.cut(a, b);
                }
            }
        }
    }

    pub fn heal(&mut self) {
        self.cut_links.clear();
    }

    /// Reconnects `id` with everyone, leaving other cuts in place.
    pub fn reconnect(&mut self, id: NodeId) {
        self.cut_links.retain(|(from, to)| *from != id && *to != id);
    }

    // -- Network ---------------------------------------------------------------------------

    pub(super) fn enqueue(&mut self, msg: Message) {
        let faults = self.faults.clone();
        if faults.drop_per_mille > 0 && self.rng.random_range(0..1000) < faults.drop_per_mille {
            return;
        }
        let copies = if faults.duplicate_per_mille > 0
            && self.rng.random_range(0..1000) < faults.duplicate_per_mille
        {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let delay = if faults.max_delay_ticks > 0 {
                self.rng.random_range(0..=faults.max_delay_ticks)
            } else {
                0
            };
            self.network.push(InFlight {
                deliver_at_tick: self.now_ticks + delay,
                msg: msg.clone(),
            });
        }
    }

    fn deliver(&mut self, msg: Message) -> Result<(), Violation> {
        let to = msg.to;
        if self.cut_links.contains(&(msg.from, to)) || !self.is_live(to) {
            return Ok(());
        }
        if let Some(events) = &mut self.events {
            events.push(describe::message(&msg));
        }
        self.stats.messages_delivered += 1;
        self.nodes.get_mut(&to).expect("live").step(msg);
        self.process_ready(to)?;
        self.check()
    }

    /// Delivers, in random order, every message due by now (messages queued meanwhile wait
    /// for the next call).
    pub fn deliver_due(&mut self) -> Result<(), Violation> {
        let now = self.now_ticks;
        let (mut due, later): (Vec<InFlight>, Vec<InFlight>) = std::mem::take(&mut self.network)
            .into_iter()
            .partition(|in_flight| in_flight.deliver_at_tick <= now);
        self.network = later;
        due.shuffle(&mut self.rng);
        for in_flight in due {
            self.deliver(in_flight.msg)?;
        }
        Ok(())
    }

    /// Delivers the in-flight messages matching `select` right away (ignoring delays), and
    /// keeps the rest. Returns how many matched.
    pub fn deliver_where(
        &mut self,
        mut select: impl FnMut(&Message) -> bool,
    ) -> Result<usize, Violation> {
        let (chosen, rest): (Vec<InFlight>, Vec<InFlight>) = std::mem::take(&mut self.network)
            .into_iter()
            .partition(|in_flight| select(&in_flight.msg));
        self.network = rest;
        let count = chosen.len();
        for in_flight in chosen {
            self.deliver(in_flight.msg)?;
        }
        Ok(count)
    }

    /// Drops the in-flight messages matching `select`.
    pub fn drop_where(&mut self, mut select: impl FnMut(&Message) -> bool) {
        self.network.retain(|in_flight| !select(&in_flight.msg));
    }

    /// Delivers everything, including what that causes, until the network is empty.
    pub fn stabilize(&mut self) -> Result<(), Violation> {
        for _ in 0..1000 {
            if self.network.is_empty() {
                return Ok(());
            }
            self.deliver_where(|_| true)?;
        }
        panic!("network did not quiesce");
    }

    /// One unit of time: every live node ticks, then due messages are delivered.
    pub fn step_time(&mut self) -> Result<(), Violation> {
        self.now_ticks += 1;
        for id in self.live_ids() {
            self.tick(id)?;
        }
        self.deliver_due()
    }
}
