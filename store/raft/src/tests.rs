//! Unit tests of one `Raft` in isolation; interactions between nodes live in `tests/`.

use proptest::prelude::*;

use crate::{
    Config, Entry, EntryKind, HardState, LogIndex, Message, MessageBody, NodeId, PersistedState,
    ProposeError, Raft, Role, Term,
};

fn config(id: u64, voter_count: u64) -> Config {
    Config {
        id: NodeId(id),
        voters: (1..=voter_count).map(NodeId).collect(),
        election_timeout_ticks: 10,
        heartbeat_interval_ticks: 2,
        pre_vote: false,
        check_quorum: false,
        max_entries_per_append: 8,
        canary: None,
    }
}

fn drain(raft: &mut Raft) -> Vec<crate::Ready> {
    let mut readies = Vec::new();
    while raft.has_ready() {
        let ready = raft.ready();
        raft.advance(&ready);
        readies.push(ready);
        assert!(readies.len() < 100, "Ready never empties");
    }
    readies
}

#[test]
fn election_timeout_is_randomized_in_range_and_seeded() {
    let timeouts = |seed: u64| -> Vec<u64> {
        let mut raft = Raft::new(config(1, 3), PersistedState::default(), seed);
        (0..20)
            .map(|_| {
                let timeout = raft.randomized_election_timeout_ticks();
                assert!((10..20).contains(&timeout));
                raft.campaign();
                timeout
            })
            .collect()
    };
    assert_eq!(timeouts(1), timeouts(1), "same seed, same timeouts");
    assert_ne!(timeouts(1), timeouts(2), "seed changes timeouts");
}

#[test]
fn single_voter_counts_only_persisted_entries() {
    let mut raft = Raft::new(config(1, 1), PersistedState::default(), 0);
    raft.campaign();
    assert_eq!(raft.status().role, Role::Leader);
    assert_eq!(raft.status().commit, LogIndex(0));
    let ready = raft.ready();
    assert_eq!(ready.entries.len(), 1, "the no-op");
    assert!(
        ready.committed_entries.is_empty(),
        "not durable yet, so not committed"
    );
    assert_eq!(raft.status().commit, LogIndex(0));
    raft.advance(&ready);
    assert_eq!(raft.status().commit, LogIndex(1));
    let ready = raft.ready();
    assert_eq!(ready.committed_entries.len(), 1);
    assert_eq!(ready.hard_state.map(|hs| hs.commit), Some(LogIndex(1)));
    raft.advance(&ready);
    assert_eq!(raft.status().applied, LogIndex(1));
    raft.check_invariants();
}

#[test]
fn candidate_persists_its_vote_before_asking() {
    let mut raft = Raft::new(config(1, 3), PersistedState::default(), 0);
    raft.campaign();
    let ready = raft.ready();
    let hard_state = ready.hard_state.expect("term and vote changed");
    assert_eq!(hard_state.term, Term(1));
    assert_eq!(hard_state.vote, Some(NodeId(1)));
    assert_eq!(ready.messages.len(), 2);
    assert!(ready
        .messages
        .iter()
        .all(|m| matches!(m.body, MessageBody::RequestVote { .. })));
}

#[test]
fn follower_refuses_proposals_with_hint() {
    let mut raft = Raft::new(config(2, 3), PersistedState::default(), 0);
    assert_eq!(
        raft.propose(b"x".to_vec()),
        Err(ProposeError::NotLeader { leader_hint: None })
    );
    raft.step(Message {
        from: NodeId(1),
        to: NodeId(2),
        term: Term(1),
        body: MessageBody::Heartbeat {
            leader_commit: LogIndex(0),
            read_ctx: None,
        },
    });
    let error = raft.propose(b"x".to_vec()).unwrap_err();
    assert_eq!(
        error,
        ProposeError::NotLeader {
            leader_hint: Some(NodeId(1))
        }
    );
    assert_eq!(
        error.to_string(),
        "not the leader (leader is probably node 1)"
    );
    assert_eq!(raft.read_index(7), Err(error));
}

#[test]
fn restart_keeps_term_vote_and_log_and_reapplies() {
    let entries = vec![
        Entry {
            term: Term(1),
            index: LogIndex(1),
            data: Vec::new(),
            kind: EntryKind::Normal,
        },
        Entry {
            term: Term(2),
            index: LogIndex(2),
            data: b"a".to_vec(),
            kind: EntryKind::Normal,
        },
    ];
    let persisted = PersistedState {
        hard_state: HardState {
            term: Term(3),
            vote: Some(NodeId(2)),
            commit: LogIndex(2),
        },
        entries: entries.clone(),
    };
    let mut raft = Raft::new(config(1, 3), persisted, 0);
    let status = raft.status();
    assert_eq!(
        (status.term, status.vote, status.commit),
        (Term(3), Some(NodeId(2)), LogIndex(2))
    );
    assert_eq!(status.applied, LogIndex(0));
    assert_eq!(raft.log_entries(), entries.as_slice());
    let readies = drain(&mut raft);
    assert_eq!(readies.len(), 1);
    assert!(
        readies[0].entries.is_empty(),
        "recovered entries are already durable"
    );
    assert!(readies[0].hard_state.is_none(), "nothing changed");
    assert_eq!(readies[0].committed_entries, entries);
}

