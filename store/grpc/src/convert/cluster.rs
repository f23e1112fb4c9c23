//! Cluster (member list and changes) and Maintenance (Status, HashKV, MoveLeader).

use faultline_api::{self as api, ClusterResponse};
use tonic::Status;

use super::kv::{header_from_api, header_to_api};
use crate::pb::etcdserverpb as pb;

pub fn member_from_api(m: api::Member) -> pb::Member {
    pb::Member {
        id: m.id,
        name: m.name,
        peer_ur_ls: m.peer_urls,
        client_ur_ls: m.client_urls,
        is_learner: m.is_learner,
    }
}

impl From<pb::Member> for api::Member {
    fn from(m: pb::Member) -> Self {
        api::Member {
            id: m.id,
            name: m.name,
            peer_urls: m.peer_ur_ls,
            client_urls: m.client_ur_ls,
            is_learner: m.is_learner,
        }
    }
}

fn members_from_api(members: Vec<api::Member>) -> Vec<pb::Member> {
    members.into_iter().map(member_from_api).collect()
}

/// The member asked answered with another kind of response than the call's: a bug here.
fn mismatch(call: &str, response: &ClusterResponse) -> Status {
    Status::internal(format!("{call} answered with {response:?}"))
}

impl TryFrom<ClusterResponse> for pb::MemberListResponse {
    type Error = Status;
    fn try_from(response: ClusterResponse) -> Result<Self, Status> {
        match response {
            ClusterResponse::MemberList { header, members } => Ok(pb::MemberListResponse {
                header: header_from_api(&header),
                members: members_from_api(members),
            }),
            other => Err(mismatch("MemberList", &other)),
        }
    }
}

impl TryFrom<ClusterResponse> for pb::MemberAddResponse {
    type Error = Status;
    fn try_from(response: ClusterResponse) -> Result<Self, Status> {
        match response {
            ClusterResponse::MemberAdd {
                header,
                member,
                members,
            } => Ok(pb::MemberAddResponse {
                header: header_from_api(&header),
                member: Some(member_from_api(member)),
                members: members_from_api(members),
            }),
            other => Err(mismatch("MemberAdd", &other)),
        }
    }
}

impl TryFrom<ClusterResponse> for pb::MemberRemoveResponse {
    type Error = Status;
    fn try_from(response: ClusterResponse) -> Result<Self, Status> {
        match response {
            ClusterResponse::MemberRemove { header, members } => Ok(pb::MemberRemoveResponse {
                header: header_from_api(&header),
                members: members_from_api(members),
            }),
            other => Err(mismatch("MemberRemove", &other)),
        }
    }
}

impl TryFrom<ClusterResponse> for pb::MemberPromoteResponse {
    type Error = Status;
    fn try_from(response: ClusterResponse) -> Result<Self, Status> {
        match response {
            ClusterResponse::MemberPromote { header, members } => Ok(pb::MemberPromoteResponse {
                header: header_from_api(&header),
                members: members_from_api(members),
            }),
            other => Err(mismatch("MemberPromote", &other)),
        }
    }
}

impl TryFrom<ClusterResponse> for pb::MoveLeaderResponse {
    type Error = Status;
    fn try_from(response: ClusterResponse) -> Result<Self, Status> {
        match response {
            ClusterResponse::MoveLeader { header } => Ok(pb::MoveLeaderResponse {
                header: header_from_api(&header),
            }),
            other => Err(mismatch("MoveLeader", &other)),
        }
    }
}

/// Maintenance.Status. We have no bbolt file: `dbSize` and `dbSizeInUse` are both the size
/// of the key space's serialized state.
pub fn status_from_api(status: api::StatusResponse) -> pb::StatusResponse {
    let db_size = i64::try_from(status.db_size_bytes).unwrap_or(i64::MAX);
    pb::StatusResponse {
        header: header_from_api(&status.header),
        version: status.version,
        db_size,
        leader: status.leader,
        raft_index: status.raft_index,
        raft_term: status.raft_term,
        raft_applied_index: status.raft_applied_index,
        errors: Vec::new(),
        db_size_in_use: db_size,
        is_learner: status.is_learner,
    }
}

impl From<pb::StatusResponse> for api::StatusResponse {
    fn from(s: pb::StatusResponse) -> Self {
        api::StatusResponse {
            header: header_to_api(s.header),
            version: s.version,
            db_size_bytes: u64::try_from(s.db_size).unwrap_or(0),
            leader: s.leader,
            raft_index: s.raft_index,
            raft_term: s.raft_term,
            raft_applied_index: s.raft_applied_index,
            is_learner: s.is_learner,
        }
    }
}

impl From<pb::HashKvRequest> for api::HashKvRequest {
    fn from(r: pb::HashKvRequest) -> Self {
        api::HashKvRequest {
            revision: r.revision,
        }
    }
}

impl From<api::HashKvRequest> for pb::HashKvRequest {
    fn from(r: api::HashKvRequest) -> Self {
        pb::HashKvRequest {
            revision: r.revision,
        }
    }
}

impl From<api::HashKvResponse> for pb::HashKvResponse {
    fn from(r: api::HashKvResponse) -> Self {
        pb::HashKvResponse {
            header: header_from_api(&r.header),
            hash: r.hash,
            compact_revision: r.compact_revision,
            hash_revision: r.hash_revision,
        }
    }
}

impl From<pb::HashKvResponse> for api::HashKvResponse {
    fn from(r: pb::HashKvResponse) -> Self {
        api::HashKvResponse {
            header: header_to_api(r.header),
            hash: r.hash,
            compact_revision: r.compact_revision,
            hash_revision: r.hash_revision,
        }
    }
}
