//! Message faults in the members' transport: delay spikes, duplicated and reordered batches
//! (madsim's network has one latency range for every message and never duplicates). They
//! wrap each member's `PeerSender` ([`ChaosPeers`], installed by `Cluster::start` only for
//! plans that have such a fault, so other runs keep their schedules). A batch's fate is drawn when it is sent, on the seed's own stream, and a held
//! copy waits on madsim's timer in the sending member's node (it dies with the member, as a
//! queue in its NIC would).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use faultline_node::{PeerMessages, PeerSender};
use madsim::time::Instant;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::plan::Fault;

/// Does the plan have a fault that needs the members' transport wrapped?
pub(super) fn wants_message_chaos(faults: &[crate::plan::FaultWindow]) -> bool {
    faults.iter().any(|w| {
        matches!(
            w.fault,
            Fault::DelaySpike { .. }
                | Fault::DuplicateMessages { .. }
                | Fault::ReorderMessages { .. }
        )
    })
}

/// The open message-fault windows, shared by every member's [`ChaosPeers`].
pub(super) struct MessageChaos {
    /// Each member's address, as batches are addressed.
    pub(super) addrs: BTreeMap<SocketAddr, u64>,
    /// Open windows: the fault, the members whose links it holds, and how many batches it
    /// delayed, duplicated or held back so far.
    open: Vec<(Fault, Vec<u64>, u64)>,
    rng: ChaCha8Rng,
    /// When the last delayed batch on each directed link is due: a delay keeps a link's order.
    link_due: BTreeMap<(u64, u64), Instant>,
    /// Set by the final heal: from then on batches travel untouched.
    healed: bool,
}

impl MessageChaos {
    pub(super) fn new(rng: ChaCha8Rng) -> MessageChaos {
        MessageChaos {
            addrs: BTreeMap::new(),
            open: Vec::new(),
            rng,
            link_due: BTreeMap::new(),
            healed: false,
        }
    }

    /// A window opens on the links of `members` (both ways).
    pub(super) fn open_window(&mut self, fault: Fault, members: &[u64]) {
        if !self.healed {
            self.open.push((fault, members.to_vec(), 0));
        }
    }

    /// The window opened by `open_window(fault, members)` closes: how many batches it
    /// delayed, duplicated or held back (`None`: it was not open, the run healed).
    pub(super) fn close_window(&mut self, fault: Fault, members: &[u64]) -> Option<u64> {
        let at = self
            .open
            .iter()
            .position(|(f, m, _)| *f == fault && m == members)?;
        Some(self.open.remove(at).2)
    }

    /// The final heal: batches travel untouched from now on (held ones still arrive).
    pub(super) fn heal(&mut self) {
        self.open.clear();
        self.healed = true;
    }

    /// When each copy of one batch from `from` to `to` leaves, from now: one copy at once
    /// unless an open window holds the link.
    fn copies(&mut self, from: u64, to: u64, now: Instant) -> Vec<Duration> {
        let holds = |members: &Vec<u64>| members.contains(&from) || members.contains(&to);
        let windows: Vec<usize> = (0..self.open.len())
            .filter(|&i| holds(&self.open[i].1))
            .collect();
        let mut delay = Duration::ZERO;
        let mut copies = Vec::new();
        for i in windows {
            let acted = match self.open[i].0 {
                Fault::DelaySpike { delay_ms_max, .. } => {
                    let drawn_ms = self.rng.random_range(delay_ms_max / 2..=delay_ms_max);
                    let due = self
                        .link_due
                        .get(&(from, to))
                        .copied()
                        .filter(|&due| due > now)
                        .unwrap_or(now)
                        .max(now + Duration::from_millis(drawn_ms));
                    self.link_due.insert((from, to), due);
                    delay = delay.max(due - now);
                    true
                }
                Fault::ReorderMessages {
                    percent,
                    hold_ms_max,
                    ..
                } if self.rng.random_range(0..100) < percent => {
                    // Not recorded in `link_due`: later batches overtake this one.
                    delay += Duration::from_millis(self.rng.random_range(1..=hold_ms_max));
                    true
                }
                Fault::DuplicateMessages {
                    percent,
                    lag_ms_max,
                    ..
                } if self.rng.random_range(0..100) < percent => {
                    copies.push(Duration::from_millis(self.rng.random_range(0..=lag_ms_max)));
                    true
                }
                _ => false,
            };
            if acted {
                self.open[i].2 += 1;
            }
        }
        // The copies lag the original, whatever held it.
        let mut all = vec![delay];
        all.extend(copies.into_iter().map(|lag| delay + lag));
        all
    }
}

