//! A deterministic in-process cluster for testing `faultline-raft`: nodes, their disks, a
//! network that drops, delays, reorders and duplicates, partitions and crash-restarts, and a
//! safety checker that runs after every step. Everything random comes from seeded ChaCha8
//! streams, so a failing seed replays exactly.
//!
//! The checker verifies the Raft paper's Figure 3 properties:
//! - election safety: at most one leader per term;
//! - log matching: an (index, term) pair identifies one entry and one prefix, checked over
//!   everything any node ever persisted;
//! - leader completeness: the leader of the newest term holds every committed entry;
//! - state machine safety: all nodes commit and apply one sequence;
//!
//! and, for ReadIndex, that a confirmed read is not older than the commit index known when the
//! read was requested.

// Each test binary uses a different part of the harness.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use faultline_raft::{
    Canary, Config, Entry, LogIndex, Message, NodeId, PersistedState, Raft, ReadState, Role, Term,
};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[derive(Clone, Debug)]
pub struct ClusterOptions {
    pub node_count: u64,
    pub pre_vote: bool,
    pub check_quorum: bool,
    pub election_timeout_ticks: u64,
    pub heartbeat_interval_ticks: u64,
    pub max_entries_per_append: usize,
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
            canary: None,
        }
    }

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

/// A broken safety property.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub property: &'static str,
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} violated: {}", self.property, self.detail)
    }
}

fn violation(property: &'static str, detail: String) -> Result<(), Violation> {
    Err(Violation { property, detail })
}

/// Observes nodes and their outputs; never influences them.
#[derive(Debug, Default)]
pub struct Checker {
    leaders_by_term: BTreeMap<Term, NodeId>,
    /// The committed log as learned from any node's commit index or applied entries.
    committed: Vec<Entry>,
    /// (index, term) -> (term at index - 1, data), over every entry ever persisted anywhere.
    /// By induction on the index this is the Log Matching Property.
    entry_identity: BTreeMap<(LogIndex, Term), (Term, Vec<u8>)>,
    /// Per node (and incarnation): how far its commit index has been compared.
    commit_checked: BTreeMap<NodeId, LogIndex>,
    /// Per (leader, term): how many committed entries were found in its log.
    completeness_checked: BTreeMap<(NodeId, Term), usize>,
}

impl Checker {
    pub fn committed(&self) -> &[Entry] {
        &self.committed
    }

    pub fn leaders_by_term(&self) -> &BTreeMap<Term, NodeId> {
        &self.leaders_by_term
    }

    fn node_restarted(&mut self, id: NodeId) {
        self.commit_checked.remove(&id);
    }

    fn record_committed(&mut self, by: NodeId, entry: &Entry) -> Result<(), Violation> {
        let position = entry.index.0 as usize - 1;
        match self.committed.get(position) {
            Some(known) if known == entry => Ok(()),
            Some(known) => violation(
                "state machine safety",
                format!("node {by} committed {entry:?} but {known:?} was committed at that index"),
            ),
            None if position == self.committed.len() => {
                self.committed.push(entry.clone());
                Ok(())
            }
            None => violation(
                "state machine safety",
                format!(
                    "node {by} committed index {} with only {} entries known committed",
                    entry.index,
                    self.committed.len()
                ),
            ),
        }
    }

    fn record_persisted(
        &mut self,
        by: NodeId,
        prev_term: Term,
        entry: &Entry,
    ) -> Result<(), Violation> {
        let key = (entry.index, entry.term);
        match self.entry_identity.get(&key) {
            Some((known_prev_term, known_data)) => {
                if *known_prev_term != prev_term || *known_data != entry.data {
                    return violation(
                        "log matching",
                        format!(
                            "node {by} persisted index {} term {} after term {prev_term}, \
                             but another log has it after term {known_prev_term} \
                             (same data: {})",
                            entry.index,
                            entry.term,
                            *known_data == entry.data
                        ),
                    );
                }
                Ok(())
            }
            None => {
                self.entry_identity
                    .insert(key, (prev_term, entry.data.clone()));
                Ok(())
            }
        }
    }

