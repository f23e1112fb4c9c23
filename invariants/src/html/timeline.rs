//! What the timeline draws, whatever the history's format: operations (`TimelineOp`) and marks
//! (`TimelineMark`: faults, leader changes, heal), and the conversions from each format.

use faultline_api::Request;
use serde::{Deserialize, Serialize};

use crate::formats::{KvOp, RegisterOp};
use crate::history::{History, Outcome};
use crate::linearizability::{Model, Op, NEVER};
use crate::models::kv::{KvInput, KvModel};
use crate::models::register::{RegisterInput, RegisterModel};

/// What a timeline mark shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum MarkKind {
    /// Members crashed (a band while they are down).
    Crash,
    /// Links cut (a band while the partition lasts).
    Partition,
    /// A process frozen (a band while it is paused).
    Pause,
    /// Any other fault (a band).
    Fault,
    /// A member's disk lost or tore its unsynced writes (an instant).
    DiskCrash,
    /// A member became leader (an instant).
    Leader,
    /// Every fault was healed (an instant).
    Heal,
    /// Anything else worth a line on the timeline.
    Note,
}

impl MarkKind {
    pub(super) fn css(self) -> &'static str {
        match self {
            MarkKind::Crash => "m-crash",
            MarkKind::Partition => "m-partition",
            MarkKind::Pause => "m-pause",
            MarkKind::Fault => "m-fault",
            MarkKind::DiskCrash => "m-disk",
            MarkKind::Leader => "m-leader",
            MarkKind::Heal => "m-heal",
            MarkKind::Note => "m-note",
        }
    }
}

/// Something that happened outside the clients, drawn over the timeline: a band from `at_ns`
/// to `end_ns` (faults), or a line at `at_ns` (leader changes, disk crashes, heal). Times are in
/// the history's unit (simulated nanoseconds for this project's histories).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimelineMark {
    pub at_ns: u64,
    /// End of a band; `None` for an instant.
    pub end_ns: Option<u64>,
    pub kind: MarkKind,
    pub label: String,
}

/// The kind of an operation, for its color.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OpKind {
    Read,
    Write,
    Txn,
    Lease,
    Other,
}

impl OpKind {
    pub(super) fn css(self) -> &'static str {
        match self {
            OpKind::Read => "k-read",
            OpKind::Write => "k-write",
            OpKind::Txn => "k-txn",
            OpKind::Lease => "k-lease",
            OpKind::Other => "k-other",
        }
    }
}

/// What the client learned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OpOutcome {
    Ok,
    /// Definitely did not take effect.
    Failed,
    /// May take effect at any time after the invocation, or never: drawn open-ended.
    Unknown,
}

impl OpOutcome {
    pub(super) fn css(self) -> &'static str {
        match self {
            OpOutcome::Ok => "o-ok",
            OpOutcome::Failed => "o-failed",
            OpOutcome::Unknown => "o-unknown",
        }
    }
    pub(super) fn word(self) -> &'static str {
        match self {
            OpOutcome::Ok => "ok",
            OpOutcome::Failed => "failed",
            OpOutcome::Unknown => "unknown",
        }
    }
}

/// One operation as the timeline draws it, whatever the history's format.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimelineOp {
    pub id: u64,
    pub client: u64,
    pub member: Option<u64>,
    pub invoke: u64,
    /// When the client got its answer or gave up; `None` when it never returned.
    pub complete: Option<u64>,
    pub kind: OpKind,
    pub outcome: OpOutcome,
    pub request: String,
    pub response: String,
}

/// This project's etcd history as timeline operations.
pub fn timeline_from_history(history: &History) -> Vec<TimelineOp> {
    history
        .ops
        .iter()
        .map(|op| {
            let summary = crate::describe::summarize(op);
            let kind = match &op.request {
                Request::Range(_) => OpKind::Read,
                Request::Put(_) | Request::DeleteRange(_) => OpKind::Write,
                Request::Txn(_) => OpKind::Txn,
                Request::LeaseGrant(_)
                | Request::LeaseRevoke(_)
                | Request::LeaseKeepAlive(_)
                | Request::LeaseTimeToLive(_)
                | Request::LeaseLeases => OpKind::Lease,
                Request::Compact(_) | Request::HashKv(_) => OpKind::Other,
            };
            let outcome = match op.outcome {
                Outcome::Ok(_) => OpOutcome::Ok,
                Outcome::Failed(_) => OpOutcome::Failed,
                Outcome::Unknown(_) => OpOutcome::Unknown,
            };
            TimelineOp {
                id: op.id,
                client: op.client,
                member: op.member,
                invoke: op.invoke_ns,
                // An unknown op's `complete_ns` is when the client gave up: the solid bar
                // ends there and an open tail runs on to the right edge.
                complete: Some(op.complete_ns),
                kind,
                outcome,
                request: summary.request,
                response: summary.response,
            }
        })
        .collect()
}

fn engine_op<M: Model>(model: &M, op: &Op<M::Input, M::Output>, kind: OpKind) -> TimelineOp {
    let returned = op.output.is_some() && op.ret != NEVER;
    TimelineOp {
        id: op.id,
        client: op.client,
        member: None,
        invoke: op.call,
        complete: returned.then_some(op.ret),
        kind,
        outcome: if op.output.is_some() {
            OpOutcome::Ok
        } else {
            OpOutcome::Unknown
        },
        request: model.describe_input(&op.input),
        response: model.describe_output(op.output.as_ref()),
    }
}

/// A Jepsen register history (times are line numbers) as timeline operations.
pub fn timeline_from_register(ops: &[RegisterOp]) -> Vec<TimelineOp> {
    ops.iter()
        .map(|op| {
            let kind = match op.input {
                RegisterInput::Read => OpKind::Read,
                RegisterInput::Write(_) => OpKind::Write,
                RegisterInput::Cas(..) => OpKind::Txn,
            };
            engine_op(&RegisterModel, op, kind)
        })
        .collect()
}

/// A porcupine key/value history (times are line numbers) as timeline operations.
pub fn timeline_from_kv(ops: &[KvOp]) -> Vec<TimelineOp> {
    ops.iter()
        .map(|op| {
            let kind = match op.input {
                KvInput::Get { .. } => OpKind::Read,
                KvInput::Put { .. } | KvInput::Append { .. } => OpKind::Write,
            };
            engine_op(&KvModel, op, kind)
        })
        .collect()
}