/// A member's `PeerSender` with the open message faults applied.
pub(super) struct ChaosPeers {
    pub(super) member: u64,
    pub(super) inner: Arc<dyn PeerSender>,
    pub(super) chaos: Arc<Mutex<MessageChaos>>,
}

impl PeerSender for ChaosPeers {
    fn send(&self, to: SocketAddr, batch: PeerMessages) {
        let copies = {
            let mut chaos = self.chaos.lock().expect("message chaos");
            match chaos.addrs.get(&to).copied() {
                Some(peer) if !chaos.healed => chaos.copies(self.member, peer, Instant::now()),
                _ => vec![Duration::ZERO],
            }
        };
        let last = copies.len() - 1;
        let mut batch = Some(batch);
        for (i, delay) in copies.into_iter().enumerate() {
            // Only duplicates need a copy of the batch (its entries can be large).
            let batch = if i == last {
                batch.take().expect("the batch until its last copy")
            } else {
                batch.clone().expect("the batch until its last copy")
            };
            if delay.is_zero() {
                self.inner.send(to, batch);
                continue;
            }
            let inner = self.inner.clone();
            madsim::task::spawn(async move {
                madsim::time::sleep(delay).await;
                inner.send(to, batch);
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;
    use crate::plan::IsolateTarget;

    fn chaos_with(fault: Fault) -> MessageChaos {
        let mut chaos = MessageChaos::new(ChaCha8Rng::seed_from_u64(7));
        chaos.open_window(fault, &[1]);
        chaos
    }

    #[test]
    fn a_window_holds_only_its_members_links() {
        madsim::runtime::Runtime::new().block_on(async {
            let now = Instant::now();
            let mut chaos = chaos_with(Fault::DelaySpike {
                target: Some(IsolateTarget::Member(1)),
                delay_ms_max: 100,
            });
            assert_eq!(chaos.copies(2, 3, now), vec![Duration::ZERO]);
            for (from, to) in [(1, 2), (3, 1)] {
                let copies = chaos.copies(from, to, now);
                assert_eq!(copies.len(), 1);
                assert!(copies[0] >= Duration::from_millis(50), "{copies:?}");
            }
            assert_eq!(chaos.close_window(chaos.open[0].0, &[1]), Some(2));
            assert_eq!(chaos.copies(1, 2, now), vec![Duration::ZERO]);
        });
    }

    #[test]
    fn a_delayed_link_keeps_its_order() {
        madsim::runtime::Runtime::new().block_on(async {
            let now = Instant::now();
            let mut chaos = chaos_with(Fault::DelaySpike {
                target: None,
                delay_ms_max: 400,
            });
            let due: Vec<Duration> = (0..20)
                .map(|i| {
                    now + Duration::from_millis(i)
                        + chaos.copies(1, 2, now + Duration::from_millis(i))[0]
                })
                .map(|at| at - now)
                .collect();
            assert!(due.windows(2).all(|w| w[0] <= w[1]), "{due:?}");
        });
    }

    #[test]
    fn held_batches_are_overtaken_and_duplicates_lag() {
        madsim::runtime::Runtime::new().block_on(async {
            let now = Instant::now();
            let mut chaos = chaos_with(Fault::ReorderMessages {
                target: IsolateTarget::Member(1),
                percent: 50,
                hold_ms_max: 200,
            });
            let delays: Vec<Duration> = (0..40).map(|_| chaos.copies(1, 2, now)[0]).collect();
            let held = delays.iter().filter(|d| !d.is_zero()).count();
            assert!((5..35).contains(&held), "{delays:?}");
            // A batch sent after a held one leaves at once: it overtakes.
            let overtaken = delays.windows(2).any(|w| !w[0].is_zero() && w[1].is_zero());
            assert!(overtaken, "{delays:?}");

            let mut chaos = chaos_with(Fault::DuplicateMessages {
                target: IsolateTarget::Member(1),
                percent: 50,
                lag_ms_max: 100,
            });
            let copies: Vec<Vec<Duration>> = (0..40).map(|_| chaos.copies(2, 1, now)).collect();
            let twice = copies.iter().filter(|c| c.len() == 2).count();
            assert!((5..35).contains(&twice), "{copies:?}");
            assert!(copies.iter().all(|c| c[0].is_zero() && c.len() <= 2));
            chaos.heal();
            assert_eq!(chaos.copies(2, 1, now), vec![Duration::ZERO]);
        });
    }
}
