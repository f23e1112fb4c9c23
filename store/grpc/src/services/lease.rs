//! The Lease service; keep-alives are a stream of requests, each answered in order.

use std::pin::Pin;

use faultline_api::{Request, Response};
use tokio_stream::{Stream, StreamExt};
use tonic::{Request as GrpcRequest, Response as GrpcResponse, Status, Streaming};

use super::{mismatch, Etcd};
use crate::pb::etcdserverpb as pb;
use crate::pb::etcdserverpb::lease_server::Lease;
use crate::Backend;

type KeepAliveStream =
    Pin<Box<dyn Stream<Item = Result<pb::LeaseKeepAliveResponse, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl<B: Backend> Lease for Etcd<B> {
    async fn lease_grant(
        &self,
        request: GrpcRequest<pb::LeaseGrantRequest>,
    ) -> Result<GrpcResponse<pb::LeaseGrantResponse>, Status> {
        let request = Request::LeaseGrant(request.into_inner().into());
        match self.call(request).await? {
            Response::LeaseGrant(r) => Ok(GrpcResponse::new(r.into())),
            other => Err(mismatch("LeaseGrant", &other)),
        }
    }

    async fn lease_revoke(
        &self,
        request: GrpcRequest<pb::LeaseRevokeRequest>,
    ) -> Result<GrpcResponse<pb::LeaseRevokeResponse>, Status> {
        let request = Request::LeaseRevoke(request.into_inner().into());
        match self.call(request).await? {
            Response::LeaseRevoke(r) => Ok(GrpcResponse::new(r.into())),
            other => Err(mismatch("LeaseRevoke", &other)),
        }
    }

    type LeaseKeepAliveStream = KeepAliveStream;

    async fn lease_keep_alive(
        &self,
        request: GrpcRequest<Streaming<pb::LeaseKeepAliveRequest>>,
    ) -> Result<GrpcResponse<KeepAliveStream>, Status> {
        let service = self.clone();
        let requests = request.into_inner();
        // `then` answers one request at a time, in order; the stream ends with the client's.
        let responses = requests.then(move |request| {
            let service = service.clone();
            async move {
                let request = Request::LeaseKeepAlive(request?.into());
                match service.call(request).await? {
                    Response::LeaseKeepAlive(r) => Ok(r.into()),
                    other => Err(mismatch("LeaseKeepAlive", &other)),
                }
            }
        });
        Ok(GrpcResponse::new(Box::pin(responses)))
    }

    async fn lease_time_to_live(
        &self,
        request: GrpcRequest<pb::LeaseTimeToLiveRequest>,
    ) -> Result<GrpcResponse<pb::LeaseTimeToLiveResponse>, Status> {
        let request = Request::LeaseTimeToLive(request.into_inner().into());
        match self.call(request).await? {
            Response::LeaseTimeToLive(r) => Ok(GrpcResponse::new(r.into())),
            other => Err(mismatch("LeaseTimeToLive", &other)),
        }
    }

    async fn lease_leases(
        &self,
        _request: GrpcRequest<pb::LeaseLeasesRequest>,
    ) -> Result<GrpcResponse<pb::LeaseLeasesResponse>, Status> {
        match self.call(Request::LeaseLeases).await? {
            Response::LeaseLeases(r) => Ok(GrpcResponse::new(r.into())),
            other => Err(mismatch("LeaseLeases", &other)),
        }
    }
}
