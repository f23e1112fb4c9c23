//! The Cluster service inside a member: the replicated member list, the address book the
//! transport uses, membership changes proposed through Raft (one at a time, see
//! `faultline_raft`'s membership docs), leader transfer, Status, and stopping once this
//! member's own removal is applied.
//!
//! Which members exist is Raft's configuration (`ConfState`); what they are called and where
//! they listen travels with the change that adds them (the entry's context, as etcd's
//! `ConfChange.Context` carries the member's JSON) and in every snapshot. The address book only
//! grows: IDs are never reused, so an old address can never misdirect a message.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use faultline_api::{ClusterRequest, ClusterResponse, EtcdError, Member, StatusResponse};
use faultline_raft::{
    ConfChange, ConfChangeError, ConfChangeType, ConfState, Entry, EntryKind, NodeId, Role,
    TransferError,
};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::{NodeCore, PendingWrite, Waiter};
use crate::{ClusterReply, NodeEvent};

/// etcd allows one learner at a time (`maxLearners` in its membership package).
const MAX_LEARNERS: usize = 1;

/// What the cluster records about a member besides its ID (the context of the change that
/// added it). `name` is the name MemberAdd was given (etcd's MemberAdd names nobody): the
/// member list shows the name the member publishes itself (`publish.rs`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberAttrs {
    pub name: String,
    pub peer_addr: SocketAddr,
}

/// A leader transfer a client waits for (MoveLeader answers once the target leads).
pub(super) struct PendingTransfer {
    pub target: NodeId,
    pub reply: ClusterReply,
    pub deadline: Instant,
}

/// The context of a conf change entry: the attributes of the member it adds (empty for
/// removals and promotions).
pub(super) fn decode_context(entry: &Entry) -> Option<(NodeId, MemberAttrs)> {
    let EntryKind::ConfChange { change, .. } = &entry.kind else {
        return None;
    };
    if entry.data.is_empty() {
        return None;
    }
    let attrs = bincode::deserialize(&entry.data).expect("conf change contexts are MemberAttrs");
    Some((change.node, attrs))
}

/// A peer URL as etcd writes it (`http://10.0.0.4:2380`) or a bare `host:port`.
fn parse_peer_url(url: &str) -> Option<SocketAddr> {
    let bare = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .unwrap_or(url);
    bare.trim_end_matches('/').parse().ok()
}

/// A member's ID from its peer address: FNV-1a of its text form, in 1..=2^53 (exact in JSON).
pub fn member_id_for(addr: SocketAddr) -> u64 {
    let hash = crate::core::fnv1a64(addr.to_string().as_bytes());
    hash % (1 << 53) + 1
}

pub(super) fn peer_url(addr: SocketAddr) -> String {
    format!("http://{addr}")
}

/// A majority of `voters`.
fn quorum(voters: usize) -> usize {
    voters / 2 + 1
}

/// Raft's refusal as the etcd error a client of the Cluster service gets.
fn conf_change_error(error: ConfChangeError) -> EtcdError {
    match error {
        ConfChangeError::NotLeader { leader_hint } => EtcdError::NotLeader {
            leader_hint: leader_hint.map(|id| id.0),
        },
        ConfChangeError::TransferInProgress { to } => EtcdError::NotLeader {
            leader_hint: Some(to.0),
        },
        ConfChangeError::NotCommittedInTerm | ConfChangeError::ChangePending { .. } => {
            EtcdError::ConfChangeInProgress
        }
        ConfChangeError::AlreadyVoter { .. }
        | ConfChangeError::AlreadyLearner { .. }
        | ConfChangeError::IsLearner { .. } => EtcdError::MemberExist,
        ConfChangeError::NotLearner { .. } => EtcdError::MemberNotLearner,
        ConfChangeError::NotMember { .. } => EtcdError::MemberNotFound,
        ConfChangeError::LastVoter { .. } => EtcdError::Unhealthy,
        ConfChangeError::LearnerNotCaughtUp { .. } => EtcdError::LearnerNotReady,
    }
}

impl NodeCore {
    /// Where to send a message to `id`; every member of any configuration in our log or
    /// snapshot has an entry, and so does a peer that wrote to us first.
    pub fn peer_addr(&self, id: NodeId) -> Option<SocketAddr> {
        self.address_book
            .get(&id.0)
            .map(|attrs| attrs.peer_addr)
            .or_else(|| self.remotes.get(&id.0).copied())
    }

