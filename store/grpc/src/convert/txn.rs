//! Transactions: compares, the operations of each branch and their responses (nested).

use faultline_api as api;
use tonic::Status;

use super::kv::{header_from_api, header_to_api};
use crate::pb::etcdserverpb as pb;

fn compare_result_to_api(result: i32) -> Result<api::CompareResult, Status> {
    use pb::compare::CompareResult;
    match CompareResult::try_from(result) {
        Ok(CompareResult::Equal) => Ok(api::CompareResult::Equal),
        Ok(CompareResult::Greater) => Ok(api::CompareResult::Greater),
        Ok(CompareResult::Less) => Ok(api::CompareResult::Less),
        Ok(CompareResult::NotEqual) => Ok(api::CompareResult::NotEqual),
        Err(_) => Err(Status::invalid_argument(format!(
            "etcdserver: unknown compare result {result}"
        ))),
    }
}

fn compare_result_from_api(result: api::CompareResult) -> i32 {
    use pb::compare::CompareResult;
    let result = match result {
        api::CompareResult::Equal => CompareResult::Equal,
        api::CompareResult::Greater => CompareResult::Greater,
        api::CompareResult::Less => CompareResult::Less,
        api::CompareResult::NotEqual => CompareResult::NotEqual,
    };
    result as i32
}

/// `target` names the compared field; the operand is the `target_union` field of that name.
/// An operand of another kind (or none) compares with the field's zero, as etcd reads the
/// getter of the named field (which is zero when another union field is set).
fn compare_target_to_api(
    target: i32,
    operand: Option<pb::compare::TargetUnion>,
) -> Result<api::CompareTarget, Status> {
    use pb::compare::{CompareTarget, TargetUnion};
    let int = |want: fn(&TargetUnion) -> Option<i64>| operand.as_ref().and_then(want).unwrap_or(0);
    match CompareTarget::try_from(target) {
        Ok(CompareTarget::Version) => Ok(api::CompareTarget::Version(int(|u| match u {
            TargetUnion::Version(v) => Some(*v),
            _ => None,
        }))),
        Ok(CompareTarget::Create) => Ok(api::CompareTarget::CreateRevision(int(|u| match u {
            TargetUnion::CreateRevision(v) => Some(*v),
            _ => None,
        }))),
        Ok(CompareTarget::Mod) => Ok(api::CompareTarget::ModRevision(int(|u| match u {
            TargetUnion::ModRevision(v) => Some(*v),
            _ => None,
        }))),
        Ok(CompareTarget::Lease) => Ok(api::CompareTarget::Lease(int(|u| match u {
            TargetUnion::Lease(v) => Some(*v),
            _ => None,
        }))),
        Ok(CompareTarget::Value) => Ok(api::CompareTarget::Value(match operand {
            Some(TargetUnion::Value(v)) => v,
            _ => Vec::new(),
        })),
        Err(_) => Err(Status::invalid_argument(format!(
            "etcdserver: unknown compare target {target}"
        ))),
    }
}

fn compare_target_from_api(target: api::CompareTarget) -> (i32, pb::compare::TargetUnion) {
    use pb::compare::{CompareTarget, TargetUnion};
    let (target, operand) = match target {
        api::CompareTarget::Version(v) => (CompareTarget::Version, TargetUnion::Version(v)),
        api::CompareTarget::CreateRevision(v) => {
            (CompareTarget::Create, TargetUnion::CreateRevision(v))
        }
        api::CompareTarget::ModRevision(v) => (CompareTarget::Mod, TargetUnion::ModRevision(v)),
        api::CompareTarget::Value(v) => (CompareTarget::Value, TargetUnion::Value(v)),
        api::CompareTarget::Lease(v) => (CompareTarget::Lease, TargetUnion::Lease(v)),
    };
    (target as i32, operand)
}

impl TryFrom<pb::Compare> for api::Compare {
    type Error = Status;
    fn try_from(c: pb::Compare) -> Result<Self, Status> {
        Ok(api::Compare {
            result: compare_result_to_api(c.result)?,
            target: compare_target_to_api(c.target, c.target_union)?,
            key: c.key,
            range_end: c.range_end,
        })
    }
}

impl From<api::Compare> for pb::Compare {
    fn from(c: api::Compare) -> Self {
        let (target, operand) = compare_target_from_api(c.target);
        pb::Compare {
            result: compare_result_from_api(c.result),
            target,
            key: c.key,
            target_union: Some(operand),
            range_end: c.range_end,
        }
    }
}

