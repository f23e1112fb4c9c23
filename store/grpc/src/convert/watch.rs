//! Watch: create requests (filters, prev_kv, fragment, progress_notify), events, responses.

use faultline_api as api;
use tonic::Status;

use super::kv::{header_from_api, header_to_api};
use crate::pb::etcdserverpb as pb;
use crate::pb::mvccpb;

fn filter_to_api(filter: i32) -> Result<api::WatchFilter, Status> {
    use pb::watch_create_request::FilterType;
    match FilterType::try_from(filter) {
        Ok(FilterType::Noput) => Ok(api::WatchFilter::NoPut),
        Ok(FilterType::Nodelete) => Ok(api::WatchFilter::NoDelete),
        Err(_) => Err(Status::invalid_argument(format!(
            "etcdserver: unknown watch filter {filter}"
        ))),
    }
}

fn filter_from_api(filter: api::WatchFilter) -> i32 {
    use pb::watch_create_request::FilterType;
    match filter {
        api::WatchFilter::NoPut => FilterType::Noput as i32,
        api::WatchFilter::NoDelete => FilterType::Nodelete as i32,
    }
}

impl TryFrom<pb::WatchCreateRequest> for api::WatchCreateRequest {
    type Error = Status;
    fn try_from(r: pb::WatchCreateRequest) -> Result<Self, Status> {
        Ok(api::WatchCreateRequest {
            filters: r
                .filters
                .iter()
                .map(|&f| filter_to_api(f))
                .collect::<Result<_, _>>()?,
            key: r.key,
            range_end: r.range_end,
            start_revision: r.start_revision,
            progress_notify: r.progress_notify,
            prev_kv: r.prev_kv,
            watch_id: r.watch_id,
            fragment: r.fragment,
        })
    }
}

impl From<api::WatchCreateRequest> for pb::WatchCreateRequest {
    fn from(r: api::WatchCreateRequest) -> Self {
        pb::WatchCreateRequest {
            filters: r.filters.into_iter().map(filter_from_api).collect(),
            key: r.key,
            range_end: r.range_end,
            start_revision: r.start_revision,
            progress_notify: r.progress_notify,
            prev_kv: r.prev_kv,
            watch_id: r.watch_id,
            fragment: r.fragment,
        }
    }
}

impl From<api::Event> for mvccpb::Event {
    fn from(e: api::Event) -> Self {
        let kind = match e.kind {
            api::EventType::Put => mvccpb::event::EventType::Put,
            api::EventType::Delete => mvccpb::event::EventType::Delete,
        };
        mvccpb::Event {
            r#type: kind as i32,
            kv: Some(e.kv.into()),
            prev_kv: e.prev_kv.map(Into::into),
        }
    }
}

impl TryFrom<mvccpb::Event> for api::Event {
    type Error = Status;
    fn try_from(e: mvccpb::Event) -> Result<Self, Status> {
        let kind = match mvccpb::event::EventType::try_from(e.r#type) {
            Ok(mvccpb::event::EventType::Put) => api::EventType::Put,
            Ok(mvccpb::event::EventType::Delete) => api::EventType::Delete,
            Err(_) => return Err(Status::internal(format!("unknown event type {}", e.r#type))),
        };
        Ok(api::Event {
            kind,
            kv: e.kv.unwrap_or_default().into(),
            prev_kv: e.prev_kv.map(Into::into),
        })
    }
}

impl From<api::WatchResponse> for pb::WatchResponse {
    fn from(r: api::WatchResponse) -> Self {
        pb::WatchResponse {
            header: header_from_api(&r.header),
            watch_id: r.watch_id,
            created: r.created,
            canceled: r.canceled,
            compact_revision: r.compact_revision,
            cancel_reason: r.cancel_reason,
            fragment: r.fragment,
            events: r.events.into_iter().map(Into::into).collect(),
        }
    }
}

impl TryFrom<pb::WatchResponse> for api::WatchResponse {
    type Error = Status;
    fn try_from(r: pb::WatchResponse) -> Result<Self, Status> {
        Ok(api::WatchResponse {
            header: header_to_api(r.header),
            watch_id: r.watch_id,
            created: r.created,
            canceled: r.canceled,
            compact_revision: r.compact_revision,
            cancel_reason: r.cancel_reason,
            fragment: r.fragment,
            events: r
                .events
                .into_iter()
                .map(TryInto::try_into)
                .collect::<Result<_, _>>()?,
        })
    }
}
