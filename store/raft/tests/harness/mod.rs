//! A deterministic in-process cluster for testing `faultline-raft`: nodes, their disks and
//! state machines (with snapshots), a network that drops, delays, reorders and duplicates,
//! partitions and crash-restarts, and a safety checker that runs after every step. Everything
//! random comes from seeded ChaCha8 streams, so a failing seed replays exactly.
//!
//! The checker verifies the Raft paper's Figure 3 properties:
//! - election safety: at most one leader per term;
//! - log matching: an (index, term) pair identifies one entry and one prefix, checked over
//!   everything any node ever persisted;
//! - leader completeness: the leader of the newest term holds every committed entry (or a
//!   snapshot covering it);
//! - state machine safety: all nodes commit and apply one sequence, a node's commit index
//!   never goes back, and a state machine restored from a snapshot holds exactly the
//!   committed prefix and never rolls back;
//!
//! and, for ReadIndex, that a confirmed read is not older than the commit index known when the
//! read was requested.

// Each test binary uses a different part of the harness.
#![allow(dead_code, unused_imports)]

use std::collections::{BTreeMap, BTreeSet};

use faultline_raft::{
    Canary, ConfChange, ConfChangeError, Config, Entry, Limits, LogIndex, Message, NodeId,
    PersistedState, Raft, ReadState, Ready, Role, Snapshot, Term,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

mod checker;
pub mod describe;
mod membership_checker;
mod network;
mod random;
pub mod script;
pub mod state_machine;

pub use checker::{entry_at, violation, Checker, Violation};
pub use random::{run_random, run_random_with_canary, RunSummary};

#[derive(Clone, Debug)]
pub struct ClusterOptions {
    pub node_count: u64,
    pub pre_vote: bool,
    pub check_quorum: bool,
    pub election_timeout_ticks: u64,
    pub heartbeat_interval_ticks: u64,
    pub max_entries_per_append: usize,
    pub limits: Limits,
    /// A planted bug (needs the `canaries` feature).
    pub canary: Option<Canary>,
}

impl ClusterOptions {
    pub fn new(node_count: u64) -> ClusterOptions {
        ClusterOptions {
            node_count,
            pre_vote: false,
            check_quorum: false,
            election_timeout_ticks: 10,
            heartbeat_interval_ticks: 2,
            max_entries_per_append: 16,
            limits: Limits::default(),
            canary: None,
        }
    }

    /// The nodes the cluster starts with: its bootstrap voters.
    pub fn ids(&self) -> Vec<NodeId> {
        (1..=self.node_count).map(NodeId).collect()
    }

    pub fn config(&self, id: NodeId) -> Config {
        Config {
            id,
            voters: self.ids(),
            election_timeout_ticks: self.election_timeout_ticks,
            heartbeat_interval_ticks: self.heartbeat_interval_ticks,
            pre_vote: self.pre_vote,
            check_quorum: self.check_quorum,
            max_entries_per_append: self.max_entries_per_append,
            canary: self.canary,
        }
    }
}

/// Network behaviour for messages delivered by `Cluster::deliver_due`.
#[derive(Clone, Debug, Default)]
pub struct NetworkFaults {
    pub drop_per_mille: u32,
    pub duplicate_per_mille: u32,
    pub max_delay_ticks: u64,
}

/// Where a membership change went, or why it was refused.
pub type ConfChangeOutcome = Result<(Term, LogIndex), ConfChangeError>;

#[derive(Debug)]
struct InFlight {
    deliver_at_tick: u64,
    msg: Message,
}

#[derive(Clone, Copy, Debug, Default)]
pub struct Stats {
    pub proposals_accepted: u64,
    pub reads_confirmed: u64,
    pub crashes: u64,
    pub lost_readies: u64,
    pub messages_delivered: u64,
    pub snapshots_installed: u64,
    pub compactions: u64,
    pub conf_changes_proposed: u64,
    pub transfers_started: u64,
}

/// What a node has durably written; survives crashes.
#[derive(Clone, Debug, Default)]
pub struct Disk {
    pub snapshot: Option<Snapshot>,
    /// Entries after the snapshot.
    pub persisted: PersistedState,
}

pub struct Cluster {
    pub options: ClusterOptions,
    /// Live nodes only; a crashed node is absent until restarted.
    nodes: BTreeMap<NodeId, Raft>,
    /// Every node ever started, live or crashed.
    disks: BTreeMap<NodeId, Disk>,
    /// Nodes stopped for good (removed from the cluster).
    retired: BTreeSet<NodeId>,
    /// What each node's state machine holds: the applied entries from index 1 (restored from
    /// a snapshot's data on restart or install).
    applied: BTreeMap<NodeId, Vec<Entry>>,
    network: Vec<InFlight>,
    pub faults: NetworkFaults,
    /// Directed links that drop everything: (from, to).
    cut_links: BTreeSet<(NodeId, NodeId)>,
    /// Per mille of Readies lost to a crash before anything of them was persisted.
    pub crash_before_persist_per_mille: u32,
    rng: ChaCha8Rng,
    now_ticks: u64,
    pub checker: Checker,
    membership_checker: membership_checker::MembershipChecker,
    /// ctx -> (node asked, committed entries known when asked).
    read_requests: BTreeMap<u64, (NodeId, usize)>,
    next_read_ctx: u64,
    pub read_states: Vec<(NodeId, ReadState)>,
    pub stats: Stats,
    /// FNV-1a over everything observable, to compare runs of one seed.
    pub trace_hash: u64,
    /// When `Some`, every delivered message is described here (for scripted tests).
    pub events: Option<Vec<String>>,
}

impl Cluster {
    pub fn new(options: ClusterOptions, seed: u64) -> Cluster {
        let mut cluster = Cluster {
            options: options.clone(),
            nodes: BTreeMap::new(),
            disks: BTreeMap::new(),
            retired: BTreeSet::new(),
            applied: BTreeMap::new(),
            network: Vec::new(),
            faults: NetworkFaults::default(),
            cut_links: BTreeSet::new(),
            crash_before_persist_per_mille: 0,
            rng: ChaCha8Rng::seed_from_u64(seed),
            now_ticks: 0,
            checker: Checker::default(),
            membership_checker: Default::default(),
            read_requests: BTreeMap::new(),
            next_read_ctx: 1,
            read_states: Vec::new(),
            stats: Stats::default(),
            trace_hash: 0xcbf2_9ce4_8422_2325,
            events: None,
        };
        for id in options.ids() {
            cluster.start_node(id);
        }
        cluster
    }

    /// Starts a node with an empty disk (a bootstrap member, or a new one joining: then it
    /// learns the configuration from the leader's log or snapshot).
    pub fn start_node(&mut self, id: NodeId) {
        assert!(!self.disks.contains_key(&id), "node {id} exists already");
        let raft = Raft::recover(
            self.options.config(id),
            self.options.limits,
            None,
            PersistedState::default(),
            self.rng.random(),
        );
        self.nodes.insert(id, raft);
        self.disks.insert(id, Disk::default());
        self.applied.insert(id, Vec::new());
    }

    /// Every node ever started, live or crashed.
    pub fn ids(&self) -> Vec<NodeId> {
        self.disks.keys().copied().collect()
    }

    pub fn raft(&self, id: NodeId) -> &Raft {
        &self.nodes[&id]
    }

    pub fn disk(&self, id: NodeId) -> &Disk {
        &self.disks[&id]
    }

    pub fn is_live(&self, id: NodeId) -> bool {
        self.nodes.contains_key(&id)
    }

    pub fn live_ids(&self) -> Vec<NodeId> {
        self.nodes.keys().copied().collect()
    }

    pub fn applied(&self, id: NodeId) -> &[Entry] {
        &self.applied[&id]
    }

    pub fn in_flight(&self) -> impl Iterator<Item = &Message> {
        self.network.iter().map(|in_flight| &in_flight.msg)
    }

    /// The live leader of the highest term, if any.
    pub fn leader(&self) -> Option<NodeId> {
        self.nodes
            .values()
            .map(Raft::status)
            .filter(|status| status.role == Role::Leader)
            .max_by_key(|status| status.term)
            .map(|status| status.id)
    }

    fn hash(&mut self, value: u64) {
        for byte in value.to_le_bytes() {
            self.trace_hash ^= u64::from(byte);
            self.trace_hash = self.trace_hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    pub fn check(&mut self) -> Result<(), Violation> {
        self.checker.observe(&self.nodes)?;
        self.membership_checker
            .observe(&self.nodes, &self.disks, self.options.limits)
    }

    /// Proposes a membership change on `id`; returns where it went, or why it was refused.
    pub fn propose_conf_change(
        &mut self,
        id: NodeId,
        change: ConfChange,
    ) -> Result<Option<ConfChangeOutcome>, Violation> {
        self.with_node(id, |raft| raft.propose_conf_change(change, Vec::new()))
    }

    // -- Node inputs ---------------------------------------------------------------------

    pub fn tick(&mut self, id: NodeId) -> Result<(), Violation> {
        if let Some(raft) = self.nodes.get_mut(&id) {
            raft.tick();
            self.process_ready(id)?;
        }
        self.check()
    }

    /// Ticks `id` until its role changes (an election timeout), at most 4 timeouts.
    pub fn tick_until_campaign(&mut self, id: NodeId) -> Result<(), Violation> {
        let before = self.raft(id).status();
        for _ in 0..4 * self.options.election_timeout_ticks {
            self.tick(id)?;
            let now = self.raft(id).status();
            if now.role != before.role || now.term != before.term {
                return Ok(());
            }
        }
        panic!("node {id} did not campaign");
    }

    pub fn propose(
        &mut self,
        id: NodeId,
        data: Vec<u8>,
    ) -> Result<Option<(Term, LogIndex)>, Violation> {
        let Some(raft) = self.nodes.get_mut(&id) else {
            return Ok(None);
        };
        let accepted = raft.propose(data).ok();
        if accepted.is_some() {
            self.stats.proposals_accepted += 1;
        }
        self.process_ready(id)?;
        self.check()?;
        Ok(accepted)
    }

    /// Asks `id` for a ReadIndex; returns the ctx if the node accepted the request.
    pub fn read_index(&mut self, id: NodeId) -> Result<Option<u64>, Violation> {
        let Some(raft) = self.nodes.get_mut(&id) else {
            return Ok(None);
        };
        let ctx = self.next_read_ctx;
        self.next_read_ctx += 1;
        let accepted = raft.read_index(ctx).is_ok();
        if accepted {
            // Everything committed before the request must be visible to the read.
            self.read_requests
                .insert(ctx, (id, self.checker.committed().len()));
        }
        self.process_ready(id)?;
        self.check()?;
        Ok(accepted.then_some(ctx))
    }

    /// Runs `input` on live node `id` (if live), then plays its Ready and checks.
    pub fn with_node<T>(
        &mut self,
        id: NodeId,
        input: impl FnOnce(&mut Raft) -> T,
    ) -> Result<Option<T>, Violation> {
        let Some(raft) = self.nodes.get_mut(&id) else {
            return Ok(None);
        };
        let output = input(raft);
        self.process_ready(id)?;
        self.check()?;
        Ok(Some(output))
    }

    /// The node's application snapshots its state machine at `index` (at most its applied
    /// index), persists the snapshot and hands it to Raft, which drops the log up to there;
    /// the disk drops those entries too.
    pub fn compact(&mut self, id: NodeId, index: LogIndex) -> Result<(), Violation> {
        let Some(raft) = self.nodes.get_mut(&id) else {
            return Ok(());
        };
        let applied = &self.applied[&id];
        assert!(index.0 as usize <= applied.len(), "compact beyond applied");
        let data = state_machine::encode(&applied[..index.0 as usize]);
        raft.compact(index, data);
        let snapshot = raft.snapshot().cloned();
        let disk = self.disks.get_mut(&id).expect("every node has a disk");
        if let Some(snapshot) = snapshot {
            let snapshot_index = snapshot.metadata.index;
            disk.persisted
                .entries
                .retain(|entry| entry.index > snapshot_index);
            disk.snapshot = Some(snapshot);
        }
        self.stats.compactions += 1;
        self.process_ready(id)?;
        self.check()
    }

    /// Plays the node's part of the Ready protocol until nothing is pending.
    fn process_ready(&mut self, id: NodeId) -> Result<(), Violation> {
        // Bounded: every round either empties the Raft or commits something new.
        for _ in 0..100 {
            let Some(raft) = self.nodes.get_mut(&id) else {
                return Ok(());
            };
            if !raft.has_ready() {
                return Ok(());
            }
            let ready = raft.ready();
            if self.crash_before_persist_per_mille > 0
                && self.rng.random_range(0..1000) < self.crash_before_persist_per_mille
            {
                // The process died before its write reached the disk: all of it is lost.
                self.stats.lost_readies += 1;
                self.crash(id);
                return Ok(());
            }
            self.persist(id, &ready)?;
            for msg in &ready.messages {
                self.enqueue(msg.clone());
            }
            if let Some(snapshot) = &ready.snapshot {
                self.install_snapshot(id, snapshot)?;
            }
            for entry in &ready.committed_entries {
                self.apply(id, entry)?;
            }
            for read_state in &ready.read_states {
                self.confirm_read(id, *read_state)?;
            }
            let status = {
                let raft = self.nodes.get_mut(&id).expect("still live");
                raft.advance(&ready);
                raft.status()
            };
            self.hash(id.0);
            self.hash(status.term.0);
            self.hash(status.commit.0);
            self.hash(status.last_index.0);
            self.hash(ready.messages.len() as u64);
        }
        panic!("node {id} kept producing Readies");
    }

    fn persist(&mut self, id: NodeId, ready: &Ready) -> Result<(), Violation> {
        let disk = self.disks.get_mut(&id).expect("every node has a disk");
        if let Some(snapshot) = &ready.snapshot {
            // A snapshot from the leader replaces the whole log.
            disk.snapshot = Some(snapshot.clone());
            disk.persisted.entries.clear();
        }
        if let Some(hard_state) = ready.hard_state {
            assert!(
                hard_state.term >= disk.persisted.hard_state.term,
                "term went backwards on disk"
            );
            disk.persisted.hard_state = hard_state;
        }
        let (snapshot_index, snapshot_term) =
            disk.snapshot.as_ref().map_or((LogIndex(0), Term(0)), |s| {
                (s.metadata.index, s.metadata.term)
            });
        let entries = &mut disk.persisted.entries;
        if let Some(first) = ready.entries.first() {
            let position = (first.index.0 - snapshot_index.0 - 1) as usize;
            assert!(
                position <= entries.len(),
                "Ready entries leave a gap on disk"
            );
            entries.truncate(position);
        }
        entries.extend(ready.entries.iter().cloned());
        let start = entries.len() - ready.entries.len();
        let prev_term = match start {
            0 => snapshot_term,
            _ => entries[start - 1].term,
        };
        let prev_terms = std::iter::once(prev_term).chain(ready.entries.iter().map(|e| e.term));
        for (prev_term, entry) in prev_terms.zip(&ready.entries) {
            self.checker.record_persisted(id, prev_term, entry)?;
        }
        Ok(())
    }

    /// Restores the node's state machine from a snapshot's data: it must hold exactly the
    /// committed prefix, and must not roll back what the state machine already applied.
    fn install_snapshot(&mut self, id: NodeId, snapshot: &Snapshot) -> Result<(), Violation> {
        let restored = state_machine::decode(&snapshot.data);
        if restored.len() as u64 != snapshot.metadata.index.0 {
            return violation(
                "state machine safety",
                format!(
                    "node {id} got a snapshot at index {} holding {} entries",
                    snapshot.metadata.index,
                    restored.len()
                ),
            );
        }
        let before = self.applied[&id].len();
        if restored.len() < before {
            return violation(
                "state machine safety",
                format!(
                    "node {id} rolled its state machine back from index {before} to {} by \
                     installing a snapshot",
                    restored.len()
                ),
            );
        }
        for entry in &restored {
            self.checker.record_committed(id, entry)?;
        }
        self.stats.snapshots_installed += 1;
        self.applied.insert(id, restored);
        Ok(())
    }

    fn apply(&mut self, id: NodeId, entry: &Entry) -> Result<(), Violation> {
        let applied = self
            .applied
            .get_mut(&id)
            .expect("every node has a state machine");
        if entry.index.0 != applied.len() as u64 + 1 {
            return violation(
                "state machine safety",
                format!(
                    "node {id} applied index {} after {}",
                    entry.index,
                    applied.len()
                ),
            );
        }
        applied.push(entry.clone());
        self.checker.record_committed(id, entry)
    }

    fn confirm_read(&mut self, id: NodeId, read_state: ReadState) -> Result<(), Violation> {
        let Some((asked, committed_when_asked)) = self.read_requests.remove(&read_state.ctx) else {
            return violation(
                "read index",
                format!(
                    "node {id} confirmed unknown or already confirmed ctx {}",
                    read_state.ctx
                ),
            );
        };
        if asked != id {
            return violation(
                "read index",
                format!(
                    "ctx {} asked of node {asked} confirmed by node {id}",
                    read_state.ctx
                ),
            );
        }
        if (read_state.index.0 as usize) < committed_when_asked {
            return violation(
                "linearizable read",
                format!(
                    "node {id} confirmed read {} at index {} but {committed_when_asked} entries \
                     were committed when it was asked",
                    read_state.ctx, read_state.index
                ),
            );
        }
        self.stats.reads_confirmed += 1;
        self.read_states.push((id, read_state));
        Ok(())
    }

    // -- Crashes ---------------------------------------------------------------------------

    pub fn crash(&mut self, id: NodeId) {
        if self.nodes.remove(&id).is_some() {
            self.stats.crashes += 1;
            self.applied.insert(id, Vec::new());
        }
    }

    /// Stops a node for good, as an operator stops a member removed from the cluster.
    pub fn retire(&mut self, id: NodeId) {
        self.crash(id);
        self.retired.insert(id);
    }

    /// Restarts a crashed node from its disk: the state machine from the snapshot, Raft from
    /// the snapshot and the entries after it.
    pub fn restart(&mut self, id: NodeId) -> Result<(), Violation> {
        if self.is_live(id) || self.retired.contains(&id) {
            return Ok(());
        }
        let disk = self.disks[&id].clone();
        let restored = disk
            .snapshot
            .as_ref()
            .map_or_else(Vec::new, |s| state_machine::decode(&s.data));
        let raft = Raft::recover(
            self.options.config(id),
            self.options.limits,
            disk.snapshot,
            disk.persisted,
            self.rng.random(),
        );
        self.nodes.insert(id, raft);
        self.applied.insert(id, restored);
        self.checker.node_restarted(id);
        self.process_ready(id)?;
        self.check()
    }

    pub fn now_ticks(&self) -> u64 {
        self.now_ticks
    }
}
