//! The history: what every client saw. The simulator writes it; checkers only read it.

use faultline_api::{EtcdError, Request, Response, WatchCreateRequest, WatchResponse};
use serde::{Deserialize, Serialize};

/// Simulated time in nanoseconds since the start of the run.
pub type TimeNs = u64;

/// What a client learned about one request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// The request took effect and this is the response.
    Ok(Response),
    /// The request definitely did not take effect (validation error, not leader, ...).
    Failed(EtcdError),
    /// The client does not know (timeout, connection lost, leader changed): a write may take
    /// effect at any time after its invocation, or never. The string says why.
    Unknown(String),
}

/// One client operation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Operation {
    /// Position in the history (unique, dense from 0).
    pub id: u64,
    /// The client that issued it; a client has at most one operation in flight.
    pub client: u64,
    /// The member the client sent its (last) attempt to, if any.
    pub member: Option<u64>,
    pub invoke_ns: TimeNs,
    /// When the client got the outcome (for `Unknown`, when it gave up).
    pub complete_ns: TimeNs,
    pub request: Request,
    pub outcome: Outcome,
}

impl Operation {
    pub fn is_unknown(&self) -> bool {
        matches!(self.outcome, Outcome::Unknown(_))
    }
}

/// One response a watcher received, with the simulated time it arrived.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchReceived {
    pub at_ns: TimeNs,
    pub response: WatchResponse,
}

/// One watch a client opened, and everything it received until it stopped watching.
/// Watches are not linearizable; the watch checkers judge them against the write order the
/// history establishes (etcd-semantics.md section 6 and 10).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchReport {
    pub client: u64,
    /// The member the watch stream was opened on.
    pub member: Option<u64>,
    pub request: WatchCreateRequest,
    pub created_ns: TimeNs,
    /// Every response in arrival order (created, events, progress notifications, cancel).
    pub responses: Vec<WatchReceived>,
}

/// Every client operation of one run, in invocation order, and every watch.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    pub ops: Vec<Operation>,
    #[serde(default)]
    pub watches: Vec<WatchReport>,
}