    /// A peer our log does not know (added after everything we hold) wrote to us from
    /// `from_addr`: remember where it is, so that our answers reach it. etcd does the same
    /// with the peer URLs a request carries (rafthttp adds the sender as a "remote" when
    /// "local etcd falls behind of the cluster, and cannot recognize the members that joined
    /// after its current progress"). Without it, a member that was partitioned while a
    /// member was added and then led could never answer that leader, and stayed behind for
    /// good (membership-churn seed 313).
    pub(super) fn remember_sender(&mut self, from: NodeId, from_addr: SocketAddr) {
        if !self.address_book.contains_key(&from.0) {
            self.remotes.insert(from.0, from_addr);
        }
    }

    /// Is `id` a voter or learner of the configuration Raft has in force here?
    pub fn in_configuration(&self, id: NodeId) -> bool {
        self.raft.conf_state().membership(id) != faultline_raft::Membership::NotMember
    }

    /// True once this member applied its own removal: it serves nothing and sends nothing.
    pub fn is_removed(&self) -> bool {
        self.removed
    }

    /// Record the members that conf change entries add (appended, recovered or committed).
    pub(super) fn learn_addresses<'a>(&mut self, entries: impl IntoIterator<Item = &'a Entry>) {
        for entry in entries {
            if let Some((id, attrs)) = decode_context(entry) {
                // The latest entry wins: one that never committed may have named this ID for
                // another address.
                self.address_book.insert(id.0, attrs);
            }
        }
    }

    /// The applied member list, in ID order: peer URLs from the change that added each
    /// member, name and client URLs from what the member published (`publish.rs`), empty
    /// until it did (etcd lists an added member that has not started the same way).
    pub(super) fn member_list(&self) -> Vec<Member> {
        let conf = &self.applied_conf;
        conf.members()
            .map(|id| {
                let attrs = self.address_book.get(&id.0);
                let published = self.attributes_of(id.0).cloned().unwrap_or_default();
                Member {
                    id: id.0,
                    name: published.name,
                    peer_urls: attrs
                        .map(|a| vec![peer_url(a.peer_addr)])
                        .unwrap_or_default(),
                    client_urls: published.client_urls,
                    is_learner: conf.is_learner(id),
                }
            })
            .collect()
    }

    /// A Cluster service call: answered now (lists, status, refusals) or once its change
    /// applies (or the transfer completes).
    pub fn handle_cluster(
        &mut self,
        request: ClusterRequest,
        reply: ClusterReply,
        deadline: Instant,
    ) {
        if self.removed {
            let _ = reply.send(Err(EtcdError::Removed));
            return;
        }
        let proposed = match request {
            ClusterRequest::MemberList { linearizable } => {
                if linearizable && self.role != Role::Leader {
                    // Served by the leader, whose applied list follows every change it
                    // committed (etcd 3.5's `linearizable` MemberList confirms with a ReadIndex).
                    let _ = reply.send(Err(self.not_leader()));
                    return;
                }
                let response = ClusterResponse::MemberList {
                    header: self.header(),
                    members: self.member_list(),
                };
                let _ = reply.send(Ok(response));
                return;
            }
            ClusterRequest::Status => {
                let _ = reply.send(Ok(ClusterResponse::Status(self.status())));
                return;
            }
            ClusterRequest::MoveLeader { target_id } => {
                self.move_leader(NodeId(target_id), reply, deadline);
                return;
            }
            ClusterRequest::MemberAdd {
                name,
                peer_urls,
                is_learner,
            } => self.propose_member_add(name, &peer_urls, is_learner),
            ClusterRequest::MemberRemove { id } => self.propose_member_remove(NodeId(id)),
            ClusterRequest::MemberPromote { id } => self.propose_change(
                ConfChange {
                    change_type: ConfChangeType::PromoteLearner,
                    node: NodeId(id),
                },
                Vec::new(),
            ),
        };
        match proposed {
            Ok((term, index)) => {
                let previous = self.pending_writes.insert(
                    index,
                    PendingWrite {
                        term,
                        waiter: Waiter::Cluster(reply),
                        deadline,
                    },
                );
                assert!(previous.is_none(), "two proposals at index {index:?}");
            }
            Err(error) => {
                let _ = reply.send(Err(error));
            }
        }
    }

    fn propose_change(
        &mut self,
        change: ConfChange,
        context: Vec<u8>,
    ) -> Result<(faultline_raft::Term, faultline_raft::LogIndex), EtcdError> {
        // Raft checks leadership and a change in flight before the change itself: a retry of
        // a removal still in flight answers "in progress", never "not found".
        self.raft
            .propose_conf_change(change, context)
            .map_err(conf_change_error)
    }

    fn propose_member_add(
        &mut self,
        name: String,
        peer_urls: &[String],
        is_learner: bool,
    ) -> Result<(faultline_raft::Term, faultline_raft::LogIndex), EtcdError> {
        if self.role != Role::Leader {
            return Err(self.not_leader());
        }
        let [url] = peer_urls else {
            return Err(EtcdError::MemberBadUrls);
        };
        let peer_addr = parse_peer_url(url).ok_or(EtcdError::MemberBadUrls)?;
        let conf = self.raft.conf_state().clone();
        if conf
            .members()
            .any(|id| self.peer_addr(id) == Some(peer_addr))
        {
            return Err(EtcdError::PeerUrlExist);
        }
        if is_learner && conf.learners.len() >= MAX_LEARNERS {
            return Err(EtcdError::TooManyLearners);
        }
        if !is_learner && self.active_voters(&conf) < quorum(conf.voters.len() + 1) {
            return Err(EtcdError::NotEnoughStartedMembers);
        }
        // The ID is a function of the address (etcd hashes the peer URLs with the cluster name
        // and the time): a leader that never saw an earlier, lost proposal for this address
        // picks the same ID, and another address never gets it. Addresses are not reused.
        let id = member_id_for(peer_addr);
        if self
            .address_book
            .get(&id)
            .is_some_and(|known| known.peer_addr != peer_addr)
        {
            return Err(EtcdError::MemberExist); // a hash collision: refuse, never alias
        }
        if self.removed_ids.contains(&id) {
            // A removed member that saw its removal has stopped for good; its ID must not
            // return (etcd's ErrIDRemoved).
            return Err(EtcdError::IdRemoved);
        }
        let change = ConfChange {
            change_type: if is_learner {
                ConfChangeType::AddLearner
            } else {
                ConfChangeType::AddVoter
            },
            node: NodeId(id),
        };
        let context = bincode::serialize(&MemberAttrs { name, peer_addr })
            .expect("member attributes always serialize");
        self.propose_change(change, context)
    }

    fn propose_member_remove(
        &mut self,
        id: NodeId,
    ) -> Result<(faultline_raft::Term, faultline_raft::LogIndex), EtcdError> {
        if self.role != Role::Leader {
            return Err(self.not_leader());
        }
        let conf = self.raft.conf_state().clone();
        if conf.is_voter(id) {
            // etcd's strict reconfig check: the voters left must still hold a started quorum.
            let mut remaining = conf.clone();
            remaining.voters.remove(&id);
            if remaining.voters.is_empty()
                || self.active_voters(&remaining) < quorum(remaining.voters.len())
            {
                return Err(EtcdError::Unhealthy);
            }
        }
        let change = ConfChange {
            change_type: ConfChangeType::RemoveNode,
            node: id,
        };
        self.propose_change(change, Vec::new())
    }

    /// Leader only: voters of `conf` it heard from recently, itself included.
    fn active_voters(&self, conf: &ConfState) -> usize {
        let me = NodeId(self.config.id);
        let peers = self
            .raft
            .progress()
            .into_iter()
            .filter(|p| p.recently_active && conf.is_voter(p.id))
            .count();
        peers + usize::from(conf.is_voter(me))
    }

    fn move_leader(&mut self, target: NodeId, reply: ClusterReply, deadline: Instant) {
        if self.role != Role::Leader {
            let _ = reply.send(Err(self.not_leader()));
            return;
        }
        if target.0 == self.config.id {
            let _ = reply.send(Ok(ClusterResponse::MoveLeader {
                header: self.header(),
            }));
            return;
        }
        match self.raft.transfer_leader(target) {
            Ok(()) => {
                if let Some(old) = self.pending_transfer.replace(PendingTransfer {
                    target,
                    reply,
                    deadline,
                }) {
                    // The newer request supersedes it (etcd serializes MoveLeader likewise).
                    let _ = old.reply.send(Err(EtcdError::TimeoutLeaderTransfer));
                }
            }
            Err(TransferError::NotLeader { leader_hint }) => {
                let _ = reply.send(Err(EtcdError::NotLeader {
                    leader_hint: leader_hint.map(|id| id.0),
                }));
            }
            Err(TransferError::NotVoter { .. }) => {
                let _ = reply.send(Err(EtcdError::BadLeaderTransferee));
            }
        }
    }

    /// After a leader change: answer the MoveLeader waiting for it.
    pub(super) fn on_leader_for_transfer(&mut self, leader: Option<NodeId>) {
        if self
            .pending_transfer
            .as_ref()
            .is_some_and(|t| Some(t.target) == leader)
        {
            let transfer = self.pending_transfer.take().expect("checked");
            let _ = transfer.reply.send(Ok(ClusterResponse::MoveLeader {
                header: self.header(),
            }));
        }
    }

    pub(super) fn expire_transfer(&mut self, now: Instant) {
        if self
            .pending_transfer
            .as_ref()
            .is_some_and(|t| t.deadline <= now)
        {
            let transfer = self.pending_transfer.take().expect("checked");
            let _ = transfer.reply.send(Err(EtcdError::TimeoutLeaderTransfer));
        }
    }

    fn status(&self) -> StatusResponse {
        let raft = self.raft.status();
        StatusResponse {
            header: self.header(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            db_size_bytes: super::snapshot::encode_kv(&self.kv).len() as u64,
            leader: raft.leader.map_or(0, |id| id.0),
            raft_index: raft.last_index.0,
            raft_term: raft.term.0,
            raft_applied_index: self.applied.0,
            is_learner: raft.membership == faultline_raft::Membership::Learner,
        }
    }

    /// A committed conf change reaches the state machine: the member list moves on, the
    /// waiting client gets its answer, and a member that applied its own removal stops.
    pub(super) fn apply_conf_change(&mut self, entry: &Entry, waiter: Option<PendingWrite>) {
        let EntryKind::ConfChange { change, conf_state } = &entry.kind else {
            unreachable!("apply_conf_change on a normal entry");
        };
        self.learn_addresses([entry]);
        self.applied_conf = conf_state.clone();
        self.observer.on_event(
            self.config.id,
            NodeEvent::ConfChangeApplied {
                index: entry.index.0,
                change: change.to_string(),
                node: change.node.0,
                voters: conf_state.voters.iter().map(|id| id.0).collect(),
                learners: conf_state.learners.iter().map(|id| id.0).collect(),
            },
        );
        if let Some(write) = waiter {
            if write.term != entry.term {
                // Another leader's entry replaced ours at this index.
                write.waiter.fail(EtcdError::LeaderChanged);
            } else {
                let Waiter::Cluster(reply) = write.waiter else {
                    unreachable!("a command's index holds a conf change of the same term");
                };
                let _ = reply.send(Ok(self.conf_change_response(*change)));
            }
        }
        if change.change_type == ConfChangeType::RemoveNode {
            self.removed_ids.insert(change.node.0);
            // Its attributes go with it (and a late publish of it is ignored).
            self.publishing.applied.remove(&change.node.0);
        }
        if change.change_type == ConfChangeType::RemoveNode && change.node.0 == self.config.id {
            self.stop_after_removal(entry);
        }
    }

    fn conf_change_response(&self, change: ConfChange) -> ClusterResponse {
        let header = self.header();
        let members = self.member_list();
        match change.change_type {
            ConfChangeType::AddVoter | ConfChangeType::AddLearner => {
                let member = members
                    .iter()
                    .find(|m| m.id == change.node.0)
                    .cloned()
                    .expect("the added member is in the applied list");
                ClusterResponse::MemberAdd {
                    header,
                    member,
                    members,
                }
            }
            ConfChangeType::RemoveNode => ClusterResponse::MemberRemove { header, members },
            ConfChangeType::PromoteLearner => ClusterResponse::MemberPromote { header, members },
        }
    }

    fn stop_after_removal(&mut self, entry: &Entry) {
        self.removed = true;
        self.observer.on_event(
            self.config.id,
            NodeEvent::Removed {
                index: entry.index.0,
            },
        );
        for (_, write) in std::mem::take(&mut self.pending_writes) {
            write.waiter.fail(EtcdError::Stopped);
        }
        if let Some(transfer) = self.pending_transfer.take() {
            let _ = transfer.reply.send(Err(EtcdError::Stopped));
        }
        self.fail_reads(EtcdError::Stopped);
        let streams: Vec<u64> = self.streams.keys().copied().collect();
        for stream in streams {
            self.close_stream(stream);
        }
    }
}

/// The address book a member starts with: the configured peers, the snapshot's members and
/// the members that the recovered log's conf changes add.
pub(super) fn initial_address_book(
    configured: &BTreeMap<u64, SocketAddr>,
    snapshot_members: &BTreeMap<u64, MemberAttrs>,
) -> BTreeMap<u64, MemberAttrs> {
    let mut book: BTreeMap<u64, MemberAttrs> = configured
        .iter()
        .map(|(&id, &peer_addr)| {
            (
                id,
                MemberAttrs {
                    name: format!("member-{id}"),
                    peer_addr,
                },
            )
        })
        .collect();
    for (&id, attrs) in snapshot_members {
        book.entry(id).or_insert_with(|| attrs.clone());
    }
    book
}
