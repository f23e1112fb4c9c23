//! Scripted interactions: each test drives the cluster message by message into one situation
//! from the Raft paper and checks the outcome. The safety checker runs after every step here
//! too, so every test also asserts the four safety properties along the way.

mod harness;

#[cfg(feature = "canaries")]
use faultline_raft::Canary;
use faultline_raft::{LogIndex, Message, MessageBody, NodeId, ReadState, Role, Term};
use harness::{Cluster, ClusterOptions, Violation};

const N1: NodeId = NodeId(1);
const N2: NodeId = NodeId(2);
const N3: NodeId = NodeId(3);

fn between(from: NodeId, to: NodeId) -> impl Fn(&Message) -> bool {
    move |msg| msg.from == from && msg.to == to
}

/// Makes `id` campaign and delivers everything until the election settles.
fn elect(cluster: &mut Cluster, id: NodeId) -> Result<(), Violation> {
    cluster.tick_until_campaign(id)?;
    cluster.stabilize()?;
    assert_eq!(cluster.leader(), Some(id), "node {id} should have won");
    Ok(())
}

fn data_of(cluster: &Cluster, id: NodeId) -> Vec<Vec<u8>> {
    cluster
        .applied(id)
        .iter()
        .map(|entry| entry.data.clone())
        .collect()
}

#[test]
fn leader_is_elected_and_replicates_to_all() -> Result<(), Violation> {
    let mut cluster = Cluster::new(ClusterOptions::new(3), 1);
    elect(&mut cluster, N1)?;
    assert_eq!(cluster.raft(N1).status().term, Term(1));
    let (term, index) = cluster.propose(N1, b"a".to_vec())?.expect("leader accepts");
    assert_eq!(
        (term, index),
        (Term(1), LogIndex(2)),
        "after the no-op at index 1"
    );
    cluster.stabilize()?;
    for id in [N1, N2, N3] {
        assert_eq!(
            data_of(&cluster, id),
            vec![Vec::new(), b"a".to_vec()],
            "node {id}"
        );
        assert_eq!(cluster.raft(id).status().leader, Some(N1));
    }
    Ok(())
}

#[test]
fn proposal_on_follower_is_refused_with_leader_hint() -> Result<(), Violation> {
    let mut cluster = Cluster::new(ClusterOptions::new(3), 1);
    elect(&mut cluster, N1)?;
    assert_eq!(cluster.propose(N2, b"a".to_vec())?, None);
    assert_eq!(cluster.read_index(N3)?, None);
    Ok(())
}

#[test]
fn one_vote_per_term() -> Result<(), Violation> {
    let mut cluster = Cluster::new(ClusterOptions::new(3), 2);
    cluster.tick_until_campaign(N2)?;
    cluster.tick_until_campaign(N3)?;
    assert_eq!(
        cluster.raft(N3).status().term,
        Term(1),
        "both campaign in term 1"
    );
    cluster.deliver_where(between(N2, N1))?;
    cluster.deliver_where(between(N3, N1))?;
    assert_eq!(
        cluster.raft(N1).status().vote,
        Some(N2),
        "first come, first served"
    );
    let answer = |to: NodeId| -> MessageBody {
        let answers: Vec<&Message> = cluster.in_flight().filter(|m| between(N1, to)(m)).collect();
        assert_eq!(answers.len(), 1);
        answers[0].body.clone()
    };
    assert_eq!(
        answer(N2),
        MessageBody::RequestVoteResponse { granted: true }
    );
    assert_eq!(
        answer(N3),
        MessageBody::RequestVoteResponse { granted: false }
    );
    cluster.stabilize()?;
    assert_eq!(cluster.leader(), Some(N2));
    assert_eq!(cluster.raft(N3).status().role, Role::Follower);
    Ok(())
}

