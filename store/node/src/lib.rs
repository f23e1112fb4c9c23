//! The async glue of one store member: drives Raft, persists through the WAL, applies committed
//! entries to the MVCC key space, talks to peers and serves clients.
//!
//! Everything here compiles against madsim-tokio: under `--cfg madsim` it runs inside the
//! simulator; otherwise against real tokio and madsim's real network endpoint.
//! The synchronous decisions live in [`core::NodeCore`]; this file only moves bytes and time.

pub mod core;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use faultline_api::{EtcdError, Request, Response};
use faultline_storage::Disk;
use madsim::net::rpc::Request as RpcRequest;
use madsim::net::Endpoint;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

pub use crate::core::NodeCore;

/// A re-introducible bug, selected at runtime. Its code exists only when the crate is built
/// with the `canaries` feature; asking for one without it is refused at startup.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Canary {
    /// Followers answer linearizable reads from their local, possibly stale, state.
    StaleFollowerRead,
    /// Writes are acknowledged as soon as they are applied, before the WAL is synced
    /// (etcd #14370: a single-node cluster loses an acknowledged write on crash).
    AckBeforeSync,
}

/// Everything a member needs to start. Safety-relevant settings are explicit: no `Default`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NodeConfig {
    pub id: u64,
    /// Every voting member, including this one.
    pub members: BTreeMap<u64, SocketAddr>,
    pub tick_interval_ms: u64,
    pub election_timeout_ticks: u64,
    pub heartbeat_interval_ticks: u64,
    pub pre_vote: bool,
    pub check_quorum: bool,
    pub max_entries_per_append: usize,
    /// How long a client call waits for its proposal or read to complete before answering
    /// `Timeout` (an unknown outcome).
    pub request_timeout_ms: u64,
    /// How long a message to a peer may stay in flight before it is given up.
    pub peer_timeout_ms: u64,
    /// Seed of this incarnation's own randomness (election timeouts, lease IDs).
    pub rng_seed: u64,
    pub canary: Option<Canary>,
}

/// What a member reports about itself to whoever runs it (the simulator's trace and Raft
/// safety checks, or logs in a real deployment). Observers only observe.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum NodeEvent {
    /// The member recovered its WAL and starts.
    Recovered {
        term: u64,
        commit: u64,
        last_index: u64,
    },
    /// Role or leader changed.
    RoleChanged {
        role: String,
        term: u64,
        leader: Option<u64>,
    },
    /// A committed entry was applied; `digest` identifies its bytes.
    Applied {
        index: u64,
        term: u64,
        digest: u64,
        revision: i64,
    },
    /// A client write was acknowledged as applied at `revision`.
    WriteAcked { index: u64, revision: i64 },
}

pub trait Observer: Send + Sync {
    fn on_event(&self, member: u64, event: NodeEvent);
}

/// An observer that drops everything.
pub struct NoObserver;

impl Observer for NoObserver {
    fn on_event(&self, _member: u64, _event: NodeEvent) {}
}

/// Peer-to-peer Raft message (one-way: the response is empty).
#[derive(Serialize, Deserialize)]
pub struct PeerMessage(pub faultline_raft::Message);

impl RpcRequest for PeerMessage {
    type Response = ();
    const ID: u64 = 0x5241_4654_4d53_4701; // "RAFTMSG\x01"
}

/// A client's unary request and its result.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ClientCall {
    pub request: Request,
}

impl RpcRequest for ClientCall {
    type Response = Result<Response, EtcdError>;
    const ID: u64 = 0x434c_4945_4e54_0001; // "CLIENT\0\x01"
}

pub(crate) type Reply = oneshot::Sender<Result<Response, EtcdError>>;

pub(crate) enum Input {
    Peer(faultline_raft::Message),
    Client(Request, Reply),
}

/// Run one member until its task is killed. Never returns: madsim requires a node's init
/// future to live as long as the node.
pub async fn run_member(
    config: NodeConfig,
    disk: Box<dyn Disk + Send>,
    observer: Arc<dyn Observer>,
) -> std::convert::Infallible {
    let addr = config.members[&config.id];
    let endpoint = Arc::new(Endpoint::bind(addr).await.expect("bind member address"));
    let (input_tx, mut input_rx) = mpsc::unbounded_channel::<Input>();

    let peer_tx = input_tx.clone();
    endpoint.add_rpc_handler(move |message: PeerMessage| {
        let peer_tx = peer_tx.clone();
        async move {
            // A closed channel means the member is shutting down: dropping the message is
            // what a dead process does.
            let _ = peer_tx.send(Input::Peer(message.0));
        }
    });
    let client_tx = input_tx.clone();
    endpoint.add_rpc_handler(move |call: ClientCall| {
        let client_tx = client_tx.clone();
        async move {
            let (reply_tx, reply_rx) = oneshot::channel();
            if client_tx
                .send(Input::Client(call.request, reply_tx))
                .is_err()
            {
                return Err(EtcdError::Stopped);
            }
            reply_rx.await.unwrap_or(Err(EtcdError::Stopped))
        }
    });

    let mut core = NodeCore::open(config.clone(), disk, observer);
    let mut ticker = tokio::time::interval(Duration::from_millis(config.tick_interval_ms));
    let request_timeout = Duration::from_millis(config.request_timeout_ms);
    let peer_timeout = Duration::from_millis(config.peer_timeout_ms);
    loop {
        // Biased: tokio's unbiased select is not reproducible within one process.
        tokio::select! {
            biased;
            input = input_rx.recv() => match input {
                Some(Input::Peer(message)) => core.step(message),
                Some(Input::Client(request, reply)) => {
                    core.handle_client(request, reply, tokio::time::Instant::now() + request_timeout)
                }
                None => unreachable!("the member holds a sender itself"),
            },
            _ = ticker.tick() => core.tick(tokio::time::Instant::now()),
        }
        for message in core.process_ready() {
            let Some(&to) = config.members.get(&message.to.0) else {
                panic!("message to unknown member {:?}", message.to);
            };
            let endpoint = endpoint.clone();
            tokio::spawn(async move {
                // Lost or timed-out peer messages are normal: Raft retransmits.
                let _ = endpoint
                    .call_timeout(to, PeerMessage(message), peer_timeout)
                    .await;
            });
        }
    }
}
