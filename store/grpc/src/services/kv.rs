//! The KV service.

use faultline_api::{Request, Response};
use tonic::{Request as GrpcRequest, Response as GrpcResponse, Status};

use super::{mismatch, Etcd};
use crate::pb::etcdserverpb as pb;
use crate::pb::etcdserverpb::kv_server::Kv;
use crate::Backend;

#[tonic::async_trait]
impl<B: Backend> Kv for Etcd<B> {
    async fn range(
        &self,
        request: GrpcRequest<pb::RangeRequest>,
    ) -> Result<GrpcResponse<pb::RangeResponse>, Status> {
        let request = Request::Range(request.into_inner().try_into()?);
        match self.call(request).await? {
            Response::Range(r) => Ok(GrpcResponse::new(r.into())),
            other => Err(mismatch("Range", &other)),
        }
    }

    async fn put(
        &self,
        request: GrpcRequest<pb::PutRequest>,
    ) -> Result<GrpcResponse<pb::PutResponse>, Status> {
        let request = Request::Put(request.into_inner().into());
        match self.call(request).await? {
            Response::Put(r) => Ok(GrpcResponse::new(r.into())),
            other => Err(mismatch("Put", &other)),
        }
    }

    async fn delete_range(
        &self,
        request: GrpcRequest<pb::DeleteRangeRequest>,
    ) -> Result<GrpcResponse<pb::DeleteRangeResponse>, Status> {
        let request = Request::DeleteRange(request.into_inner().into());
        match self.call(request).await? {
            Response::DeleteRange(r) => Ok(GrpcResponse::new(r.into())),
            other => Err(mismatch("DeleteRange", &other)),
        }
    }

    async fn txn(
        &self,
        request: GrpcRequest<pb::TxnRequest>,
    ) -> Result<GrpcResponse<pb::TxnResponse>, Status> {
        let request = Request::Txn(request.into_inner().try_into()?);
        match self.call(request).await? {
            Response::Txn(r) => Ok(GrpcResponse::new(r.into())),
            other => Err(mismatch("Txn", &other)),
        }
    }

    async fn compact(
        &self,
        request: GrpcRequest<pb::CompactionRequest>,
    ) -> Result<GrpcResponse<pb::CompactionResponse>, Status> {
        let request = Request::Compact(request.into_inner().into());
        match self.call(request).await? {
            Response::Compact(r) => Ok(GrpcResponse::new(r.into())),
            other => Err(mismatch("Compact", &other)),
        }
    }
}
