//! KV: key-values, ranges, puts, deletes, transactions, compaction.

use faultline_api::{self as api, EtcdError};
use tonic::Status;

use super::status_from_error;
use crate::pb::etcdserverpb as pb;
use crate::pb::mvccpb;

pub fn header_from_api(header: &api::ResponseHeader) -> Option<pb::ResponseHeader> {
    Some(pb::ResponseHeader {
        // The served cluster's ID (the member does not know it; see crate::cluster_id).
        cluster_id: crate::cluster_id::served_cluster_id().unwrap_or(header.cluster_id),
        member_id: header.member_id,
        revision: header.revision,
        raft_term: header.raft_term,
    })
}

pub fn header_to_api(header: Option<pb::ResponseHeader>) -> api::ResponseHeader {
    let header = header.unwrap_or_default();
    api::ResponseHeader {
        cluster_id: header.cluster_id,
        member_id: header.member_id,
        revision: header.revision,
        raft_term: header.raft_term,
    }
}

impl From<mvccpb::KeyValue> for api::KeyValue {
    fn from(kv: mvccpb::KeyValue) -> Self {
        api::KeyValue {
            key: kv.key,
            create_revision: kv.create_revision,
            mod_revision: kv.mod_revision,
            version: kv.version,
            value: kv.value,
            lease: kv.lease,
        }
    }
}

impl From<api::KeyValue> for mvccpb::KeyValue {
    fn from(kv: api::KeyValue) -> Self {
        mvccpb::KeyValue {
            key: kv.key,
            create_revision: kv.create_revision,
            mod_revision: kv.mod_revision,
            version: kv.version,
            value: kv.value,
            lease: kv.lease,
        }
    }
}

fn kvs_to_api(kvs: Vec<mvccpb::KeyValue>) -> Vec<api::KeyValue> {
    kvs.into_iter().map(Into::into).collect()
}

fn kvs_from_api(kvs: Vec<api::KeyValue>) -> Vec<mvccpb::KeyValue> {
    kvs.into_iter().map(Into::into).collect()
}

fn sort_order_to_api(order: i32) -> Result<api::SortOrder, Status> {
    use pb::range_request::SortOrder;
    match SortOrder::try_from(order) {
        Ok(SortOrder::None) => Ok(api::SortOrder::None),
        Ok(SortOrder::Ascend) => Ok(api::SortOrder::Ascend),
        Ok(SortOrder::Descend) => Ok(api::SortOrder::Descend),
        // etcd's v3rpc checks the value against the enum's names before serving.
        Err(_) => Err(status_from_error(&EtcdError::InvalidSortOption)),
    }
}

fn sort_order_from_api(order: api::SortOrder) -> i32 {
    use pb::range_request::SortOrder;
    let order = match order {
        api::SortOrder::None => SortOrder::None,
        api::SortOrder::Ascend => SortOrder::Ascend,
        api::SortOrder::Descend => SortOrder::Descend,
    };
    order as i32
}

fn sort_target_to_api(target: i32) -> Result<api::SortTarget, Status> {
    use pb::range_request::SortTarget;
    match SortTarget::try_from(target) {
        Ok(SortTarget::Key) => Ok(api::SortTarget::Key),
        Ok(SortTarget::Version) => Ok(api::SortTarget::Version),
        Ok(SortTarget::Create) => Ok(api::SortTarget::Create),
        Ok(SortTarget::Mod) => Ok(api::SortTarget::Mod),
        Ok(SortTarget::Value) => Ok(api::SortTarget::Value),
        Err(_) => Err(status_from_error(&EtcdError::InvalidSortOption)),
    }
}

fn sort_target_from_api(target: api::SortTarget) -> i32 {
    use pb::range_request::SortTarget;
    let target = match target {
        api::SortTarget::Key => SortTarget::Key,
        api::SortTarget::Version => SortTarget::Version,
        api::SortTarget::Create => SortTarget::Create,
        api::SortTarget::Mod => SortTarget::Mod,
        api::SortTarget::Value => SortTarget::Value,
    };
    target as i32
}

impl TryFrom<pb::RangeRequest> for api::RangeRequest {
    type Error = Status;
    fn try_from(r: pb::RangeRequest) -> Result<Self, Status> {
        Ok(api::RangeRequest {
            sort_order: sort_order_to_api(r.sort_order)?,
            sort_target: sort_target_to_api(r.sort_target)?,
            key: r.key,
            range_end: r.range_end,
            limit: r.limit,
            revision: r.revision,
            serializable: r.serializable,
            keys_only: r.keys_only,
            count_only: r.count_only,
            min_mod_revision: r.min_mod_revision,
            max_mod_revision: r.max_mod_revision,
            min_create_revision: r.min_create_revision,
            max_create_revision: r.max_create_revision,
        })
    }
}

