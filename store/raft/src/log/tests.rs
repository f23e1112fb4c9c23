//! Unit tests of the log: watermarks, compaction, snapshots and configurations.

use super::*;
use crate::conf::{ConfChange, ConfChangeType};
use crate::types::NodeId;

fn entry(index: u64, term: u64) -> Entry {
    Entry {
        term: Term(term),
        index: LogIndex(index),
        data: vec![index as u8],
        kind: EntryKind::Normal,
    }
}

fn snapshot(index: u64, term: u64) -> Snapshot {
    Snapshot {
        metadata: SnapshotMetadata {
            index: LogIndex(index),
            term: Term(term),
            conf_state: Default::default(),
        },
        data: vec![1, 2, 3],
    }
}

fn log(entries: Vec<Entry>, commit: u64) -> RaftLog {
    RaftLog::recovered(Snapshot::default(), entries, LogIndex(commit))
}

#[test]
fn find_conflict_by_term_skips_whole_terms() {
    let log = log(
        vec![
            entry(1, 1),
            entry(2, 1),
            entry(3, 3),
            entry(4, 3),
            entry(5, 5),
        ],
        0,
    );
    assert_eq!(log.find_conflict_by_term(LogIndex(5), Term(4)), LogIndex(4));
    assert_eq!(log.find_conflict_by_term(LogIndex(5), Term(2)), LogIndex(2));
    assert_eq!(log.find_conflict_by_term(LogIndex(9), Term(9)), LogIndex(5));
    assert_eq!(log.find_conflict_by_term(LogIndex(5), Term(0)), LogIndex(0));
}

#[test]
fn duplicate_append_does_not_truncate() {
    let mut log = log(vec![entry(1, 1), entry(2, 1), entry(3, 1)], 0);
    let last = log.append_from_leader(LogIndex(0), &[entry(1, 1)]);
    assert_eq!(last, LogIndex(1));
    assert_eq!(log.last_index(), LogIndex(3));
}

#[test]
fn conflicting_append_truncates_and_resets_watermarks() {
    let mut log = log(vec![entry(1, 1), entry(2, 1), entry(3, 1)], 1);
    let last = log.append_from_leader(LogIndex(1), &[entry(2, 2)]);
    assert_eq!(last, LogIndex(2));
    assert_eq!(log.last_index(), LogIndex(2));
    assert_eq!(log.term(LogIndex(2)), Some(Term(2)));
    assert_eq!(log.persisted(), LogIndex(1));
    assert_eq!(log.take_unstable(), vec![entry(2, 2)]);
    log.check_invariants();
}

#[test]
#[should_panic(expected = "beyond the recovered log")]
fn recovered_commit_beyond_log_panics() {
    log(vec![entry(1, 1)], 2);
}

#[test]
fn compaction_keeps_terms_at_the_snapshot_and_after() {
    let mut log = log((1..=5).map(|i| entry(i, 1 + i / 3)).collect(), 4);
    assert_eq!(log.take_to_apply().len(), 4);
    log.applied_to(LogIndex(4));
    log.compact(LogIndex(3), vec![7]);
    log.check_invariants();
    assert_eq!(log.snapshot_index(), LogIndex(3));
    assert_eq!(log.term(LogIndex(2)), None, "compacted");
    assert!(log.is_compacted(LogIndex(2)));
    assert_eq!(log.term(LogIndex(3)), Some(Term(2)), "from the snapshot");
    assert_eq!(log.term(LogIndex(4)), Some(Term(2)));
    assert_eq!(log.entries(), &[entry(4, 2), entry(5, 2)]);
    assert_eq!(log.slice(LogIndex(4), 10).len(), 2);
    // Backtracking stops at the snapshot: nothing below it can be compared.
    assert_eq!(log.find_conflict_by_term(LogIndex(5), Term(1)), LogIndex(3));
}

#[test]
#[should_panic(expected = "beyond the applied index")]
fn compaction_beyond_applied_panics() {
    let mut log = log(vec![entry(1, 1), entry(2, 1)], 2);
    log.compact(LogIndex(2), vec![7]);
}

