//! Lease: grant, revoke, keep-alive, time-to-live, the list of leases.

use faultline_api as api;

use super::kv::{header_from_api, header_to_api};
use crate::pb::etcdserverpb as pb;

impl From<pb::LeaseGrantRequest> for api::LeaseGrantRequest {
    fn from(r: pb::LeaseGrantRequest) -> Self {
        api::LeaseGrantRequest {
            ttl_seconds: r.ttl,
            id: r.id,
        }
    }
}

impl From<api::LeaseGrantRequest> for pb::LeaseGrantRequest {
    fn from(r: api::LeaseGrantRequest) -> Self {
        pb::LeaseGrantRequest {
            ttl: r.ttl_seconds,
            id: r.id,
        }
    }
}

impl From<api::LeaseGrantResponse> for pb::LeaseGrantResponse {
    fn from(r: api::LeaseGrantResponse) -> Self {
        pb::LeaseGrantResponse {
            header: header_from_api(&r.header),
            id: r.id,
            ttl: r.ttl_seconds,
            // etcd leaves it empty and reports failures as gRPC errors; so do we.
            error: String::new(),
        }
    }
}

impl From<pb::LeaseGrantResponse> for api::LeaseGrantResponse {
    fn from(r: pb::LeaseGrantResponse) -> Self {
        api::LeaseGrantResponse {
            header: header_to_api(r.header),
            id: r.id,
            ttl_seconds: r.ttl,
        }
    }
}

impl From<pb::LeaseRevokeRequest> for api::LeaseRevokeRequest {
    fn from(r: pb::LeaseRevokeRequest) -> Self {
        api::LeaseRevokeRequest { id: r.id }
    }
}

impl From<api::LeaseRevokeRequest> for pb::LeaseRevokeRequest {
    fn from(r: api::LeaseRevokeRequest) -> Self {
        pb::LeaseRevokeRequest { id: r.id }
    }
}

impl From<api::LeaseRevokeResponse> for pb::LeaseRevokeResponse {
    fn from(r: api::LeaseRevokeResponse) -> Self {
        pb::LeaseRevokeResponse {
            header: header_from_api(&r.header),
        }
    }
}

impl From<pb::LeaseRevokeResponse> for api::LeaseRevokeResponse {
    fn from(r: pb::LeaseRevokeResponse) -> Self {
        api::LeaseRevokeResponse {
            header: header_to_api(r.header),
        }
    }
}

impl From<pb::LeaseKeepAliveRequest> for api::LeaseKeepAliveRequest {
    fn from(r: pb::LeaseKeepAliveRequest) -> Self {
        api::LeaseKeepAliveRequest { id: r.id }
    }
}

impl From<api::LeaseKeepAliveRequest> for pb::LeaseKeepAliveRequest {
    fn from(r: api::LeaseKeepAliveRequest) -> Self {
        pb::LeaseKeepAliveRequest { id: r.id }
    }
}

impl From<api::LeaseKeepAliveResponse> for pb::LeaseKeepAliveResponse {
    fn from(r: api::LeaseKeepAliveResponse) -> Self {
        pb::LeaseKeepAliveResponse {
            header: header_from_api(&r.header),
            id: r.id,
            ttl: r.ttl_seconds,
        }
    }
}

impl From<pb::LeaseKeepAliveResponse> for api::LeaseKeepAliveResponse {
    fn from(r: pb::LeaseKeepAliveResponse) -> Self {
        api::LeaseKeepAliveResponse {
            header: header_to_api(r.header),
            id: r.id,
            ttl_seconds: r.ttl,
        }
    }
}

impl From<pb::LeaseTimeToLiveRequest> for api::LeaseTimeToLiveRequest {
    fn from(r: pb::LeaseTimeToLiveRequest) -> Self {
        api::LeaseTimeToLiveRequest {
            id: r.id,
            keys: r.keys,
        }
    }
}

impl From<api::LeaseTimeToLiveRequest> for pb::LeaseTimeToLiveRequest {
    fn from(r: api::LeaseTimeToLiveRequest) -> Self {
        pb::LeaseTimeToLiveRequest {
            id: r.id,
            keys: r.keys,
        }
    }
}

impl From<api::LeaseTimeToLiveResponse> for pb::LeaseTimeToLiveResponse {
    fn from(r: api::LeaseTimeToLiveResponse) -> Self {
        pb::LeaseTimeToLiveResponse {
            header: header_from_api(&r.header),
            id: r.id,
            ttl: r.ttl_seconds,
            granted_ttl: r.granted_ttl_seconds,
            keys: r.keys,
        }
    }
}

impl From<pb::LeaseTimeToLiveResponse> for api::LeaseTimeToLiveResponse {
    fn from(r: pb::LeaseTimeToLiveResponse) -> Self {
        api::LeaseTimeToLiveResponse {
            header: header_to_api(r.header),
            id: r.id,
            ttl_seconds: r.ttl,
            granted_ttl_seconds: r.granted_ttl,
            keys: r.keys,
        }
    }
}

impl From<api::LeaseLeasesResponse> for pb::LeaseLeasesResponse {
    fn from(r: api::LeaseLeasesResponse) -> Self {
        pb::LeaseLeasesResponse {
            header: header_from_api(&r.header),
            leases: r
                .leases
                .into_iter()
                .map(|id| pb::LeaseStatus { id })
                .collect(),
        }
    }
}

impl From<pb::LeaseLeasesResponse> for api::LeaseLeasesResponse {
    fn from(r: pb::LeaseLeasesResponse) -> Self {
        api::LeaseLeasesResponse {
            header: header_to_api(r.header),
            leases: r.leases.into_iter().map(|status| status.id).collect(),
        }
    }
}
