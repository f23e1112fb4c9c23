//! etcd's Cluster service (MemberList, MemberAdd, MemberRemove, MemberPromote) and the
//! Maintenance calls about members (MoveLeader, Status), kept apart from the key-value
//! `Request`: the checkers' model of the key space never sees them. Shapes and field meanings
//! follow etcd's rpc.proto (`Member`, `Member*Request`, `MoveLeaderRequest`, `StatusResponse`).

use serde::{Deserialize, Serialize};

use crate::ResponseHeader;

/// One member of the cluster (etcdserverpb.Member). `name` is empty until the member started
/// and published it; our members publish it with the change that adds them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Member {
    pub id: u64,
    pub name: String,
    pub peer_urls: Vec<String>,
    pub client_urls: Vec<String>,
    pub is_learner: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ClusterRequest {
    /// The member's applied member list; with `linearizable`, only the leader answers (etcd
    /// 3.5's `MemberListRequest.linearizable`).
    MemberList {
        linearizable: bool,
    },
    /// Adds a member with these peer URLs; the leader picks its ID (etcd derives it from the
    /// URLs and the time; ours comes from the leader's seeded generator).
    MemberAdd {
        name: String,
        peer_urls: Vec<String>,
        is_learner: bool,
    },
    MemberRemove {
        id: u64,
    },
    MemberPromote {
        id: u64,
    },
    /// Hands leadership to `target_id` (a voter); answered once the target leads.
    MoveLeader {
        target_id: u64,
    },
    /// The answering member's own view (Maintenance.Status).
    Status,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ClusterResponse {
    MemberList {
        header: ResponseHeader,
        members: Vec<Member>,
    },
    MemberAdd {
        header: ResponseHeader,
        member: Member,
        members: Vec<Member>,
    },
    MemberRemove {
        header: ResponseHeader,
        members: Vec<Member>,
    },
    MemberPromote {
        header: ResponseHeader,
        members: Vec<Member>,
    },
    MoveLeader {
        header: ResponseHeader,
    },
    Status(StatusResponse),
}

/// etcdserverpb.StatusResponse, without the fields about a bbolt file we do not have
/// (`db_size` is the size of the key space's serialized state).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct StatusResponse {
    pub header: ResponseHeader,
    pub version: String,
    pub db_size_bytes: u64,
    /// The member this one believes leads (0: none known).
    pub leader: u64,
    /// The last index of this member's Raft log.
    pub raft_index: u64,
    pub raft_term: u64,
    pub raft_applied_index: u64,
    pub is_learner: bool,
}

impl ClusterResponse {
    pub fn header(&self) -> &ResponseHeader {
        match self {
            ClusterResponse::MemberList { header, .. }
            | ClusterResponse::MemberAdd { header, .. }
            | ClusterResponse::MemberRemove { header, .. }
            | ClusterResponse::MemberPromote { header, .. }
            | ClusterResponse::MoveLeader { header } => header,
            ClusterResponse::Status(status) => &status.header,
        }
    }

    /// The member list the response carries, if it carries one.
    pub fn members(&self) -> Option<&[Member]> {
        match self {
            ClusterResponse::MemberList { members, .. }
            | ClusterResponse::MemberAdd { members, .. }
            | ClusterResponse::MemberRemove { members, .. }
            | ClusterResponse::MemberPromote { members, .. } => Some(members),
            ClusterResponse::MoveLeader { .. } | ClusterResponse::Status(_) => None,
        }
    }
}
