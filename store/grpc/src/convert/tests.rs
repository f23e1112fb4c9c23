//! Round trips through etcd's wire types, golden bytes that pin field numbers, error codes.

use faultline_api::{self as api, EtcdError};
use prost::Message;
use tonic::Code;

use super::*;
use crate::pb::etcdserverpb as pb;
use crate::pb::mvccpb;

fn kv(key: &str, revision: i64) -> api::KeyValue {
    api::KeyValue {
        key: key.as_bytes().to_vec(),
        create_revision: revision - 1,
        mod_revision: revision,
        version: 2,
        value: b"v".to_vec(),
        lease: 7,
    }
}

fn header() -> api::ResponseHeader {
    api::ResponseHeader {
        cluster_id: 1,
        member_id: 2,
        revision: 3,
        raft_term: 4,
    }
}

fn every_range_option() -> api::RangeRequest {
    api::RangeRequest {
        key: b"a".to_vec(),
        range_end: b"b".to_vec(),
        limit: 3,
        revision: 9,
        sort_order: api::SortOrder::Descend,
        sort_target: api::SortTarget::Mod,
        serializable: true,
        keys_only: true,
        count_only: false,
        min_mod_revision: 1,
        max_mod_revision: 2,
        min_create_revision: 3,
        max_create_revision: 4,
    }
}

fn nested_txn() -> api::TxnRequest {
    let compare = |target| api::Compare {
        result: api::CompareResult::NotEqual,
        target,
        key: b"k".to_vec(),
        range_end: b"l".to_vec(),
    };
    api::TxnRequest {
        compare: vec![
            compare(api::CompareTarget::Version(1)),
            compare(api::CompareTarget::CreateRevision(2)),
            compare(api::CompareTarget::ModRevision(3)),
            compare(api::CompareTarget::Value(b"x".to_vec())),
            compare(api::CompareTarget::Lease(5)),
        ],
        success: vec![
            api::RequestOp::Range(every_range_option()),
            api::RequestOp::Put(api::PutRequest {
                key: b"k".to_vec(),
                value: b"v".to_vec(),
                lease: 1,
                prev_kv: true,
                ignore_value: true,
                ignore_lease: true,
            }),
        ],
        failure: vec![
            api::RequestOp::DeleteRange(api::DeleteRangeRequest {
                key: b"k".to_vec(),
                range_end: vec![0],
                prev_kv: true,
            }),
            api::RequestOp::Txn(api::TxnRequest::default()),
        ],
    }
}

#[test]
fn requests_round_trip() {
    let range = every_range_option();
    let back: api::RangeRequest = pb::RangeRequest::from(range.clone()).try_into().unwrap();
    assert_eq!(back, range);

    let txn = nested_txn();
    // Through the bytes too, as a client would send it.
    let bytes = pb::TxnRequest::from(txn.clone()).encode_to_vec();
    let decoded = pb::TxnRequest::decode(bytes.as_slice()).unwrap();
    let back: api::TxnRequest = decoded.try_into().unwrap();
    assert_eq!(back, txn);

    let create = api::WatchCreateRequest {
        key: b"a".to_vec(),
        range_end: vec![0],
        start_revision: 5,
        progress_notify: true,
        filters: vec![api::WatchFilter::NoPut, api::WatchFilter::NoDelete],
        prev_kv: true,
        watch_id: 8,
        fragment: true,
    };
    let back: api::WatchCreateRequest = pb::WatchCreateRequest::from(create.clone())
        .try_into()
        .unwrap();
    assert_eq!(back, create);

    let grant = api::LeaseGrantRequest {
        ttl_seconds: 10,
        id: 99,
    };
    assert_eq!(
        api::LeaseGrantRequest::from(pb::LeaseGrantRequest::from(grant.clone())),
        grant
    );
}