#[test]
fn restore_replaces_the_log_and_is_handed_out_once() {
    let mut log = log(vec![entry(1, 1), entry(2, 1), entry(3, 2)], 1);
    log.restore(snapshot(5, 3));
    log.check_invariants();
    assert_eq!(log.last_index(), LogIndex(5));
    assert_eq!(log.last_term(), Term(3));
    assert_eq!(log.commit, LogIndex(5));
    assert!(log.entries().is_empty());
    assert!(log.has_unstable());
    assert_eq!(
        log.take_unstable_snapshot().map(|s| s.metadata.index),
        Some(LogIndex(5))
    );
    assert!(log.take_unstable().is_empty());
    assert!(!log.has_unstable());
    assert!(!log.has_to_apply());
    log.applied_to(LogIndex(5));
    let last = log.append_from_leader(LogIndex(5), &[entry(6, 3)]);
    assert_eq!(last, LogIndex(6));
    log.check_invariants();
}

#[test]
#[should_panic(expected = "would drop committed entries")]
fn restore_at_or_below_commit_panics() {
    let mut log = log(vec![entry(1, 1), entry(2, 1), entry(3, 2)], 3);
    log.restore(snapshot(3, 2));
}

#[test]
fn recovery_skips_entries_the_snapshot_covers() {
    let log = RaftLog::recovered(
        snapshot(2, 1),
        vec![entry(1, 1), entry(2, 1), entry(3, 2)],
        LogIndex(1),
    );
    log.check_invariants();
    assert_eq!(log.entries(), &[entry(3, 2)]);
    assert_eq!(log.commit, LogIndex(2), "a snapshot is committed");
    assert_eq!(log.applied, LogIndex(2));
}

fn conf_entry(index: u64, term: u64, voters: &[u64]) -> Entry {
    Entry {
        term: Term(term),
        index: LogIndex(index),
        data: Vec::new(),
        kind: EntryKind::ConfChange {
            change: ConfChange {
                change_type: ConfChangeType::AddVoter,
                node: NodeId(*voters.last().expect("a voter")),
            },
            conf_state: ConfState::with_voters(voters.iter().copied().map(NodeId)),
        },
    }
}

fn normal(index: u64, term: u64) -> Entry {
    Entry {
        term: Term(term),
        index: LogIndex(index),
        data: vec![1],
        kind: EntryKind::Normal,
    }
}

fn bootstrap() -> Snapshot {
    Snapshot {
        metadata: SnapshotMetadata {
            index: LogIndex(0),
            term: Term(0),
            conf_state: ConfState::with_voters([NodeId(1)]),
        },
        data: Vec::new(),
    }
}

#[test]
fn configuration_follows_the_log_including_truncation_and_compaction() {
    let entries = vec![normal(1, 1), conf_entry(2, 1, &[1, 2]), normal(3, 1)];
    let mut log = RaftLog::recovered(bootstrap(), entries, LogIndex(3));
    assert_eq!(log.conf_state().voters.len(), 2);
    assert_eq!(log.conf_state_at(LogIndex(1)).voters.len(), 1);
    // An uncommitted change from a leader of term 2, replaced by one of term 3: the
    // configuration falls back when its entry leaves the log.
    log.append_from_leader(LogIndex(3), &[conf_entry(4, 2, &[1, 2, 3])]);
    assert_eq!(log.conf_state().voters.len(), 3);
    assert_eq!(log.last_conf_index(), LogIndex(4));
    assert_eq!(log.conf_changes_after(LogIndex(3)), 1);
    log.append_from_leader(LogIndex(3), &[normal(4, 3)]);
    assert_eq!(log.conf_state().voters.len(), 2);
    assert_eq!(log.last_conf_index(), LogIndex(2));
    // Compaction keeps the configuration in force at the snapshot's index.
    log.take_to_apply();
    log.applied_to(LogIndex(3));
    log.compact(LogIndex(3), vec![]);
    assert_eq!(log.snapshot().metadata.conf_state.voters.len(), 2);
    assert_eq!(log.conf_state().voters.len(), 2);
    assert_eq!(log.last_conf_index(), LogIndex(3));
    log.check_invariants();
}
