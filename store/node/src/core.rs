//! The synchronous heart of a member: what to do with a tick, a peer message, a client request
//! and a Raft `Ready`. No awaits here; `run_member` feeds it and sends what it returns.

use std::collections::BTreeMap;
use std::sync::Arc;

use faultline_api::{EtcdError, Request, Response};
use faultline_mvcc::KvStore;
use faultline_raft::{
    Config as RaftConfig, Entry, LogIndex, Message, NodeId, PersistedState, ProposeError, Raft,
    Role, Term,
};
use faultline_storage::{Disk, Wal};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::time::Instant;

use crate::{Canary, NodeConfig, NodeEvent, Observer, Reply};

struct PendingWrite {
    term: Term,
    reply: Reply,
    deadline: Instant,
}

struct PendingRead {
    request: Request,
    reply: Reply,
    deadline: Instant,
}

pub struct NodeCore {
    config: NodeConfig,
    raft: Raft,
    wal: Wal,
    kv: KvStore,
    observer: Arc<dyn Observer>,
    rng: ChaCha8Rng,
    /// Index of the last entry applied to `kv`. Invariant: applied <= raft's commit.
    applied: LogIndex,
    role: Role,
    term: Term,
    leader: Option<NodeId>,
    /// Proposals of this member by log index, until applied or abandoned.
    pending_writes: BTreeMap<LogIndex, PendingWrite>,
    /// Linearizable reads waiting for their ReadIndex, by read context.
    reads_awaiting_index: BTreeMap<u64, Vec<PendingRead>>,
    /// Reads whose ReadIndex is known, waiting for `applied` to reach it.
    reads_awaiting_apply: Vec<(LogIndex, PendingRead)>,
    next_read_ctx: u64,
}

impl NodeCore {
    /// Recover from the WAL and build the Raft state machine. The key space is rebuilt by
    /// re-applying the committed log (no snapshots yet).
    pub fn open(
        config: NodeConfig,
        disk: Box<dyn Disk + Send>,
        observer: Arc<dyn Observer>,
    ) -> Self {
        #[cfg(not(feature = "canaries"))]
        assert!(
            config.canary.is_none(),
            "canary {:?} requested, but this build has no canaries (enable the `canaries` feature)",
            config.canary
        );
        let (wal, persisted): (Wal, PersistedState) =
            Wal::open(disk).expect("WAL recovery failed: the disk holds corrupt synced data");
        let hard_state = persisted.hard_state;
        let last_index = persisted.entries.last().map_or(0, |e| e.index.0);
        observer.on_event(
            config.id,
            NodeEvent::Recovered {
                term: hard_state.term.0,
                commit: hard_state.commit.0,
                last_index,
            },
        );
        let raft_config = RaftConfig {
            id: NodeId(config.id),
            voters: config.members.keys().map(|&id| NodeId(id)).collect(),
            election_timeout_ticks: config.election_timeout_ticks,
            heartbeat_interval_ticks: config.heartbeat_interval_ticks,
            pre_vote: config.pre_vote,
            check_quorum: config.check_quorum,
            max_entries_per_append: config.max_entries_per_append,
        };
        let mut rng = ChaCha8Rng::seed_from_u64(config.rng_seed);
        let raft = Raft::new(raft_config, persisted, rng.random());
        NodeCore {
            config,
            raft,
            wal,
            kv: KvStore::new(),
            observer,
            rng,
            applied: LogIndex(0),
            role: Role::Follower,
            term: hard_state.term,
            leader: None,
            pending_writes: BTreeMap::new(),
            reads_awaiting_index: BTreeMap::new(),
            reads_awaiting_apply: Vec::new(),
            next_read_ctx: 1,
        }
    }

    pub fn step(&mut self, message: Message) {
        self.raft.step(message);
    }

    pub fn tick(&mut self, now: Instant) {
        self.raft.tick();
        self.expire_requests(now);
    }