/// N3 misses a committed entry, then campaigns. Returns the answers to its vote requests.
fn stale_candidate_campaigns(cluster: &mut Cluster) -> Result<Vec<MessageBody>, Violation> {
    elect(cluster, N1)?;
    cluster.isolate(N3);
    cluster.propose(N1, b"a".to_vec())?;
    cluster.stabilize()?;
    assert_eq!(cluster.raft(N2).status().commit, LogIndex(2));
    cluster.reconnect(N3);
    cluster.tick_until_campaign(N3)?;
    cluster.deliver_where(|m| m.from == N3)?;
    let answers = cluster
        .in_flight()
        .filter(|m| m.to == N3)
        .map(|m| m.body.clone())
        .collect();
    cluster.stabilize()?;
    Ok(answers)
}

/// Raft paper §5.4.1: a candidate missing committed entries cannot collect votes.
#[test]
fn vote_requires_an_up_to_date_log() -> Result<(), Violation> {
    let mut cluster = Cluster::new(ClusterOptions::new(3), 3);
    let answers = stale_candidate_campaigns(&mut cluster)?;
    assert_eq!(
        answers,
        vec![MessageBody::RequestVoteResponse { granted: false }; 2]
    );
    assert_ne!(cluster.raft(N3).status().role, Role::Leader);
    Ok(())
}

/// Proves the checker catches the planted vote bug in a fixed scenario as well.
#[cfg(feature = "canaries")]
#[test]
fn canary_vote_without_log_check_is_caught() {
    let options = ClusterOptions {
        canary: Some(Canary::VoteWithoutLogCheck),
        ..ClusterOptions::new(3)
    };
    let mut cluster = Cluster::new(options, 3);
    let violation =
        stale_candidate_campaigns(&mut cluster).expect_err("the planted vote bug went unnoticed");
    eprintln!("canary caught: {violation}");
    assert_eq!(violation.property, "leader completeness");
}

/// A deposed leader's uncommitted entries are replaced by the new leader's (Raft paper §5.3).
#[test]
fn conflicting_entries_are_truncated() -> Result<(), Violation> {
    let mut cluster = Cluster::new(ClusterOptions::new(3), 4);
    elect(&mut cluster, N1)?;
    cluster.isolate(N1);
    cluster.propose(N1, b"lost-1".to_vec())?;
    cluster.propose(N1, b"lost-2".to_vec())?;
    cluster.propose(N1, b"lost-3".to_vec())?;
    assert_eq!(cluster.raft(N1).status().last_index, LogIndex(4));
    elect(&mut cluster, N2)?;
    cluster.propose(N2, b"kept".to_vec())?;
    cluster.stabilize()?;
    cluster.reconnect(N1);
    for _ in 0..20 {
        cluster.tick(N2)?;
        cluster.stabilize()?;
    }
    assert_eq!(
        cluster.raft(N1).log_entries(),
        cluster.raft(N2).log_entries()
    );
    assert_eq!(cluster.raft(N1).status().last_index, LogIndex(3));
    assert!(data_of(&cluster, N1).contains(&b"kept".to_vec()));
    assert!(!data_of(&cluster, N1).contains(&b"lost-1".to_vec()));
    Ok(())
}

