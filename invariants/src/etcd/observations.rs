//! What the history observes beyond the order of its operations: the key-values a response
//! shows (with the revision at which each was current), and which extra sources of facts
//! (historical reads, watches) may prune the search.

use faultline_api::{KeyValue, Request, Response, ResponseOp, Revision, TxnResponse};

/// Observations beyond the responses of current-revision operations that may prune the
/// search (`KeyFacts`). Each is a necessary condition only if its source is right: a
/// historical read (part of the linearizability claim) or a watch (judged by the watch
/// checks), so `check_etcd_history_detailed` searches with them first and without them when
/// that fails, to tell which source no linearization agrees with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExtraFacts {
    pub historical_reads: bool,
    pub watches: bool,
}

impl ExtraFacts {
    pub const ALL: ExtraFacts = ExtraFacts {
        historical_reads: true,
        watches: true,
    };
    pub const NONE: ExtraFacts = ExtraFacts {
        historical_reads: false,
        watches: false,
    };
}

/// Every KeyValue a response shows, with the revision at which it was current (when known).
pub(super) fn observations<'a>(
    req: &Request,
    resp: &'a Response,
    out: &mut Vec<(&'a KeyValue, Option<Revision>)>,
) {
    let h = resp.header().revision;
    match (req, resp) {
        (Request::Range(r), Response::Range(rr)) => {
            let at = (r.revision <= 0).then_some(h);
            out.extend(rr.kvs.iter().map(|kv| (kv, at)));
        }
        (Request::Put(_), Response::Put(p)) => {
            out.extend(p.prev_kv.iter().map(|kv| (kv, Some(h - 1))));
        }
        (Request::DeleteRange(_), Response::DeleteRange(d)) => {
            let at = if d.deleted > 0 { h - 1 } else { h };
            out.extend(d.prev_kvs.iter().map(|kv| (kv, Some(at))));
        }
        (Request::Txn(_), Response::Txn(t)) => txn_observations(t, out),
        _ => {}
    }
}

fn txn_observations<'a>(t: &'a TxnResponse, out: &mut Vec<(&'a KeyValue, Option<Revision>)>) {
    for op in &t.responses {
        match op {
            ResponseOp::Range(r) => out.extend(r.kvs.iter().map(|kv| (kv, None))),
            ResponseOp::Put(p) => out.extend(p.prev_kv.iter().map(|kv| (kv, None))),
            ResponseOp::DeleteRange(d) => out.extend(d.prev_kvs.iter().map(|kv| (kv, None))),
            ResponseOp::Txn(inner) => txn_observations(inner, out),
        }
    }
}
