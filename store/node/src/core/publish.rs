//! Member attributes: what a member tells the cluster about itself once it runs, its name and
//! its client URLs (etcd's `membership.Attributes`, apart from the `RaftAttributes` that the
//! change adding a member carries).
//!
//! As in etcd, a member publishes its attributes through Raft after it starts (etcd's
//! `publish`, a proposal retried until it applies, on every start); every member applies them
//! into its membership state, which snapshots carry, so every member's MemberList shows every
//! member's name and client URLs. A member that was added but has not published yet lists an
//! empty name and no client URLs (etcdctl prints it `unstarted`).
//!
//! Our Raft has no proposal forwarding (etcd's followers forward `MsgProp` to the leader), so
//! a follower hands its attributes to the leader with its next batch of Raft messages to it
//! (`PeerMessages::publish`, at most once per election timeout until they apply), and the
//! leader proposes them; a leader proposes its own from its tick. A publish is idempotent:
//! a duplicate entry applies the same attributes again.

use std::collections::BTreeMap;

use faultline_raft::{NodeId, Role};
use serde::{Deserialize, Serialize};

use super::NodeCore;

/// A publish entry's data begins with these bytes (like lease checkpoints' tag, never the
/// beginning of a client request's bincode, which is its small variant index).
const PUBLISH_TAG: [u8; 4] = *b"MATR";

/// etcd's `Attributes` of a member: its name (`--name`) and client URLs
/// (`--advertise-client-urls`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attributes {
    pub name: String,
    pub client_urls: Vec<String>,
}

/// A member's attributes on their way to the leader (or in a publish entry).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Published {
    pub member: u64,
    pub attributes: Attributes,
}

/// The attributes every member published (replicated state: applied from the log, carried in
/// snapshots) and this member's bookkeeping of publishes in flight (its own; none replicated).
#[derive(Default)]
pub(super) struct Publishing {
    /// Applied publishes by member ID.
    pub applied: BTreeMap<u64, Attributes>,
    /// Follower: when (member clock, ms) it last handed its attributes to the leader.
    last_handed_ms: Option<u64>,
    /// Leader: publishes it proposed and has not seen applied yet, with when (ms).
    proposed: BTreeMap<u64, (Attributes, u64)>,
}

impl Publishing {
    pub(super) fn restored(applied: BTreeMap<u64, Attributes>) -> Publishing {
        Publishing {
            applied,
            ..Publishing::default()
        }
    }
}

pub(super) fn encode_publish(published: &Published) -> Vec<u8> {
    let mut data = PUBLISH_TAG.to_vec();
    data.extend(bincode::serialize(published).expect("attributes always serialize"));
    data
}

/// A publish entry's member and attributes; `None` for every other entry.
pub(super) fn decode_publish(data: &[u8]) -> Option<Published> {
    let rest = data.strip_prefix(&PUBLISH_TAG)?;
    Some(bincode::deserialize(rest).expect("publish entries hold serialized attributes"))
}

impl NodeCore {
    /// The attributes member `id` published, if it did.
    pub(super) fn attributes_of(&self, id: u64) -> Option<&Attributes> {
        self.publishing.applied.get(&id)
    }

    /// Has this member's own publish (of its current attributes) been applied here?
    pub fn published(&self) -> bool {
        self.attributes_of(self.config.id) == Some(&self.config.attributes)
    }

    /// How long a publish in flight is given before it is handed or proposed again (it may
    /// have been lost with a message or a leader): an election timeout.
    fn publish_retry_ms(&self) -> u64 {
        self.config.election_timeout_ms().max(1)
    }

    /// On every tick: a leader that has not published proposes its own attributes.
    pub(super) fn publish_own_attributes(&mut self, now_ms: u64) {
        if self.role == Role::Leader && !self.published() {
            let own = Published {
                member: self.config.id,
                attributes: self.config.attributes.clone(),
            };
            self.propose_publish(own, now_ms);
        }
    }

    /// What to hand to `peer` with this member's next batch of messages for it: our
    /// attributes, when `peer` leads, they are not applied yet, and the last hand-over is
    /// older than the retry interval.
    pub fn publish_for(&mut self, peer: NodeId) -> Option<Published> {
        if self.removed
            || self.role == Role::Leader
            || self.leader != Some(peer)
            || self.published()
        {
            return None;
        }
        let now_ms = self.clock.now_ms();
        let retry_ms = self.publish_retry_ms();
        if let Some(last) = self.publishing.last_handed_ms {
            if now_ms.saturating_sub(last) < retry_ms {
                return None;
            }
        }
        self.publishing.last_handed_ms = Some(now_ms);
        Some(Published {
            member: self.config.id,
            attributes: self.config.attributes.clone(),
        })
    }

    /// A peer handed us its attributes: the leader proposes them (others drop them; the peer
    /// hands them to the next leader it knows).
    pub fn handle_publish(&mut self, published: Published) {
        if self.removed || self.role != Role::Leader {
            return;
        }
        let now_ms = self.clock.now_ms();
        self.propose_publish(published, now_ms);
    }

    fn propose_publish(&mut self, published: Published, now_ms: u64) {
        if self.attributes_of(published.member) == Some(&published.attributes) {
            return;
        }
        let retry_ms = self.publish_retry_ms();
        if let Some((attributes, at_ms)) = self.publishing.proposed.get(&published.member) {
            if *attributes == published.attributes && now_ms.saturating_sub(*at_ms) < retry_ms {
                return;
            }
        }
        if self.raft.propose(encode_publish(&published)).is_ok() {
            self.publishing
                .proposed
                .insert(published.member, (published.attributes, now_ms));
        }
    }

    /// A committed publish reaches the state machine. A removed member's publish is ignored
    /// (etcd ignores attributes of a removed ID too): it must not reappear in the list.
    pub(super) fn apply_publish(&mut self, published: Published) {
        self.publishing.proposed.remove(&published.member);
        if self.removed_ids.contains(&published.member) {
            return;
        }
        self.publishing
            .applied
            .insert(published.member, published.attributes);
    }
}

#[cfg(test)]
#[path = "publish_tests.rs"]
mod publish_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publishes_round_trip_and_other_entries_are_not_publishes() {
        let published = Published {
            member: 7,
            attributes: Attributes {
                name: "a".into(),
                client_urls: vec!["http://127.0.0.1:2379".into()],
            },
        };
        assert_eq!(decode_publish(&encode_publish(&published)), Some(published));
        assert_eq!(decode_publish(b""), None);
        assert_eq!(decode_publish(b"LCKP...."), None);
    }
}
