//! Helpers shared by the etcd-model test files (each test binary uses a subset).
#![allow(dead_code)]

use faultline_api::*;
use faultline_invariants::history::{Operation, Outcome};

pub fn hdr(revision: i64) -> ResponseHeader {
    ResponseHeader {
        revision,
        ..Default::default()
    }
}

pub fn kv(key: &str, value: &str, create: i64, modr: i64, version: i64) -> KeyValue {
    KeyValue {
        key: key.as_bytes().to_vec(),
        create_revision: create,
        mod_revision: modr,
        version,
        value: value.as_bytes().to_vec(),
        lease: 0,
    }
}

pub fn put(key: &str, value: &str) -> Request {
    Request::Put(PutRequest {
        key: key.as_bytes().to_vec(),
        value: value.as_bytes().to_vec(),
        ..Default::default()
    })
}

pub fn put_ok(rev: i64) -> Outcome {
    Outcome::Ok(Response::Put(PutResponse {
        header: hdr(rev),
        prev_kv: None,
    }))
}

/// Sequential operations of one client, 10 ms apart (each completes 5 ms after its call).
pub fn sequential_ops(list: Vec<(Request, Outcome)>) -> Vec<Operation> {
    const MS: u64 = 1_000_000;
    list.into_iter()
        .enumerate()
        .map(|(i, (request, outcome))| Operation {
            id: i as u64,
            client: 0,
            member: Some(1),
            invoke_ns: i as u64 * 10 * MS,
            complete_ns: (i as u64 * 10 + 5) * MS,
            request,
            outcome,
        })
        .collect()
}