#[test]
fn stale_append_is_answered_with_the_current_term() {
    let persisted = PersistedState {
        hard_state: HardState {
            term: Term(5),
            vote: None,
            commit: LogIndex(0),
        },
        entries: Vec::new(),
    };
    let mut raft = Raft::new(config(2, 3), persisted, 0);
    raft.step(Message {
        from: NodeId(1),
        to: NodeId(2),
        term: Term(4),
        body: MessageBody::AppendEntries {
            prev_log_index: LogIndex(0),
            prev_log_term: Term(0),
            entries: Vec::new(),
            leader_commit: LogIndex(0),
        },
    });
    let ready = raft.ready();
    assert_eq!(ready.messages.len(), 1);
    assert_eq!(ready.messages[0].term, Term(5));
    assert_eq!(raft.status().leader, None, "a stale leader is not followed");
}

#[test]
#[should_panic(expected = "delivered to node")]
fn message_for_someone_else_panics() {
    let mut raft = Raft::new(config(2, 3), PersistedState::default(), 0);
    raft.step(Message {
        from: NodeId(1),
        to: NodeId(3),
        term: Term(1),
        body: MessageBody::HeartbeatResponse { read_ctx: None },
    });
}

#[test]
#[should_panic(expected = "without advance")]
fn ready_twice_without_advance_panics() {
    let mut raft = Raft::new(config(1, 3), PersistedState::default(), 0);
    raft.campaign();
    let _first = raft.ready();
    let _second = raft.ready();
}

/// A node outside the bootstrap voters (one that joins later) starts as a non-member: it
/// never campaigns until a configuration in its log makes it a voter.
#[test]
fn a_node_outside_its_configuration_never_campaigns() {
    let mut joiner = Raft::new(config(4, 3), PersistedState::default(), 0);
    assert_eq!(joiner.status().membership, crate::Membership::NotMember);
    for _ in 0..100 {
        joiner.tick();
    }
    assert_eq!(joiner.status().role, Role::Follower);
    assert_eq!(joiner.status().term, Term(0));
    assert!(drain(&mut joiner)
        .iter()
        .all(|ready| ready.messages.is_empty()));
}

proptest! {
    /// A follower's log after any append that passes the consistency check agrees with the
    /// leader's log up to the append's last entry (Log Matching, Raft paper §5.3).
    #[test]
    fn accepted_append_makes_logs_match(
        leader_terms in proptest::collection::vec(1u64..4, 1..12),
        follower_terms in proptest::collection::vec(1u64..4, 0..12),
        prev in 0usize..12,
        count in 0usize..12,
    ) {
        let to_log = |terms: &[u64]| -> Vec<Entry> {
            let mut sorted = terms.to_vec();
            sorted.sort_unstable();
            sorted.iter().enumerate().map(|(i, term)| Entry {
                term: Term(*term),
                index: LogIndex(i as u64 + 1),
                data: vec![*term as u8, i as u8],
                kind: EntryKind::Normal,
            }).collect()
        };
        let leader_log = to_log(&leader_terms);
        let follower_log = to_log(&follower_terms);
        prop_assume!(prev <= leader_log.len());
        let top_term = 10;
        let mut follower = Raft::new(
            config(2, 3),
            PersistedState {
                hard_state: HardState { term: Term(top_term - 1), vote: None, commit: LogIndex(0) },
                entries: follower_log.clone(),
            },
            0,
        );
        let prev_term = if prev == 0 { Term(0) } else { leader_log[prev - 1].term };
        let end = leader_log.len().min(prev + count);
        follower.step(Message {
            from: NodeId(1),
            to: NodeId(2),
            term: Term(top_term),
            body: MessageBody::AppendEntries {
                prev_log_index: LogIndex(prev as u64),
                prev_log_term: prev_term,
                entries: leader_log[prev..end].to_vec(),
                leader_commit: LogIndex(0),
            },
        });
        follower.check_invariants();
        let ours = follower.log_entries();
        let matched = prev == 0 || follower_log.get(prev - 1).map(|e| e.term) == Some(prev_term);
        if matched {
            for i in prev..end {
                prop_assert_eq!(&ours[i], &leader_log[i]);
            }
        } else {
            prop_assert_eq!(ours, follower_log.as_slice());
        }
    }
}

/// A normal build cannot run a planted bug: `Raft::new` refuses one.
#[cfg(not(feature = "canaries"))]
#[test]
#[should_panic(expected = "without the `canaries` feature")]
fn canary_without_the_feature_is_refused() {
    let config = Config {
        canary: Some(crate::Canary::VoteWithoutLogCheck),
        ..config(1, 1)
    };
    let _ = Raft::new(config, PersistedState::default(), 1);
}

