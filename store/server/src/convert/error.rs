//! The store's errors as gRPC statuses: etcd's code (`EtcdError::code`) and etcd's message, so
//! an etcd client recognises them (clientv3 matches the message text: `rpctypes.ErrorDesc`).

use faultline_api::{EtcdError, GrpcCode};
use faultline_node::WatchStreamError;
use tonic::{Code, Status};

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

/// etcd's status for `error`. The message is etcd's own text; `NotLeader`'s hint (ours, for
/// the simulator's clients) is not part of etcd's message and is left out.
pub fn status_from_error(error: &EtcdError) -> Status {
    let message = match error {
        EtcdError::NotLeader { .. } => "etcdserver: not leader".to_string(),
        other => other.to_string(),
    };
    Status::new(code(error.code()), message)
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