/// The Raft paper's Figure 8 on three nodes, one entry per append:
/// (a) S1 leads term 1 and appends X at index 2, replicated nowhere;
/// (b) S3 wins term 2 (S2's vote) and appends its no-op at index 2, replicated nowhere;
/// (c) S1 wins term 3 (S2's vote) and replicates X alone to S2: X is on a quorum, but it is
///     of term 1, so S1 must not count it as committed (§5.4.2);
/// (d) S1 crashes before its term-3 no-op spreads; S3 wins term 4 with S2's vote, since its
///     last term 2 beats S2's 1, and overwrites X. That is fine exactly because X was never
///     committed. Returns S1's commit index at the end of (c).
fn figure_8(cluster: &mut Cluster) -> Result<LogIndex, Violation> {
    let (s1, s2, s3) = (N1, N2, N3);
    elect(cluster, s1)?;
    // (a)
    cluster.isolate(s1);
    cluster.propose(s1, b"X".to_vec())?;
    // (b)
    cluster.tick_until_campaign(s3)?;
    cluster.deliver_where(between(s3, s2))?;
    cluster.deliver_where(between(s2, s3))?;
    assert_eq!(cluster.raft(s3).status().role, Role::Leader);
    assert_eq!(cluster.raft(s3).status().term, Term(2));
    cluster.reconnect(s1);
    cluster.isolate(s3);
    cluster.drop_where(|m| m.from == s3);
    // (c) S1 learns of term 2 from S2's answer to its heartbeat, then campaigns for term 3.
    while !cluster.in_flight().any(|m| m.from == s1 && m.to == s2) {
        cluster.tick(s1)?;
    }
    cluster.deliver_where(between(s1, s2))?;
    cluster.deliver_where(between(s2, s1))?;
    assert_eq!(cluster.raft(s1).status().role, Role::Follower);
    cluster.tick_until_campaign(s1)?;
    assert_eq!(cluster.raft(s1).status().term, Term(3));
    cluster.deliver_where(between(s1, s2))?;
    cluster.deliver_where(between(s2, s1))?;
    assert_eq!(cluster.raft(s1).status().role, Role::Leader);
    // The first append probes at index 2 with the no-op; S2 rejects; S1 backs up and sends X.
    for _ in 0..2 {
        cluster.deliver_where(between(s1, s2))?;
        cluster.deliver_where(between(s2, s1))?;
    }
    assert_eq!(cluster.raft(s2).log_entries()[1].data, b"X".to_vec());
    assert_eq!(
        cluster.raft(s2).status().last_index,
        LogIndex(2),
        "only X reached S2"
    );
    let s1_commit = cluster.raft(s1).status().commit;
    // (d)
    cluster.crash(s1);
    cluster.drop_where(|m| m.from == s1);
    cluster.reconnect(s3);
    while !cluster.in_flight().any(|m| m.from == s3 && m.to == s2) {
        cluster.tick(s3)?;
    }
    cluster.deliver_where(between(s3, s2))?;
    cluster.deliver_where(between(s2, s3))?;
    cluster.tick_until_campaign(s3)?;
    cluster.deliver_where(between(s3, s2))?;
    cluster.deliver_where(between(s2, s3))?;
    assert_eq!(cluster.raft(s3).status().role, Role::Leader);
    assert_eq!(cluster.raft(s3).status().term, Term(4));
    cluster.stabilize()?;
    cluster.restart(s1)?;
    for _ in 0..10 {
        cluster.tick(s3)?;
        cluster.stabilize()?;
    }
    Ok(s1_commit)
}

fn figure_8_options() -> ClusterOptions {
    ClusterOptions {
        max_entries_per_append: 1,
        ..ClusterOptions::new(3)
    }
}

#[test]
fn figure_8_entries_of_earlier_terms_are_not_committed_by_counting() -> Result<(), Violation> {
    let mut cluster = Cluster::new(figure_8_options(), 8);
    let s1_commit = figure_8(&mut cluster)?;
    assert_eq!(
        s1_commit,
        LogIndex(1),
        "X (term 1) on a quorum must not commit in term 3"
    );
    for id in [N1, N2, N3] {
        assert!(
            !data_of(&cluster, id).contains(&b"X".to_vec()),
            "node {id} applied X"
        );
        assert_eq!(
            cluster.raft(id).log_entries(),
            cluster.raft(N3).log_entries()
        );
    }
    Ok(())
}

/// Proves the checker catches the Figure 8 bug when it is planted.
#[cfg(feature = "canaries")]
#[test]
fn canary_commit_old_term_is_caught() {
    let options = ClusterOptions {
        canary: Some(Canary::CommitOldTerm),
        ..figure_8_options()
    };
    let mut cluster = Cluster::new(options, 8);
    let violation = figure_8(&mut cluster).expect_err("the planted Figure 8 bug went unnoticed");
    eprintln!("canary caught: {violation}");
    assert_eq!(violation.property, "leader completeness");
}

