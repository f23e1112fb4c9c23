//! Checking an etcd history (`history::History`) against etcd's model: a stale-read pre-check,
//! the linearizability search with revision-based pruning, and an exact check of historical
//! reads against the linearization found.
//!
//! What takes part in the search:
//! * `Outcome::Failed` operations never took effect: excluded.
//! * Reads (Range, read-only Txn) with an unknown outcome have no effect: dropped.
//! * Unknown Compacts are dropped: a compaction only makes later requests fail, and failed
//!   requests are excluded, so it can never be needed to explain a response.
//! * KeepAlive, TimeToLive, Leases and HashKV are not part of the KV model: excluded.
//! * Serializable ranges take part with their invocation time relaxed: they may be stale, so
//!   they may be placed anywhere before their completion once the store has reached their
//!   header revision (their call becomes the call of the write that produced the highest
//!   known revision at or below it). They must then equal the state at that revision of the
//!   same linearization as everything else, which is exact.
//! * Unknown writes are optional. A write whose unique value some response observed is pinned
//!   to the revision that response shows. Any other unknown write may only produce a revision
//!   no known write produced, at most the highest revision anyone saw, and not one where an
//!   observation shows its key unmodified; its deadline is derived from that, and it is
//!   dropped when no such revision exists.

use std::collections::BTreeMap;

use faultline_api::{
    KeyValue, Request, RequestOp, Response, ResponseOp, Revision, TxnRequest, TxnResponse,
};

use crate::history::{History, Operation, Outcome};
use crate::linearizability::{
    check_detailed, Mismatch, Model, Op, OpSummary, Report, StaleKind, StaleRead, TimeUnit,
    Verdict, NEVER,
};
use crate::models::etcd::{
    normalize, response_mutates, single_written_key, EtcdInput, EtcdModel, KeyFacts, KeyObs,
    LeaseFacts, LeaseTimeline, RangeKind,
};

fn bytes(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(s) => format!("{s:?}"),
        Err(_) => format!(
            "0x{}",
            b.iter().map(|x| format!("{x:02x}")).collect::<String>()
        ),
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
            format!(
                "{:?} {:?} on {}",
                c.target,
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
        other => format!("revision {}, {other:?}", other.header().revision),
    }
}

fn describe_outcome(o: &Outcome) -> String {
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

// ---------------------------------------------------------------------------------------------
// Stale-read pre-check.

fn is_kv_or_lease(req: &Request) -> bool {
    matches!(
        req,
        Request::Range(_)
            | Request::Put(_)
            | Request::DeleteRange(_)
            | Request::Txn(_)
            | Request::Compact(_)
            | Request::LeaseGrant(_)
            | Request::LeaseRevoke(_)
    )
}

/// Every linearizable read whose header revision is below the revision of an operation that
/// completed before the read was invoked, and every other linearizable operation whose
/// revision went backwards that way (a known write must even see a higher one). Serializable
/// reads may be stale, so they are only used as the earlier operation.
pub fn find_stale_reads(history: &History) -> Vec<StaleRead> {
    // Completed operations with a revision, by completion time.
    let mut done: Vec<(u64, Revision, usize)> = history
        .ops
        .iter()
        .enumerate()
        .filter_map(|(i, op)| match &op.outcome {
            Outcome::Ok(r) if is_kv_or_lease(&op.request) && r.header().revision > 0 => {
                Some((op.complete_ns, r.header().revision, i))
            }
            _ => None,
        })
        .collect();
    done.sort();
    // Prefix maximum of the revision (and which op had it).
    let mut best: Vec<(Revision, usize)> = Vec::with_capacity(done.len());
    for &(_, rev, i) in &done {
        let prev = best.last().copied();
        best.push(match prev {
            Some((r, j)) if r >= rev => (r, j),
            _ => (rev, i),
        });
    }
    let mut found = Vec::new();
    for op in &history.ops {
        let Outcome::Ok(resp) = &op.outcome else {
            continue;
        };
        if !is_kv_or_lease(&op.request) {
            continue;
        }
        let kind = match &op.request {
            Request::Range(r) if r.serializable => continue,
            Request::Range(_) => StaleKind::StaleRead,
            _ => StaleKind::RevisionRegression,
        };
        let rev = resp.header().revision;
        // Operations that completed strictly before this one was invoked.
        let n = done.partition_point(|&(t, _, _)| t < op.invoke_ns);
        if n == 0 {
            continue;
        }
        let (max_rev, j) = best[n - 1];
        let mutating = response_mutates(&op.request, resp) == Some(true);
        let stale = if mutating {
            rev <= max_rev
        } else {
            rev < max_rev
        };
        if stale {
            let earlier = &history.ops[j];
            found.push(StaleRead {
                kind,
                op: summarize(op),
                op_revision: rev,
                earlier: summarize(earlier),
                earlier_revision: max_rev,
            });
        }
    }
    found
}

// ---------------------------------------------------------------------------------------------
// Preparing the search.

fn collect_puts<'a>(ops: &'a [RequestOp], out: &mut Vec<&'a faultline_api::PutRequest>) {
    for op in ops {
        match op {
            RequestOp::Put(p) => out.push(p),
            RequestOp::Txn(t) => {
                collect_puts(&t.success, out);
                collect_puts(&t.failure, out);
            }
            _ => {}
        }
    }
}

fn request_puts(req: &Request) -> Vec<&faultline_api::PutRequest> {
    let mut out = Vec::new();
    match req {
        Request::Put(p) => out.push(p),
        Request::Txn(t) => {
            collect_puts(&t.success, &mut out);
            collect_puts(&t.failure, &mut out);
        }
        _ => {}
    }
    out
}

