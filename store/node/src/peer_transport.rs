//! How Raft messages travel between members: one-way, batched per peer.
//!
//! Raft needs no answer to a message (an answer is another message, and a lost one is
//! retransmitted), so a send waits for nothing. The messages one Ready produced for one peer
//! go together, in order, as one network message: fewer sends, the same order.
//!
//! In simulation a batch travels as madsim's raw datagram (no serialisation, no reply, no
//! timeout timer): before, every Raft message was an RPC whose empty reply nobody read, and
//! its send task, reply leg and timeout were most of a seed's wall time (profile of
//! 2026-12-07 in ../shared/notes). The real build keeps madsim's RPC over TCP, whose reply
//! is ignored as before.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use faultline_raft::{Message, NodeId};
use madsim::net::Endpoint;
use serde::{Deserialize, Serialize};

use crate::{MemberHandle, PeerSender, Published};

/// A batch of Raft messages for one peer, in the order Raft produced them, with the
/// sender's own peer address (a receiver whose log does not know the sender yet answers
/// there; etcd's requests carry the sender's peer URLs for the same reason).
#[derive(Clone, Serialize, Deserialize)]
pub struct PeerMessages {
    pub from_addr: SocketAddr,
    pub messages: Vec<Message>,
    /// The sender's attributes for the leader to publish (`core/publish.rs`): on a batch to
    /// the member the sender believes leads, until its publish applied.
    pub publish: Option<Published>,
}

impl madsim::net::rpc::Request for PeerMessages {
    type Response = ();
    const ID: u64 = 0x5241_4654_4d53_4702; // "RAFTMSG\x02"
}

/// Tag of the one-way datagrams that carry `PeerMessages` in simulation.
#[cfg(madsim)]
const PEER_TAG: u64 = 0x5241_4654_4d53_4703; // "RAFTMSG\x03"

/// The messages of one Ready grouped per recipient, each group in Raft's order.
pub(crate) fn batch_per_peer(messages: Vec<Message>) -> BTreeMap<NodeId, Vec<Message>> {
    let mut batches: BTreeMap<NodeId, Vec<Message>> = BTreeMap::new();
    for message in messages {
        batches.entry(message.to).or_default().push(message);
    }
    batches
}

/// Peers over madsim's endpoint: simulated in simulation (one-way datagrams), madsim's
/// TCP RPC otherwise (the real server has its own gRPC `PeerSender`).
pub(crate) struct EndpointPeers {
    pub(crate) endpoint: Arc<Endpoint>,
    #[cfg_attr(madsim, allow(dead_code))]
    pub(crate) peer_timeout: Duration,
}

impl PeerSender for EndpointPeers {
    /// Send one batch to `to` without waiting: lost batches are normal, Raft retransmits.
    fn send(&self, to: SocketAddr, batch: PeerMessages) {
        let endpoint = self.endpoint.clone();
        #[cfg(madsim)]
        tokio::spawn(async move {
            let _ = endpoint.send_to_raw(to, PEER_TAG, Box::new(batch)).await;
        });
        #[cfg(not(madsim))]
        {
            let peer_timeout = self.peer_timeout;
            tokio::spawn(async move {
                let _ = endpoint.call_timeout(to, batch, peer_timeout).await;
            });
        }
    }
}

/// Feed every batch peers send to the member, through its handle.
#[cfg(madsim)]
pub(crate) fn serve(endpoint: &Arc<Endpoint>, handle: &MemberHandle) {
    let endpoint = endpoint.clone();
    let handle = handle.clone();
    tokio::spawn(async move {
        // An error means the endpoint is gone: the member is shutting down.
        while let Ok((payload, _from)) = endpoint.recv_from_raw(PEER_TAG).await {
            let batch = payload
                .downcast::<PeerMessages>()
                .expect("only PeerMessages travel with PEER_TAG");
            handle.step(*batch);
        }
    });
}

/// Feed every batch peers send to the member, through its handle.
#[cfg(not(madsim))]
pub(crate) fn serve(endpoint: &Arc<Endpoint>, handle: &MemberHandle) {
    let handle = handle.clone();
    endpoint.add_rpc_handler(move |batch: PeerMessages| {
        let handle = handle.clone();
        async move { handle.step(batch) }
    });
}
