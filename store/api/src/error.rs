//! etcd's error catalog as one typed enum; messages are etcd's own (rpctypes/error.go),
//! so a client can compare them with a real etcd's.

use serde::{Deserialize, Serialize};

/// The gRPC status code etcd returns with each error.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum GrpcCode {
    InvalidArgument,
    OutOfRange,
    NotFound,
    FailedPrecondition,
    ResourceExhausted,
    Unavailable,
    DeadlineExceeded,
    Canceled,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, thiserror::Error)]
pub enum EtcdError {
    #[error("etcdserver: mvcc: required revision has been compacted")]
    Compacted,
    #[error("etcdserver: mvcc: required revision is a future revision")]
    FutureRev,
    #[error("etcdserver: key is not provided")]
    EmptyKey,
    #[error("etcdserver: key not found")]
    KeyNotFound,
    #[error("etcdserver: value is provided")]
    ValueProvided,
    #[error("etcdserver: lease is provided")]
    LeaseProvided,
    #[error("etcdserver: too many operations in txn request")]
    TooManyOps,
    #[error("etcdserver: duplicate key given in txn request")]
    DuplicateKey,
    #[error("etcdserver: invalid sort option")]
    InvalidSortOption,
    #[error("etcdserver: mvcc: database space exceeded")]
    NoSpace,
    #[error("etcdserver: request is too large")]
    RequestTooLarge,
    #[error("etcdserver: requested lease not found")]
    LeaseNotFound,
    #[error("etcdserver: lease already exists")]
    LeaseExist,
    #[error("etcdserver: too large lease TTL")]
    LeaseTtlTooLarge,
    /// This member is not the leader and does not forward; the request was not applied.
    /// `leader_hint` is the member it believes leads (the client retries there).
    #[error("etcdserver: not leader (hint: {leader_hint:?})")]
    NotLeader { leader_hint: Option<u64> },
    #[error("etcdserver: no leader")]
    NoLeader,
    #[error("etcdserver: leader changed")]
    LeaderChanged,
    #[error("etcdserver: request timed out")]
    Timeout,
    #[error("etcdserver: server stopped")]
    Stopped,
    // The Cluster service's errors (etcd's rpctypes: ErrGRPCMemberNotFound and the rest).
    /// This member applied its own removal (etcd's ErrMemberRemoved); nothing was done.
    #[error("etcdserver: the member has been permanently removed from the cluster")]
    Removed,
    #[error("etcdserver: member not found")]
    MemberNotFound,
    #[error("etcdserver: member ID already exist")]
    MemberExist,
    /// The ID belongs to a member removed earlier: etcd never lets an ID back in.
    #[error("etcdserver: ID removed")]
    IdRemoved,
    #[error("etcdserver: given member URLs are invalid")]
    MemberBadUrls,
    #[error("etcdserver: Peer URLs already exists")]
    PeerUrlExist,
    #[error("etcdserver: can only promote a learner member")]
    MemberNotLearner,
    #[error("etcdserver: can only promote a learner member which is in sync with leader")]
    LearnerNotReady,
    #[error("etcdserver: too many learner members in cluster")]
    TooManyLearners,
    /// Removing the member would leave fewer active voters than a quorum (etcd's
    /// `--strict-reconfig-check`, on by default).
    #[error("etcdserver: unhealthy cluster")]
    Unhealthy,
    /// Adding a voter would leave fewer started voters than the new quorum.
    #[error("etcdserver: re-configuration failed due to not enough started members")]
    NotEnoughStartedMembers,
    #[error("etcdserver: bad leader transferee")]
    BadLeaderTransferee,
    #[error("etcdserver: request timed out, leader transfer took too long")]
    TimeoutLeaderTransfer,
    /// One membership change at a time: an earlier change is not committed yet (etcd answers
    /// such a request only after the earlier one applied; ours refuses it and the caller retries).
    #[error("etcdserver: a membership change is in progress")]
    ConfChangeInProgress,
}

impl EtcdError {
    pub fn code(&self) -> GrpcCode {
        use EtcdError::*;
        match self {
            Compacted | FutureRev | LeaseTtlTooLarge => GrpcCode::OutOfRange,
            EmptyKey | KeyNotFound | ValueProvided | LeaseProvided | TooManyOps | DuplicateKey
            | InvalidSortOption | RequestTooLarge => GrpcCode::InvalidArgument,
            NoSpace => GrpcCode::ResourceExhausted,
            LeaseNotFound => GrpcCode::NotFound,
            LeaseExist => GrpcCode::FailedPrecondition,
            NotLeader { .. } | NoLeader | LeaderChanged | Timeout | Stopped => {
                GrpcCode::Unavailable
            }
            Removed => GrpcCode::Unavailable,
            MemberNotFound => GrpcCode::NotFound,
            MemberExist | IdRemoved => GrpcCode::FailedPrecondition,
            MemberBadUrls => GrpcCode::InvalidArgument,
            PeerUrlExist => GrpcCode::FailedPrecondition,
            MemberNotLearner | LearnerNotReady | TooManyLearners | NotEnoughStartedMembers => {
                GrpcCode::FailedPrecondition
            }
            ConfChangeInProgress => GrpcCode::FailedPrecondition,
            Unhealthy | TimeoutLeaderTransfer => GrpcCode::Unavailable,
            BadLeaderTransferee => GrpcCode::FailedPrecondition,
        }
    }

    /// True when a write that got this error may or may not have taken effect
    /// (etcd-semantics.md §9: the Unavailable class and client deadlines).
    /// `NotLeader` and `NoLeader` are returned before proposing, so they are definite failures.
    pub fn is_unknown_outcome(&self) -> bool {
        matches!(
            self,
            EtcdError::LeaderChanged | EtcdError::Timeout | EtcdError::Stopped
        )
    }
}
