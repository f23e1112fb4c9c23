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

use crate::cluster_id::served_cluster_id;
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

/// The gRPC metadata key of the sender's cluster ID on every peer call. etcd's peers send
/// theirs (`X-Etcd-Cluster-ID`) on every request and refuse another cluster's ("cluster ID
/// mismatch", HTTP 412): a member of another cluster that shares a peer URL with this one
/// must not vote in, or append to, this member's Raft.
const CLUSTER_ID_KEY: &str = "x-etcd-cluster-id";

/// `message` as a peer call carrying this member's cluster ID, once it knows it (a member
/// joining with `--initial-cluster-state existing` learns it from a peer first).
fn with_cluster_id<T>(message: T) -> GrpcRequest<T> {
    let mut request = GrpcRequest::new(message);
    if let Some(cluster_id) = served_cluster_id() {
        let value = format!("{cluster_id:x}")
            .parse()
            .expect("hex digits are valid metadata");
        request.metadata_mut().insert(CLUSTER_ID_KEY, value);
    }
    request
}

/// The peer service of this member: what the other members send it.
pub struct PeerService {
    member: MemberHandle,
    /// Foreign cluster IDs already named in the log (each once, not once per heartbeat).
    refused: Mutex<std::collections::BTreeSet<u64>>,
}

impl PeerService {
    pub fn new(member: MemberHandle) -> PeerService {
        PeerService {
            member,
            refused: Mutex::new(std::collections::BTreeSet::new()),
        }
    }

    /// Refuse a call from a member of another cluster. A call without a cluster ID (a member
    /// that is joining and has not learned it yet) is let through, as is every call before
    /// this member knows its own.
    fn check_cluster<T>(&self, request: &GrpcRequest<T>) -> Result<(), Status> {
        let Some(theirs) = request.metadata().get(CLUSTER_ID_KEY) else {
            return Ok(());
        };
        let theirs = theirs
            .to_str()
            .ok()
            .and_then(|text| u64::from_str_radix(text, 16).ok())
            .ok_or_else(|| Status::invalid_argument("undecodable cluster ID"))?;
        let Some(ours) = served_cluster_id() else {
            return Ok(());
        };
        if theirs == ours {
            return Ok(());
        }
        if self.refused.lock().expect("refused lock").insert(theirs) {
            tracing::warn!(
                "refusing peer traffic of cluster {theirs:x}: this member belongs to cluster \
                 {ours:x} (a member of another cluster shares a peer URL with this one?)"
            );
        }
        Err(Status::failed_precondition(format!(
            "cluster ID mismatch: this peer belongs to cluster {ours:x}, the caller to cluster \
             {theirs:x}"
        )))
    }
}

#[tonic::async_trait]
impl Peer for PeerService {
    async fn step(&self, request: GrpcRequest<Bincode>) -> Result<GrpcResponse<Empty>, Status> {
        self.check_cluster(&request)?;
        self.member.step(decode(request.get_ref())?);
        Ok(GrpcResponse::new(Empty {}))
    }

    async fn forward(
        &self,
        request: GrpcRequest<Bincode>,
    ) -> Result<GrpcResponse<Bincode>, Status> {
        self.check_cluster(&request)?;
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
        self.check_cluster(&request)?;
        let call: ClusterRequest = decode(request.get_ref())?;
        let mut result = self.member.cluster(call).await;
        // A member joining the cluster learns the cluster's ID from this answer.
        if let (Ok(ClusterResponse::MemberList { header, .. }), Some(cluster_id)) =
            (&mut result, served_cluster_id())
        {
            header.cluster_id = cluster_id;
        }
        Ok(GrpcResponse::new(encode(&result)))
    }
}

/// A failed peer call as one line: tonic's message ("tcp connect error") and its causes
/// ("Connection refused (os error 111)").
fn describe_failure(status: &Status) -> String {
    let mut text = match status.message() {
        "" => format!("{:?}", status.code()),
        message => message.to_string(),
    };
    let mut cause = std::error::Error::source(status);
    while let Some(error) = cause {
        let more = error.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = error.source();
    }
    text
}

