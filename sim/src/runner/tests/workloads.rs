//! The workload profiles' clients end to end: the list-watch client lists again after
//! compaction, the election clients send exactly the lock's requests.

use faultline_api::{
    prefix_range_end, CompactionRequest, CompareTarget, Request, RequestOp, Response,
    WatchCreateRequest,
};
use faultline_invariants::history::{Operation, Outcome};

use super::{op, put, quiet_plan};
use crate::plan::{
    Fault, FaultWindow, Fill, IsolateTarget, Plan, PlannedOp, PlannedWatch, Scenario, WatchStart,
    ELECTION_KEY, GUARDED_KEY, KEY_PREFIX,
};
use crate::runner::{simulate, RunOptions};

/// Puts, each followed by a compaction at the newest revision the client saw.
fn puts_and_compactions(count: usize) -> Vec<PlannedOp> {
    (0..count)
        .flat_map(|i| {
            let compact = PlannedOp {
                think_time_ms: 0,
                member: 1,
                request: Request::Compact(CompactionRequest {
                    revision: 0,
                    physical: false,
                }),
                fill: Fill::CompactRevisionsBack(0),
            };
            [
                op(10, put(&format!("k/{}", i % 3), &format!("v{i}"), 0)),
                compact,
            ]
        })
        .collect()
}

fn is_first_page(op: &Operation) -> bool {
    matches!(&op.request, Request::Range(r) if r.limit == 2 && r.revision == 0)
}

// The list-watch client watches from its list's revision + 1; when compaction cancels the
// watch (here: compaction runs on while the watch's own member does not answer the open),
// it lists again and watches from the new list's revision + 1.
#[test]
fn list_watch_client_lists_again_after_compaction() {
    let watch = PlannedWatch {
        think_time_ms: 0,
        member: 2,
        start: WatchStart::List { page_limit: 2 },
        request: WatchCreateRequest {
            key: KEY_PREFIX.to_vec(),
            range_end: prefix_range_end(KEY_PREFIX),
            prev_kv: true,
            ..WatchCreateRequest::default()
        },
        duration_ms: 8000,
        progress_request_interval_ms: 0,
    };
    let mut plan = quiet_plan(puts_and_compactions(300), vec![watch]);
    plan.faults = vec![FaultWindow {
        start_ms: 0,
        duration_ms: 20_000,
        fault: Fault::Isolate {
            target: IsolateTarget::Member(2),
        },
    }];
    let output = simulate(&plan, &RunOptions::default());
    let watcher_ops: Vec<&Operation> = (output.history.ops.iter())
        .filter(|op| op.client != 0)
        .collect();
    let lists: Vec<(u64, i64)> = (watcher_ops.iter().copied())
        .filter(|op| is_first_page(op))
        .filter_map(|op| match &op.outcome {
            Outcome::Ok(response) => Some((op.complete_ns, response.header().revision)),
            _ => None,
        })
        .collect();
    let reports = &output.history.watches;
    let compacted: Vec<_> = (reports.iter())
        .filter(|r| r.responses.iter().any(|x| x.response.compact_revision > 0))
        .collect();
    assert!(!compacted.is_empty(), "a watch was canceled by compaction");
    for report in reports {
        // Each watch starts right after a list, from that list's revision + 1.
        let (_, revision) = (lists.iter())
            .rfind(|(at, _)| *at <= report.created_ns)
            .expect("a list before every watch");
        assert_eq!(report.request.start_revision, revision + 1);
    }
    let canceled_at = compacted[0].responses.last().expect("responses").at_ns;
    assert!(
        lists.iter().any(|(at, _)| *at > canceled_at),
        "listed again after the cancel"
    );
    // Later pages continue from the last key at the first page's revision.
    let later_pages = (watcher_ops.iter())
        .filter(|op| matches!(&op.request, Request::Range(r) if r.revision > 0))
        .count();
    assert!(later_pages > 0, "lists of 3 keys take two pages");
}

/// The election clients' operations, by client (sessions continued after an unknown outcome
/// keep their plan's lease ids, so lease ids tell the client).
fn election_run() -> Vec<Operation> {
    let mut scenario = Scenario::embedded("leader-election").expect("embedded");
    scenario.faults.disable_all();
    scenario.lease_ttl_seconds = 7200;
    scenario.lease_keep_alive_interval_ms = 300;
    scenario.compaction_interval_ms = 0;
    scenario.watchers = 0;
    let plan = Plan::generate(5, &scenario);
    let output = simulate(&plan, &RunOptions::default());
    output.history.ops
}

// The election client sends exactly the lock's shape: grant L, campaign
// `create_revision(key) == 0 → put key on L, else range key`, keep-alives of L and writes
// guarded by its key's create revision while it holds, resign by revoking L. Without
// faults, no two clients hold the lock at once.
#[test]
fn election_clients_send_the_lock_shape_and_take_turns() {
    let ops = election_run();
    let (mut won, mut lost, mut resigned, mut kept_alive) = (0, 0, 0, 0);
    let mut holder: Option<i64> = None;
    for op in ops.iter().filter(|op| op.client < 4) {
        match (&op.request, &op.outcome) {
            (Request::LeaseGrant(grant), _) => assert_eq!(grant.ttl_seconds, 7200),
            (Request::Txn(txn), Outcome::Ok(Response::Txn(answer))) => {
                let compare = &txn.compare[..];
                assert_eq!(compare.len(), 1);
                assert_eq!(compare[0].key, ELECTION_KEY);
                match (
                    compare[0].target.clone(),
                    &txn.success[..],
                    &txn.failure[..],
                ) {
                    (
                        CompareTarget::CreateRevision(0),
                        [RequestOp::Put(p)],
                        [RequestOp::Range(r)],
                    ) => {
                        assert_eq!(
                            (p.key.as_slice(), r.key.as_slice()),
                            (ELECTION_KEY, ELECTION_KEY)
                        );
                        assert_ne!(p.lease, 0);
                        if answer.succeeded {
                            assert_eq!(holder, None, "two holders at once");
                            holder = Some(p.lease);
                            won += 1;
                        } else {
                            lost += 1;
                        }
                    }
                    (
                        CompareTarget::CreateRevision(_),
                        [RequestOp::Put(p)],
                        [RequestOp::Range(_)],
                    ) => {
                        assert_eq!(p.key, GUARDED_KEY);
                        assert!(holder.is_some(), "only a holder writes");
                    }
                    other => panic!("not an election txn: {other:?}"),
                }
            }
            (Request::LeaseKeepAlive(k), _) => {
                assert_eq!(Some(k.id), holder, "only the holder keeps its lease alive");
                kept_alive += 1;
            }
            (Request::LeaseRevoke(r), outcome) => {
                assert_eq!(Some(r.id), holder, "the holder resigns");
                assert!(matches!(outcome, Outcome::Ok(_)));
                holder = None;
                resigned += 1;
            }
            (request, outcome) => panic!("not an election op: {request:?} => {outcome:?}"),
        }
    }
    assert!(
        won >= 3 && lost >= 3 && resigned >= 3 && kept_alive >= 3,
        "won {won}, lost {lost}, resigned {resigned}, kept alive {kept_alive}"
    );
}
