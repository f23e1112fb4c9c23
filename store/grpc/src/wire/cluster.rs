//! The Cluster and Maintenance calls the simulator's operator and checks make (member list
//! and changes, leader transfer, a member's status) as etcd's messages; see `wire`.

use faultline_api::{self as api, ClusterRequest, ClusterResponse, EtcdError};
use prost::Message;

use super::{decoded, message, unary, Call, Method, Reply};
use crate::convert::header_to_api;
use crate::pb::etcdserverpb as pb;
use crate::pb::etcdserverpb::cluster_server::Cluster;
use crate::pb::etcdserverpb::maintenance_server::Maintenance;
use crate::{Backend, Etcd};

/// What a Cluster call got (as `super::Answer`).
pub type ClusterAnswer = Result<Result<ClusterResponse, EtcdError>, tonic::Status>;

/// The client's side: `request` as etcd's message. etcd's `MemberAddRequest` has no name (a
/// member is named when it starts and publishes its attributes), so `MemberAdd`'s name is
/// not sent.
pub fn encode_cluster(request: ClusterRequest) -> Call {
    let (method, body) = match request {
        ClusterRequest::MemberList { linearizable } => (
            Method::MemberList,
            pb::MemberListRequest { linearizable }.encode_to_vec(),
        ),
        ClusterRequest::MemberAdd {
            name: _,
            peer_urls,
            is_learner,
        } => (
            Method::MemberAdd,
            pb::MemberAddRequest {
                peer_ur_ls: peer_urls,
                is_learner,
            }
            .encode_to_vec(),
        ),
        ClusterRequest::MemberRemove { id } => (
            Method::MemberRemove,
            pb::MemberRemoveRequest { id }.encode_to_vec(),
        ),
        ClusterRequest::MemberPromote { id } => (
            Method::MemberPromote,
            pb::MemberPromoteRequest { id }.encode_to_vec(),
        ),
        ClusterRequest::MoveLeader { target_id } => (
            Method::MoveLeader,
            pb::MoveLeaderRequest { target_id }.encode_to_vec(),
        ),
        ClusterRequest::Status => (Method::Status, pb::StatusRequest {}.encode_to_vec()),
    };
    Call { method, body }
}

/// The member's side of a Cluster call; `None` when `method` is not one.
pub(super) async fn serve_cluster<B: Backend>(
    etcd: &Etcd<B>,
    method: Method,
    body: &[u8],
) -> Option<Reply> {
    let e = etcd;
    Some(match method {
        Method::MemberList => unary(body, |r| e.member_list(r)).await,
        Method::MemberAdd => unary(body, |r| e.member_add(r)).await,
        Method::MemberRemove => unary(body, |r| e.member_remove(r)).await,
        Method::MemberPromote => unary(body, |r| e.member_promote(r)).await,
        Method::MoveLeader => unary(body, |r| e.move_leader(r)).await,
        Method::Status => unary(body, |r| e.status(r)).await,
        _ => return None,
    })
}

fn members(members: Vec<pb::Member>) -> Vec<api::Member> {
    members.into_iter().map(api::Member::from).collect()
}

/// The client's side: the member's reply to a Cluster call of `method`.
pub fn decode_cluster(method: Method, reply: Reply) -> ClusterAnswer {
    let body = match reply {
        Reply::Message(body) => body,
        status @ Reply::Status { .. } => return decoded(status.into_status()),
    };
    let body = &body[..];
    let response = match method {
        Method::MemberList => {
            message::<pb::MemberListResponse>(body).map(|r| ClusterResponse::MemberList {
                header: header_to_api(r.header),
                members: members(r.members),
            })
        }
        Method::MemberAdd => message::<pb::MemberAddResponse>(body).and_then(|r| {
            let member = r
                .member
                .ok_or_else(|| tonic::Status::internal("MemberAdd answered no member"))?;
            Ok(ClusterResponse::MemberAdd {
                header: header_to_api(r.header),
                member: member.into(),
                members: members(r.members),
            })
        }),
        Method::MemberRemove => {
            message::<pb::MemberRemoveResponse>(body).map(|r| ClusterResponse::MemberRemove {
                header: header_to_api(r.header),
                members: members(r.members),
            })
        }
        Method::MemberPromote => {
            message::<pb::MemberPromoteResponse>(body).map(|r| ClusterResponse::MemberPromote {
                header: header_to_api(r.header),
                members: members(r.members),
            })
        }
        Method::MoveLeader => {
            message::<pb::MoveLeaderResponse>(body).map(|r| ClusterResponse::MoveLeader {
                header: header_to_api(r.header),
            })
        }
        Method::Status => message::<pb::StatusResponse>(body)
            .map(|r| ClusterResponse::Status(api::StatusResponse::from(r))),
        other => Err(tonic::Status::internal(format!(
            "{other:?} is not a Cluster call"
        ))),
    };
    response.map(Ok)
}
