//! Three `NodeCore`s wired by hand (no network, no loop): each publishes its attributes, every
//! member applies every publish, a member added later lists as unstarted, and a member
//! restarted from its snapshot keeps every member's attributes.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use faultline_api::{ClusterRequest, Member};
use faultline_storage::MemDisk;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::*;
use crate::{Clock, InitialClusterState, NoObserver, NodeConfig, PeerMessages};

const TICK_MS: u64 = 10;

/// A clock the test moves by hand.
struct TestClock(AtomicU64);

impl Clock for TestClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

fn addr(id: u64) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, id as u8], 2380))
}

fn attributes(id: u64) -> Attributes {
    Attributes {
        name: format!("m{id}"),
        client_urls: vec![format!("http://10.0.0.{id}:2379")],
    }
}

fn config(id: u64) -> NodeConfig {
    NodeConfig {
        id,
        members: (1..=3).map(|i| (i, addr(i))).collect(),
        initial_cluster_state: InitialClusterState::New,
        attributes: attributes(id),
        buggify: crate::Buggify::default(),
        tick_interval_ms: TICK_MS,
        election_timeout_ticks: 10,
        heartbeat_interval_ticks: 1,
        pre_vote: true,
        check_quorum: true,
        max_entries_per_append: 64,
        request_timeout_ms: 1_000,
        peer_timeout_ms: 100,
        rng_seed: id,
        watch_progress_notify_interval_ms: 1_000_000,
        watch_poll_timeout_ms: 200,
        watch_slow_backlog_responses: 128,
        max_watch_response_bytes: 1 << 20,
        // A snapshot after every Ready that applied something: the publishes end up in one.
        snapshot_threshold_entries: 1,
        snapshot_catch_up_entries: 0,
        wal_segment_size_bytes: 64 << 10,
        lease_checkpoint_interval_ms: 2_000,
        canary: None,
    }
}

struct TestCluster {
    clock: Arc<TestClock>,
    disks: BTreeMap<u64, Arc<Mutex<MemDisk>>>,
    cores: BTreeMap<u64, NodeCore>,
}

impl TestCluster {
    fn new() -> TestCluster {
        let mut cluster = TestCluster {
            clock: Arc::new(TestClock(AtomicU64::new(0))),
            disks: (1..=3)
                .map(|id| (id, Arc::new(Mutex::new(MemDisk::new()))))
                .collect(),
            cores: BTreeMap::new(),
        };
        for id in 1..=3 {
            cluster.open(id);
        }
        cluster
    }

    fn open(&mut self, id: u64) {
        let core = NodeCore::open(
            config(id),
            Box::new(self.disks[&id].clone()),
            Arc::new(NoObserver),
            self.clock.clone(),
        );
        self.cores.insert(id, core);
    }

    /// One tick everywhere, then every message delivered (as `drive_member` sends them:
    /// batched per peer, with the sender's attributes for the leader it believes in).
    fn round(&mut self) {
        self.clock.0.fetch_add(TICK_MS, Ordering::Relaxed);
        let mut batches = Vec::new();
        for (&id, core) in &mut self.cores {
            core.tick(Instant::now());
            let outbox = core.process_ready();
            for (peer, messages) in crate::peer_transport::batch_per_peer(outbox) {
                let publish = core.publish_for(peer);
                batches.push((
                    peer.0,
                    PeerMessages {
                        from_addr: addr(id),
                        messages,
                        publish,
                    },
                ));
            }
        }
        for (to, batch) in batches {
            let Some(core) = self.cores.get_mut(&to) else {
                continue; // a member not started yet
            };
            for message in batch.messages {
                core.step(message, batch.from_addr);
            }
            if let Some(published) = batch.publish {
                core.handle_publish(published);
            }
        }
    }

    fn rounds_until(&mut self, done: impl Fn(&TestCluster) -> bool) {
        for _ in 0..500 {
            if done(self) {
                return;
            }
            self.round();
        }
        panic!("not done after 500 rounds");
    }

    fn leader(&self) -> u64 {
        *self
            .cores
            .iter()
            .find(|(_, core)| core.role == faultline_raft::Role::Leader)
            .expect("a leader")
            .0
    }
}

fn started(member: &Member) -> bool {
    member.name == format!("m{}", member.id)
        && member.client_urls == attributes(member.id).client_urls
}

fn all_started(core: &NodeCore) -> bool {
    let members = core.member_list();
    members.len() == 3 && members.iter().all(started)
}

#[cfg_attr(madsim, madsim::test)]
#[cfg_attr(not(madsim), tokio::test)]
async fn members_publish_their_attributes_and_keep_them_across_a_snapshot_restart() {
    let mut cluster = TestCluster::new();
    // Before any publish applied, nobody has a name or client URLs (etcdctl: unstarted).
    for core in cluster.cores.values() {
        assert!(core.member_list().iter().all(|m| m.name.is_empty()));
        assert!(core.member_list().iter().all(|m| m.client_urls.is_empty()));
    }
    cluster.rounds_until(|c| c.cores.values().all(all_started));
    for core in cluster.cores.values() {
        assert!(core.published());
        let member_list = core.member_list();
        assert_eq!(
            member_list.iter().map(|m| m.id).collect::<Vec<_>>(),
            [1, 2, 3]
        );
        for member in member_list {
            assert_eq!(member.peer_urls, [format!("http://{}", addr(member.id))]);
        }
    }

    // A member added by MemberAdd, not started: no name, no client URLs.
    let leader = cluster.leader();
    let (reply, _answer) = oneshot::channel();
    let add = ClusterRequest::MemberAdd {
        name: "m4".into(),
        peer_urls: vec!["http://10.0.0.4:2380".into()],
        is_learner: true,
    };
    let deadline = Instant::now() + std::time::Duration::from_secs(60);
    cluster
        .cores
        .get_mut(&leader)
        .expect("leader")
        .handle_cluster(add, reply, deadline);
    cluster.rounds_until(|c| c.cores.values().all(|core| core.member_list().len() == 4));
    for core in cluster.cores.values() {
        let added = core
            .member_list()
            .into_iter()
            .find(|m| m.peer_urls == ["http://10.0.0.4:2380"])
            .expect("the added member is listed");
        assert!(
            added.name.is_empty() && added.client_urls.is_empty(),
            "{added:?}"
        );
        assert!(added.is_learner);
    }

    // Every member snapshotted after applying the publishes; a restarted follower has every
    // member's attributes from its snapshot alone, before its WAL tail is applied.
    let follower = (1..=3).find(|&id| id != leader).expect("a follower");
    cluster.cores.remove(&follower);
    cluster.open(follower);
    let restarted = &cluster.cores[&follower];
    assert!(restarted.raft.snapshot().is_some());
    for id in 1..=3 {
        assert_eq!(restarted.attributes_of(id), Some(&attributes(id)));
    }
    let restarted = cluster.cores.get_mut(&follower).expect("restarted");
    restarted.process_ready();
    assert!(restarted.published());
    cluster.round();
    assert!(cluster.cores.values().all(|core| core.published()));
}
