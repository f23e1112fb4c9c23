//! The members' Raft batches travel over this in-simulation network instead of madsim's
//! endpoints: one latency timer per batch (no task: `deliver_after`), delivered straight
//! into the receiving member's handle. Calls (clients') run their legs on a node of its own
//! (the wire).
//!
//! madsim's datagram costs, per send: a task, a 1 ms `rand_delay` sleep at each end, a latency
//! timer, a mailbox and the destination formatted into a string for an IPVS lookup (18% of a
//! seed's instructions). The model here is madsim's: a batch's fate is decided when it is sent
//! (a clogged node or link, or packet loss, drops it), it arrives after madsim's latency range
//! plus the two 1 ms sleeps madsim adds, in flight it survives its sender's crash and pause,
//! and it is lost when its receiver is killed or restarted before it arrives (it goes to the
//! incarnation that was up when it was sent). Clients' calls ([`call`]) take it too: their
//! requests as etcd's protobuf messages, served by faultline-grpc's service impls
//! (`client::grpc_call`), and the watchers' `WatchCall`s.
//!
//! Every network fault goes through [`clog_node`], [`unclog_node`], [`clog_link`],
//! [`unclog_link`] and [`stop_packet_loss`], which apply it to both networks.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::task::{Context, Wake, Waker};
use std::time::Duration;

use faultline_node::{MemberHandle, PeerMessages, PeerSender};
use madsim::net::NetSim;
use madsim::runtime::NodeHandle;
use madsim::task::NodeId;

/// What madsim's two `rand_delay` sleeps (clamped to 1 ms each) added to a datagram's latency.
const ENDPOINT_DELAYS: Duration = Duration::from_millis(2);

/// The plugin: registered on each run's runtime (`runner::simulate`).
pub(crate) struct PeerNet {
    state: Mutex<State>,
}

struct State {
    clogged_nodes: BTreeSet<NodeId>,
    clogged_links: BTreeSet<(NodeId, NodeId)>,
    packet_loss_rate: f64,
    latency: Range<Duration>,
    /// The member up at each address: its node, its current incarnation's handle, and that
    /// incarnation's number (a reply leaves only if the incarnation that got the call is up).
    members: BTreeMap<SocketAddr, (NodeId, MemberHandle, u64)>,
    incarnations: u64,
    /// The node in-flight batches wait on (never killed nor paused).
    wire: Option<NodeHandle>,
}

impl madsim::plugin::Simulator for PeerNet {
    fn new(
        _rand: &madsim::rand::GlobalRng,
        _time: &madsim::time::TimeHandle,
        config: &madsim::Config,
    ) -> Self {
        PeerNet {
            state: Mutex::new(State {
                clogged_nodes: BTreeSet::new(),
                clogged_links: BTreeSet::new(),
                packet_loss_rate: config.net.packet_loss_rate,
                latency: config.net.send_latency.clone(),
                members: BTreeMap::new(),
                incarnations: 0,
                wire: None,
            }),
        }
    }

    /// The node was killed: batches sent to it from now on are lost until it registers again.
    fn reset_node(&self, id: NodeId) {
        self.lock().members.retain(|_, (node, _, _)| *node != id);
    }
}

impl PeerNet {
    fn current() -> Arc<PeerNet> {
        madsim::plugin::simulator::<PeerNet>()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("peer net")
    }

    /// The node in-flight batches wait on; created by `Cluster::start` before any member.
    pub(super) fn set_wire(wire: NodeHandle) {
        Self::current().lock().wire = Some(wire);
    }

    /// The member at `addr` runs (again) on the current node: the transport for its batches.
    pub(super) fn register(addr: SocketAddr, handle: &MemberHandle) -> Arc<dyn PeerSender> {
        let net = Self::current();
        let node = madsim::plugin::node();
        let mut state = net.lock();
        state.incarnations += 1;
        let incarnation = state.incarnations;
        state
            .members
            .insert(addr, (node, handle.clone(), incarnation));
        drop(state);
        Arc::new(SimPeers { net, node })
    }

    /// Where a batch from `from` to `to` goes and when it arrives; `None`: lost.
    fn route(&self, from: NodeId, to: SocketAddr) -> Option<(Arrival, Duration)> {
        let state = self.lock();
        let &(node, ref handle, incarnation) = state.members.get(&to)?;
        let arrival = Arrival {
            handle: handle.clone(),
            node,
            incarnation,
        };
        Some((arrival, state.leg(from, node)?))
    }