impl TryFrom<pb::RequestOp> for api::RequestOp {
    type Error = Status;
    fn try_from(op: pb::RequestOp) -> Result<Self, Status> {
        use pb::request_op::Request;
        match op.request {
            Some(Request::RequestRange(r)) => Ok(api::RequestOp::Range(r.try_into()?)),
            Some(Request::RequestPut(r)) => Ok(api::RequestOp::Put(r.into())),
            Some(Request::RequestDeleteRange(r)) => Ok(api::RequestOp::DeleteRange(r.into())),
            Some(Request::RequestTxn(r)) => Ok(api::RequestOp::Txn(r.try_into()?)),
            None => Err(Status::invalid_argument(
                "etcdserver: a txn operation without a request",
            )),
        }
    }
}

impl From<api::RequestOp> for pb::RequestOp {
    fn from(op: api::RequestOp) -> Self {
        use pb::request_op::Request;
        let request = match op {
            api::RequestOp::Range(r) => Request::RequestRange(r.into()),
            api::RequestOp::Put(r) => Request::RequestPut(r.into()),
            api::RequestOp::DeleteRange(r) => Request::RequestDeleteRange(r.into()),
            api::RequestOp::Txn(r) => Request::RequestTxn(r.into()),
        };
        pb::RequestOp {
            request: Some(request),
        }
    }
}

fn ops_to_api(ops: Vec<pb::RequestOp>) -> Result<Vec<api::RequestOp>, Status> {
    ops.into_iter().map(TryInto::try_into).collect()
}

impl TryFrom<pb::TxnRequest> for api::TxnRequest {
    type Error = Status;
    fn try_from(t: pb::TxnRequest) -> Result<Self, Status> {
        Ok(api::TxnRequest {
            compare: t
                .compare
                .into_iter()
                .map(TryInto::try_into)
                .collect::<Result<_, _>>()?,
            success: ops_to_api(t.success)?,
            failure: ops_to_api(t.failure)?,
        })
    }
}

impl From<api::TxnRequest> for pb::TxnRequest {
    fn from(t: api::TxnRequest) -> Self {
        pb::TxnRequest {
            compare: t.compare.into_iter().map(Into::into).collect(),
            success: t.success.into_iter().map(Into::into).collect(),
            failure: t.failure.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<api::ResponseOp> for pb::ResponseOp {
    fn from(op: api::ResponseOp) -> Self {
        use pb::response_op::Response;
        let response = match op {
            api::ResponseOp::Range(r) => Response::ResponseRange(r.into()),
            api::ResponseOp::Put(r) => Response::ResponsePut(r.into()),
            api::ResponseOp::DeleteRange(r) => Response::ResponseDeleteRange(r.into()),
            api::ResponseOp::Txn(r) => Response::ResponseTxn(r.into()),
        };
        pb::ResponseOp {
            response: Some(response),
        }
    }
}

impl TryFrom<pb::ResponseOp> for api::ResponseOp {
    type Error = Status;
    fn try_from(op: pb::ResponseOp) -> Result<Self, Status> {
        use pb::response_op::Response;
        match op.response {
            Some(Response::ResponseRange(r)) => Ok(api::ResponseOp::Range(r.into())),
            Some(Response::ResponsePut(r)) => Ok(api::ResponseOp::Put(r.into())),
            Some(Response::ResponseDeleteRange(r)) => Ok(api::ResponseOp::DeleteRange(r.into())),
            Some(Response::ResponseTxn(r)) => Ok(api::ResponseOp::Txn(r.try_into()?)),
            None => Err(Status::internal("a txn response without a response")),
        }
    }
}

impl From<api::TxnResponse> for pb::TxnResponse {
    fn from(t: api::TxnResponse) -> Self {
        pb::TxnResponse {
            header: header_from_api(&t.header),
            succeeded: t.succeeded,
            responses: t.responses.into_iter().map(Into::into).collect(),
        }
    }
}

impl TryFrom<pb::TxnResponse> for api::TxnResponse {
    type Error = Status;
    fn try_from(t: pb::TxnResponse) -> Result<Self, Status> {
        Ok(api::TxnResponse {
            header: header_to_api(t.header),
            succeeded: t.succeeded,
            responses: t
                .responses
                .into_iter()
                .map(TryInto::try_into)
                .collect::<Result<_, _>>()?,
        })
    }
}