fn snapshot_message(index: u64, term: u64, leader_term: u64) -> Message {
    Message {
        from: NodeId(1),
        to: NodeId(2),
        term: Term(leader_term),
        body: MessageBody::InstallSnapshot {
            snapshot: crate::Snapshot {
                metadata: crate::SnapshotMetadata {
                    index: LogIndex(index),
                    term: Term(term),
                    conf_state: crate::ConfState::with_voters((1..=3).map(NodeId)),
                },
                data: b"state".to_vec(),
            },
        },
    }
}

fn log_of(terms: &[u64]) -> Vec<Entry> {
    terms
        .iter()
        .enumerate()
        .map(|(i, term)| Entry {
            term: Term(*term),
            index: LogIndex(i as u64 + 1),
            data: vec![b'a' + i as u8],
            kind: EntryKind::Normal,
        })
        .collect()
}

fn follower_with(terms: &[u64], commit: u64) -> Raft {
    let persisted = PersistedState {
        hard_state: HardState {
            term: Term(5),
            vote: None,
            commit: LogIndex(commit),
        },
        entries: log_of(terms),
    };
    let mut raft = Raft::new(config(2, 3), persisted, 0);
    drain(&mut raft);
    raft
}

fn only_answer(raft: &mut Raft) -> crate::AppendResult {
    let ready = raft.ready();
    raft.advance(&ready);
    assert_eq!(ready.messages.len(), 1);
    match &ready.messages[0].body {
        MessageBody::AppendEntriesResponse { result } => *result,
        other => panic!("unexpected answer {other:?}"),
    }
}

#[test]
fn snapshot_older_than_commit_is_answered_not_installed() {
    let mut raft = follower_with(&[1, 1, 2, 2], 3);
    raft.step(snapshot_message(2, 1, 5));
    assert_eq!(
        only_answer(&mut raft),
        crate::AppendResult::Accepted {
            match_index: LogIndex(3)
        }
    );
    assert_eq!(raft.status().snapshot_index, LogIndex(0));
    assert_eq!(raft.log_entries(), log_of(&[1, 1, 2, 2]).as_slice());
    raft.check_invariants();
}

#[test]
fn snapshot_matching_our_log_commits_and_keeps_the_log() {
    let mut raft = follower_with(&[1, 1, 2, 2], 1);
    raft.step(snapshot_message(3, 2, 5));
    let ready = raft.ready();
    assert!(ready.snapshot.is_none(), "the log already holds it");
    assert_eq!(ready.committed_entries, log_of(&[1, 1, 2])[1..].to_vec());
    raft.advance(&ready);
    assert_eq!(raft.status().commit, LogIndex(3));
    assert_eq!(raft.log_entries().len(), 4, "entry 4 is kept");
}

#[test]
fn snapshot_beyond_commit_replaces_the_log() {
    let mut raft = follower_with(&[1, 1, 2, 2], 1);
    raft.step(snapshot_message(6, 4, 5));
    let ready = raft.ready();
    let snapshot = ready.snapshot.clone().expect("installed");
    assert_eq!(snapshot.metadata.index, LogIndex(6));
    assert!(ready.entries.is_empty());
    assert!(
        ready.committed_entries.is_empty(),
        "the snapshot stands for them"
    );
    assert_eq!(ready.hard_state.map(|hs| hs.commit), Some(LogIndex(6)));
    assert_eq!(
        ready.messages.len(),
        1,
        "the answer leaves after persisting"
    );
    raft.advance(&ready);
    let status = raft.status();
    assert_eq!(
        (
            status.snapshot_index,
            status.commit,
            status.applied,
            status.last_index
        ),
        (LogIndex(6), LogIndex(6), LogIndex(6), LogIndex(6))
    );
    assert!(raft.log_entries().is_empty());
    raft.check_invariants();
}

#[test]
fn restart_from_a_snapshot_applies_only_what_follows_it() {
    let mut leader = Raft::new(config(1, 1), PersistedState::default(), 0);
    leader.campaign();
    drain(&mut leader);
    for data in [b"a", b"b", b"c"] {
        leader.propose(data.to_vec()).unwrap();
        drain(&mut leader);
    }
    assert_eq!(leader.status().applied, LogIndex(4));
    leader.compact(LogIndex(3), b"state at 3".to_vec());
    let snapshot = leader.snapshot().cloned().expect("compacted");
    assert_eq!(snapshot.metadata.term, Term(1));
    assert_eq!(leader.log_entries().len(), 1);
    let persisted = PersistedState {
        hard_state: HardState {
            term: Term(1),
            vote: Some(NodeId(1)),
            commit: LogIndex(4),
        },
        // Storage may still hold entries the snapshot covers.
        entries: log_of(&[1, 1, 1, 1]),
    };
    let mut restarted = Raft::recover(
        config(1, 1),
        crate::Limits::default(),
        Some(snapshot),
        persisted,
        0,
    );
    assert_eq!(restarted.status().applied, LogIndex(3));
    let readies = drain(&mut restarted);
    let applied: Vec<LogIndex> = readies
        .iter()
        .flat_map(|ready| ready.committed_entries.iter().map(|e| e.index))
        .collect();
    assert_eq!(applied, vec![LogIndex(4)]);
}
