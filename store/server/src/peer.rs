//! Member-to-member traffic over gRPC (proto/faultline/peer.proto): batches of Raft messages
//! one way (with the sender's peer address, for a member whose log does not know it yet),
//! and client requests a follower forwards to the leader. Payloads are bincode of the store's
//! types. Connections are tonic's lazy channels: they connect on first use and reconnect
//! after a peer restarts, so members may start in any order.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use faultline_api::{ClusterRequest, ClusterResponse, EtcdError, Request, Response};
use faultline_node::{MemberHandle, PeerMessages, PeerSender};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request as GrpcRequest, Response as GrpcResponse, Status};

use crate::pb::peer::peer_client::PeerClient;
use crate::pb::peer::peer_server::Peer;
use crate::pb::peer::{Bincode, Empty};

fn encode<T: Serialize>(value: &T) -> Bincode {
    Bincode {
        data: bincode::serialize(value).expect("the store's types always serialize"),
    }
}

fn decode<T: DeserializeOwned>(message: &Bincode) -> Result<T, Status> {
    bincode::deserialize(&message.data)
        .map_err(|e| Status::invalid_argument(format!("undecodable peer message: {e}")))
}

/// The peer service of this member: what the other members send it.
pub struct PeerService {
    pub member: MemberHandle,
}

#[tonic::async_trait]
impl Peer for PeerService {
    async fn step(&self, request: GrpcRequest<Bincode>) -> Result<GrpcResponse<Empty>, Status> {
        self.member.step(decode(request.get_ref())?);
        Ok(GrpcResponse::new(Empty {}))
    }

    async fn forward(
        &self,
        request: GrpcRequest<Bincode>,
    ) -> Result<GrpcResponse<Bincode>, Status> {
        let call: Request = decode(request.get_ref())?;
        // Answered here, never forwarded again: a leader that lost its leadership meanwhile
        // answers NotLeader and the client retries.
        let result = self.member.client(call).await;
        Ok(GrpcResponse::new(encode(&result)))
    }

    async fn forward_cluster(
        &self,
        request: GrpcRequest<Bincode>,
    ) -> Result<GrpcResponse<Bincode>, Status> {
        let call: ClusterRequest = decode(request.get_ref())?;
        let result = self.member.cluster(call).await;
        Ok(GrpcResponse::new(encode(&result)))
    }
}

/// Clients of the other members' peer services, one lazy channel per address.
#[derive(Clone)]
pub struct Peers {
    channels: Arc<Mutex<BTreeMap<SocketAddr, PeerClient<Channel>>>>,
    timeout: Duration,
}

impl Peers {
    /// `timeout` bounds every call (a peer behind a partition must not hold a task forever).
    pub fn new(timeout: Duration) -> Peers {
        Peers {
            channels: Arc::new(Mutex::new(BTreeMap::new())),
            timeout,
        }
    }

    fn client(&self, to: SocketAddr) -> PeerClient<Channel> {
        let mut channels = self.channels.lock().expect("peer channels lock");
        channels
            .entry(to)
            .or_insert_with(|| {
                let endpoint = Endpoint::from_shared(format!("http://{to}"))
                    .expect("a socket address is a valid URI")
                    .connect_timeout(self.timeout)
                    .timeout(self.timeout);
                PeerClient::new(endpoint.connect_lazy())
            })
            .clone()
    }

    /// A client request the leader at `to` answers. Any failure to reach it is `Unavailable`
    /// for the client (etcd: "leader changed" / "no leader" class), never a silent success.
    pub async fn forward(&self, to: SocketAddr, request: &Request) -> Result<Response, EtcdError> {
        let reply = self.client(to).forward(encode(request)).await;
        Self::answer(reply)
    }

    pub async fn forward_cluster(
        &self,
        to: SocketAddr,
        request: &ClusterRequest,
    ) -> Result<ClusterResponse, EtcdError> {
        let reply = self.client(to).forward_cluster(encode(request)).await;
        Self::answer(reply)
    }

    fn answer<T: DeserializeOwned>(
        reply: Result<GrpcResponse<Bincode>, Status>,
    ) -> Result<T, EtcdError> {
        match reply {
            Ok(reply) => decode::<Result<T, EtcdError>>(reply.get_ref())
                .unwrap_or(Err(EtcdError::LeaderChanged)),
            // We do not know whether the leader got it: an unknown outcome, as etcd's
            // "leader changed".
            Err(_) => Err(EtcdError::LeaderChanged),
        }
    }
}

impl PeerSender for Peers {
    fn send(&self, to: SocketAddr, batch: PeerMessages) {
        let mut client = self.client(to);
        let message = encode(&batch);
        real_tokio::spawn(async move {
            // Lost or timed-out peer messages are normal: Raft retransmits.
            let _ = client.step(message).await;
        });
    }
}