#[test]
fn responses_round_trip() {
    let txn = api::TxnResponse {
        header: header(),
        succeeded: true,
        responses: vec![
            api::ResponseOp::Range(api::RangeResponse {
                header: header(),
                kvs: vec![kv("a", 5), kv("b", 6)],
                more: true,
                count: 4,
            }),
            api::ResponseOp::Put(api::PutResponse {
                header: header(),
                prev_kv: Some(kv("a", 5)),
            }),
            api::ResponseOp::DeleteRange(api::DeleteRangeResponse {
                header: header(),
                deleted: 2,
                prev_kvs: vec![kv("c", 3)],
            }),
            api::ResponseOp::Txn(api::TxnResponse::default()),
        ],
    };
    let back: api::TxnResponse = pb::TxnResponse::from(txn.clone()).try_into().unwrap();
    assert_eq!(back, txn);

    let watch = api::WatchResponse {
        header: header(),
        watch_id: 3,
        created: false,
        canceled: true,
        compact_revision: 4,
        cancel_reason: "why".into(),
        fragment: true,
        events: vec![
            api::Event {
                kind: api::EventType::Put,
                kv: kv("a", 5),
                prev_kv: Some(kv("a", 4)),
            },
            api::Event {
                kind: api::EventType::Delete,
                kv: api::KeyValue {
                    key: b"a".to_vec(),
                    mod_revision: 6,
                    ..Default::default()
                },
                prev_kv: None,
            },
        ],
    };
    let back: api::WatchResponse = pb::WatchResponse::from(watch.clone()).try_into().unwrap();
    assert_eq!(back, watch);

    let ttl = api::LeaseTimeToLiveResponse {
        header: header(),
        id: 5,
        ttl_seconds: 3,
        granted_ttl_seconds: 10,
        keys: vec![b"a".to_vec()],
    };
    let back = api::LeaseTimeToLiveResponse::from(pb::LeaseTimeToLiveResponse::from(ttl.clone()));
    assert_eq!(back, ttl);

    let leases = api::LeaseLeasesResponse {
        header: header(),
        leases: vec![1, 2],
    };
    let back = api::LeaseLeasesResponse::from(pb::LeaseLeasesResponse::from(leases.clone()));
    assert_eq!(back, leases);
}

#[test]
fn cluster_responses_convert_and_mismatches_are_internal_errors() {
    let member = api::Member {
        id: 42,
        name: "one".into(),
        peer_urls: vec!["http://127.0.0.1:2380".into()],
        client_urls: vec!["http://127.0.0.1:2379".into()],
        is_learner: true,
    };
    assert_eq!(api::Member::from(member_from_api(member.clone())), member);
    let list = api_cluster_list(vec![member.clone()]);
    let response = pb::MemberListResponse::try_from(list.clone()).unwrap();
    assert_eq!(response.members.len(), 1);
    assert_eq!(response.members[0].peer_ur_ls, member.peer_urls);
    let status = pb::MemberAddResponse::try_from(list).unwrap_err();
    assert_eq!(status.code(), Code::Internal);

    let status_response = api::StatusResponse {
        header: header(),
        version: "0.1.0".into(),
        db_size_bytes: 100,
        leader: 42,
        raft_index: 7,
        raft_term: 2,
        raft_applied_index: 7,
        is_learner: false,
    };
    let wire = status_from_api(status_response.clone());
    assert_eq!(wire.db_size_in_use, 100);
    assert_eq!(api::StatusResponse::from(wire), status_response);
}

fn api_cluster_list(members: Vec<api::Member>) -> api::ClusterResponse {
    api::ClusterResponse::MemberList {
        header: header(),
        members,
    }
}

