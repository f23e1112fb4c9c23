//! The local member as the gRPC services see it: requests go to the member's own loop, and
//! what only the leader serves is forwarded to the leader once (etcd's followers forward
//! proposals and ReadIndex requests too, so a client may talk to any member).

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use faultline_api::{ClusterRequest, ClusterResponse, EtcdError, Request, Response};
use faultline_node::{MemberHandle, WatchBatch, WatchCall, WatchStreamError};

use crate::peer::Peers;

#[derive(Clone)]
pub struct LocalMember {
    pub handle: MemberHandle,
    pub peers: Peers,
    /// How long a request that meets no leader waits for one (an election, typically just
    /// after the members start) before it fails with "no leader".
    pub leader_wait: Duration,
}

/// How often a request waiting for a leader asks the member again.
const LEADER_POLL: Duration = Duration::from_millis(50);

/// The member refused before proposing because it knows no leader: safe to ask again.
fn no_leader<T>(result: &Result<T, EtcdError>) -> bool {
    matches!(
        result,
        Err(EtcdError::NoLeader | EtcdError::NotLeader { leader_hint: None })
    )
}

/// `http://10.0.0.1:2380` (how the member list writes peer URLs) as an address.
fn peer_addr(url: &str) -> Option<SocketAddr> {
    url.strip_prefix("http://")?
        .trim_end_matches('/')
        .parse()
        .ok()
}

impl LocalMember {
    /// A unary request: served here, or forwarded once to the leader this member knows.
    /// Without a leader (an election under way, typically just after the members start) it
    /// waits for one for `leader_wait`, so that a client started with the cluster is served.
    pub async fn client(&self, request: Request) -> Result<Response, EtcdError> {
        self.waiting_for_a_leader(|| self.client_once(request.clone()))
            .await
    }

    /// `call` until it meets a leader or `leader_wait` has passed; a final failure for want
    /// of a quorum is explained in the log.
    async fn waiting_for_a_leader<T, F, Fut>(&self, call: F) -> Result<T, EtcdError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, EtcdError>>,
    {
        let started = Instant::now();
        loop {
            let result = call().await;
            if no_leader(&result) && started.elapsed() < self.leader_wait {
                real_tokio::time::sleep(LEADER_POLL).await;
                continue;
            }
            if let Err(error) = &result {
                self.explain(error);
            }
            return result;
        }
    }

    /// A request that failed for want of a leader or a quorum: log which peers this member
    /// cannot reach (the client gets etcd's own error, which its library recognises).
    fn explain(&self, error: &EtcdError) {
        let quorum_trouble = matches!(
            error,
            EtcdError::NoLeader
                | EtcdError::LeaderChanged
                | EtcdError::Timeout
                | EtcdError::NotLeader { .. }
        );
        let unreachable = self.peers.unreachable();
        if quorum_trouble && !unreachable.is_empty() {
            tracing::warn!(
                "cannot serve a client request ({error}); unreachable: {}",
                unreachable.join(", ")
            );
        }
    }

    async fn client_once(&self, request: Request) -> Result<Response, EtcdError> {
        match self.handle.client(request.clone()).await {
            Err(EtcdError::NotLeader {
                leader_hint: Some(leader),
            }) => match self.leader_addr(leader).await {
                Some(addr) => self.peers.forward(addr, &request).await,
                None => Err(EtcdError::NoLeader),
            },
            other => other,
        }
    }

    /// A Cluster-service call: served here, or forwarded once to the leader.
    pub async fn cluster(&self, request: ClusterRequest) -> Result<ClusterResponse, EtcdError> {
        self.waiting_for_a_leader(|| self.cluster_once(request.clone()))
            .await
    }

    async fn cluster_once(&self, request: ClusterRequest) -> Result<ClusterResponse, EtcdError> {
        match self.handle.cluster(request.clone()).await {
            Err(EtcdError::NotLeader {
                leader_hint: Some(leader),
            }) => match self.leader_addr(leader).await {
                Some(addr) => self.peers.forward_cluster(addr, &request).await,
                None => Err(EtcdError::NoLeader),
            },
            other => other,
        }
    }

    pub async fn watch(&self, call: WatchCall) -> Result<WatchBatch, WatchStreamError> {
        self.handle.watch(call).await
    }

    /// The peer address of member `id`, from this member's applied member list.
    async fn leader_addr(&self, id: u64) -> Option<SocketAddr> {
        let list = ClusterRequest::MemberList {
            linearizable: false,
        };
        let response = self.handle.cluster(list).await.ok()?;
        let member = response.members()?.iter().find(|m| m.id == id)?;
        member.peer_urls.iter().find_map(|url| peer_addr(url))
    }
}

/// The services' backend in the real build: the local member, forwarding to the leader.
impl faultline_grpc::Backend for LocalMember {
    fn client(&self, request: Request) -> impl Future<Output = Result<Response, EtcdError>> + Send {
        LocalMember::client(self, request)
    }

    fn cluster(
        &self,
        request: ClusterRequest,
    ) -> impl Future<Output = Result<ClusterResponse, EtcdError>> + Send {
        LocalMember::cluster(self, request)
    }

    fn watch(
        &self,
        call: WatchCall,
    ) -> impl Future<Output = Result<WatchBatch, WatchStreamError>> + Send {
        LocalMember::watch(self, call)
    }
}
