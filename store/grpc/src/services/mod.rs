//! etcd's gRPC services over the local member: one struct, [`Etcd`], implements each
//! service's trait, one file per service. Every call converts the request (`crate::convert`),
//! asks the member (a [`Backend`]) and converts the answer; errors become etcd's statuses.

mod cluster;
mod kv;
mod lease;
mod watch;

use faultline_api::{Request, Response};
use tonic::Status;

use crate::convert::status_from_error;
use crate::Backend;

/// The services of one member.
#[derive(Clone)]
pub struct Etcd<B> {
    pub member: B,
}

impl<B: Backend> Etcd<B> {
    /// Ask the member; its error as etcd's status.
    async fn call(&self, request: Request) -> Result<Response, Status> {
        self.member
            .client(request)
            .await
            .map_err(|e| status_from_error(&e))
    }
}

/// The member answered a request with another kind of response: a bug in the member.
fn mismatch(call: &str, response: &Response) -> Status {
    Status::internal(format!("{call} answered with {response:?}"))
}