/// Hand-encoded protobuf (tag = field number << 3 | wire type): if a field number in our
/// .proto files drifted from etcd's, these bytes would not decode to the same request.
#[test]
fn field_numbers_match_etcds() {
    // PutRequest: key=1 "a", value=2 "b", lease=3 5, prev_kv=4 true, ignore_value=5,
    // ignore_lease=6.
    let put = [
        0x0a, 1, b'a', 0x12, 1, b'b', 0x18, 5, 0x20, 1, 0x28, 1, 0x30, 1,
    ];
    let put: api::PutRequest = pb::PutRequest::decode(&put[..]).unwrap().into();
    assert_eq!(
        put,
        api::PutRequest {
            key: b"a".to_vec(),
            value: b"b".to_vec(),
            lease: 5,
            prev_kv: true,
            ignore_value: true,
            ignore_lease: true,
        }
    );
    // RangeRequest: limit=3, revision=4, sort_order=5 (2 = DESCEND), sort_target=6
    // (3 = MOD), count_only=9, max_create_revision=13 (tag 13<<3 = 0x68).
    let range = [0x18, 2, 0x20, 7, 0x28, 2, 0x30, 3, 0x48, 1, 0x68, 4];
    let range: api::RangeRequest = pb::RangeRequest::decode(&range[..])
        .unwrap()
        .try_into()
        .unwrap();
    assert_eq!(range.limit, 2);
    assert_eq!(range.revision, 7);
    assert_eq!(range.sort_order, api::SortOrder::Descend);
    assert_eq!(range.sort_target, api::SortTarget::Mod);
    assert!(range.count_only);
    assert_eq!(range.max_create_revision, 4);
    // KeyValue: key=1, create_revision=2, mod_revision=3, version=4, value=5, lease=6.
    let bytes = mvccpb::KeyValue::from(kv("k", 5)).encode_to_vec();
    assert_eq!(
        bytes,
        [0x0a, 1, b'k', 0x10, 4, 0x18, 5, 0x20, 2, 0x2a, 1, b'v', 0x30, 7]
    );
    // WatchResponse.events is field 11 (tag 0x5a), after fragment=7 (0x38).
    let watch = pb::WatchResponse {
        fragment: true,
        events: vec![mvccpb::Event::default()],
        ..Default::default()
    };
    assert_eq!(watch.encode_to_vec(), [0x38, 1, 0x5a, 0]);
    // Compare.range_end is field 64 (tag 64<<3|2 = 514 = varint 0x82 0x04).
    let compare = pb::Compare {
        range_end: b"z".to_vec(),
        ..Default::default()
    };
    assert_eq!(compare.encode_to_vec(), [0x82, 0x04, 1, b'z']);
}

#[test]
fn bad_enum_values_are_refused_as_etcd_does() {
    let range = pb::RangeRequest {
        sort_order: 7,
        ..Default::default()
    };
    let status = api::RangeRequest::try_from(range).unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(status.message(), "etcdserver: invalid sort option");
    let compare = pb::Compare {
        target: 9,
        ..Default::default()
    };
    assert_eq!(
        api::Compare::try_from(compare).unwrap_err().code(),
        Code::InvalidArgument
    );
    let op = pb::RequestOp { request: None };
    assert!(api::RequestOp::try_from(op).is_err());
}

#[test]
fn errors_carry_etcds_codes_and_messages() {
    let cases = [
        (
            EtcdError::Compacted,
            Code::OutOfRange,
            "etcdserver: mvcc: required revision has been compacted",
        ),
        (
            EtcdError::FutureRev,
            Code::OutOfRange,
            "etcdserver: mvcc: required revision is a future revision",
        ),
        (
            EtcdError::EmptyKey,
            Code::InvalidArgument,
            "etcdserver: key is not provided",
        ),
        (
            EtcdError::LeaseNotFound,
            Code::NotFound,
            "etcdserver: requested lease not found",
        ),
        (
            EtcdError::LeaseExist,
            Code::FailedPrecondition,
            "etcdserver: lease already exists",
        ),
        (
            EtcdError::NotLeader {
                leader_hint: Some(3),
            },
            Code::Unavailable,
            "etcdserver: not leader",
        ),
        (
            EtcdError::NoLeader,
            Code::Unavailable,
            "etcdserver: no leader",
        ),
        (
            EtcdError::Timeout,
            Code::Unavailable,
            "etcdserver: request timed out",
        ),
        (
            EtcdError::MemberNotFound,
            Code::NotFound,
            "etcdserver: member not found",
        ),
        (
            EtcdError::NoSpace,
            Code::ResourceExhausted,
            "etcdserver: mvcc: database space exceeded",
        ),
    ];
    for (error, code, message) in cases {
        let status = status_from_error(&error);
        assert_eq!(status.code(), code, "{error:?}");
        assert_eq!(status.message(), message, "{error:?}");
    }
    let lost = faultline_node::WatchStreamError::UnknownStream { stream: 4 };
    assert_eq!(status_from_stream_error(&lost).code(), Code::Unavailable);
}

