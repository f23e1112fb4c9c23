//! Field-by-field comparison of the store's and etcd's outcomes, after ONE normalization
//! function for everything that legitimately differs (DIFFERENCES.md is its table).

use faultline_api::{
    Event, Request, Response, ResponseHeader, ResponseOp, Revision, TxnResponse, WatchResponse,
};
use serde::Serialize;

use crate::gen::Step;
use crate::ErrorOutcome;

/// What one step produced on one side.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum StepOutcome {
    Unary(Result<Response, ErrorOutcome>),
    /// The first response to a watch create (created, or created + canceled).
    WatchCreated(WatchResponse),
}

/// What a watch delivered, flattened: response boundaries are not compared (etcd batches a
/// catch-up differently from live delivery; only the events and their order are guaranteed).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum WatchItem {
    Event(Event),
    Canceled {
        compact_revision: Revision,
        cancel_reason: String,
    },
}

/// Flatten responses (after the created one) into events and cancellations; empty
/// non-canceled responses (progress notifications) carry nothing to compare.
pub fn watch_items(responses: &[WatchResponse]) -> Vec<WatchItem> {
    let mut items = Vec::new();
    for r in responses {
        items.extend(r.events.iter().cloned().map(WatchItem::Event));
        if r.canceled {
            items.push(WatchItem::Canceled {
                compact_revision: r.compact_revision,
                cancel_reason: r.cancel_reason.clone(),
            });
        }
    }
    items
}

/// Remaining lease TTLs count down in real time in etcd and are computed from the harness's
/// wall clock for the store; they may differ by this much.
pub const TTL_TOLERANCE_SECONDS: i64 = 2;

fn clear_ids(h: &mut ResponseHeader) {
    h.cluster_id = 0;
    h.member_id = 0;
    h.raft_term = 0;
}

fn clear_txn_ids(t: &mut TxnResponse) {
    clear_ids(&mut t.header);
    for op in &mut t.responses {
        match op {
            ResponseOp::Range(r) => clear_ids(&mut r.header),
            ResponseOp::Put(r) => clear_ids(&mut r.header),
            ResponseOp::DeleteRange(r) => clear_ids(&mut r.header),
            ResponseOp::Txn(inner) => clear_txn_ids(inner),
        }
    }
}

fn clear_outcome_ids(o: &mut StepOutcome) {
    match o {
        StepOutcome::Unary(Ok(r)) => {
            if let Response::Txn(t) = r {
                clear_txn_ids(t);
            }
            clear_ids(r.header_mut());
        }
        StepOutcome::Unary(Err(_)) => {}
        StepOutcome::WatchCreated(w) => clear_ids(&mut w.header),
    }
}

/// THE normalization: every known, accepted difference between the store (which follows etcd
/// 3.6, etcd-semantics.md) and etcd 3.4.23 as seen through the `etcd-client` crate. Each rule
/// is a row of DIFFERENCES.md (same numbers). Everything not normalized here must be equal.
pub fn normalize_known_differences(step: &Step, store: &mut StepOutcome, etcd: &mut StepOutcome) {
    // D1: member ID, cluster ID and raft term identify the server, not the data.
    clear_outcome_ids(store);
    clear_outcome_ids(etcd);
    match (step, store, etcd) {
        // D2: etcd lists leases from a Go map (random order); the store sorts by ID.
        (
            Step::Request(Request::LeaseLeases),
            StepOutcome::Unary(Ok(Response::LeaseLeases(s))),
            StepOutcome::Unary(Ok(Response::LeaseLeases(e))),
        ) => {
            s.leases.sort_unstable();
            e.leases.sort_unstable();
        }
        (
            Step::Request(Request::LeaseTimeToLive(_)),
            StepOutcome::Unary(Ok(Response::LeaseTimeToLive(s))),
            StepOutcome::Unary(Ok(Response::LeaseTimeToLive(e))),
        ) => {
            // D2: a lease's keys come from a Go map too.
            s.keys.sort();
            e.keys.sort();
            // D3: the remaining TTL counts down in real time.
            if s.ttl_seconds >= 0
                && e.ttl_seconds >= 0
                && (s.ttl_seconds - e.ttl_seconds).abs() <= TTL_TOLERANCE_SECONDS
            {
                e.ttl_seconds = s.ttl_seconds;
            }
        }
        (
            Step::Request(Request::LeaseKeepAlive(_)),
            StepOutcome::Unary(Ok(Response::LeaseKeepAlive(s))),
            StepOutcome::Unary(Ok(Response::LeaseKeepAlive(e))),
        ) => {
            // D4: for an unknown lease the client crate hides etcd's response header.
            if e.ttl_seconds == 0 && e.header == ResponseHeader::default() {
                s.header = ResponseHeader::default();
            }
        }
        _ => {}
    }
}

/// Compare one step's outcomes (after normalization). `None` when equal; otherwise a short
/// description of the first differing field.
pub fn diff_outcomes(store: &StepOutcome, etcd: &StepOutcome) -> Option<String> {
    if store == etcd {
        return None;
    }
    let s = serde_json::to_value(store).expect("outcomes serialize");
    let e = serde_json::to_value(etcd).expect("outcomes serialize");
    Some(first_difference("", &s, &e))
}

/// Compare what two watches delivered (both already cut at the sentinel revision).
pub fn diff_watch_items(store: &[WatchItem], etcd: &[WatchItem]) -> Option<String> {
    if store == etcd {
        return None;
    }
    let s = serde_json::to_value(store).expect("items serialize");
    let e = serde_json::to_value(etcd).expect("items serialize");
    Some(first_difference("", &s, &e))
}

/// The JSON path of the first difference, with both values.
fn first_difference(path: &str, a: &serde_json::Value, b: &serde_json::Value) -> String {
    use serde_json::Value;
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, va) in x {
                match y.get(k) {
                    Some(vb) if va == vb => {}
                    Some(vb) => return first_difference(&format!("{path}.{k}"), va, vb),
                    None => return format!("{path}.{k}: store {va}, etcd has no such field"),
                }
            }
            for k in y.keys() {
                if !x.contains_key(k) {
                    return format!("{path}.{k}: etcd {}, store has no such field", y[k]);
                }
            }
            format!("{path}: store {a}, etcd {b}")
        }
        (Value::Array(x), Value::Array(y)) => {
            for (i, (va, vb)) in x.iter().zip(y.iter()).enumerate() {
                if va != vb {
                    return first_difference(&format!("{path}[{i}]"), va, vb);
                }
            }
            format!(
                "{path}: store has {} elements, etcd {} (first extra: {})",
                x.len(),
                y.len(),
                if x.len() > y.len() {
                    format!("store {}", x[y.len()])
                } else {
                    format!("etcd {}", y[x.len()])
                }
            )
        }
        _ => format!("{path}: store {a}, etcd {b}"),
    }
}
