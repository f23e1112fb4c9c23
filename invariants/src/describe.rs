//! Requests, responses, key-values and operations in one short line each, as reports show
//! them. Keys and values are shown as quoted text: a UTF-8 string as Rust escapes it (`"k/1"`),
//! other bytes as a byte string with everything but printable ASCII escaped (`b"k\xff"`).

use faultline_api::{
    CompareTarget, Event, KeyValue, Request, RequestOp, Response, ResponseOp, TxnRequest,
    TxnResponse,
};

use crate::history::{Operation, Outcome};
use crate::linearizability::OpSummary;

fn bytes(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(s) => format!("{s:?}"),
        Err(_) => format!("b\"{}\"", b.escape_ascii()),
    }
}

fn range_text(key: &[u8], end: &[u8]) -> String {
    if end.is_empty() {
        bytes(key)
    } else if end == [0] {
        format!("[{}, end)", bytes(key))
    } else {
        format!("[{}, {})", bytes(key), bytes(end))
    }
}

/// A KeyValue in one short line.
pub fn describe_kv(kv: &KeyValue) -> String {
    let mut s = format!(
        "{}={} (create {}, mod {}, version {}",
        bytes(&kv.key),
        bytes(&kv.value),
        kv.create_revision,
        kv.mod_revision,
        kv.version
    );
    if kv.lease != 0 {
        s.push_str(&format!(", lease {}", kv.lease));
    }
    s.push(')');
    s
}

fn describe_op(op: &RequestOp) -> String {
    match op {
        RequestOp::Range(r) => describe_request(&Request::Range(r.clone())),
        RequestOp::Put(p) => describe_request(&Request::Put(p.clone())),
        RequestOp::DeleteRange(d) => describe_request(&Request::DeleteRange(d.clone())),
        RequestOp::Txn(t) => describe_txn(t),
    }
}

fn describe_txn(t: &TxnRequest) -> String {
    let cmps: Vec<String> = t
        .compare
        .iter()
        .map(|c| {
            let target = match &c.target {
                CompareTarget::Value(value) => format!("Value({})", bytes(value)),
                other => format!("{other:?}"),
            };
            format!(
                "{target} {:?} on {}",
                c.result,
                range_text(&c.key, &c.range_end)
            )
        })
        .collect();
    let ops = |v: &[RequestOp]| v.iter().map(describe_op).collect::<Vec<_>>().join("; ");
    format!(
        "txn if [{}] then [{}] else [{}]",
        cmps.join(" && "),
        ops(&t.success),
        ops(&t.failure)
    )
}

/// A request in one short line.
pub fn describe_request(req: &Request) -> String {
    match req {
        Request::Range(r) => {
            let mut s = format!("range {}", range_text(&r.key, &r.range_end));
            if r.revision > 0 {
                s.push_str(&format!(" at revision {}", r.revision));
            }
            if r.limit > 0 {
                s.push_str(&format!(" limit {}", r.limit));
            }
            for (flag, name) in [
                (r.serializable, "serializable"),
                (r.keys_only, "keys_only"),
                (r.count_only, "count_only"),
            ] {
                if flag {
                    s.push(' ');
                    s.push_str(name);
                }
            }
            s
        }
        Request::Put(p) => {
            let mut s = format!("put {}={}", bytes(&p.key), bytes(&p.value));
            if p.lease != 0 {
                s.push_str(&format!(" lease {}", p.lease));
            }
            if p.prev_kv {
                s.push_str(" prev_kv");
            }
            if p.ignore_value {
                s.push_str(" ignore_value");
            }
            if p.ignore_lease {
                s.push_str(" ignore_lease");
            }
            s
        }
        Request::DeleteRange(d) => format!(
            "delete {}{}",
            range_text(&d.key, &d.range_end),
            if d.prev_kv { " prev_kv" } else { "" }
        ),
        Request::Txn(t) => describe_txn(t),
        other => format!("{other:?}"),
    }
}

fn describe_response_op(op: &ResponseOp) -> String {
    match op {
        ResponseOp::Range(r) => describe_response(&Response::Range(r.clone())),
        ResponseOp::Put(p) => describe_response(&Response::Put(p.clone())),
        ResponseOp::DeleteRange(d) => describe_response(&Response::DeleteRange(d.clone())),
        ResponseOp::Txn(t) => describe_txn_response(t),
    }
}