#[test]
fn read_index_is_confirmed_by_a_quorum_heartbeat_round() -> Result<(), Violation> {
    let mut cluster = Cluster::new(ClusterOptions::new(3), 5);
    elect(&mut cluster, N1)?;
    cluster.propose(N1, b"a".to_vec())?;
    cluster.stabilize()?;
    cluster.isolate(N3);
    let ctx = cluster.read_index(N1)?.expect("leader accepts reads");
    assert!(
        cluster.read_states.is_empty(),
        "not before a quorum answered"
    );
    assert!(cluster.in_flight().any(|m| matches!(
        m.body,
        MessageBody::Heartbeat { read_ctx: Some(c), .. } if c == ctx
    )));
    cluster.stabilize()?;
    assert_eq!(
        cluster.read_states,
        vec![(
            N1,
            ReadState {
                ctx,
                index: LogIndex(2)
            }
        )]
    );
    Ok(())
}

/// Reads that arrive while a confirmation round is in flight share the next round: one
/// heartbeat per follower for all of them, sent when the first round ends (etcd batches
/// reads the same way), and each is confirmed at the commit index it arrived at.
#[test]
fn reads_during_a_round_share_the_next_one() -> Result<(), Violation> {
    let mut cluster = Cluster::new(ClusterOptions::new(3), 5);
    elect(&mut cluster, N1)?;
    cluster.propose(N1, b"a".to_vec())?;
    cluster.stabilize()?;
    let read_rounds = |cluster: &Cluster| {
        cluster
            .in_flight()
            .filter(|m| {
                matches!(
                    m.body,
                    MessageBody::Heartbeat {
                        read_ctx: Some(_),
                        ..
                    }
                )
            })
            .count()
    };
    let first = cluster.read_index(N1)?.expect("leader accepts reads");
    assert_eq!(read_rounds(&cluster), 2, "a round to each follower");
    let second = cluster.read_index(N1)?.expect("leader accepts reads");
    let third = cluster.read_index(N1)?.expect("leader accepts reads");
    assert_eq!(read_rounds(&cluster), 2, "no round while one is in flight");
    cluster.stabilize()?;
    let confirmed: Vec<u64> = cluster.read_states.iter().map(|(_, r)| r.ctx).collect();
    assert_eq!(confirmed, vec![first, second, third]);
    assert!(cluster
        .read_states
        .iter()
        .all(|(node, r)| *node == N1 && r.index == LogIndex(2)));
    Ok(())
}

/// A follower that got an append since the last heartbeat round, carrying the commit index
/// the heartbeat would, is skipped in the periodic round (the append served as its
/// heartbeat); one that got nothing since gets its heartbeat.
#[test]
fn appends_stand_in_for_the_periodic_heartbeat() -> Result<(), Violation> {
    let mut cluster = Cluster::new(ClusterOptions::new(3), 5);
    elect(&mut cluster, N1)?;
    let heartbeats = |cluster: &Cluster| {
        cluster
            .in_flight()
            .filter(|m| matches!(m.body, MessageBody::Heartbeat { .. }))
            .count()
    };
    // Let a periodic round pass, so the next one is judged on what follows.
    cluster.tick(N1)?;
    cluster.tick(N1)?;
    cluster.stabilize()?;
    cluster.propose(N1, b"a".to_vec())?;
    cluster.stabilize()?;
    cluster.tick(N1)?;
    cluster.tick(N1)?;
    assert_eq!(
        heartbeats(&cluster),
        0,
        "appends went out since the last round"
    );
    cluster.stabilize()?;
    cluster.tick(N1)?;
    cluster.tick(N1)?;
    assert_eq!(
        heartbeats(&cluster),
        2,
        "nothing went out since the last round"
    );
    Ok(())
}

