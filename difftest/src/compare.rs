//! Field-by-field comparison of the store's and etcd's outcomes, after ONE normalization
//! function for everything that legitimately differs (DIFFERENCES.md is its table).

use faultline_api::{
    Event, EventType, Request, Response, ResponseHeader, ResponseOp, Revision, TxnResponse,
    WatchCreateRequest, WatchResponse,
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

/// What is being compared: one step's outcomes, or what one watch delivered.
pub enum Compared<'a> {
    Step {
        step: &'a Step,
        store: &'a mut StepOutcome,
        etcd: &'a mut StepOutcome,
    },
    WatchEvents {
        request: &'a WatchCreateRequest,
        /// The compact revision when the watch was opened.
        compact_revision_at_open: Revision,
        store: &'a mut Vec<WatchItem>,
        etcd: &'a mut Vec<WatchItem>,
    },
}

/// THE normalization: every known, accepted difference between the store (which follows etcd
/// 3.6, etcd-semantics.md) and etcd 3.4.23 as seen through the `etcd-client` crate. Each rule
/// is a row of DIFFERENCES.md (same numbers). Everything not normalized here must be equal.
pub fn normalize_known_differences(compared: Compared<'_>) {
    let (step, store, etcd) = match compared {
        Compared::Step { step, store, etcd } => (step, store, etcd),
        Compared::WatchEvents {
            request,
            compact_revision_at_open,
            store,
            etcd,
        } => {
            // D7: etcd 3.4.23 loses a tombstone written exactly at the compact revision, so a
            // watch from that revision misses the deletion (etcd #18089/#19179, fixed in later
            // releases and 3.6); until the physical compaction ran it may still send it.
            if request.start_revision > 0 && request.start_revision == compact_revision_at_open {
                let lost = |item: &WatchItem| {
                    matches!(item, WatchItem::Event(e)
                        if e.kind == EventType::Delete
                            && e.kv.mod_revision == compact_revision_at_open)
                };
                store.retain(|i| !lost(i));
                etcd.retain(|i| !lost(i));
            }
            return;
        }
    };
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
        )
            // D4: for an unknown lease the client crate hides etcd's response header.
            if e.ttl_seconds == 0 && e.header == ResponseHeader::default() =>
        {
            s.header = ResponseHeader::default();
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

#[cfg(test)]
mod tests {
    use super::*;
    use faultline_api::{KeyValue, RangeResponse};

    fn range_outcome(revision: Revision, value: &[u8]) -> StepOutcome {
        StepOutcome::Unary(Ok(Response::Range(RangeResponse {
            header: ResponseHeader {
                revision,
                member_id: 7,
                ..ResponseHeader::default()
            },
            kvs: vec![KeyValue {
                key: b"a".to_vec(),
                value: value.to_vec(),
                ..KeyValue::default()
            }],
            more: false,
            count: 1,
        })))
    }

    fn step() -> Step {
        Step::Request(Request::Range(faultline_api::RangeRequest::default()))
    }

    // The comparison can fail: any field outside the normalized ones is reported with its path.
    #[test]
    fn a_differing_value_is_reported_with_its_path() {
        let mut store = range_outcome(5, b"x");
        let mut etcd = range_outcome(5, b"y");
        normalize_known_differences(Compared::Step {
            step: &step(),
            store: &mut store,
            etcd: &mut etcd,
        });
        let what = diff_outcomes(&store, &etcd).expect("values differ");
        assert!(what.contains("kvs[0].value"), "{what}");
        let mut etcd_rev = range_outcome(6, b"x");
        let mut store = range_outcome(5, b"x");
        normalize_known_differences(Compared::Step {
            step: &step(),
            store: &mut store,
            etcd: &mut etcd_rev,
        });
        assert!(diff_outcomes(&store, &etcd_rev)
            .expect("revisions differ")
            .contains("header.revision"));
    }

    // D1 only clears server identity: equal data with different member IDs is equal.
    #[test]
    fn member_ids_are_not_compared() {
        let mut store = range_outcome(5, b"x");
        let mut etcd = range_outcome(5, b"x");
        if let StepOutcome::Unary(Ok(r)) = &mut etcd {
            r.header_mut().member_id = 99;
        }
        normalize_known_differences(Compared::Step {
            step: &step(),
            store: &mut store,
            etcd: &mut etcd,
        });
        assert_eq!(diff_outcomes(&store, &etcd), None);
    }

    // A missing, extra or reordered watch event is a difference; D7 removes only deletions
    // at the compact revision for a watch started there.
    #[test]
    fn watch_event_lists_must_match() {
        let event = |kind, rev| {
            WatchItem::Event(Event {
                kind,
                kv: KeyValue {
                    key: b"k".to_vec(),
                    mod_revision: rev,
                    ..KeyValue::default()
                },
                prev_kv: None,
            })
        };
        let store = vec![event(EventType::Delete, 4), event(EventType::Put, 5)];
        let etcd = vec![event(EventType::Put, 5)];
        assert!(diff_watch_items(&store, &etcd).is_some());
        assert!(diff_watch_items(&etcd, &store).is_some());
        let mut reordered = store.clone();
        reordered.reverse();
        assert!(diff_watch_items(&store, &reordered).is_some());

        let request = WatchCreateRequest {
            key: b"k".to_vec(),
            start_revision: 4,
            ..WatchCreateRequest::default()
        };
        let (mut s, mut e) = (store.clone(), etcd.clone());
        normalize_known_differences(Compared::WatchEvents {
            request: &request,
            compact_revision_at_open: 4,
            store: &mut s,
            etcd: &mut e,
        });
        assert_eq!(diff_watch_items(&s, &e), None);
        // Started elsewhere: the missing deletion is still reported.
        let (mut s, mut e) = (store, etcd);
        normalize_known_differences(Compared::WatchEvents {
            request: &request,
            compact_revision_at_open: 3,
            store: &mut s,
            etcd: &mut e,
        });
        assert!(diff_watch_items(&s, &e).is_some());
    }
}
