//! etcd's gRPC calls as bytes, for the simulator's clients: a request leaves the client as
//! the gRPC method and its prost-encoded message ([`Call`]); the member's side decodes it,
//! hands it to the very service impls `faultline-server` runs for real clients ([`Etcd`]'s
//! `Kv`, `Lease` and `Maintenance`), and sends back the prost-encoded response or the status
//! (code, message and metadata: what grpc-status, grpc-message and trailers carry) ([`Reply`]).
//! The client decodes the reply and reads a status back as the store's error
//! (`convert::error_from_status`), so an error takes the status round trip a real client's does.
//!
//! The simulator carries these bytes over its own transport (`sim/src/runner/peer_net.rs`),
//! not over madsim-tonic's network: that transport is where the simulator's network faults
//! (clogged nodes and links, packet loss, latency) are applied to members' and clients'
//! messages alike, and it avoids madsim's per-message costs. What is skipped is only HTTP/2
//! framing; the service code, the encoding of etcd's messages and the status mapping are the
//! real build's. Only the simulation uses it (`Streaming::from_stream` is madsim-tonic's).
//! Measured cost (dev-profile `dst bench --seeds 0..50`, interleaved with main's, on a loaded
//! 2-core machine): 374/333 ms per seed on main, 400/355 ms here, about 7 percent.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::future::Future;

use faultline_api::{EtcdError, Request, Response};
use prost::Message;
use tonic::metadata::MetadataMap;
use tonic::Code;
pub use tonic::Status;

use crate::convert::error_from_status;
use crate::pb::etcdserverpb as pb;
use crate::pb::etcdserverpb::kv_server::Kv;
use crate::pb::etcdserverpb::lease_server::Lease;
use crate::pb::etcdserverpb::maintenance_server::Maintenance;
use crate::{Backend, Etcd};

mod cluster;

pub use cluster::{decode_cluster, encode_cluster, ClusterAnswer};

/// The gRPC methods the simulator's clients call (the `Request` variants).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Method {
    Range,
    Put,
    DeleteRange,
    Txn,
    Compact,
    LeaseGrant,
    LeaseRevoke,
    /// One request on a `LeaseKeepAlive` stream; its first response answers it.
    LeaseKeepAlive,
    LeaseTimeToLive,
    LeaseLeases,
    HashKv,
    // Cluster and Maintenance (`cluster.rs`).
    MemberList,
    MemberAdd,
    MemberRemove,
    MemberPromote,
    MoveLeader,
    Status,
}

/// A request on the wire.
#[derive(Clone, Debug)]
pub struct Call {
    pub method: Method,
    pub body: Vec<u8>,
}

/// An answer on the wire: the encoded response, or a status.
#[derive(Clone, Debug)]
pub enum Reply {
    Message(Vec<u8>),
    Status {
        code: i32,
        message: String,
        metadata: MetadataMap,
    },
}

/// What a call got: the member's answer (a response or one of the store's errors), or a
/// status that carries none (then the caller does not know what happened).
pub type Answer = Result<Result<Response, EtcdError>, Status>;

thread_local! {
    /// Calls of each method that [`serve`] handed to the service impls on this thread (a
    /// simulation runs on one thread): a test reads it to prove the simulator's requests take
    /// the service layer.
    static SERVED: RefCell<BTreeMap<Method, u64>> = const { RefCell::new(BTreeMap::new()) };
}

/// How many calls of each method [`serve`] handled on this thread so far.
pub fn served() -> BTreeMap<Method, u64> {
    SERVED.with(|served| served.borrow().clone())
}

/// The client's side: `request` as etcd's message.
pub fn encode(request: Request) -> Call {
    let (method, body) = match request {
        Request::Range(r) => (Method::Range, pb::RangeRequest::from(r).encode_to_vec()),
        Request::Put(r) => (Method::Put, pb::PutRequest::from(r).encode_to_vec()),
        Request::DeleteRange(r) => (
            Method::DeleteRange,
            pb::DeleteRangeRequest::from(r).encode_to_vec(),
        ),
        Request::Txn(r) => (Method::Txn, pb::TxnRequest::from(r).encode_to_vec()),
        Request::Compact(r) => (
            Method::Compact,
            pb::CompactionRequest::from(r).encode_to_vec(),
        ),
        Request::LeaseGrant(r) => (
            Method::LeaseGrant,
            pb::LeaseGrantRequest::from(r).encode_to_vec(),
        ),
        Request::LeaseRevoke(r) => (
            Method::LeaseRevoke,
            pb::LeaseRevokeRequest::from(r).encode_to_vec(),
        ),
        Request::LeaseKeepAlive(r) => (
            Method::LeaseKeepAlive,
            pb::LeaseKeepAliveRequest::from(r).encode_to_vec(),
        ),
        Request::LeaseTimeToLive(r) => (
            Method::LeaseTimeToLive,
            pb::LeaseTimeToLiveRequest::from(r).encode_to_vec(),
        ),
        Request::LeaseLeases => (
            Method::LeaseLeases,
            pb::LeaseLeasesRequest {}.encode_to_vec(),
        ),
        Request::HashKv(r) => (Method::HashKv, pb::HashKvRequest::from(r).encode_to_vec()),
    };
    Call { method, body }
}

