//! Sending `faultline_api` requests to a real etcd through the `etcd-client` crate, and turning
//! its protobuf responses back into `faultline_api` types, field by field.

use etcd_client::proto::{
    PbDeleteResponse, PbEvent, PbKeyValue, PbPutResponse, PbRangeResponse, PbResponseHeader,
    PbTxnOpResponse, PbTxnResponse, PbWatchResponse,
};
use etcd_client::{
    Client, CompactionOptions, Compare as EcCompare, CompareOp, DeleteOptions, GetOptions,
    LeaseGrantOptions, LeaseTimeToLiveOptions, PutOptions, SortOrder as EcSortOrder,
    SortTarget as EcSortTarget, Txn, TxnOp, WatchFilterType, WatchOptions, WatchStream,
};
use faultline_api::{
    Compare, CompareResult, CompareTarget, DeleteRangeRequest, DeleteRangeResponse, Event,
    EventType, KeyValue, LeaseGrantResponse, LeaseKeepAliveResponse, LeaseLeasesResponse,
    LeaseRevokeResponse, LeaseTimeToLiveResponse, PutRequest, PutResponse, RangeRequest,
    RangeResponse, Request, RequestOp, Response, ResponseHeader, ResponseOp, SortOrder, SortTarget,
    TxnRequest, TxnResponse, WatchCreateRequest, WatchFilter, WatchResponse,
};

use crate::ErrorOutcome;

pub(crate) fn header(h: Option<PbResponseHeader>) -> ResponseHeader {
    let h = h.unwrap_or_default();
    ResponseHeader {
        cluster_id: h.cluster_id,
        member_id: h.member_id,
        revision: h.revision,
        raft_term: h.raft_term,
    }
}

pub(crate) fn kv(kv: PbKeyValue) -> KeyValue {
    KeyValue {
        key: kv.key,
        create_revision: kv.create_revision,
        mod_revision: kv.mod_revision,
        version: kv.version,
        value: kv.value,
        lease: kv.lease,
    }
}

fn range_response(r: PbRangeResponse) -> RangeResponse {
    RangeResponse {
        header: header(r.header),
        kvs: r.kvs.into_iter().map(kv).collect(),
        more: r.more,
        count: r.count,
    }
}

fn put_response(r: PbPutResponse) -> PutResponse {
    PutResponse {
        header: header(r.header),
        prev_kv: r.prev_kv.map(kv),
    }
}

fn delete_response(r: PbDeleteResponse) -> DeleteRangeResponse {
    DeleteRangeResponse {
        header: header(r.header),
        deleted: r.deleted,
        prev_kvs: r.prev_kvs.into_iter().map(kv).collect(),
    }
}

fn txn_response(r: PbTxnResponse) -> TxnResponse {
    TxnResponse {
        header: header(r.header),
        succeeded: r.succeeded,
        responses: r
            .responses
            .into_iter()
            .map(
                |op| match op.response.expect("etcd sends a response per op") {
                    PbTxnOpResponse::ResponseRange(r) => ResponseOp::Range(range_response(r)),
                    PbTxnOpResponse::ResponsePut(r) => ResponseOp::Put(put_response(r)),
                    PbTxnOpResponse::ResponseDeleteRange(r) => {
                        ResponseOp::DeleteRange(delete_response(r))
                    }
                    PbTxnOpResponse::ResponseTxn(r) => ResponseOp::Txn(txn_response(r)),
                },
            )
            .collect(),
    }
}

pub(crate) fn event(e: PbEvent) -> Event {
    // mvccpb.Event_EventType: PUT = 0, DELETE = 1.
    let kind = if e.r#type == 1 {
        EventType::Delete
    } else {
        EventType::Put
    };
    Event {
        kind,
        kv: e.kv.map(kv).unwrap_or_default(),
        prev_kv: e.prev_kv.map(kv),
    }
}

pub(crate) fn watch_response(r: PbWatchResponse) -> WatchResponse {
    WatchResponse {
        header: header(r.header),
        watch_id: r.watch_id,
        created: r.created,
        canceled: r.canceled,
        compact_revision: r.compact_revision,
        cancel_reason: r.cancel_reason,
        fragment: r.fragment,
        events: r.events.into_iter().map(event).collect(),
    }
}

fn error(e: etcd_client::Error) -> ErrorOutcome {
    match e {
        etcd_client::Error::GRpcStatus(status) => ErrorOutcome {
            code: format!("{:?}", status.code()),
            message: status.message().to_string(),
        },
        other => ErrorOutcome {
            code: "client".to_string(),
            message: other.to_string(),
        },
    }
}