    /// Answer at once (errors, local reads) or register the request until Raft decides.
    pub fn handle_client(&mut self, request: Request, reply: Reply, deadline: Instant) {
        if let Request::Range(range) = &request {
            if range.serializable {
                let result = self.read_local(&request);
                let _ = reply.send(result);
                return;
            }
        }
        if matches!(request, Request::HashKv(_)) {
            // HashKv is member-local by definition (etcd's Maintenance service).
            let result = self.read_local(&request);
            let _ = reply.send(result);
            return;
        }
        if self.role != Role::Leader {
            if self.canary_active(Canary::StaleFollowerRead) && !request.is_write() {
                // Planted bug: serve a linearizable read from a follower's local state.
                let result = self.read_local(&request);
                let _ = reply.send(result);
                return;
            }
            let _ = reply.send(Err(self.not_leader()));
            return;
        }
        if request.is_write() {
            self.propose(request, reply, deadline);
        } else {
            let ctx = self.next_read_ctx;
            self.next_read_ctx += 1;
            match self.raft.read_index(ctx) {
                Ok(()) => self
                    .reads_awaiting_index
                    .entry(ctx)
                    .or_default()
                    .push(PendingRead {
                        request,
                        reply,
                        deadline,
                    }),
                Err(ProposeError::NotLeader { leader_hint }) => {
                    let _ = reply.send(Err(EtcdError::NotLeader {
                        leader_hint: leader_hint.map(|id| id.0),
                    }));
                }
            }
        }
    }

    fn propose(&mut self, mut request: Request, reply: Reply, deadline: Instant) {
        if let Request::LeaseGrant(grant) = &mut request {
            if grant.id == 0 {
                // The proposer picks the ID so every replica applies the same one (etcd: a
                // positive int63 from the leader's ID generator).
                grant.id = self.rng.random_range(1..i64::MAX);
            }
        }
        let data = bincode::serialize(&request).expect("requests always serialize");
        match self.raft.propose(data) {
            Ok((term, index)) => {
                let previous = self.pending_writes.insert(
                    index,
                    PendingWrite {
                        term,
                        reply,
                        deadline,
                    },
                );
                assert!(previous.is_none(), "two proposals at index {index:?}");
            }
            Err(ProposeError::NotLeader { leader_hint }) => {
                let _ = reply.send(Err(EtcdError::NotLeader {
                    leader_hint: leader_hint.map(|id| id.0),
                }));
            }
        }
    }

    fn not_leader(&self) -> EtcdError {
        match self.leader {
            Some(leader) if leader.0 != self.config.id => EtcdError::NotLeader {
                leader_hint: Some(leader.0),
            },
            _ => EtcdError::NoLeader,
        }
    }

    fn canary_active(&self, canary: Canary) -> bool {
        cfg!(feature = "canaries") && self.config.canary == Some(canary)
    }

    fn read_local(&self, request: &Request) -> Result<Response, EtcdError> {
        let mut response = self.kv.read(request)?;
        self.stamp(&mut response);
        Ok(response)
    }

    fn stamp(&self, response: &mut Response) {
        let header = response.header_mut();
        header.member_id = self.config.id;
        header.raft_term = self.term.0;
    }

    /// Persist, apply and collect messages until Raft has nothing more to say.
    /// Returns the messages to send; they may only leave after this returns (the WAL is synced).
    pub fn process_ready(&mut self) -> Vec<Message> {
        let mut outbox = Vec::new();
        while self.raft.has_ready() {
            let ready = self.raft.ready();
            if let Some(soft) = &ready.soft_state {
                self.on_soft_state(soft.role, soft.term, soft.leader);
            }
            if ready.hard_state.is_some() || !ready.entries.is_empty() {
                self.wal
                    .save(ready.hard_state, &ready.entries)
                    .expect("WAL write failed");
                if !self.canary_active(Canary::AckBeforeSync) {
                    self.wal.sync().expect("WAL sync failed");
                }
            }
            for entry in &ready.committed_entries {
                self.apply(entry);
            }
            for read_state in &ready.read_states {
                if let Some(reads) = self.reads_awaiting_index.remove(&read_state.ctx) {
                    for read in reads {
                        self.reads_awaiting_apply.push((read_state.index, read));
                    }
                }
            }
            outbox.extend(ready.messages.iter().cloned());
            self.raft.advance(&ready);
            self.raft.check_invariants();
        }
        self.serve_applied_reads();
        outbox
    }