/// What this member last saw of each peer it called: `None` once a call got through, or the
/// error of the last call that did not. Changes are logged, naming the peer and its URL, so an
/// operator sees which member cannot be reached without reading Raft's traffic.
struct Reachability {
    /// --initial-cluster's names by peer address (members added later have none).
    names: BTreeMap<SocketAddr, String>,
    last_error: Mutex<BTreeMap<SocketAddr, Option<String>>>,
}

impl Reachability {
    fn describe(&self, addr: SocketAddr) -> String {
        match self.names.get(&addr) {
            Some(name) => format!("peer {name} at http://{addr}"),
            None => format!("the peer at http://{addr}"),
        }
    }

    fn observe(&self, addr: SocketAddr, outcome: Result<(), &Status>) {
        let now = outcome.err().map(describe_failure);
        let mut last = self.last_error.lock().expect("reachability lock");
        let before = last.insert(addr, now.clone());
        match (before.flatten(), now) {
            (Some(_), None) => tracing::info!("reached {}", self.describe(addr)),
            (None, Some(error)) => {
                tracing::warn!("cannot reach {}: {error}", self.describe(addr))
            }
            _ => {}
        }
    }

    fn reached(&self, addr: SocketAddr) -> bool {
        let last = self.last_error.lock().expect("reachability lock");
        matches!(last.get(&addr), Some(None))
    }

    /// The peers whose last call failed, each with its URL and error.
    fn unreachable(&self) -> Vec<String> {
        let last = self.last_error.lock().expect("reachability lock");
        last.iter()
            .filter_map(|(addr, error)| {
                let error = error.as_ref()?;
                Some(format!("{} ({error})", self.describe(*addr)))
            })
            .collect()
    }
}

/// Clients of the other members' peer services, one lazy channel per address.
#[derive(Clone)]
pub struct Peers {
    channels: Arc<Mutex<BTreeMap<SocketAddr, PeerClient<Channel>>>>,
    timeout: Duration,
    reachability: Arc<Reachability>,
}

impl Peers {
    /// `timeout` bounds every call (a peer behind a partition must not hold a task forever);
    /// `names`: the members' names by peer address, for messages about them.
    pub fn new(timeout: Duration, names: BTreeMap<SocketAddr, String>) -> Peers {
        Peers {
            channels: Arc::new(Mutex::new(BTreeMap::new())),
            timeout,
            reachability: Arc::new(Reachability {
                names,
                last_error: Mutex::new(BTreeMap::new()),
            }),
        }
    }

    /// The peers this member could not reach on its last call to each, with their URLs and
    /// errors (empty when every peer answered its last call).
    pub fn unreachable(&self) -> Vec<String> {
        self.reachability.unreachable()
    }

    /// Whether the last call to `addr` got through.
    pub fn reached(&self, addr: SocketAddr) -> bool {
        self.reachability.reached(addr)
    }

    /// "peer m1 at http://10.0.0.2:2380" (or without a name for a member added later).
    pub fn describe(&self, addr: SocketAddr) -> String {
        self.reachability.describe(addr)
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
        let reply = self
            .client(to)
            .forward(with_cluster_id(encode(request)))
            .await;
        self.reachability.observe(to, reply.as_ref().map(|_| ()));
        Self::answer(reply)
    }

    pub async fn forward_cluster(
        &self,
        to: SocketAddr,
        request: &ClusterRequest,
    ) -> Result<ClusterResponse, EtcdError> {
        let reply = self
            .client(to)
            .forward_cluster(with_cluster_id(encode(request)))
            .await;
        self.reachability.observe(to, reply.as_ref().map(|_| ()));
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
        let message = with_cluster_id(encode(&batch));
        let reachability = self.reachability.clone();
        real_tokio::spawn(async move {
            // Lost or timed-out peer messages are normal (Raft retransmits); only whether the
            // peer could be reached is noted.
            let reply = client.step(message).await;
            reachability.observe(to, reply.as_ref().map(|_| ()));
        });
    }
}