    /// The reply leg of a call the member at `to` answered: `None` when the incarnation that
    /// got the call is gone (a killed process answers nothing) or the reply is lost.
    fn route_back(&self, to: SocketAddr, arrival: &Arrival, caller: NodeId) -> Option<Duration> {
        let state = self.lock();
        let up = state.members.get(&to).map(|m| m.2) == Some(arrival.incarnation);
        if !up {
            return None;
        }
        state.leg(arrival.node, caller)
    }

    fn wire(&self) -> NodeHandle {
        self.lock().wire.clone().expect("the wire node exists")
    }
}

/// The member incarnation a message reached.
struct Arrival {
    handle: MemberHandle,
    node: NodeId,
    incarnation: u64,
}

impl State {
    /// One message from node `from` to node `to`: its latency, or `None` when it is lost.
    fn leg(&self, from: NodeId, to: NodeId) -> Option<Duration> {
        let clogged = self.clogged_nodes.contains(&from)
            || self.clogged_nodes.contains(&to)
            || self.clogged_links.contains(&(from, to));
        if clogged {
            return None;
        }
        let state = self;
        if state.packet_loss_rate > 0.0 {
            let draw = madsim::rand::random::<u64>() as f64 / u64::MAX as f64;
            if draw < state.packet_loss_rate {
                return None;
            }
        }
        let span = (state.latency.end - state.latency.start).as_nanos() as u64;
        let jitter = Duration::from_nanos(madsim::rand::random::<u64>() % span.max(1));
        Some(state.latency.start + jitter + ENDPOINT_DELAYS)
    }
}

/// A member's `PeerSender` over [`PeerNet`].
struct SimPeers {
    net: Arc<PeerNet>,
    node: NodeId,
}

impl PeerSender for SimPeers {
    fn send(&self, to: SocketAddr, batch: PeerMessages) {
        let Some((arrival, latency)) = self.net.route(self.node, to) else {
            return;
        };
        deliver_after(latency, arrival.handle, batch);
    }
}

/// Hand `batch` to `handle` once `latency` has passed, on madsim's timer and without a task:
/// a sleep polled once with a waker that delivers. A task per batch (spawned on the wire
/// node, polled twice) cost a spawn, two polls and two scheduler steps per batch, a seventh
/// of a seed's instructions. The timer fires at the same instant the task's sleep would
/// have; the batch reaches the member's inbox at once rather than when the scheduler next
/// picks the wire task (so schedules differ from the task's).
fn deliver_after(latency: Duration, handle: MemberHandle, batch: PeerMessages) {
    let delivery = Arc::new(Delivery(Mutex::new(Some((handle, batch)))));
    let waker = Waker::from(delivery);
    let mut sleep = std::pin::pin!(madsim::time::sleep(latency));
    if sleep
        .as_mut()
        .poll(&mut Context::from_waker(&waker))
        .is_ready()
    {
        waker.wake(); // never: madsim sleeps at least 1 ms
    }
    // Dropping the sleep leaves its timer armed (madsim's timers cannot be cancelled).
}

/// A batch in flight: delivered by the first wake of its waker.
struct Delivery(Mutex<Option<(MemberHandle, PeerMessages)>>);

impl Wake for Delivery {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let in_flight = self.0.lock().expect("delivery").take();
        if let Some((handle, batch)) = in_flight {
            handle.step(batch);
        }
    }
}

/// A call from the current node (a client's) to the member at `to`, answered by `serve` on
/// the member's handle, as madsim's `call_timeout` would carry it: two legs, each with the
/// fate and latency of a datagram; an error when no answer came within `timeout`.
pub(super) async fn call<R, F, Fut>(to: SocketAddr, timeout: Duration, serve: F) -> io::Result<R>
where
    F: FnOnce(MemberHandle) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = R> + Send + 'static,
    R: Send + 'static,
{
    let net = PeerNet::current();
    let caller = madsim::plugin::node();
    let (reply_tx, reply_rx) = tokio::sync::oneshot::channel();
    if let Some((arrival, latency)) = net.route(caller, to) {
        let wire = net.wire();
        wire.spawn(async move {
            madsim::time::sleep(latency).await;
            let answer = serve(arrival.handle.clone()).await;
            if let Some(latency) = net.route_back(to, &arrival, caller) {
                madsim::time::sleep(latency).await;
                let _ = reply_tx.send(answer);
            }
        });
    }
    match madsim::time::timeout(timeout, reply_rx).await {
        Ok(Ok(answer)) => Ok(answer),
        _ => Err(io::Error::new(io::ErrorKind::TimedOut, "RPC timeout")),
    }
}