    /// Runs after every step.
    pub fn observe(&mut self, nodes: &BTreeMap<NodeId, Raft>) -> Result<(), Violation> {
        for (id, raft) in nodes {
            raft.check_invariants();
            let status = raft.status();
            if status.role == Role::Leader {
                let first = *self.leaders_by_term.entry(status.term).or_insert(*id);
                if first != *id {
                    return violation(
                        "election safety",
                        format!("nodes {first} and {id} both led term {}", status.term),
                    );
                }
            }
            let checked = self.commit_checked.get(id).copied().unwrap_or_default();
            for entry in &raft.log_entries()[checked.0 as usize..status.commit.0 as usize] {
                self.record_committed(*id, entry)?;
            }
            self.commit_checked.insert(*id, status.commit.max(checked));
        }
        self.check_leader_completeness(nodes)
    }

    /// The newest term's leader must hold every committed entry (Raft paper §5.4.3).
    fn check_leader_completeness(
        &mut self,
        nodes: &BTreeMap<NodeId, Raft>,
    ) -> Result<(), Violation> {
        let Some((&newest_term, &leader)) = self.leaders_by_term.last_key_value() else {
            return Ok(());
        };
        let Some(raft) = nodes.get(&leader) else {
            return Ok(());
        };
        let status = raft.status();
        if status.role != Role::Leader || status.term != newest_term {
            return Ok(());
        }
        let checked = self
            .completeness_checked
            .entry((leader, newest_term))
            .or_default();
        let log = raft.log_entries();
        for entry in &self.committed[*checked..] {
            if log.get(entry.index.0 as usize - 1) != Some(entry) {
                return violation(
                    "leader completeness",
                    format!(
                        "leader {leader} of term {newest_term} lacks committed {entry:?}; \
                         it has {:?}",
                        log.get(entry.index.0 as usize - 1)
                    ),
                );
            }
        }
        *checked = self.committed.len();
        Ok(())
    }
}

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
}

pub struct Cluster {
    pub options: ClusterOptions,
    ids: Vec<NodeId>,
    /// Live nodes only; a crashed node is absent until restarted.
    nodes: BTreeMap<NodeId, Raft>,
    /// What each node has durably written; survives crashes.
    disks: BTreeMap<NodeId, PersistedState>,
    /// What each node's state machine applied since its last (re)start.
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
    /// ctx -> (node asked, committed entries known when asked).
    read_requests: BTreeMap<u64, (NodeId, usize)>,
    next_read_ctx: u64,
    pub read_states: Vec<(NodeId, ReadState)>,
    pub stats: Stats,
    /// FNV-1a over everything observable, to compare runs of one seed.
    pub trace_hash: u64,
}

impl Cluster {
    pub fn new(options: ClusterOptions, seed: u64) -> Cluster {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let ids = options.ids();
        let nodes = ids
            .iter()
            .map(|id| {
                let raft = Raft::new(options.config(*id), PersistedState::default(), rng.random());
                (*id, raft)
            })
            .collect();
        Cluster {
            disks: ids
                .iter()
                .map(|id| (*id, PersistedState::default()))
                .collect(),
            applied: ids.iter().map(|id| (*id, Vec::new())).collect(),
            options,
            ids,
            nodes,
            network: Vec::new(),
            faults: NetworkFaults::default(),
            cut_links: BTreeSet::new(),
            crash_before_persist_per_mille: 0,
            rng,
            now_ticks: 0,
            checker: Checker::default(),
            read_requests: BTreeMap::new(),
            next_read_ctx: 1,
            read_states: Vec::new(),
            stats: Stats::default(),
            trace_hash: 0xcbf2_9ce4_8422_2325,
        }
    }

    pub fn ids(&self) -> &[NodeId] {
        &self.ids
    }

