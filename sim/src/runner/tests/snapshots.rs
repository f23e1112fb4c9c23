//! Snapshots inside members, end to end: restart from a snapshot, InstallSnapshot for a
//! member far behind, and the bound they put on the WAL.

use faultline_node::NodeEvent;

use super::{puts, quiet_plan};
use crate::plan::{Fault, FaultWindow, IsolateTarget, Plan};
use crate::runner::{simulate, RunOptions, RunOutput};
use crate::trace::TraceEvent;

/// A quiet plan of `count` puts, 10 ms apart (about 20 commit per second), with snapshots
/// every 50 entries (10 kept).
fn snapshotting_plan(count: usize, fault: FaultWindow) -> Plan {
    let mut plan = quiet_plan(puts(count, 10), Vec::new());
    plan.scenario.snapshot_threshold_entries = 50;
    plan.scenario.snapshot_catch_up_entries = 10;
    plan.faults = vec![fault];
    plan
}

/// Every event of `member`, with its time.
fn member_events(output: &RunOutput, member: u64) -> Vec<(u64, &NodeEvent)> {
    output
        .trace
        .iter()
        .filter_map(|r| match &r.event {
            TraceEvent::Member { member: m, event } if *m == member => Some((r.at_ns, event)),
            _ => None,
        })
        .collect()
}

/// A member that crashed after taking snapshots restarts from the newest one plus its WAL,
/// and re-applies every index to exactly the revision it had before the crash: it never
/// serves a lower revision than before.
#[test]
fn a_member_restarts_from_its_snapshot_at_the_same_revisions() {
    let plan = snapshotting_plan(
        600,
        FaultWindow {
            start_ms: 8000,
            duration_ms: 500,
            fault: Fault::Crash { member: 2 },
        },
    );
    let output = simulate(&plan, &RunOptions::default());
    let events = member_events(&output, 2);
    let restart = events
        .iter()
        .position(|(_, e)| matches!(e, NodeEvent::Recovered { commit, .. } if *commit > 0))
        .expect("member 2 restarted with a log");
    let NodeEvent::Recovered {
        snapshot_index,
        revision: restored_revision,
        ..
    } = events[restart].1
    else {
        unreachable!()
    };
    let taken_before = events[..restart]
        .iter()
        .filter(|(_, e)| matches!(e, NodeEvent::SnapshotTaken { .. }))
        .count();
    assert!(
        taken_before >= 2,
        "only {taken_before} snapshots before the crash"
    );
    assert!(*snapshot_index > 0, "restarted without its snapshot");
    let mut before = std::collections::BTreeMap::new();
    let mut served_before = 0;
    for (_, event) in &events[..restart] {
        if let NodeEvent::Applied {
            index, revision, ..
        } = event
        {
            before.insert(*index, *revision);
            served_before = served_before.max(*revision);
        }
    }
    let applied_after: Vec<(u64, i64)> = events[restart..]
        .iter()
        .filter_map(|(_, e)| match e {
            NodeEvent::Applied {
                index, revision, ..
            } => Some((*index, *revision)),
            _ => None,
        })
        .collect();
    assert_eq!(
        applied_after.first().map(|&(index, _)| index),
        Some(snapshot_index + 1),
        "the WAL tail is re-applied from just after the snapshot"
    );
    assert_eq!(before.get(snapshot_index), Some(restored_revision));
    let mut replayed = 0;
    for (index, revision) in &applied_after {
        assert!(*revision >= *restored_revision);
        if let Some(old) = before.get(index) {
            assert_eq!(
                old, revision,
                "index {index} re-applied at another revision"
            );
            replayed += 1;
        }
    }
    assert!(replayed > 0, "nothing of the WAL tail was re-applied");
    let reached = applied_after.iter().map(|&(_, r)| r).max().unwrap_or(0);
    assert!(reached >= served_before);
    assert!(output.healed_write_succeeded);
    assert!(output.final_hashes.values().all(Option::is_some));
}

/// A member cut off while the others compact their logs past what it holds is caught up by
/// InstallSnapshot, then by entries, and ends with the same key space.
#[test]
fn a_member_far_behind_is_caught_up_by_a_snapshot() {
    let plan = snapshotting_plan(
        600,
        FaultWindow {
            start_ms: 1000,
            duration_ms: 8000,
            fault: Fault::Isolate {
                target: IsolateTarget::Member(3),
            },
        },
    );
    let output = simulate(&plan, &RunOptions::default());
    let installed: Vec<u64> = output
        .trace
        .iter()
        .filter_map(|r| match &r.event {
            TraceEvent::Member {
                member,
                event: NodeEvent::SnapshotInstalled { .. },
            } => Some(*member),
            _ => None,
        })
        .collect();
    assert!(!installed.is_empty(), "no snapshot was installed");
    assert!(output.healed_write_succeeded);
    let hashes: Vec<_> = output.final_hashes.values().collect();
    assert!(hashes.iter().all(|h| h.is_some() && *h == hashes[0]));
    assert!(crate::verdict::check_raft_safety(&output).is_none());
}

/// Ten simulated minutes of continuous writes: with snapshots every 50 entries the WAL and
/// Raft's log stay bounded on every member (64 KiB segments, released behind each snapshot),
/// however long the run.
#[test]
fn snapshots_bound_the_wal_and_the_log_over_ten_minutes() {
    let mut plan = snapshotting_plan(
        12_000,
        FaultWindow {
            start_ms: 1000,
            duration_ms: 1000,
            fault: Fault::Crash { member: 2 },
        },
    );
    plan.scenario.workload_duration_ms = 600_000;
    plan.scenario.heal_timeout_ms = 20_000;
    let output = simulate(&plan, &RunOptions::default());
    // Per member: (snapshots, highest index, max WAL bytes, max segments, max log entries).
    let mut bounds: std::collections::BTreeMap<u64, (u64, u64, u64, u64, u64)> =
        std::collections::BTreeMap::new();
    for record in &output.trace {
        if let TraceEvent::Member {
            member,
            event:
                NodeEvent::SnapshotTaken {
                    index,
                    wal_bytes,
                    wal_segments,
                    log_entries,
                    ..
                },
        } = &record.event
        {
            let b = bounds.entry(*member).or_default();
            *b = (
                b.0 + 1,
                b.1.max(*index),
                b.2.max(*wal_bytes),
                b.3.max(*wal_segments),
                b.4.max(*log_entries),
            );
        }
    }
    println!("member: (snapshots, last index, max WAL bytes, max segments, max log entries)");
    println!("{bounds:?}");
    assert_eq!(bounds.len(), 3, "every member took snapshots");
    for (member, &(snapshots, index, wal_bytes, segments, log_entries)) in &bounds {
        assert!(
            index >= 5_000,
            "member {member} applied only {index} entries"
        );
        assert!(snapshots >= 100, "member {member}: {snapshots} snapshots");
        // Two segments' worth (the newest may exceed its size by a record), whatever the
        // run's length; without release the WAL grows with every entry.
        assert!(
            wal_bytes <= 2 * (64 << 10) + 4096,
            "member {member}: {wal_bytes} bytes"
        );
        assert!(segments <= 3, "member {member}: {segments} segments");
        // After compacting: the catch-up margin plus what was applied meanwhile.
        assert!(
            log_entries <= 60 + 64,
            "member {member}: {log_entries} log entries"
        );
    }
    assert!(output.healed_write_succeeded);
}