/// Isolate the node (both directions, on both networks).
pub(super) fn clog_node(node: NodeId) {
    NetSim::current().clog_node(node);
    PeerNet::current().lock().clogged_nodes.insert(node);
}

pub(super) fn unclog_node(node: NodeId) {
    NetSim::current().unclog_node(node);
    PeerNet::current().lock().clogged_nodes.remove(&node);
}

/// Cut the directed link `from` → `to` (on both networks).
pub(super) fn clog_link(from: NodeId, to: NodeId) {
    NetSim::current().clog_link(from, to);
    PeerNet::current().lock().clogged_links.insert((from, to));
}

pub(super) fn unclog_link(from: NodeId, to: NodeId) {
    NetSim::current().unclog_link(from, to);
    PeerNet::current().lock().clogged_links.remove(&(from, to));
}

/// The final heal ends message loss on both networks.
pub(super) fn stop_packet_loss() {
    NetSim::current().update_config(|config| config.packet_loss_rate = 0.0);
    PeerNet::current().lock().packet_loss_rate = 0.0;
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use madsim::runtime::{Handle, Runtime};

    use super::*;

    const MEMBER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 2379);

    /// A call from `client` to the member: `Some(answer)`, or `None` when it timed out.
    async fn ask(client: &NodeHandle) -> Option<u32> {
        let call = call(MEMBER, Duration::from_millis(100), |_member| async { 7 });
        client.spawn(call).await.expect("client task").ok()
    }

    #[test]
    fn every_network_fault_holds_the_members_transport() {
        let runtime = Runtime::with_seed_and_config(1, madsim::Config::default());
        runtime.add_simulator::<PeerNet>();
        runtime.block_on(async {
            let handle = Handle::current();
            PeerNet::set_wire(handle.create_node().name("wire").build());
            let member = handle.create_node().name("member").build();
            let client = handle.create_node().name("client").build();
            let (member_handle, _inbox) = faultline_node::member_channel();
            let registering = member_handle.clone();
            member
                .spawn(async move { drop(PeerNet::register(MEMBER, &registering)) })
                .await
                .expect("register");
            assert_eq!(ask(&client).await, Some(7));

            clog_node(member.id());
            assert_eq!(
                ask(&client).await,
                None,
                "an isolated member is unreachable"
            );
            unclog_node(member.id());
            assert_eq!(ask(&client).await, Some(7));

            // Either direction of a cut link loses the call (its request or its answer).
            for (from, to) in [(client.id(), member.id()), (member.id(), client.id())] {
                clog_link(from, to);
                assert_eq!(ask(&client).await, None, "cut {from:?} -> {to:?}");
                unclog_link(from, to);
            }
            assert_eq!(ask(&client).await, Some(7));

            PeerNet::current().lock().packet_loss_rate = 0.999;
            assert_eq!(ask(&client).await, None, "lost");
            stop_packet_loss();
            assert_eq!(ask(&client).await, Some(7));

            // A killed member answers nothing until it registers again.
            handle.kill(member.id());
            assert_eq!(ask(&client).await, None, "killed");
        });
    }

    #[test]
    fn a_batch_takes_madsims_latency_and_the_endpoints_delays() {
        let runtime = Runtime::with_seed_and_config(2, madsim::Config::default());
        runtime.add_simulator::<PeerNet>();
        runtime.block_on(async {
            let handle = Handle::current();
            PeerNet::set_wire(handle.create_node().name("wire").build());
            let client = handle.create_node().name("client").build();
            let (member_handle, _inbox) = faultline_node::member_channel();
            PeerNet::register(MEMBER, &member_handle);
            for _ in 0..20 {
                let start = madsim::time::Instant::now();
                assert_eq!(ask(&client).await, Some(7));
                let took = start.elapsed();
                // Two legs, each 1..10 ms plus 2 ms.
                let (least, most) = (Duration::from_millis(6), Duration::from_millis(24));
                assert!(least <= took && took <= most, "{took:?}");
            }
        });
    }
}
