//! The member's lease expiry and watch streams, end to end through the simulated network
//! (scripted plans without faults unless a test adds one), and the watch client's parts.

mod aimed;
mod buggify;
mod disk_faults;
mod faults;
mod grpc_path;
mod leases;
mod link_faults;
mod maintenance;
mod membership;
mod net_clock_faults;
mod requests;
mod snapshots;
mod watches;
mod workloads;

use faultline_api::{
    prefix_range_end, EventType, PutRequest, RangeRequest, Request, Response, Revision,
    WatchCreateRequest,
};
use faultline_invariants::history::Outcome;

use super::RunOutput;
use crate::plan::{Fill, Plan, PlannedOp, PlannedWatch, Scenario, WatchStart, KEY_PREFIX};

fn quiet_plan(ops: Vec<PlannedOp>, sessions: Vec<PlannedWatch>) -> Plan {
    let mut scenario = Scenario::default_scenario().without_swarm();
    scenario.clients = 1;
    scenario.watchers = u32::from(!sessions.is_empty());
    scenario.compaction_interval_ms = 0;
    scenario.faults.disable_all();
    let mut plan = Plan::generate(1, &scenario);
    plan.clients[0].ops = ops;
    if let Some(watcher) = plan.watchers.first_mut() {
        watcher.sessions = sessions;
    }
    assert!(plan.faults.is_empty());
    plan
}

fn op(think_time_ms: u64, request: Request) -> PlannedOp {
    PlannedOp {
        think_time_ms,
        member: 1,
        request,
        fill: Fill::None,
    }
}

fn put(key: &str, value: &str, lease: i64) -> Request {
    Request::Put(PutRequest {
        key: key.as_bytes().to_vec(),
        value: value.as_bytes().to_vec(),
        lease,
        ..PutRequest::default()
    })
}

fn get(key: &str) -> Request {
    Request::Range(RangeRequest {
        key: key.as_bytes().to_vec(),
        ..RangeRequest::default()
    })
}

/// The outcomes of the scripted client (id 0), in order.
fn client_outcomes(output: &RunOutput) -> Vec<(Request, Outcome)> {
    output
        .history
        .ops
        .iter()
        .filter(|op| op.client == 0)
        .map(|op| (op.request.clone(), op.outcome.clone()))
        .collect()
}

fn ok(outcome: &Outcome) -> &Response {
    match outcome {
        Outcome::Ok(response) => response,
        other => panic!("expected a response, got {other:?}"),
    }
}

fn prefix_watch(start: WatchStart, duration_ms: u64) -> PlannedWatch {
    PlannedWatch {
        think_time_ms: 0,
        member: 2,
        start,
        request: WatchCreateRequest {
            key: KEY_PREFIX.to_vec(),
            range_end: prefix_range_end(KEY_PREFIX),
            progress_notify: true,
            prev_kv: true,
            ..WatchCreateRequest::default()
        },
        duration_ms,
        progress_request_interval_ms: 100,
    }
}

/// Every event a watcher received over all its reports, in order.
fn received_events(output: &RunOutput) -> Vec<(Revision, EventType, Vec<u8>)> {
    output
        .history
        .watches
        .iter()
        .flat_map(|report| report.responses.iter())
        .flat_map(|received| received.response.events.iter())
        .map(|event| (event.kv.mod_revision, event.kind, event.kv.value.clone()))
        .collect()
}

/// Successful puts of the scripted client: (revision, value).
fn acked_puts(output: &RunOutput) -> Vec<(Revision, Vec<u8>)> {
    client_outcomes(output)
        .into_iter()
        .filter_map(|(request, outcome)| match (request, outcome) {
            (Request::Put(put), Outcome::Ok(response)) => {
                Some((response.header().revision, put.value))
            }
            _ => None,
        })
        .collect()
}

fn puts(count: usize, think_time_ms: u64) -> Vec<PlannedOp> {
    (0..count)
        .map(|i| {
            op(
                think_time_ms,
                put(&format!("k/{}", i % 3), &format!("v{i}"), 0),
            )
        })
        .collect()
}