/// Raft thesis §6.4: a new leader's commit index may lag until it commits an entry of its
/// own term, so reads wait for that.
#[test]
fn read_index_waits_for_the_leaders_first_commit() -> Result<(), Violation> {
    let mut cluster = Cluster::new(ClusterOptions::new(3), 6);
    cluster.tick_until_campaign(N1)?;
    cluster.deliver_where(|m| m.to == N1 || matches!(m.body, MessageBody::RequestVote { .. }))?;
    cluster.deliver_where(|m| m.to == N1)?;
    assert_eq!(cluster.raft(N1).status().role, Role::Leader);
    assert_eq!(cluster.raft(N1).status().commit, LogIndex(0));
    let ctx = cluster.read_index(N1)?.expect("leader accepts reads");
    assert!(!cluster.in_flight().any(|m| matches!(
        m.body,
        MessageBody::Heartbeat {
            read_ctx: Some(_),
            ..
        }
    )));
    cluster.stabilize()?;
    assert_eq!(
        cluster.read_states,
        vec![(
            N1,
            ReadState {
                ctx,
                index: LogIndex(1)
            }
        )]
    );
    Ok(())
}

#[test]
fn deposed_leader_never_confirms_a_read() -> Result<(), Violation> {
    let mut cluster = Cluster::new(ClusterOptions::new(3), 7);
    elect(&mut cluster, N1)?;
    cluster.isolate(N1);
    let ctx = cluster.read_index(N1)?.expect("N1 still believes it leads");
    elect(&mut cluster, N2)?;
    cluster.propose(N2, b"newer".to_vec())?;
    cluster.stabilize()?;
    for _ in 0..30 {
        cluster.tick(N1)?;
        cluster.stabilize()?;
    }
    cluster.reconnect(N1);
    for _ in 0..30 {
        cluster.tick(N1)?;
        cluster.tick(N2)?;
        cluster.stabilize()?;
    }
    assert!(cluster.read_states.iter().all(|(_, read)| read.ctx != ctx));
    assert_eq!(cluster.raft(N1).status().role, Role::Follower);
    Ok(())
}

#[test]
fn single_voter_answers_reads_at_once() -> Result<(), Violation> {
    let mut cluster = Cluster::new(ClusterOptions::new(1), 9);
    elect(&mut cluster, N1)?;
    assert_eq!(cluster.raft(N1).status().commit, LogIndex(1));
    let ctx = cluster.read_index(N1)?.expect("leader");
    assert_eq!(
        cluster.read_states,
        vec![(
            N1,
            ReadState {
                ctx,
                index: LogIndex(1)
            }
        )]
    );
    Ok(())
}

/// Raft thesis §9.6: a partitioned node stays at its term while pre-voting, so rejoining does
/// not depose the leader.
#[test]
fn pre_vote_keeps_a_partitioned_node_from_disrupting() -> Result<(), Violation> {
    for pre_vote in [true, false] {
        let options = ClusterOptions {
            pre_vote,
            ..ClusterOptions::new(3)
        };
        let mut cluster = Cluster::new(options, 10);
        elect(&mut cluster, N1)?;
        cluster.isolate(N3);
        for _ in 0..100 {
            cluster.tick(N3)?;
        }
        let term_3 = cluster.raft(N3).status().term;
        cluster.reconnect(N3);
        for _ in 0..4 {
            cluster.tick(N1)?;
            cluster.stabilize()?;
        }
        if pre_vote {
            assert_eq!(term_3, Term(1), "pre-candidates do not raise their term");
            assert_eq!(cluster.raft(N1).status().role, Role::Leader);
            assert_eq!(cluster.raft(N1).status().term, Term(1));
            assert_eq!(cluster.raft(N3).status().leader, Some(N1));
        } else {
            assert!(term_3 > Term(1), "plain candidates raise their term");
            assert!(
                cluster.raft(N1).status().term > Term(1),
                "and depose the leader"
            );
        }
    }
    Ok(())
}

/// Raft thesis §6.2: a leader that cannot reach a quorum steps down within an election
/// timeout; one that can stays.
#[test]
fn check_quorum_makes_an_isolated_leader_step_down() -> Result<(), Violation> {
    let options = ClusterOptions {
        check_quorum: true,
        ..ClusterOptions::new(3)
    };
    let timeout = options.election_timeout_ticks;
    let mut cluster = Cluster::new(options, 11);
    elect(&mut cluster, N1)?;
    for _ in 0..5 * timeout {
        cluster.step_time()?;
    }
    assert_eq!(
        cluster.leader(),
        Some(N1),
        "a connected leader keeps leading"
    );
    assert_eq!(cluster.raft(N1).status().term, Term(1));
    cluster.isolate(N1);
    for _ in 0..2 * timeout {
        cluster.tick(N1)?;
    }
    let status = cluster.raft(N1).status();
    assert_eq!(status.role, Role::Follower);
    assert_eq!(status.leader, None);
    assert_eq!(cluster.propose(N1, b"a".to_vec())?, None);
    Ok(())
}

