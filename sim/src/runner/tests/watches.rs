//! Watch streams end to end (delivery, reopening after a restart or a compaction), and the
//! watch client's reassembly of fragmented responses.

use faultline_api::{Event, EventType, KeyValue, Request, Revision, WatchResponse};
use faultline_invariants::history::Outcome;

use super::{acked_puts, client_outcomes, prefix_watch, puts, quiet_plan, received_events};
use crate::plan::{Fault, FaultWindow, Fill, PlannedOp, WatchStart};
use crate::runner::watcher::reassemble;
use crate::runner::{simulate, RunOptions};

// §6: a watch from revision 1 over the long-poll stream delivers every write exactly
// once, in revision order, and progress notifications (periodic and requested) that
// never run ahead of the events.
#[test]
fn watch_stream_delivers_every_write_once_in_order() {
    let plan = quiet_plan(puts(40, 50), vec![prefix_watch(WatchStart::First, 4000)]);
    let output = simulate(&plan, &RunOptions::default());
    let written = acked_puts(&output);
    assert_eq!(written.len(), 40);
    let events = received_events(&output);
    let expected: Vec<_> = written
        .iter()
        .map(|(rev, value)| (*rev, EventType::Put, value.clone()))
        .collect();
    assert_eq!(events, expected);
    let reports = &output.history.watches;
    assert_eq!(reports.len(), 1, "no fault, no reopen");
    let responses = &reports[0].responses;
    assert!(responses[0].response.created);
    assert!(responses.last().expect("responses").response.canceled);
    let mut last_event_rev = 0;
    let mut progress = 0;
    for received in responses {
        let response = &received.response;
        if let Some(event) = response.events.last() {
            last_event_rev = event.kv.mod_revision;
        } else if !response.created && !response.canceled {
            progress += 1;
            assert!(response.header.revision >= last_event_rev);
        }
    }
    assert!(progress >= 5, "progress notifications arrived: {progress}");
}

// A member restart loses its streams; the watcher reopens elsewhere from the revision
// after the last one it received, and over both watches no write is lost or repeated.
#[test]
fn watcher_reopens_after_its_member_restarts() {
    let mut plan = quiet_plan(puts(60, 50), vec![prefix_watch(WatchStart::First, 9000)]);
    plan.faults = vec![FaultWindow {
        start_ms: 1500,
        duration_ms: 800,
        fault: Fault::Crash { member: 2 },
    }];
    let output = simulate(&plan, &RunOptions::default());
    let reports = &output.history.watches;
    assert!(
        reports.len() >= 2,
        "the watch was reopened: {}",
        reports.len()
    );
    assert!(reports[1].member != Some(2) || reports[1].created_ns > 2_300_000_000);
    let written = acked_puts(&output);
    let events = received_events(&output);
    let expected: Vec<_> = written
        .iter()
        .map(|(rev, value)| (*rev, EventType::Put, value.clone()))
        .collect();
    // Unknown-outcome puts may also appear; every acked one appears once, in order.
    let acked_events: Vec<_> = events
        .iter()
        .filter(|e| expected.contains(e))
        .cloned()
        .collect();
    assert_eq!(acked_events, expected);
    let mut revisions: Vec<Revision> = events.iter().map(|e| e.0).collect();
    let sorted = revisions.clone();
    revisions.dedup();
    assert_eq!(revisions, sorted, "no revision delivered twice");
}

// §6/§7: a watch from a compacted revision is canceled with the compact revision, and the
// watcher reopens from it.
#[test]
fn compaction_cancels_old_watch_and_watcher_resumes() {
    let mut ops = puts(10, 20);
    ops.push(PlannedOp {
        think_time_ms: 0,
        member: 1,
        request: Request::Compact(faultline_api::CompactionRequest {
            revision: 0,
            physical: true,
        }),
        fill: Fill::CompactRevisionsBack(2),
    });
    ops.extend(puts(5, 20));
    let mut watch = prefix_watch(WatchStart::First, 1500);
    watch.think_time_ms = 1000;
    let output = simulate(&quiet_plan(ops, vec![watch]), &RunOptions::default());
    let compacted_at = client_outcomes(&output)
        .iter()
        .find_map(|(request, outcome)| match (request, outcome) {
            (Request::Compact(c), Outcome::Ok(_)) => Some(c.revision),
            _ => None,
        })
        .expect("the compaction succeeded");
    let reports = &output.history.watches;
    assert!(reports.len() >= 2, "{reports:?}");
    assert_eq!(reports[0].request.start_revision, 1);
    let cancel = &reports[0].responses.last().expect("responses").response;
    assert!(cancel.canceled);
    assert_eq!(cancel.compact_revision, compacted_at);
    assert_eq!(reports[1].request.start_revision, compacted_at);
    let first = &reports[1].responses[1].response.events[0];
    assert_eq!(first.kv.mod_revision, compacted_at);
}

fn part(watch_id: i64, keys: &[&str], fragment: bool) -> WatchResponse {
    WatchResponse {
        watch_id,
        fragment,
        events: keys
            .iter()
            .map(|k| Event {
                kind: EventType::Put,
                kv: KeyValue {
                    key: k.as_bytes().to_vec(),
                    mod_revision: 5,
                    ..KeyValue::default()
                },
                prev_kv: None,
            })
            .collect(),
        ..WatchResponse::default()
    }
}

#[test]
fn fragments_are_joined_before_recording() {
    let mut pending = None;
    assert_eq!(reassemble(&mut pending, part(1, &["a", "b"], true)), None);
    assert_eq!(reassemble(&mut pending, part(1, &["c"], true)), None);
    let whole = reassemble(&mut pending, part(1, &["d"], false)).expect("complete");
    assert_eq!(whole, part(1, &["a", "b", "c", "d"], false));
    assert!(pending.is_none());
    // an ordinary response passes through unchanged
    let one = part(2, &["x"], false);
    assert_eq!(reassemble(&mut pending, one.clone()), Some(one));
}