    pub fn raft(&self, id: NodeId) -> &Raft {
        &self.nodes[&id]
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
        self.checker.observe(&self.nodes)
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
                .insert(ctx, (id, self.checker.committed.len()));
        }
        self.process_ready(id)?;
        self.check()?;
        Ok(accepted.then_some(ctx))
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

    fn persist(&mut self, id: NodeId, ready: &faultline_raft::Ready) -> Result<(), Violation> {
        let disk = self.disks.get_mut(&id).expect("every node has a disk");
        if let Some(hard_state) = ready.hard_state {
            assert!(
                hard_state.term >= disk.hard_state.term,
                "term went backwards on disk"
            );
            disk.hard_state = hard_state;
        }
        if let Some(first) = ready.entries.first() {
            assert!(
                first.index.0 as usize <= disk.entries.len() + 1,
                "Ready entries leave a gap on disk"
            );
            disk.entries.truncate(first.index.0 as usize - 1);
        }
        disk.entries.extend(ready.entries.iter().cloned());
        let disk = &self.disks[&id];
        let start = disk.entries.len() - ready.entries.len();
        for position in start..disk.entries.len() {
            let prev_term = if position == 0 {
                Term(0)
            } else {
                disk.entries[position - 1].term
            };
            let entry = disk.entries[position].clone();
            self.checker.record_persisted(id, prev_term, &entry)?;
        }
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

    // -- Faults ----------------------------------------------------------------------------

    pub fn crash(&mut self, id: NodeId) {
        if self.nodes.remove(&id).is_some() {
            self.stats.crashes += 1;
            self.applied.insert(id, Vec::new());
        }
    }

    /// Restarts a crashed node from its disk.
    pub fn restart(&mut self, id: NodeId) -> Result<(), Violation> {
        if self.is_live(id) {
            return Ok(());
        }
        let raft = Raft::new(
            self.options.config(id),
            self.disks[&id].clone(),
            self.rng.random(),
        );
        self.nodes.insert(id, raft);
        self.checker.node_restarted(id);
        self.process_ready(id)?;
        self.check()
    }

    pub fn cut(&mut self, from: NodeId, to: NodeId) {
        self.cut_links.insert((from, to));
    }

    /// Cuts every link between `id` and the others, both ways.
    pub fn isolate(&mut self, id: NodeId) {
        for other in self.ids.clone() {
            if other != id {
                self.cut(id, other);
                self.cut(other, id);
            }
        }
    }

    /// Cuts every link between the two sides of a split, both ways.
    pub fn partition(&mut self, side: &BTreeSet<NodeId>) {
        for a in self.ids.clone() {
            for b in self.ids.clone() {
                if side.contains(&a) != side.contains(&b) {
                    self.cut(a, b);
                }
            }
        }
    }

    pub fn heal(&mut self) {
        self.cut_links.clear();
    }

    /// Reconnects `id` with everyone, leaving other cuts in place.
    pub fn reconnect(&mut self, id: NodeId) {
        self.cut_links.retain(|(from, to)| *from != id && *to != id);
    }

    // -- Network ---------------------------------------------------------------------------

    fn enqueue(&mut self, msg: Message) {
        let faults = self.faults.clone();
        if faults.drop_per_mille > 0 && self.rng.random_range(0..1000) < faults.drop_per_mille {
            return;
        }
        let copies = if faults.duplicate_per_mille > 0
            && self.rng.random_range(0..1000) < faults.duplicate_per_mille
        {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let delay = if faults.max_delay_ticks > 0 {
                self.rng.random_range(0..=faults.max_delay_ticks)
            } else {
                0
            };
            self.network.push(InFlight {
                deliver_at_tick: self.now_ticks + delay,
                msg: msg.clone(),
            });
        }
    }

    fn deliver(&mut self, msg: Message) -> Result<(), Violation> {
        let to = msg.to;
        if self.cut_links.contains(&(msg.from, to)) || !self.is_live(to) {
            return Ok(());
        }
        self.stats.messages_delivered += 1;
        self.nodes.get_mut(&to).expect("live").step(msg);
        self.process_ready(to)?;
        self.check()
    }

    /// Delivers, in random order, every message due by now (messages queued meanwhile wait
    /// for the next call).
    pub fn deliver_due(&mut self) -> Result<(), Violation> {
        let now = self.now_ticks;
        let (mut due, later): (Vec<InFlight>, Vec<InFlight>) = std::mem::take(&mut self.network)
            .into_iter()
            .partition(|in_flight| in_flight.deliver_at_tick <= now);
        self.network = later;
        due.shuffle(&mut self.rng);
        for in_flight in due {
            self.deliver(in_flight.msg)?;
        }
        Ok(())
    }

    /// Delivers the in-flight messages matching `select` right away (ignoring delays), and
    /// keeps the rest. Returns how many matched.
    pub fn deliver_where(
        &mut self,
        mut select: impl FnMut(&Message) -> bool,
    ) -> Result<usize, Violation> {
        let (chosen, rest): (Vec<InFlight>, Vec<InFlight>) = std::mem::take(&mut self.network)
            .into_iter()
            .partition(|in_flight| select(&in_flight.msg));
        self.network = rest;
        let count = chosen.len();
        for in_flight in chosen {
            self.deliver(in_flight.msg)?;
        }
        Ok(count)
    }

    /// Drops the in-flight messages matching `select`.
    pub fn drop_where(&mut self, mut select: impl FnMut(&Message) -> bool) {
        self.network.retain(|in_flight| !select(&in_flight.msg));
    }

    /// Delivers everything, including what that causes, until the network is empty.
    pub fn stabilize(&mut self) -> Result<(), Violation> {
        for _ in 0..1000 {
            if self.network.is_empty() {
                return Ok(());
            }
            self.deliver_where(|_| true)?;
        }
        panic!("network did not quiesce");
    }

    /// One unit of time: every live node ticks, then due messages are delivered.
    pub fn step_time(&mut self) -> Result<(), Violation> {
        self.now_ticks += 1;
        for id in self.live_ids() {
            self.tick(id)?;
        }
        self.deliver_due()
    }

    pub fn now_ticks(&self) -> u64 {
        self.now_ticks
    }
}

/// What one random run did, for the aggregate assertions of a test.
#[derive(Clone, Copy, Debug, Default)]
pub struct RunSummary {
    pub committed: usize,
    pub leader_terms: usize,
    pub stats: Stats,
    pub trace_hash: u64,
}

/// One seeded run: random configuration, a fault phase with every nemesis, then a liveness
/// phase (all faults healed, all nodes up) that must commit a new proposal everywhere.
pub fn run_random(seed: u64, node_count: u64, fault_ticks: u64) -> Result<RunSummary, Violation> {
    run_random_with_canary(seed, node_count, fault_ticks, None)
}

/// `run_random` with a planted bug switched on (needs the `canaries` feature).
pub fn run_random_with_canary(
    seed: u64,
    node_count: u64,
    fault_ticks: u64,
    canary: Option<Canary>,
) -> Result<RunSummary, Violation> {
    // Separate streams per purpose, so changing one does not reshuffle the others.
    let mut plan_rng = ChaCha8Rng::seed_from_u64(seed);
    let mut nemesis_rng = ChaCha8Rng::seed_from_u64(seed ^ 0x6e65_6d65_7369_7300);
    let mut client_rng = ChaCha8Rng::seed_from_u64(seed ^ 0x636c_6965_6e74_0000);
    let election_timeout_ticks = plan_rng.random_range(6..14);
    let options = ClusterOptions {
        node_count,
        pre_vote: plan_rng.random_bool(0.5),
        check_quorum: plan_rng.random_bool(0.5),
        election_timeout_ticks,
        heartbeat_interval_ticks: plan_rng.random_range(1..election_timeout_ticks / 2),
        max_entries_per_append: plan_rng.random_range(1..6),
        canary,
    };
    let mut cluster = Cluster::new(options, plan_rng.random());
    let chaos = NetworkFaults {
        drop_per_mille: plan_rng.random_range(0..250),
        duplicate_per_mille: plan_rng.random_range(0..60),
        max_delay_ticks: plan_rng.random_range(0..6),
    };
    cluster.faults = chaos.clone();
    cluster.crash_before_persist_per_mille = plan_rng.random_range(0..8);
    let ids = cluster.ids().to_vec();
    let mut next_value: u64 = 0;

    for _ in 0..fault_ticks {
        nemesis_step(&mut cluster, &mut nemesis_rng, &ids)?;
        client_step(&mut cluster, &mut client_rng, &ids, &mut next_value)?;
        cluster.step_time()?;
    }

    // Liveness: a healthy cluster must elect a leader and commit on every node.
    cluster.heal();
    cluster.faults = NetworkFaults::default();
    cluster.crash_before_persist_per_mille = 0;
    for id in &ids {
        cluster.restart(*id)?;
    }
    let liveness_ticks = 20 * cluster.options.election_timeout_ticks;
    // Re-proposed whenever leadership moves, since a deposed leader's proposal may be lost.
    let mut final_proposal: Option<(Term, LogIndex)> = None;
    for _ in 0..liveness_ticks {
        cluster.step_time()?;
        if let Some(leader) = cluster.leader() {
            let leader_term = cluster.raft(leader).status().term;
            if final_proposal.is_none_or(|(term, _)| term != leader_term) {
                final_proposal = cluster.propose(leader, b"final".to_vec())?;
            }
        }
        let everywhere = ids.iter().all(|id| {
            cluster
                .applied(*id)
                .iter()
                .any(|entry| entry.data == b"final")
        });
        if everywhere {
            return Ok(RunSummary {
                committed: cluster.checker.committed().len(),
                leader_terms: cluster.checker.leaders_by_term().len(),
                stats: cluster.stats,
                trace_hash: cluster.trace_hash,
            });
        }
    }
    violation(
        "liveness",
        format!(
            "no proposal committed on all nodes within {liveness_ticks} ticks after healing \
             (leader {:?}, proposal {final_proposal:?}, statuses {:?})",
            cluster.leader(),
            ids.iter()
                .filter(|id| cluster.is_live(**id))
                .map(|id| cluster.raft(*id).status())
                .collect::<Vec<_>>()
        ),
    )
    .map(|()| RunSummary::default())
}

fn nemesis_step(
    cluster: &mut Cluster,
    rng: &mut ChaCha8Rng,
    ids: &[NodeId],
) -> Result<(), Violation> {
    let roll = rng.random_range(0..1000);
    let node = ids[rng.random_range(0..ids.len())];
    match roll {
        0..=9 => cluster.crash(node),
        10..=39 => cluster.restart(node)?,
        40..=49 => {
            let side: BTreeSet<NodeId> = ids
                .iter()
                .copied()
                .filter(|_| rng.random_bool(0.5))
                .collect();
            cluster.partition(&side);
        }
        50..=54 => cluster.isolate(node),
        55..=59 => {
            // One-way cut: the kind of fault that check-quorum and pre-vote exist for.
            let other = ids[rng.random_range(0..ids.len())];
            if other != node {
                cluster.cut(node, other);
            }
        }
        60..=79 => cluster.heal(),
        _ => {}
    }
    Ok(())
}

fn client_step(
    cluster: &mut Cluster,
    rng: &mut ChaCha8Rng,
    ids: &[NodeId],
    next_value: &mut u64,
) -> Result<(), Violation> {
    // Clients mostly find the leader, sometimes ask a random node (and get NotLeader).
    let target = if rng.random_bool(0.8) {
        cluster.leader().unwrap_or(ids[0])
    } else {
        ids[rng.random_range(0..ids.len())]
    };
    if rng.random_bool(0.3) {
        *next_value += 1;
        cluster.propose(target, next_value.to_le_bytes().to_vec())?;
    }
    if rng.random_bool(0.1) {
        cluster.read_index(target)?;
    }
    Ok(())
}
