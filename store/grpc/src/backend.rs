//! What the services ask: one member, through whatever front door it has.

use std::future::Future;

use faultline_api::{ClusterRequest, ClusterResponse, EtcdError, Request, Response};
use faultline_node::{MemberHandle, WatchBatch, WatchCall, WatchStreamError};

/// A member as etcd's services see it. `MemberHandle` answers from the member itself (a
/// follower answers `NotLeader` with its hint; the simulator's clients follow it); the real
/// server's member forwards such requests to the leader once, as etcd's followers do.
pub trait Backend: Clone + Send + Sync + 'static {
    /// A unary request (KV, Lease, HashKV).
    fn client(&self, request: Request) -> impl Future<Output = Result<Response, EtcdError>> + Send;

    /// A Cluster-service call (membership, leader transfer, status).
    fn cluster(
        &self,
        request: ClusterRequest,
    ) -> impl Future<Output = Result<ClusterResponse, EtcdError>> + Send;

    /// A call on one of the member's watch streams.
    fn watch(
        &self,
        call: WatchCall,
    ) -> impl Future<Output = Result<WatchBatch, WatchStreamError>> + Send;
}

impl Backend for MemberHandle {
    fn client(&self, request: Request) -> impl Future<Output = Result<Response, EtcdError>> + Send {
        MemberHandle::client(self, request)
    }

    fn cluster(
        &self,
        request: ClusterRequest,
    ) -> impl Future<Output = Result<ClusterResponse, EtcdError>> + Send {
        MemberHandle::cluster(self, request)
    }

    fn watch(
        &self,
        call: WatchCall,
    ) -> impl Future<Output = Result<WatchBatch, WatchStreamError>> + Send {
        MemberHandle::watch(self, call)
    }
}