/// With check-quorum, followers that hear from their leader ignore vote requests (thesis
/// §4.2.3), so a node with a higher term cannot force an election.
#[test]
fn check_quorum_lease_ignores_disruptive_vote_requests() -> Result<(), Violation> {
    let options = ClusterOptions {
        check_quorum: true,
        ..ClusterOptions::new(3)
    };
    let mut cluster = Cluster::new(options, 12);
    elect(&mut cluster, N1)?;
    cluster.isolate(N3);
    for _ in 0..100 {
        cluster.tick(N3)?;
    }
    assert!(cluster.raft(N3).status().term > Term(1));
    cluster.reconnect(N3);
    cluster.tick(N2)?;
    cluster.deliver_where(|m| m.from == N3 && m.to == N2)?;
    assert_eq!(
        cluster.raft(N2).status().term,
        Term(1),
        "N2 is in its leader lease"
    );
    assert_eq!(cluster.raft(N2).status().leader, Some(N1));
    Ok(())
}

#[test]
fn crash_and_restart_recovers_from_disk() -> Result<(), Violation> {
    let mut cluster = Cluster::new(ClusterOptions::new(3), 13);
    elect(&mut cluster, N1)?;
    cluster.propose(N1, b"a".to_vec())?;
    cluster.propose(N1, b"b".to_vec())?;
    cluster.stabilize()?;
    for id in [N1, N2, N3] {
        cluster.crash(id);
    }
    for id in [N1, N2, N3] {
        cluster.restart(id)?;
        assert_eq!(cluster.raft(id).status().term, Term(1));
    }
    elect(&mut cluster, N2)?;
    cluster.propose(N2, b"c".to_vec())?;
    cluster.stabilize()?;
    let expected: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"a".to_vec(),
        b"b".to_vec(),
        Vec::new(),
        b"c".to_vec(),
    ];
    for id in [N1, N2, N3] {
        assert_eq!(
            data_of(&cluster, id),
            expected,
            "node {id} re-applied its log"
        );
    }
    Ok(())
}

/// Raft paper §7: a follower that needs entries the leader compacted away catches up from the
/// leader's snapshot, then from the log; after a crash it restarts from its own snapshot.
#[test]
fn lagging_follower_catches_up_from_a_snapshot() -> Result<(), Violation> {
    let mut cluster = Cluster::new(ClusterOptions::new(3), 14);
    elect(&mut cluster, N1)?;
    cluster.isolate(N3);
    for value in [b"a", b"b", b"c", b"d"] {
        cluster.propose(N1, value.to_vec())?;
    }
    cluster.stabilize()?;
    cluster.compact(N1, LogIndex(4))?;
    assert_eq!(cluster.raft(N1).status().snapshot_index, LogIndex(4));
    cluster.propose(N1, b"e".to_vec())?;
    cluster.reconnect(N3);
    for _ in 0..4 {
        cluster.tick(N1)?;
        cluster.stabilize()?;
    }
    assert_eq!(cluster.stats.snapshots_installed, 1);
    assert_eq!(cluster.raft(N3).status().snapshot_index, LogIndex(4));
    assert_eq!(data_of(&cluster, N3), data_of(&cluster, N1));
    assert_eq!(data_of(&cluster, N3).len(), 6);
    cluster.crash(N3);
    cluster.restart(N3)?;
    assert_eq!(cluster.raft(N3).status().snapshot_index, LogIndex(4));
    cluster.stabilize()?;
    assert_eq!(data_of(&cluster, N3), data_of(&cluster, N1));
    Ok(())
}