impl From<api::RangeRequest> for pb::RangeRequest {
    fn from(r: api::RangeRequest) -> Self {
        pb::RangeRequest {
            sort_order: sort_order_from_api(r.sort_order),
            sort_target: sort_target_from_api(r.sort_target),
            key: r.key,
            range_end: r.range_end,
            limit: r.limit,
            revision: r.revision,
            serializable: r.serializable,
            keys_only: r.keys_only,
            count_only: r.count_only,
            min_mod_revision: r.min_mod_revision,
            max_mod_revision: r.max_mod_revision,
            min_create_revision: r.min_create_revision,
            max_create_revision: r.max_create_revision,
        }
    }
}

impl From<api::RangeResponse> for pb::RangeResponse {
    fn from(r: api::RangeResponse) -> Self {
        pb::RangeResponse {
            header: header_from_api(&r.header),
            kvs: kvs_from_api(r.kvs),
            more: r.more,
            count: r.count,
        }
    }
}

impl From<pb::RangeResponse> for api::RangeResponse {
    fn from(r: pb::RangeResponse) -> Self {
        api::RangeResponse {
            header: header_to_api(r.header),
            kvs: kvs_to_api(r.kvs),
            more: r.more,
            count: r.count,
        }
    }
}

impl From<pb::PutRequest> for api::PutRequest {
    fn from(r: pb::PutRequest) -> Self {
        api::PutRequest {
            key: r.key,
            value: r.value,
            lease: r.lease,
            prev_kv: r.prev_kv,
            ignore_value: r.ignore_value,
            ignore_lease: r.ignore_lease,
        }
    }
}

impl From<api::PutRequest> for pb::PutRequest {
    fn from(r: api::PutRequest) -> Self {
        pb::PutRequest {
            key: r.key,
            value: r.value,
            lease: r.lease,
            prev_kv: r.prev_kv,
            ignore_value: r.ignore_value,
            ignore_lease: r.ignore_lease,
        }
    }
}

impl From<api::PutResponse> for pb::PutResponse {
    fn from(r: api::PutResponse) -> Self {
        pb::PutResponse {
            header: header_from_api(&r.header),
            prev_kv: r.prev_kv.map(Into::into),
        }
    }
}

impl From<pb::PutResponse> for api::PutResponse {
    fn from(r: pb::PutResponse) -> Self {
        api::PutResponse {
            header: header_to_api(r.header),
            prev_kv: r.prev_kv.map(Into::into),
        }
    }
}

impl From<pb::DeleteRangeRequest> for api::DeleteRangeRequest {
    fn from(r: pb::DeleteRangeRequest) -> Self {
        api::DeleteRangeRequest {
            key: r.key,
            range_end: r.range_end,
            prev_kv: r.prev_kv,
        }
    }
}

impl From<api::DeleteRangeRequest> for pb::DeleteRangeRequest {
    fn from(r: api::DeleteRangeRequest) -> Self {
        pb::DeleteRangeRequest {
            key: r.key,
            range_end: r.range_end,
            prev_kv: r.prev_kv,
        }
    }
}

impl From<api::DeleteRangeResponse> for pb::DeleteRangeResponse {
    fn from(r: api::DeleteRangeResponse) -> Self {
        pb::DeleteRangeResponse {
            header: header_from_api(&r.header),
            deleted: r.deleted,
            prev_kvs: kvs_from_api(r.prev_kvs),
        }
    }
}

impl From<pb::DeleteRangeResponse> for api::DeleteRangeResponse {
    fn from(r: pb::DeleteRangeResponse) -> Self {
        api::DeleteRangeResponse {
            header: header_to_api(r.header),
            deleted: r.deleted,
            prev_kvs: kvs_to_api(r.prev_kvs),
        }
    }
}

impl From<pb::CompactionRequest> for api::CompactionRequest {
    fn from(r: pb::CompactionRequest) -> Self {
        api::CompactionRequest {
            revision: r.revision,
            physical: r.physical,
        }
    }
}

impl From<api::CompactionRequest> for pb::CompactionRequest {
    fn from(r: api::CompactionRequest) -> Self {
        pb::CompactionRequest {
            revision: r.revision,
            physical: r.physical,
        }
    }
}

impl From<api::CompactionResponse> for pb::CompactionResponse {
    fn from(r: api::CompactionResponse) -> Self {
        pb::CompactionResponse {
            header: header_from_api(&r.header),
        }
    }
}

impl From<pb::CompactionResponse> for api::CompactionResponse {
    fn from(r: pb::CompactionResponse) -> Self {
        api::CompactionResponse {
            header: header_to_api(r.header),
        }
    }
}