    fn on_soft_state(&mut self, role: Role, term: Term, leader: Option<NodeId>) {
        let was_leader = self.role == Role::Leader;
        self.role = role;
        self.term = term;
        self.leader = leader;
        self.observer.on_event(
            self.config.id,
            NodeEvent::RoleChanged {
                role: format!("{role:?}"),
                term: term.0,
                leader: leader.map(|id| id.0),
            },
        );
        if was_leader && role != Role::Leader {
            // Our proposals may still commit under the next leader, or never: unknown.
            for (_, write) in std::mem::take(&mut self.pending_writes) {
                let _ = write.reply.send(Err(EtcdError::LeaderChanged));
            }
            // Reads have not been served: a definite failure the client may retry.
            let hint = self.not_leader();
            for (_, reads) in std::mem::take(&mut self.reads_awaiting_index) {
                for read in reads {
                    let _ = read.reply.send(Err(hint.clone()));
                }
            }
            for (_, read) in std::mem::take(&mut self.reads_awaiting_apply) {
                let _ = read.reply.send(Err(hint.clone()));
            }
        }
    }

    fn apply(&mut self, entry: &Entry) {
        assert_eq!(
            entry.index.0,
            self.applied.0 + 1,
            "committed entries are applied in order, without gaps"
        );
        self.applied = entry.index;
        let result = if entry.data.is_empty() {
            None // the leader's no-op
        } else {
            let request: Request =
                bincode::deserialize(&entry.data).expect("log entries hold serialized requests");
            Some(self.kv.apply(&request))
        };
        self.observer.on_event(
            self.config.id,
            NodeEvent::Applied {
                index: entry.index.0,
                term: entry.term.0,
                digest: fnv1a64(&entry.data),
                revision: self.kv.current_revision(),
            },
        );
        if let Some(write) = self.pending_writes.remove(&entry.index) {
            let outcome = match result {
                // Another leader's entry replaced ours at this index: ours never applies.
                _ if write.term != entry.term => Err(EtcdError::LeaderChanged),
                Some(Ok(mut response)) => {
                    self.stamp(&mut response);
                    self.observer.on_event(
                        self.config.id,
                        NodeEvent::WriteAcked {
                            index: entry.index.0,
                            revision: response.header().revision,
                        },
                    );
                    Ok(response)
                }
                Some(Err(error)) => Err(error),
                None => unreachable!("a member never proposes an empty entry for a client"),
            };
            let _ = write.reply.send(outcome);
        }
    }

    fn serve_applied_reads(&mut self) {
        let applied = self.applied;
        let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.reads_awaiting_apply)
            .into_iter()
            .partition(|(index, _)| *index <= applied);
        self.reads_awaiting_apply = waiting;
        for (_, read) in ready {
            let result = self.read_local(&read.request);
            let _ = read.reply.send(result);
        }
    }

    fn expire_requests(&mut self, now: Instant) {
        let expired: Vec<LogIndex> = self
            .pending_writes
            .iter()
            .filter(|(_, write)| write.deadline <= now)
            .map(|(&index, _)| index)
            .collect();
        for index in expired {
            let write = self.pending_writes.remove(&index).expect("listed above");
            let _ = write.reply.send(Err(EtcdError::Timeout));
        }
        for reads in self.reads_awaiting_index.values_mut() {
            let (expired, kept): (Vec<_>, Vec<_>) = std::mem::take(reads)
                .into_iter()
                .partition(|r| r.deadline <= now);
            *reads = kept;
            for read in expired {
                let _ = read.reply.send(Err(EtcdError::Timeout));
            }
        }
        self.reads_awaiting_index
            .retain(|_, reads| !reads.is_empty());
        let (expired, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut self.reads_awaiting_apply)
            .into_iter()
            .partition(|(_, read)| read.deadline <= now);
        self.reads_awaiting_apply = kept;
        for (_, read) in expired {
            let _ = read.reply.send(Err(EtcdError::Timeout));
        }
    }
}

/// FNV-1a, 64 bit: a stable digest (unlike std's hasher, fixed across Rust releases).
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}
