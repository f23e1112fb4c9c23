//! The store's errors as gRPC statuses: etcd's code (`EtcdError::code`) and etcd's message, so
//! an etcd client recognises them (clientv3 matches the message text: `rpctypes.ErrorDesc`);
//! and back, for the simulator's clients, which read a status as the store's error.

use faultline_api::{EtcdError, GrpcCode};
use faultline_node::WatchStreamError;
use tonic::metadata::MetadataValue;
use tonic::{Code, Status};

/// The metadata key of `NotLeader`'s hint: the member the answering member believes leads.
/// Ours, not etcd's (etcd's followers forward instead); etcd clients ignore it.
pub const LEADER_HINT_KEY: &str = "faultline-leader-hint";

fn code(code: GrpcCode) -> Code {
    match code {
        GrpcCode::InvalidArgument => Code::InvalidArgument,
        GrpcCode::OutOfRange => Code::OutOfRange,
        GrpcCode::NotFound => Code::NotFound,
        GrpcCode::FailedPrecondition => Code::FailedPrecondition,
        GrpcCode::ResourceExhausted => Code::ResourceExhausted,
        GrpcCode::Unavailable => Code::Unavailable,
        GrpcCode::DeadlineExceeded => Code::DeadlineExceeded,
        GrpcCode::Canceled => Code::Cancelled,
    }
}

/// etcd's status for `error`. The message is etcd's own text; `NotLeader`'s hint is not part
/// of etcd's message and travels in the [`LEADER_HINT_KEY`] metadata.
pub fn status_from_error(error: &EtcdError) -> Status {
    let message = match error {
        EtcdError::NotLeader { .. } => NOT_LEADER.to_string(),
        other => other.to_string(),
    };
    let mut status = Status::new(code(error.code()), message);
    if let EtcdError::NotLeader {
        leader_hint: Some(hint),
    } = error
    {
        status
            .metadata_mut()
            .insert(LEADER_HINT_KEY, MetadataValue::from(*hint));
    }
    status
}

const NOT_LEADER: &str = "etcdserver: not leader";

/// Every error of the catalog but `NotLeader` (read from its message and hint); the test
/// `every_error_round_trips_through_its_status` proves it complete.
const CATALOG: &[EtcdError] = {
    use EtcdError::*;
    &[
        Compacted,
        FutureRev,
        EmptyKey,
        KeyNotFound,
        ValueProvided,
        LeaseProvided,
        TooManyOps,
        DuplicateKey,
        InvalidSortOption,
        NoSpace,
        RequestTooLarge,
        LeaseNotFound,
        LeaseExist,
        LeaseTtlTooLarge,
        NoLeader,
        LeaderChanged,
        Timeout,
        Stopped,
        Removed,
        MemberNotFound,
        MemberExist,
        IdRemoved,
        MemberBadUrls,
        PeerUrlExist,
        MemberNotLearner,
        LearnerNotReady,
        TooManyLearners,
        Unhealthy,
        NotEnoughStartedMembers,
        BadLeaderTransferee,
        TimeoutLeaderTransfer,
        ConfChangeInProgress,
    ]
};

/// The store's error a status carries, as an etcd client reads it (code and message); `None`
/// for a status no member sends for an error (a transport failure, a client deadline): the
/// caller does not know what happened.
pub fn error_from_status(status: &Status) -> Option<EtcdError> {
    if status.code() == Code::Unavailable && status.message() == NOT_LEADER {
        let leader_hint = status
            .metadata()
            .get(LEADER_HINT_KEY)
            .and_then(|v| v.to_str().ok()?.parse().ok());
        return Some(EtcdError::NotLeader { leader_hint });
    }
    CATALOG
        .iter()
        .find(|e| code(e.code()) == status.code() && e.to_string() == status.message())
        .cloned()
}

/// A watch stream the member lost (it restarted, or closed the stream) ends the client's
/// stream as etcd's does when the member stops: Unavailable, so clients reconnect and resume.
pub fn status_from_stream_error(error: &WatchStreamError) -> Status {
    match error {
        WatchStreamError::Stopped => status_from_error(&EtcdError::Stopped),
        WatchStreamError::UnknownStream { .. } => {
            Status::unavailable(format!("etcdserver: watch stream lost ({error})"))
        }
    }
}