fn get_options(r: &RangeRequest) -> GetOptions {
    let mut o = GetOptions::new()
        .with_limit(r.limit)
        .with_revision(r.revision)
        .with_min_mod_revision(r.min_mod_revision)
        .with_max_mod_revision(r.max_mod_revision)
        .with_min_create_revision(r.min_create_revision)
        .with_max_create_revision(r.max_create_revision);
    if !r.range_end.is_empty() {
        o = o.with_range(r.range_end.clone());
    }
    if r.serializable {
        o = o.with_serializable();
    }
    if r.keys_only {
        o = o.with_keys_only();
    }
    if r.count_only {
        o = o.with_count_only();
    }
    if r.sort_order != SortOrder::None || r.sort_target != SortTarget::Key {
        let target = match r.sort_target {
            SortTarget::Key => EcSortTarget::Key,
            SortTarget::Version => EcSortTarget::Version,
            SortTarget::Create => EcSortTarget::Create,
            SortTarget::Mod => EcSortTarget::Mod,
            SortTarget::Value => EcSortTarget::Value,
        };
        let order = match r.sort_order {
            SortOrder::None => EcSortOrder::None,
            SortOrder::Ascend => EcSortOrder::Ascend,
            SortOrder::Descend => EcSortOrder::Descend,
        };
        o = o.with_sort(target, order);
    }
    o
}

fn put_options(p: &PutRequest) -> PutOptions {
    let mut o = PutOptions::new().with_lease(p.lease);
    if p.prev_kv {
        o = o.with_prev_key();
    }
    if p.ignore_value {
        o = o.with_ignore_value();
    }
    if p.ignore_lease {
        o = o.with_ignore_lease();
    }
    o
}

fn delete_options(d: &DeleteRangeRequest) -> DeleteOptions {
    let mut o = DeleteOptions::new();
    if !d.range_end.is_empty() {
        o = o.with_range(d.range_end.clone());
    }
    if d.prev_kv {
        o = o.with_prev_key();
    }
    o
}

fn compare(c: &Compare) -> EcCompare {
    let op = match c.result {
        CompareResult::Equal => CompareOp::Equal,
        CompareResult::Greater => CompareOp::Greater,
        CompareResult::Less => CompareOp::Less,
        CompareResult::NotEqual => CompareOp::NotEqual,
    };
    let key = c.key.clone();
    let cmp = match &c.target {
        CompareTarget::Version(v) => EcCompare::version(key, op, *v),
        CompareTarget::CreateRevision(r) => EcCompare::create_revision(key, op, *r),
        CompareTarget::ModRevision(r) => EcCompare::mod_revision(key, op, *r),
        CompareTarget::Value(v) => EcCompare::value(key, op, v.clone()),
        CompareTarget::Lease(l) => EcCompare::lease(key, op, *l),
    };
    if c.range_end.is_empty() {
        cmp
    } else {
        cmp.with_range(c.range_end.clone())
    }
}

fn txn_op(op: &RequestOp) -> TxnOp {
    match op {
        RequestOp::Range(r) => TxnOp::get(r.key.clone(), Some(get_options(r))),
        RequestOp::Put(p) => TxnOp::put(p.key.clone(), p.value.clone(), Some(put_options(p))),
        RequestOp::DeleteRange(d) => TxnOp::delete(d.key.clone(), Some(delete_options(d))),
        RequestOp::Txn(t) => TxnOp::txn(txn(t)),
    }
}

fn txn(t: &TxnRequest) -> Txn {
    Txn::new()
        .when(t.compare.iter().map(compare).collect::<Vec<_>>())
        .and_then(t.success.iter().map(txn_op).collect::<Vec<_>>())
        .or_else(t.failure.iter().map(txn_op).collect::<Vec<_>>())
}

