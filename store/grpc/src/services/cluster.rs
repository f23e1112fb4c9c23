//! The Cluster service (member list and changes) and the Maintenance service.

use faultline_api::{ClusterRequest, ClusterResponse, Request, Response};
use tonic::{Request as GrpcRequest, Response as GrpcResponse, Status};

use super::{mismatch, Etcd};
use crate::convert::{header_from_api, status_from_api, status_from_error};
use crate::pb::etcdserverpb as pb;
use crate::pb::etcdserverpb::cluster_server::Cluster;
use crate::pb::etcdserverpb::maintenance_server::Maintenance;
use crate::Backend;

impl<B: Backend> Etcd<B> {
    async fn call_cluster(&self, request: ClusterRequest) -> Result<ClusterResponse, Status> {
        self.member
            .cluster(request)
            .await
            .map_err(|e| status_from_error(&e))
    }

    /// This member's own status (never forwarded: Status is about the member asked).
    async fn own_status(&self) -> Result<faultline_api::StatusResponse, Status> {
        match self.call_cluster(ClusterRequest::Status).await? {
            ClusterResponse::Status(status) => Ok(status),
            other => Err(Status::internal(format!("Status answered with {other:?}"))),
        }
    }
}

#[tonic::async_trait]
impl<B: Backend> Cluster for Etcd<B> {
    async fn member_add(
        &self,
        request: GrpcRequest<pb::MemberAddRequest>,
    ) -> Result<GrpcResponse<pb::MemberAddResponse>, Status> {
        let request = request.into_inner();
        // etcd's MemberAddRequest carries no name: a member is named when it starts.
        let add = ClusterRequest::MemberAdd {
            name: String::new(),
            peer_urls: request.peer_ur_ls,
            is_learner: request.is_learner,
        };
        Ok(GrpcResponse::new(self.call_cluster(add).await?.try_into()?))
    }

    async fn member_remove(
        &self,
        request: GrpcRequest<pb::MemberRemoveRequest>,
    ) -> Result<GrpcResponse<pb::MemberRemoveResponse>, Status> {
        let remove = ClusterRequest::MemberRemove {
            id: request.into_inner().id,
        };
        Ok(GrpcResponse::new(
            self.call_cluster(remove).await?.try_into()?,
        ))
    }

    async fn member_list(
        &self,
        request: GrpcRequest<pb::MemberListRequest>,
    ) -> Result<GrpcResponse<pb::MemberListResponse>, Status> {
        let list = ClusterRequest::MemberList {
            linearizable: request.into_inner().linearizable,
        };
        Ok(GrpcResponse::new(
            self.call_cluster(list).await?.try_into()?,
        ))
    }

    async fn member_promote(
        &self,
        request: GrpcRequest<pb::MemberPromoteRequest>,
    ) -> Result<GrpcResponse<pb::MemberPromoteResponse>, Status> {
        let promote = ClusterRequest::MemberPromote {
            id: request.into_inner().id,
        };
        Ok(GrpcResponse::new(
            self.call_cluster(promote).await?.try_into()?,
        ))
    }
}

#[tonic::async_trait]
impl<B: Backend> Maintenance for Etcd<B> {
    /// We raise no alarms (no space quota, no corruption check yet): GET and DEACTIVATE see an
    /// empty list; ACTIVATE is refused rather than pretended.
    async fn alarm(
        &self,
        request: GrpcRequest<pb::AlarmRequest>,
    ) -> Result<GrpcResponse<pb::AlarmResponse>, Status> {
        use pb::alarm_request::AlarmAction;
        if request.get_ref().action == AlarmAction::Activate as i32 {
            return Err(Status::unimplemented(
                "faultline: alarms cannot be activated (no alarm is implemented)",
            ));
        }
        let status = self.own_status().await?;
        Ok(GrpcResponse::new(pb::AlarmResponse {
            header: header_from_api(&status.header),
            alarms: Vec::new(),
        }))
    }

    async fn status(
        &self,
        _request: GrpcRequest<pb::StatusRequest>,
    ) -> Result<GrpcResponse<pb::StatusResponse>, Status> {
        Ok(GrpcResponse::new(status_from_api(self.own_status().await?)))
    }

    /// A no-op that succeeds: the key space lives in memory and on the WAL and snapshots,
    /// with no bbolt file to defragment (compaction and snapshots already reclaim space).
    async fn defragment(
        &self,
        _request: GrpcRequest<pb::DefragmentRequest>,
    ) -> Result<GrpcResponse<pb::DefragmentResponse>, Status> {
        let status = self.own_status().await?;
        Ok(GrpcResponse::new(pb::DefragmentResponse {
            header: header_from_api(&status.header),
        }))
    }

    async fn hash_kv(
        &self,
        request: GrpcRequest<pb::HashKvRequest>,
    ) -> Result<GrpcResponse<pb::HashKvResponse>, Status> {
        let request = Request::HashKv(request.into_inner().into());
        match self.call(request).await? {
            Response::HashKv(r) => Ok(GrpcResponse::new(r.into())),
            other => Err(mismatch("HashKV", &other)),
        }
    }

    async fn move_leader(
        &self,
        request: GrpcRequest<pb::MoveLeaderRequest>,
    ) -> Result<GrpcResponse<pb::MoveLeaderResponse>, Status> {
        let target_id = request.into_inner().target_id;
        let response = self
            .call_cluster(ClusterRequest::MoveLeader { target_id })
            .await?;
        Ok(GrpcResponse::new(response.try_into()?))
    }
}