#[test]
fn headers_round_trip_and_a_missing_header_is_zero() {
    assert_eq!(header_to_api(header_from_api(&header())), header());
    assert_eq!(header_to_api(None), api::ResponseHeader::default());
}

/// Every variant, listed through a match without a wildcard: a new variant fails to compile
/// here until it is listed (and then must be in `error.rs`'s catalog to round-trip).
fn every_error() -> Vec<EtcdError> {
    use EtcdError::*;
    let all = vec![
        Compacted,
        FutureRev,
        EmptyKey,
        KeyNotFound,
        ValueProvided,
        LeaseProvided,
        TooManyOps,
        DuplicateKey,
        InvalidSortOption,
        NoSpace,
        RequestTooLarge,
        LeaseNotFound,
        LeaseExist,
        LeaseTtlTooLarge,
        NotLeader { leader_hint: None },
        NotLeader {
            leader_hint: Some(7),
        },
        NoLeader,
        LeaderChanged,
        Timeout,
        Stopped,
        Removed,
        MemberNotFound,
        MemberExist,
        IdRemoved,
        MemberBadUrls,
        PeerUrlExist,
        MemberNotLearner,
        LearnerNotReady,
        TooManyLearners,
        Unhealthy,
        NotEnoughStartedMembers,
        BadLeaderTransferee,
        TimeoutLeaderTransfer,
        ConfChangeInProgress,
    ];
    for error in &all {
        match error {
            Compacted
            | FutureRev
            | EmptyKey
            | KeyNotFound
            | ValueProvided
            | LeaseProvided
            | TooManyOps
            | DuplicateKey
            | InvalidSortOption
            | NoSpace
            | RequestTooLarge
            | LeaseNotFound
            | LeaseExist
            | LeaseTtlTooLarge
            | NotLeader { .. }
            | NoLeader
            | LeaderChanged
            | Timeout
            | Stopped
            | Removed
            | MemberNotFound
            | MemberExist
            | IdRemoved
            | MemberBadUrls
            | PeerUrlExist
            | MemberNotLearner
            | LearnerNotReady
            | TooManyLearners
            | Unhealthy
            | NotEnoughStartedMembers
            | BadLeaderTransferee
            | TimeoutLeaderTransfer
            | ConfChangeInProgress => {}
        }
    }
    all
}

#[test]
fn every_error_round_trips_through_its_status() {
    for error in every_error() {
        let status = status_from_error(&error);
        assert_eq!(
            error_from_status(&status),
            Some(error.clone()),
            "{status:?}"
        );
    }
    // Statuses no member sends for an error of the store read as no answer at all.
    let transport = tonic::Status::unknown("error reading a body from connection: broken pipe");
    assert_eq!(error_from_status(&transport), None);
    let deadline = tonic::Status::deadline_exceeded("request timeout: 1s");
    assert_eq!(error_from_status(&deadline), None);
    // The hint rides in metadata, beside etcd's own message.
    let hinted = status_from_error(&EtcdError::NotLeader {
        leader_hint: Some(3),
    });
    assert_eq!(hinted.message(), "etcdserver: not leader");
    assert_eq!(hinted.code(), Code::Unavailable);
}