fn describe_txn_response(t: &TxnResponse) -> String {
    format!(
        "revision {}, {}: [{}]",
        t.header.revision,
        if t.succeeded { "succeeded" } else { "failed" },
        t.responses
            .iter()
            .map(describe_response_op)
            .collect::<Vec<_>>()
            .join("; ")
    )
}

/// A response in one short line.
pub fn describe_response(resp: &Response) -> String {
    let kvs = |v: &[KeyValue]| v.iter().map(describe_kv).collect::<Vec<_>>().join(", ");
    match resp {
        Response::Range(r) => format!(
            "revision {}, count {}{}, kvs [{}]",
            r.header.revision,
            r.count,
            if r.more { ", more" } else { "" },
            kvs(&r.kvs)
        ),
        Response::Put(p) => match &p.prev_kv {
            Some(kv) => format!("revision {}, prev {}", p.header.revision, describe_kv(kv)),
            None => format!("revision {}", p.header.revision),
        },
        Response::DeleteRange(d) => format!(
            "revision {}, deleted {}{}",
            d.header.revision,
            d.deleted,
            if d.prev_kvs.is_empty() {
                String::new()
            } else {
                format!(", prev [{}]", kvs(&d.prev_kvs))
            }
        ),
        Response::Txn(t) => describe_txn_response(t),
        Response::LeaseTimeToLive(l) => format!(
            "revision {}, lease {} ttl {}s of {}s, keys [{}]",
            l.header.revision,
            l.id,
            l.ttl_seconds,
            l.granted_ttl_seconds,
            l.keys
                .iter()
                .map(|k| bytes(k))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        // The other responses carry no keys or values: their fields as they are.
        other => format!("revision {}, {other:?}", other.header().revision),
    }
}

/// What a client learned of a request, in one short line.
pub fn describe_outcome(o: &Outcome) -> String {
    match o {
        Outcome::Ok(r) => describe_response(r),
        Outcome::Failed(e) => format!("failed: {e}"),
        Outcome::Unknown(why) => format!("unknown outcome ({why})"),
    }
}

/// An operation of the history as reports show it.
pub fn summarize(op: &Operation) -> OpSummary {
    OpSummary {
        id: op.id,
        client: op.client,
        member: op.member,
        invoke: op.invoke_ns,
        complete: (!op.is_unknown()).then_some(op.complete_ns),
        request: describe_request(&op.request),
        response: describe_outcome(&op.outcome),
    }
}

/// A watch event in one short line (kind, key, revision).
pub fn describe_event(e: &Event) -> String {
    format!(
        "{:?} {} at revision {}",
        e.kind,
        String::from_utf8_lossy(&e.kv.key),
        e.kv.mod_revision
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use faultline_api::{
        Compare, CompareResult, LeaseTimeToLiveResponse, PutRequest, ResponseHeader,
    };

    /// Keys and values are text wherever they appear, never lists of byte numbers.
    #[test]
    fn keys_and_values_are_text_everywhere() {
        let txn = Request::Txn(TxnRequest {
            compare: vec![Compare {
                result: CompareResult::Equal,
                target: CompareTarget::Value(b"c1-12-1".to_vec()),
                key: b"k/2".to_vec(),
                range_end: vec![],
            }],
            success: vec![RequestOp::Put(PutRequest {
                key: b"k/2".to_vec(),
                value: vec![b'v', 0xff, b'\n'],
                ..Default::default()
            })],
            failure: vec![],
        });
        assert_eq!(
            describe_request(&txn),
            r#"txn if [Value("c1-12-1") Equal on "k/2"] then [put "k/2"=b"v\xff\n"] else []"#
        );
        let ttl = Response::LeaseTimeToLive(LeaseTimeToLiveResponse {
            header: ResponseHeader {
                revision: 7,
                ..Default::default()
            },
            id: 3,
            ttl_seconds: 5,
            granted_ttl_seconds: 10,
            keys: vec![b"k/1".to_vec()],
        });
        assert_eq!(
            describe_response(&ttl),
            r#"revision 7, lease 3 ttl 5s of 10s, keys ["k/1"]"#
        );
    }
}