/// Send one unary request to etcd. LeaseKeepAlive opens a keep-alive stream, renews twice
/// (the client crate swallows the first response) and reports the second response.
pub async fn execute(client: &mut Client, request: &Request) -> Result<Response, ErrorOutcome> {
    match request {
        Request::Range(r) => client
            .get(r.key.clone(), Some(get_options(r)))
            .await
            .map(|resp| Response::Range(range_response(resp.0)))
            .map_err(error),
        Request::Put(p) => client
            .put(p.key.clone(), p.value.clone(), Some(put_options(p)))
            .await
            .map(|resp| Response::Put(put_response(resp.0)))
            .map_err(error),
        Request::DeleteRange(d) => client
            .delete(d.key.clone(), Some(delete_options(d)))
            .await
            .map(|resp| Response::DeleteRange(delete_response(resp.0)))
            .map_err(error),
        Request::Txn(t) => client
            .txn(txn(t))
            .await
            .map(|resp| Response::Txn(txn_response(resp.0)))
            .map_err(error),
        Request::Compact(c) => {
            let options = if c.physical {
                CompactionOptions::new().with_physical()
            } else {
                CompactionOptions::new()
            };
            client
                .compact(c.revision, Some(options))
                .await
                .map(|resp| {
                    Response::Compact(faultline_api::CompactionResponse {
                        header: header(resp.0.header),
                    })
                })
                .map_err(error)
        }
        Request::LeaseGrant(g) => {
            let resp = client
                .lease_grant(g.ttl_seconds, Some(LeaseGrantOptions::new().with_id(g.id)))
                .await
                .map_err(error)?;
            if !resp.0.error.is_empty() {
                return Err(ErrorOutcome {
                    code: "LeaseGrantResponse.error".to_string(),
                    message: resp.0.error,
                });
            }
            Ok(Response::LeaseGrant(LeaseGrantResponse {
                header: header(resp.0.header),
                id: resp.0.id,
                ttl_seconds: resp.0.ttl,
            }))
        }
        Request::LeaseRevoke(r) => client
            .lease_revoke(r.id)
            .await
            .map(|resp| {
                Response::LeaseRevoke(LeaseRevokeResponse {
                    header: header(resp.0.header),
                })
            })
            .map_err(error),
        Request::LeaseTimeToLive(t) => {
            let options = if t.keys {
                LeaseTimeToLiveOptions::new().with_keys()
            } else {
                LeaseTimeToLiveOptions::new()
            };
            client
                .lease_time_to_live(t.id, Some(options))
                .await
                .map(|resp| {
                    Response::LeaseTimeToLive(LeaseTimeToLiveResponse {
                        header: header(resp.0.header),
                        id: resp.0.id,
                        ttl_seconds: resp.0.ttl,
                        granted_ttl_seconds: resp.0.granted_ttl,
                        keys: resp.0.keys,
                    })
                })
                .map_err(error)
        }
        Request::LeaseLeases => client
            .leases()
            .await
            .map(|resp| {
                Response::LeaseLeases(LeaseLeasesResponse {
                    header: header(resp.0.header),
                    leases: resp.0.leases.iter().map(|l| l.id).collect(),
                })
            })
            .map_err(error),
        Request::LeaseKeepAlive(k) => match client.lease_keep_alive(k.id).await {
            Ok((mut keeper, mut stream)) => {
                keeper.keep_alive().await.map_err(error)?;
                let resp = stream
                    .message()
                    .await
                    .map_err(error)?
                    .ok_or_else(|| ErrorOutcome {
                        code: "client".to_string(),
                        message: "keep-alive stream ended".to_string(),
                    })?;
                Ok(Response::LeaseKeepAlive(LeaseKeepAliveResponse {
                    header: header(resp.0.header),
                    id: resp.0.id,
                    ttl_seconds: resp.0.ttl,
                }))
            }
            // The crate turns a TTL <= 0 answer (unknown lease) into this error and drops the
            // response; rebuild what etcd sent, without its header (see DIFFERENCES.md).
            Err(etcd_client::Error::LeaseKeepAliveError(message))
                if message == "lease not found" =>
            {
                Ok(Response::LeaseKeepAlive(LeaseKeepAliveResponse {
                    header: ResponseHeader::default(),
                    id: k.id,
                    ttl_seconds: 0,
                }))
            }
            Err(e) => Err(error(e)),
        },
        Request::HashKv(_) => panic!("HashKV is excluded from the differential test"),
    }
}

/// Open a watch on its own stream and wait for etcd's created response.
pub async fn open_watch(
    client: &mut Client,
    req: &WatchCreateRequest,
) -> Result<(WatchResponse, WatchStream), ErrorOutcome> {
    let mut o = WatchOptions::new()
        .with_start_revision(req.start_revision)
        .with_watch_id(req.watch_id);
    if !req.range_end.is_empty() {
        o = o.with_range(req.range_end.clone());
    }
    if req.prev_kv {
        o = o.with_prev_key();
    }
    if req.progress_notify {
        o = o.with_progress_notify();
    }
    if req.fragment {
        o = o.with_fragment();
    }
    let filters: Vec<WatchFilterType> = req
        .filters
        .iter()
        .map(|f| match f {
            WatchFilter::NoPut => WatchFilterType::NoPut,
            WatchFilter::NoDelete => WatchFilterType::NoDelete,
        })
        .collect();
    if !filters.is_empty() {
        o = o.with_filters(filters);
    }
    let mut stream = client
        .watch(req.key.clone(), Some(o))
        .await
        .map_err(error)?;
    let first = stream
        .message()
        .await
        .map_err(error)?
        .ok_or_else(|| ErrorOutcome {
            code: "client".to_string(),
            message: "watch stream ended before the created response".to_string(),
        })?;
    Ok((watch_response(first.0), stream))
}

/// Read the next watch response (None: the stream ended).
pub async fn next_watch_response(
    stream: &mut WatchStream,
) -> Result<Option<WatchResponse>, ErrorOutcome> {
    stream
        .message()
        .await
        .map(|m| m.map(|r| watch_response(r.0)))
        .map_err(error)
}