/// Every KeyValue a response shows, with the revision at which it was current (when known).
fn observations(req: &Request, resp: &Response, out: &mut Vec<(KeyValue, Option<Revision>)>) {
    let h = resp.header().revision;
    match (req, resp) {
        (Request::Range(r), Response::Range(rr)) => {
            let at = (r.revision <= 0).then_some(h);
            out.extend(rr.kvs.iter().map(|kv| (kv.clone(), at)));
        }
        (Request::Put(_), Response::Put(p)) => {
            out.extend(p.prev_kv.iter().map(|kv| (kv.clone(), Some(h - 1))));
        }
        (Request::DeleteRange(_), Response::DeleteRange(d)) => {
            let at = if d.deleted > 0 { h - 1 } else { h };
            out.extend(d.prev_kvs.iter().map(|kv| (kv.clone(), Some(at))));
        }
        (Request::Txn(_), Response::Txn(t)) => txn_observations(t, out),
        _ => {}
    }
}

fn txn_observations(t: &TxnResponse, out: &mut Vec<(KeyValue, Option<Revision>)>) {
    for op in &t.responses {
        match op {
            ResponseOp::Range(r) => out.extend(r.kvs.iter().map(|kv| (kv.clone(), None))),
            ResponseOp::Put(p) => out.extend(p.prev_kv.iter().map(|kv| (kv.clone(), None))),
            ResponseOp::DeleteRange(d) => {
                out.extend(d.prev_kvs.iter().map(|kv| (kv.clone(), None)))
            }
            ResponseOp::Txn(inner) => txn_observations(inner, out),
        }
    }
}

/// The prepared search input.
pub struct Prepared {
    pub model: EtcdModel,
    pub ops: Vec<Op<EtcdInput, Response>>,
}

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

/// Build the model and the engine's operations from a history (every observation prunes).
pub fn prepare(history: &History) -> Prepared {
    prepare_with(history, ExtraFacts::ALL)
}