/// The member's side: decode `call`, run the service impl, encode its answer.
pub async fn serve<B: Backend>(member: B, call: Call) -> Reply {
    SERVED.with(|served| *served.borrow_mut().entry(call.method).or_default() += 1);
    let etcd = Etcd { member };
    let body = &call.body[..];
    let e = &etcd;
    if let Some(reply) = cluster::serve_cluster(e, call.method, body).await {
        return reply;
    }
    match call.method {
        Method::Range => unary(body, |r| e.range(r)).await,
        Method::Put => unary(body, |r| e.put(r)).await,
        Method::DeleteRange => unary(body, |r| e.delete_range(r)).await,
        Method::Txn => unary(body, |r| e.txn(r)).await,
        Method::Compact => unary(body, |r| e.compact(r)).await,
        Method::LeaseGrant => unary(body, |r| e.lease_grant(r)).await,
        Method::LeaseRevoke => unary(body, |r| e.lease_revoke(r)).await,
        Method::LeaseKeepAlive => keep_alive(e, body).await,
        Method::LeaseTimeToLive => unary(body, |r| e.lease_time_to_live(r)).await,
        Method::LeaseLeases => unary(body, |r| e.lease_leases(r)).await,
        Method::HashKv => unary(body, |r| e.hash_kv(r)).await,
        cluster => reply_status(Status::internal(format!("{cluster:?} not served"))),
    }
}

/// Decode the request, call the service method, encode its response or status.
async fn unary<Q, A, F, Fut>(body: &[u8], method: F) -> Reply
where
    Q: Message + Default,
    A: Message,
    F: FnOnce(tonic::Request<Q>) -> Fut,
    Fut: Future<Output = Result<tonic::Response<A>, Status>>,
{
    let request = match Q::decode(body) {
        Ok(request) => request,
        Err(error) => return reply_status(Status::internal(format!("decode: {error}"))),
    };
    match method(tonic::Request::new(request)).await {
        Ok(response) => Reply::Message(response.into_inner().encode_to_vec()),
        Err(status) => reply_status(status),
    }
}

/// A `LeaseKeepAlive` stream of one request: its first response answers the call (etcd's
/// clients keep the stream open; one request per stream asks the same of the member).
async fn keep_alive<B: Backend>(etcd: &Etcd<B>, body: &[u8]) -> Reply {
    use tokio_stream::StreamExt;
    let request = match pb::LeaseKeepAliveRequest::decode(body) {
        Ok(request) => request,
        Err(error) => return reply_status(Status::internal(format!("decode: {error}"))),
    };
    let requests = tonic::Streaming::from_stream(Box::pin(tokio_stream::iter([Ok(request)])));
    let mut responses = match etcd.lease_keep_alive(tonic::Request::new(requests)).await {
        Ok(responses) => responses.into_inner(),
        Err(status) => return reply_status(status),
    };
    match responses.next().await {
        Some(Ok(response)) => Reply::Message(response.encode_to_vec()),
        Some(Err(status)) => reply_status(status),
        None => reply_status(Status::unavailable(
            "keep-alive stream ended without an answer",
        )),
    }
}

impl Reply {
    /// The status a `Status` reply carries (as a client reads it from the trailers).
    fn into_status(self) -> Status {
        match self {
            Reply::Status {
                code,
                message,
                metadata,
            } => Status::with_metadata(Code::from(code), message, metadata),
            Reply::Message(_) => Status::internal("a message is no status"),
        }
    }
}

fn reply_status(status: Status) -> Reply {
    Reply::Status {
        code: status.code() as i32,
        message: status.message().to_string(),
        metadata: status.metadata().clone(),
    }
}

/// The client's side: the member's reply to a call of `method`.
pub fn decode(method: Method, reply: Reply) -> Answer {
    let body = match reply {
        Reply::Message(body) => body,
        status @ Reply::Status { .. } => return decoded(status.into_status()),
    };
    let body = &body[..];
    let response = match method {
        Method::Range => message::<pb::RangeResponse>(body).map(|r| Response::Range(r.into())),
        Method::Put => message::<pb::PutResponse>(body).map(|r| Response::Put(r.into())),
        Method::DeleteRange => {
            message::<pb::DeleteRangeResponse>(body).map(|r| Response::DeleteRange(r.into()))
        }
        Method::Txn => {
            message::<pb::TxnResponse>(body).and_then(|r| Ok(Response::Txn(r.try_into()?)))
        }
        Method::Compact => {
            message::<pb::CompactionResponse>(body).map(|r| Response::Compact(r.into()))
        }
        Method::LeaseGrant => {
            message::<pb::LeaseGrantResponse>(body).map(|r| Response::LeaseGrant(r.into()))
        }
        Method::LeaseRevoke => {
            message::<pb::LeaseRevokeResponse>(body).map(|r| Response::LeaseRevoke(r.into()))
        }
        Method::LeaseKeepAlive => {
            message::<pb::LeaseKeepAliveResponse>(body).map(|r| Response::LeaseKeepAlive(r.into()))
        }
        Method::LeaseTimeToLive => message::<pb::LeaseTimeToLiveResponse>(body)
            .map(|r| Response::LeaseTimeToLive(r.into())),
        Method::LeaseLeases => {
            message::<pb::LeaseLeasesResponse>(body).map(|r| Response::LeaseLeases(r.into()))
        }
        Method::HashKv => message::<pb::HashKvResponse>(body).map(|r| Response::HashKv(r.into())),
        cluster => Err(Status::internal(format!("{cluster:?} is a Cluster call"))),
    };
    response.map(Ok)
}

fn message<M: Message + Default>(body: &[u8]) -> Result<M, Status> {
    M::decode(body).map_err(|error| Status::internal(format!("decode: {error}")))
}

/// A status as the store's error when it carries one.
fn decoded<T>(status: Status) -> Result<Result<T, EtcdError>, Status> {
    match error_from_status(&status) {
        Some(error) => Ok(Err(error)),
        None => Err(status),
    }
}