/// Build the model and the engine's operations, pruning with the given extra observations.
pub fn prepare_with(history: &History, extra: ExtraFacts) -> Prepared {
    // Which operations take part, and their basic classification.
    let mut keys: Vec<Vec<u8>> = Vec::new();
    let mut leases: Vec<i64> = Vec::new();
    let mut ignore_value_keys: Vec<Vec<u8>> = Vec::new();
    let mut writers: BTreeMap<(Vec<u8>, Vec<u8>), Vec<usize>> = BTreeMap::new();
    for (i, op) in history.ops.iter().enumerate() {
        for p in request_puts(&op.request) {
            keys.push(p.key.clone());
            if p.lease != 0 {
                leases.push(p.lease);
            }
            if p.ignore_value {
                ignore_value_keys.push(p.key.clone());
            } else if !matches!(op.outcome, Outcome::Failed(_)) {
                writers
                    .entry((p.key.clone(), p.value.clone()))
                    .or_default()
                    .push(i);
            }
        }
        match (&op.request, &op.outcome) {
            (Request::LeaseGrant(g), _) if g.id != 0 => leases.push(g.id),
            (Request::LeaseRevoke(r), _) => leases.push(r.id),
            _ => {}
        }
        if let (Request::LeaseGrant(_), Outcome::Ok(Response::LeaseGrant(g))) =
            (&op.request, &op.outcome)
        {
            leases.push(g.id);
        }
    }
    keys.sort();
    keys.dedup();
    leases.sort();
    leases.dedup();
    ignore_value_keys.sort();
    ignore_value_keys.dedup();

    let included = |op: &Operation| -> bool {
        if !is_kv_or_lease(&op.request) {
            return false;
        }
        match &op.outcome {
            Outcome::Failed(_) => false,
            Outcome::Ok(_) => true,
            Outcome::Unknown(_) => {
                op.request.is_write() && !matches!(op.request, Request::Compact(_))
            }
        }
    };

    // Observations from included known responses: pins, coverage, max revision.
    let mut max_revision: Revision = 1;
    let mut claimed_by: BTreeMap<Revision, usize> = BTreeMap::new();
    let mut pins: BTreeMap<usize, Revision> = BTreeMap::new();
    let mut cover: BTreeMap<Vec<u8>, Vec<(Revision, Revision)>> = BTreeMap::new();
    for (i, op) in history.ops.iter().enumerate() {
        if !included(op) {
            continue;
        }
        let Outcome::Ok(resp) = &op.outcome else {
            continue;
        };
        let h = resp.header().revision;
        max_revision = max_revision.max(h);
        if response_mutates(&op.request, resp) == Some(true) {
            claimed_by.entry(h).or_insert(i);
        }
        if let (Request::Put(p), Response::Put(_)) = (&op.request, resp) {
            // The key was modified at h: it is not covered at h (nothing to record).
            let _ = p;
        }
        let mut obs = Vec::new();
        observations(&op.request, resp, &mut obs);
        for (kv, at) in obs {
            if let Some(at) = at {
                if at > kv.mod_revision {
                    cover
                        .entry(kv.key.clone())
                        .or_default()
                        .push((kv.mod_revision, at));
                }
            }
            if ignore_value_keys.binary_search(&kv.key).is_ok() {
                continue;
            }
            if let Some(w) = writers.get(&(kv.key.clone(), kv.value.clone())) {
                if w.len() == 1 && history.ops[w[0]].is_unknown() && included(&history.ops[w[0]]) {
                    pins.entry(w[0]).or_insert(kv.mod_revision);
                }
            }
        }
    }
    // Deadlines: deadline[g] = earliest return of a required op that must follow revision g.
    let size = max_revision as usize + 2;
    let mut deadline = vec![NEVER; size + 1];
    let mut lb_ret: Vec<(Revision, u64)> = Vec::new();
    for op in &history.ops {
        if !included(op) {
            continue;
        }
        if let Outcome::Ok(resp) = &op.outcome {
            let h = resp.header().revision;
            let lb = match response_mutates(&op.request, resp) {
                Some(false) => h,
                _ => h - 1,
            };
            lb_ret.push((lb, op.complete_ns));
        }
    }
    for (lb, ret) in lb_ret {
        let idx = lb.clamp(0, size as i64) as usize;
        deadline[idx] = deadline[idx].min(ret);
    }
    for g in (0..size).rev() {
        deadline[g] = deadline[g].min(deadline[g + 1]);
    }
    let deadline_at = |g: Revision| deadline[(g.clamp(0, size as i64)) as usize];
    // Watch events observe writes too: a put event carrying the unique value of an unknown
    // write pins that write to the event's revision, so the linearization (which the watch
    // checks replay) places it where the watch saw it. Only when the watches count as facts:
    // a wrong watch must not make the history itself fail.
    for w in history.watches.iter().filter(|_| extra.watches) {
        for received in &w.responses {
            for e in &received.response.events {
                if e.kind != faultline_api::EventType::Put
                    || ignore_value_keys.binary_search(&e.kv.key).is_ok()
                {
                    continue;
                }
                if let Some(wr) = writers.get(&(e.kv.key.clone(), e.kv.value.clone())) {
                    if wr.len() == 1
                        && history.ops[wr[0]].is_unknown()
                        && included(&history.ops[wr[0]])
                    {
                        pins.entry(wr[0]).or_insert(e.kv.mod_revision);
                    }
                }
            }
        }
    }
    // (Delete events pin nothing: which of several unknown deletes made a revision is left
    // to the search, which the watch facts steer. Pinning the earliest-invoked one, as
    // before, is not exact when a candidate is also needed elsewhere, and a wrong pin made
    // "no linearization agrees with the watches" look true: default seed 3092.)
    for (&u, &p) in &pins {
        claimed_by.entry(p).or_insert(u);
    }
    if extra.watches {
        // A watch reports every change in its window (Reliable): a key of its range is
        // unmodified between two of its events, and from the window's start or to its end.
        for w in &history.watches {
            let Some(window) = crate::watch::window(w) else {
                continue;
            };
            if !w.request.filters.is_empty() {
                continue;
            }
            for key in keys
                .iter()
                .filter(|k| faultline_api::key_in_range(k, &w.request.key, &w.request.range_end))
            {
                let mut changed: Vec<Revision> = window
                    .received
                    .iter()
                    .filter(|(_, e)| e.kv.key == *key)
                    .map(|(_, e)| e.kv.mod_revision)
                    .collect();
                changed.sort();
                changed.dedup();
                let mut from = window.first - 1;
                for rev in changed.into_iter().chain([window.last + 1]) {
                    if rev - 1 > from {
                        cover.entry(key.clone()).or_default().push((from, rev - 1));
                    }
                    from = from.max(rev);
                }
            }
        }
    }
    for iv in cover.values_mut() {
        iv.sort();
        let mut merged: Vec<(Revision, Revision)> = Vec::new();
        for &(a, b) in iv.iter() {
            match merged.last_mut() {
                Some(last) if a <= last.1 => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        *iv = merged;
    }
    let coverage = EtcdModel {
        keys: vec![],
        lease_universe: vec![],
        claimed: vec![],
        max_revision: 0,
        unmodified: cover,
        facts: None,
        lease_facts: None,
    };
    let mut claimed = vec![false; max_revision as usize + 2];
    for &r in claimed_by.keys() {
        if r >= 0 && (r as usize) < claimed.len() {
            claimed[r as usize] = true;
        }
    }

    let unclaimed: Vec<Revision> = (2..=max_revision)
        .filter(|&r| !claimed[r as usize])
        .collect();

    // Leases: the latest completion of a known operation that needs each lease to exist, and
    // of a known grant of it (which needs it absent).
    let mut lease_needed_by: BTreeMap<i64, u64> = BTreeMap::new();
    let mut lease_granted_by: BTreeMap<i64, u64> = BTreeMap::new();
    let mut last_lease_use_any = 0u64;
    for op in &history.ops {
        if !included(op) {
            continue;
        }
        let Outcome::Ok(resp) = &op.outcome else {
            // An unknown write that puts with a lease may have taken effect at any time, and
            // only with its lease granted: the grant must stay (new-leader-cuts seed 44 lost an
            // unknown grant its unknown put needed, and a linearizable history failed).
            for l in request_puts(&op.request)
                .iter()
                .map(|p| p.lease)
                .filter(|&l| l != 0)
            {
                lease_needed_by.insert(l, NEVER);
                last_lease_use_any = NEVER;
            }
            continue;
        };
        let mut needs: Vec<i64> = request_puts(&op.request)
            .iter()
            .map(|p| p.lease)
            .filter(|&l| l != 0)
            .collect();
        if let Request::LeaseRevoke(r) = &op.request {
            needs.push(r.id);
        }
        let mut obs = Vec::new();
        observations(&op.request, resp, &mut obs);
        needs.extend(obs.iter().map(|(kv, _)| kv.lease).filter(|&l| l != 0));
        for l in needs {
            let e = lease_needed_by.entry(l).or_insert(0);
            *e = (*e).max(op.complete_ns);
            last_lease_use_any = last_lease_use_any.max(op.complete_ns);
        }
        if let Response::LeaseGrant(g) = resp {
            let e = lease_granted_by.entry(g.id).or_insert(0);
            *e = (*e).max(op.complete_ns);
        }
    }

    // Serializable reads: the call of the write producing the highest claimed revision <= h.
    let claimed_call = |h: Revision| -> u64 {
        claimed_by
            .range(..=h)
            .next_back()
            .map(|(_, &i)| history.ops[i].invoke_ns)
            .unwrap_or(0)
    };

    let classes = SymmetryClasses::new(history, &included, &ignore_value_keys);
    let mut class_ids: BTreeMap<ClassKey, u64> = BTreeMap::new();
    // Unknown lease grants and revokes taking part: (lease, is a grant, invocation ns, tag);
    // a grant without an id has lease 0.
    let mut unknown_lease_ops: Vec<(i64, bool, u64, u32)> = Vec::new();

    let mut ops = Vec::new();
    for (i, op) in history.ops.iter().enumerate() {
        if !included(op) {
            continue;
        }
        match &op.outcome {
            Outcome::Ok(resp) => {
                let serializable = matches!(&op.request, Request::Range(r) if r.serializable);
                let call = if serializable {
                    op.invoke_ns.min(claimed_call(resp.header().revision))
                } else {
                    op.invoke_ns
                };
                ops.push(Op {
                    id: op.id,
                    client: op.client,
                    call,
                    ret: op.complete_ns.max(call),
                    input: EtcdInput {
                        request: op.request.clone(),
                        mutating: response_mutates(&op.request, resp),
                        pin: None,
                        serializable,
                        invoke_ns: op.invoke_ns,
                        class: None,
                        lease_op_tag: None,
                    },
                    output: Some(normalize(resp)),
                });
            }
            Outcome::Unknown(_) => {
                let pin = pins.get(&i).copied();
                let ret = match (&op.request, pin) {
                    (_, Some(p)) => deadline_at(p),
                    (Request::LeaseGrant(g), None) => {
                        // Adding a lease only helps operations that need it; after the last
                        // of them it can only hurt. Needed by nobody: drop it.
                        let id = if g.id != 0 { Some(g.id) } else { None };
                        let need = id.map_or(last_lease_use_any, |l| {
                            lease_needed_by.get(&l).copied().unwrap_or(0)
                        });
                        if need == 0 || need < op.invoke_ns {
                            continue;
                        }
                        need
                    }
                    (Request::LeaseRevoke(r), None) => {
                        // Useful to let a later grant of the same id succeed, or to fill a
                        // revision nobody claims by deleting the lease's keys.
                        let grant = lease_granted_by.get(&r.id).copied().unwrap_or(0);
                        let gap = unclaimed.last().map_or(0, |&g| deadline_at(g));
                        let d = grant.max(if gap == NEVER { 0 } else { gap });
                        if d == 0 || d < op.invoke_ns {
                            continue;
                        }
                        d
                    }
                    (req, None) => {
                        let key = single_written_key(req);
                        let mut found = None;
                        for &g in unclaimed.iter().rev() {
                            let d = deadline_at(g);
                            if d < op.invoke_ns {
                                break;
                            }
                            if key.is_some_and(|k| coverage.is_unmodified(k, g)) {
                                continue;
                            }
                            found = Some(d);
                            break;
                        }
                        match found {
                            Some(d) => d,
                            None => continue, // cannot have produced any observable revision
                        }
                    }
                };
                let lease_op = match &op.request {
                    Request::LeaseGrant(g) => Some((g.id, true)),
                    Request::LeaseRevoke(r) => Some((r.id, false)),
                    _ => None,
                };
                let lease_op_tag = lease_op.map(|(lease, is_grant)| {
                    let tag = unknown_lease_ops.len() as u32;
                    unknown_lease_ops.push((lease, is_grant, op.invoke_ns, tag));
                    tag
                });
                ops.push(Op {
                    id: op.id,
                    client: op.client,
                    call: op.invoke_ns,
                    ret: ret.max(op.invoke_ns),
                    input: EtcdInput {
                        request: op.request.clone(),
                        mutating: None,
                        pin,
                        serializable: false,
                        invoke_ns: op.invoke_ns,
                        class: pin
                            .is_none()
                            .then(|| classes.key(&op.request))
                            .flatten()
                            .map(|k| {
                                let next = class_ids.len() as u64;
                                *class_ids.entry(k).or_insert(next)
                            }),
                        lease_op_tag,
                    },
                    output: None,
                });
            }
            Outcome::Failed(_) => unreachable!("excluded"),
        }
    }
    let mut model = EtcdModel {
        keys,
        lease_universe: leases,
        claimed,
        max_revision,
        unmodified: coverage.unmodified,
        facts: None,
        lease_facts: None,
    };
    let claimers: BTreeMap<Revision, &Operation> = claimed_by
        .iter()
        .map(|(&r, &i)| (r, &history.ops[i]))
        .collect();
    let unclaimed_writers: Vec<&Operation> = history
        .ops
        .iter()
        .enumerate()
        .filter(|(i, op)| {
            included(op)
                && !pins.contains_key(i)
                && match &op.outcome {
                    Outcome::Unknown(_) => true,
                    Outcome::Ok(resp) => response_mutates(&op.request, resp).is_none(),
                    Outcome::Failed(_) => false,
                }
        })
        .map(|(_, op)| op)
        .collect();
    model.facts = Some(key_facts(
        &model,
        extra,
        history,
        &included,
        &claimers,
        &unclaimed,
        &unclaimed_writers,
    ));
    model.lease_facts = Some(lease_facts(
        &model.lease_universe,
        history,
        &included,
        &unknown_lease_ops,
    ));
    Prepared { model, ops }
}

/// What makes two unknown writes interchangeable: (kind, key, range_end, lease, ignore_lease,
/// ignore_value, value), where the value is `None` when no response can show it.
type ClassKey = (u8, Vec<u8>, Vec<u8>, i64, bool, bool, Option<Vec<u8>>);

/// Which written values the history can observe, for the symmetry reduction
/// (`Model::interchangeable_class`). A put's value is observable when a known response
/// shows that (key, value), when some request compares or sorts the key by value, or when an
/// `ignore_value` put may carry it into a later revision.
struct SymmetryClasses {
    observed: std::collections::BTreeSet<(Vec<u8>, Vec<u8>)>,
    /// (key, range_end) of every value compare and every range sorted by value.
    value_sensitive: Vec<(Vec<u8>, Vec<u8>)>,
    ignore_value_keys: Vec<Vec<u8>>,
}

impl SymmetryClasses {
    fn new(
        history: &History,
        included: &dyn Fn(&Operation) -> bool,
        ignore_value_keys: &[Vec<u8>],
    ) -> Self {
        fn walk(ops: &[RequestOp], out: &mut Vec<(Vec<u8>, Vec<u8>)>) {
            for op in ops {
                match op {
                    RequestOp::Range(r) if r.sort_target == faultline_api::SortTarget::Value => {
                        out.push((r.key.clone(), r.range_end.clone()))
                    }
                    RequestOp::Txn(t) => txn(t, out),
                    _ => {}
                }
            }
        }
        fn txn(t: &TxnRequest, out: &mut Vec<(Vec<u8>, Vec<u8>)>) {
            for c in &t.compare {
                if matches!(c.target, faultline_api::CompareTarget::Value(_)) {
                    out.push((c.key.clone(), c.range_end.clone()));
                }
            }
            walk(&t.success, out);
            walk(&t.failure, out);
        }
        let mut observed = std::collections::BTreeSet::new();
        let mut value_sensitive = Vec::new();
        for op in &history.ops {
            // Every request counts here, included or not: this only ever makes fewer writes
            // interchangeable.
            match &op.request {
                Request::Range(r) if r.sort_target == faultline_api::SortTarget::Value => {
                    value_sensitive.push((r.key.clone(), r.range_end.clone()))
                }
                Request::Txn(t) => txn(t, &mut value_sensitive),
                _ => {}
            }
            if let (true, Outcome::Ok(resp)) = (included(op), &op.outcome) {
                let mut obs = Vec::new();
                observations(&op.request, resp, &mut obs);
                observed.extend(obs.into_iter().map(|(kv, _)| (kv.key, kv.value)));
            }
        }
        SymmetryClasses {
            observed,
            value_sensitive,
            ignore_value_keys: ignore_value_keys.to_vec(),
        }
    }

    fn value_observable(&self, key: &[u8], value: &[u8]) -> bool {
        self.ignore_value_keys.iter().any(|k| k == key)
            || self
                .value_sensitive
                .iter()
                .any(|(k, e)| faultline_api::key_in_range(key, k, e))
            || self.observed.contains(&(key.to_vec(), value.to_vec()))
    }

    /// The class of an unknown, unpinned write, if it has one (plain puts and deletes).
    fn key(&self, req: &Request) -> Option<ClassKey> {
        match req {
            Request::Put(p) => Some((
                0,
                p.key.clone(),
                Vec::new(),
                p.lease,
                p.ignore_lease,
                p.ignore_value,
                self.value_observable(&p.key, &p.value)
                    .then(|| p.value.clone()),
            )),
            Request::DeleteRange(d) => {
                Some((1, d.key.clone(), d.range_end.clone(), 0, false, false, None))
            }
            // The model ignores a grant's TTL (the server may raise it, and expiry is not
            // modelled), so grants of one id change the state identically; so do revokes of
            // one id.
            Request::LeaseGrant(g) if g.id != 0 => {
                Some((2, Vec::new(), Vec::new(), g.id, false, false, None))
            }
            Request::LeaseRevoke(r) => Some((3, Vec::new(), Vec::new(), r.id, false, false, None)),
            _ => None,
        }
    }
}

/// Every put of a request with its branch (`None`: top level, `Some(true)`: success branch of
/// the top-level txn, `Some(false)`: failure branch; nested txns count as their parent's).
fn branch_puts(req: &Request) -> Vec<(&[u8], Option<bool>)> {
    fn walk<'a>(
        ops: &'a [RequestOp],
        branch: Option<bool>,
        out: &mut Vec<(&'a [u8], Option<bool>)>,
    ) {
        for op in ops {
            match op {
                RequestOp::Put(p) => out.push((&p.key, branch)),
                RequestOp::Txn(t) => {
                    walk(&t.success, branch, out);
                    walk(&t.failure, branch, out);
                }
                _ => {}
            }
        }
    }
    let mut out = Vec::new();
    match req {
        Request::Put(p) => out.push((p.key.as_slice(), None)),
        Request::Txn(t) => {
            walk(&t.success, Some(true), &mut out);
            walk(&t.failure, Some(false), &mut out);
        }
        _ => {}
    }
    out
}

/// Whether a request may delete `key` (a delete range covering it anywhere, or a lease revoke).
fn may_delete_key(req: &Request, key: &[u8]) -> bool {
    fn walk(ops: &[RequestOp], key: &[u8]) -> bool {
        ops.iter().any(|op| match op {
            RequestOp::DeleteRange(d) => faultline_api::key_in_range(key, &d.key, &d.range_end),
            RequestOp::Txn(t) => walk(&t.success, key) || walk(&t.failure, key),
            _ => false,
        })
    }
    match req {
        Request::DeleteRange(d) => faultline_api::key_in_range(key, &d.key, &d.range_end),
        Request::Txn(t) => walk(&t.success, key) || walk(&t.failure, key),
        Request::LeaseRevoke(_) => true,
        _ => false,
    }
}

/// Observations with absence, for `KeyFacts`: what a known response shows about keys of the
/// universe at a known revision.
fn key_observations(
    model: &EtcdModel,
    facts: ExtraFacts,
    req: &Request,
    resp: &Response,
    out: &mut Vec<(usize, Revision, KeyObs)>,
) {
    let present = |kv: &KeyValue, with_value: bool| KeyObs::Present {
        create_revision: kv.create_revision,
        mod_revision: kv.mod_revision,
        version: kv.version,
        lease: kv.lease,
        value: with_value.then(|| kv.value.clone()),
    };
    let h = resp.header().revision;
    match (req, resp) {
        (Request::Range(r), Response::Range(rr)) if r.revision <= 0 || facts.historical_reads => {
            // A historical read shows the key space at its revision (the header shows the
            // current one).
            let h = if r.revision > 0 { r.revision } else { h };
            let mut shown = Vec::new();
            for kv in &rr.kvs {
                if let Some(k) = model.key_id(&kv.key) {
                    out.push((k, h, present(kv, !r.keys_only)));
                    shown.push(k);
                }
            }
            // `count` ignores limit and filters: when every counted key is shown, the other
            // keys of the range are absent.
            if rr.count == 0 || (!r.count_only && rr.kvs.len() as i64 == rr.count) {
                for k in model.key_ids(&r.key, &r.range_end) {
                    if !shown.contains(&k) {
                        out.push((k, h, KeyObs::Absent));
                    }
                }
            }
        }
        (Request::Put(p), Response::Put(pr)) if p.prev_kv => {
            if let Some(k) = model.key_id(&p.key) {
                let o = match &pr.prev_kv {
                    Some(kv) => present(kv, true),
                    None => KeyObs::Absent,
                };
                out.push((k, h - 1, o));
            }
        }
        (Request::DeleteRange(d), Response::DeleteRange(dr)) => {
            if dr.deleted == 0 {
                for k in model.key_ids(&d.key, &d.range_end) {
                    out.push((k, h, KeyObs::Absent));
                }
            } else if d.prev_kv && dr.prev_kvs.len() as i64 == dr.deleted {
                let mut shown = Vec::new();
                for kv in &dr.prev_kvs {
                    if let Some(k) = model.key_id(&kv.key) {
                        out.push((k, h - 1, present(kv, true)));
                        shown.push(k);
                    }
                }
                for k in model.key_ids(&d.key, &d.range_end) {
                    if !shown.contains(&k) {
                        out.push((k, h - 1, KeyObs::Absent));
                    }
                }
            }
        }
        _ => {}
    }
}

/// What watch events show about keys at their revisions (etcd-semantics.md §10): a put event's
/// KV is the key at the event's revision, a delete event's key is absent there, a prev_kv is the
/// key one revision earlier, and a creation (version 1) means it was absent one revision
/// earlier. Only for `ExtraFacts::watches`: a wrong watch must not make a history look
/// non-linearizable (see `check_etcd_history_detailed`).
fn watch_observations(
    model: &EtcdModel,
    history: &History,
    out: &mut Vec<(usize, Revision, KeyObs)>,
) {
    let present = |kv: &KeyValue| KeyObs::Present {
        create_revision: kv.create_revision,
        mod_revision: kv.mod_revision,
        version: kv.version,
        lease: kv.lease,
        value: Some(kv.value.clone()),
    };
    for w in &history.watches {
        for received in &w.responses {
            for e in &received.response.events {
                let Some(k) = model.key_id(&e.kv.key) else {
                    continue;
                };
                let r = e.kv.mod_revision;
                match e.kind {
                    faultline_api::EventType::Put => {
                        out.push((k, r, present(&e.kv)));
                        if e.kv.version == 1 {
                            out.push((k, r - 1, KeyObs::Absent));
                        }
                    }
                    faultline_api::EventType::Delete => out.push((k, r, KeyObs::Absent)),
                }
                if let Some(prev) = &e.prev_kv {
                    out.push((k, r - 1, present(prev)));
                }
            }
        }
    }
}

fn key_facts(
    model: &EtcdModel,
    extra: ExtraFacts,
    history: &History,
    included: &dyn Fn(&Operation) -> bool,
    claimers: &BTreeMap<Revision, &Operation>,
    unclaimed: &[Revision],
    unclaimed_writers: &[&Operation],
) -> KeyFacts {
    let n = model.keys.len();
    let mut f = KeyFacts {
        obs: vec![Vec::new(); n],
        definite_puts: vec![Vec::new(); n],
        may_put: vec![Vec::new(); n],
        may_delete: vec![Vec::new(); n],
        unclaimed: unclaimed.to_vec(),
        unclaimed_max_puts: vec![0; n],
        unclaimed_may_delete: vec![false; n],
    };
    let mut found = Vec::new();
    for op in &history.ops {
        if let (true, Outcome::Ok(resp)) = (included(op), &op.outcome) {
            key_observations(model, extra, &op.request, resp, &mut found);
        }
    }
    if extra.watches {
        watch_observations(model, history, &mut found);
    }
    for (k, at, o) in found {
        f.obs[k].push((at, o));
    }
    for obs in &mut f.obs {
        obs.sort_by_key(|(at, _)| *at);
        // Identical observations of one revision are kept once. Of two that disagree only the
        // first prunes (`KeyFacts::key_feasible` looks at one): less pruning, never wrong.
        obs.dedup();
    }
    for (&rev, op) in claimers {
        let puts = branch_puts(&op.request);
        let chosen = match &op.outcome {
            Outcome::Ok(Response::Txn(t)) => Some(Some(t.succeeded)),
            Outcome::Ok(_) => Some(None),
            _ => None, // unknown (pinned): the branch is not known
        };
        for (key, branch) in puts {
            let Some(k) = model.key_id(key) else { continue };
            f.may_put[k].push(rev);
            let top_level_of_chosen = chosen.is_some_and(|c| c == branch)
                && match (&op.request, branch) {
                    (Request::Put(_), None) => true,
                    (Request::Txn(t), Some(b)) => {
                        let ops = if b { &t.success } else { &t.failure };
                        ops.iter()
                            .any(|o| matches!(o, RequestOp::Put(p) if p.key == key))
                    }
                    _ => false,
                };
            if top_level_of_chosen {
                f.definite_puts[k].push(rev);
            }
        }
        for (k, key) in model.keys.iter().enumerate() {
            if may_delete_key(&op.request, key) {
                f.may_delete[k].push(rev);
            }
        }
    }
    for op in unclaimed_writers {
        let mut per_key = vec![0i64; n];
        for (key, _) in branch_puts(&op.request) {
            if let Some(k) = model.key_id(key) {
                per_key[k] += 1;
            }
        }
        for (k, key) in model.keys.iter().enumerate() {
            f.unclaimed_max_puts[k] = f.unclaimed_max_puts[k].max(per_key[k]);
            if may_delete_key(&op.request, key) {
                f.unclaimed_may_delete[k] = true;
            }
        }
    }
    for v in f
        .definite_puts
        .iter_mut()
        .chain(f.may_put.iter_mut())
        .chain(f.may_delete.iter_mut())
    {
        v.sort();
    }
    f
}

/// `LeaseFacts` from the known responses of the included operations and the unknown lease
/// operations taking part in the search (lease, is a grant, invocation ns, tag).
fn lease_facts(
    lease_universe: &[i64],
    history: &History,
    included: &dyn Fn(&Operation) -> bool,
    unknown_lease_ops: &[(i64, bool, u64, u32)],
) -> LeaseFacts {
    let mut f = LeaseFacts {
        leases: vec![LeaseTimeline::default(); lease_universe.len()],
        unknown_grant_of_any_id: false,
    };
    let index = |lease: i64| lease_universe.binary_search(&lease).ok();
    for op in &history.ops {
        let (true, Outcome::Ok(resp)) = (included(op), &op.outcome) else {
            continue;
        };
        let h = resp.header().revision;
        let ret = op.complete_ns;
        // (lease, lowest state revision at which the operation applies) of every need of a
        // present lease.
        let mut present: Vec<(i64, Revision)> = Vec::new();
        match (&op.request, resp) {
            (Request::LeaseGrant(_), Response::LeaseGrant(g)) => {
                // Applied at revision h (a grant changes no revision) to a store without it.
                if let Some(l) = index(g.id) {
                    f.leases[l].absent_needed.push((h, ret, ret));
                    f.leases[l].known_grants.push(h);
                }
            }
            (Request::LeaseRevoke(r), _) => {
                // Applied at h - 1 when it deleted keys, else at h.
                present.push((r.id, h - 1));
                if let Some(l) = index(r.id) {
                    f.leases[l].known_revokes.push(h);
                }
            }
            (Request::Put(p), _) if p.lease != 0 => present.push((p.lease, h - 1)),
            (Request::Txn(t), Response::Txn(tr))
                if response_mutates(&op.request, resp) == Some(true) =>
            {
                // Every put of the branch taken needs its lease (else the whole txn fails);
                // nested txns are left out (their branch is not known here).
                let branch = if tr.succeeded { &t.success } else { &t.failure };
                for o in branch {
                    if let RequestOp::Put(p) = o {
                        if p.lease != 0 {
                            present.push((p.lease, h - 1));
                        }
                    }
                }
            }
            (Request::Range(r), Response::Range(rr)) if r.revision <= 0 => {
                // A read of the current state at h: in the model a key's lease always exists.
                for kv in &rr.kvs {
                    if kv.lease != 0 {
                        present.push((kv.lease, h));
                    }
                }
            }
            _ => {}
        }
        for (lease, at) in present {
            if let Some(l) = index(lease) {
                f.leases[l].present_needed.push((at, ret, ret));
            }
        }
    }
    for &(lease, is_grant, call, tag) in unknown_lease_ops {
        if is_grant && lease == 0 {
            f.unknown_grant_of_any_id = true;
            continue;
        }
        let Some(l) = index(lease) else { continue };
        let t = &mut f.leases[l];
        if is_grant {
            t.unknown_grants.push((call, tag));
        } else {
            t.unknown_revokes.push((call, tag));
        }
    }
    for t in &mut f.leases {
        t.finish();
    }
    f
}

// ---------------------------------------------------------------------------------------------
// Historical reads against the linearization.

fn check_historical(
    model: &EtcdModel,
    ops: &[Op<EtcdInput, Response>],
    order: &[usize],
    by_id: &BTreeMap<u64, &Operation>,
) -> Vec<Mismatch> {
    // Per key: (revision, state) after every change.
    let mut key_hist: Vec<Vec<(Revision, Option<crate::models::etcd::KeyState>)>> =
        vec![Vec::new(); model.keys.len()];
    let mut states = model.init();
    let mut mismatches = Vec::new();
    for &i in order {
        let op = &ops[i];
        let before = states[0].clone();
        let mut next: Vec<_> = states
            .iter()
            .flat_map(|s| model.step(s, &op.input, op.output.as_ref()))
            .collect();
        next.sort();
        next.dedup();
        if next.is_empty() {
            // Cannot happen for a linearization the search produced.
            break;
        }
        states = next;
        let after = &states[0];
        for (k, (b, a)) in before.keys.iter().zip(after.keys.iter()).enumerate() {
            if b != a {
                key_hist[k].push((after.revision, a.clone()));
            }
        }
        let (Request::Range(r), Some(Response::Range(actual))) = (&op.input.request, &op.output)
        else {
            continue;
        };
        let Ok(RangeKind::Historical) = model
            .apply(&before, &op.input.request, None)
            .map(|(_, _, kind)| kind)
        else {
            continue;
        };
        let view: Vec<_> = key_hist
            .iter()
            .map(|h| {
                let n = h.partition_point(|(rev, _)| *rev <= r.revision);
                if n == 0 {
                    None
                } else {
                    h[n - 1].1.clone()
                }
            })
            .collect();
        let expected = model.range_on(&view, r, actual.header.revision);
        if expected != *actual {
            let hop = by_id[&op.id];
            mismatches.push(Mismatch {
                op: summarize(hop),
                expected: describe_response(&Response::Range(expected)),
                explanation: format!(
                    "a read at revision {} does not match the store at that revision",
                    r.revision
                ),
            });
        }
    }
    mismatches
}

/// Check an etcd history: stale-read pre-check, linearizability search within
/// `budget_steps`, and historical reads against the linearization found.
pub fn check_etcd_history(history: &History, budget_steps: u64) -> Verdict {
    check_etcd_history_detailed(history, budget_steps).0
}

/// The order in which the operations of a history took effect, as the linearizability search
/// established it: ids (`Operation::id`) of every operation placed, known or unknown, first to
/// last. Unknown writes left out never took effect in this linearization.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Linearization {
    pub op_ids: Vec<u64>,
    /// No linearization agrees with what the watches observed (a search that used the watch
    /// events as facts failed, one without them succeeded): the watches are wrong, and every
    /// finding of the watch checks against this linearization stands.
    #[serde(default)]
    pub watches_contradicted: bool,
}

/// Like `check_etcd_history`, and on `Linearizable` also the linearization found, which the
/// watch checks replay (`watch::check_watches_with`).
pub fn check_etcd_history_detailed(
    history: &History,
    budget_steps: u64,
) -> (Verdict, Option<Linearization>) {
    let stale = find_stale_reads(history);
    let by_id: BTreeMap<u64, &Operation> = history.ops.iter().map(|op| (op.id, op)).collect();
    // Search with every observation first: historical reads and watch events prune the
    // unknown writes, so the linearization found agrees with them where any does. When that
    // fails, search without the watches, then without the historical reads, to tell which
    // source no linearization agrees with (each search costs at most `budget_steps`).
    let search = |extra: ExtraFacts| {
        let prepared = prepare_with(history, extra);
        let checked = check_detailed(
            &prepared.model,
            &prepared.ops,
            budget_steps,
            TimeUnit::Nanoseconds,
        );
        (prepared, checked)
    };
    let has_watches = !history.watches.is_empty();
    let with_all = ExtraFacts::ALL;
    let without_watches = ExtraFacts {
        watches: false,
        ..with_all
    };
    let (mut prepared, mut checked) = search(if has_watches {
        with_all
    } else {
        without_watches
    });
    let mut watches_contradicted = false;
    if has_watches && !matches!(checked.verdict, Verdict::Linearizable) {
        let definite = matches!(checked.verdict, Verdict::NotLinearizable(_));
        let (p, c) = search(without_watches);
        if matches!(c.verdict, Verdict::Linearizable) {
            watches_contradicted = definite;
        }
        (prepared, checked) = (p, c);
    }
    // Historical reads contradict every linearization: the search with them failed for good
    // and one without them succeeds.
    let mut historical_contradicted = false;
    if matches!(checked.verdict, Verdict::NotLinearizable(_)) {
        let (p, c) = search(ExtraFacts::NONE);
        if matches!(c.verdict, Verdict::Linearizable) {
            historical_contradicted = true;
            (prepared, checked) = (p, c);
        }
    }
    let mut report = match checked.verdict {
        Verdict::Linearizable => {
            let order = checked.linearizations.first().cloned().unwrap_or_default();
            let mismatches = check_historical(&prepared.model, &prepared.ops, &order, &by_id);
            if mismatches.is_empty() && stale.is_empty() {
                let op_ids = order.iter().map(|&i| prepared.ops[i].id).collect();
                return (
                    Verdict::Linearizable,
                    Some(Linearization {
                        op_ids,
                        watches_contradicted,
                    }),
                );
            }
            let unknown_writes = history
                .ops
                .iter()
                .any(|op| op.is_unknown() && op.request.is_write());
            if stale.is_empty() && unknown_writes && !historical_contradicted {
                // Historical reads pruned the search as facts, but a large key universe
                // checks only changed keys (`EtcdModel::feasible`), so the linearization
                // found may still disagree with one; another linearization (say, a different
                // unknown write filling the same revision) may satisfy it, so a mismatch
                // here proves nothing: unknown, not a failure. Without unknown writes every
                // revision is pinned by a known write, the state at each revision is unique,
                // and a mismatch is a real violation. Found on lossy-leader-churn seed 71.
                let first = &mismatches[0];
                return (
                    Verdict::Unknown {
                        reason: format!(
                            "{} historical read(s) do not match the linearization found, and \
                             other linearizations were not searched; first: op {} ({}): {}; \
                             expected under this linearization: {}",
                            mismatches.len(),
                            first.op.id,
                            first.op.request,
                            first.explanation,
                            first.expected
                        ),
                    },
                    None,
                );
            }
            Report {
                model: prepared.model.name(),
                partition: None,
                time_unit: TimeUnit::Nanoseconds,
                longest_prefix: vec![],
                state_after_prefix: String::new(),
                unplaceable: vec![],
                stale_reads: vec![],
                mismatches,
            }
        }
        Verdict::Unknown { reason } => {
            if stale.is_empty() {
                return (Verdict::Unknown { reason }, None);
            }
            Report {
                model: prepared.model.name(),
                partition: None,
                time_unit: TimeUnit::Nanoseconds,
                longest_prefix: vec![],
                state_after_prefix: format!("(search incomplete: {reason})"),
                unplaceable: vec![],
                stale_reads: vec![],
                mismatches: vec![],
            }
        }
        Verdict::NotLinearizable(r) => {
            // The facts prune a wrong write as soon as it is placed, so the report names the
            // write; the search without them stops at the operation whose response
            // contradicts, which reads better. Use that report when it completes.
            let mut plain = prepared.model;
            plain.facts = None;
            plain.lease_facts = None;
            match check_detailed(&plain, &prepared.ops, budget_steps, TimeUnit::Nanoseconds).verdict
            {
                Verdict::NotLinearizable(better) => *better,
                _ => *r,
            }
        }
    };
    // Show the history's own view of each operation (member, real times, full outcome).
    for s in report.unplaceable.iter_mut() {
        if let Some(op) = by_id.get(&s.id) {
            *s = summarize(op);
        }
    }
    report.stale_reads = stale;
    (Verdict::NotLinearizable(Box::new(report)), None)
}
