//! Leases on a member: the replicated lease set mirrored into the `LeaseClock`, expiry and
//! revocation (leader), lease checkpoints (leader), and keep-alives.
//!
//! Checkpoints follow etcd's fix for etcd #9888 (`--experimental-enable-lease-checkpoint` in
//! 3.4, always on in 3.6; `--experimental-lease-checkpoint-interval`, 5 min by default): every
//! `lease_checkpoint_interval_ms` the leader proposes, through Raft, the remaining TTL of its
//! leases; every member records it in its store (`KvStore::apply_lease_checkpoints`, so it is
//! in snapshots too); a new leader resumes each lease from it (`LeaseClock::promote`). etcd
//! promotes its lessor when the new leader applies the empty entry of its own term, having
//! applied every entry of earlier terms (etcdserver's applyEntryNormal); so do we, so that the
//! checkpoints a new leader resumes from are all the committed ones. A keep-alive of a
//! checkpointed lease first clears the checkpoint through Raft and answers once that applied
//! (etcd's `Renew` proposes a checkpoint of remaining TTL 0 before refreshing), so a later
//! leader never resumes from a checkpoint older than an acknowledged keep-alive.
//!
//! A keep-alive of a lease that expired on the leader but whose revoke has not applied yet
//! waits for the revoke and only then answers TTL 0 (etcd's `Renew` waits on the lease's
//! revoke channel, or fails with ErrNotPrimary if the lessor is demoted first): a client told
//! its lease is gone never then reads the lease's keys.
//!
//! Unlike etcd, each sweep checkpoints every lease not yet expired (etcd schedules a lease
//! only while its remaining TTL exceeds the interval): the simulator's TTLs are a few seconds.

use faultline_api::{LeaseId, LeaseKeepAliveResponse, LeaseRevokeRequest, Request, Response};
use faultline_mvcc::LeaseCheckpoint;
use faultline_raft::Role;
use tokio::time::Instant;

use super::{NodeCore, PendingWrite, Waiter};
use crate::{Canary, Reply};

/// At most this many expired leases are proposed for revocation per tick (etcd rate-limits
/// revokes to 1000/s; with 10 ms ticks this is the same rate).
const MAX_LEASE_REVOKES_PER_TICK: usize = 10;
/// A revoke proposed for an expired lease is proposed again if the lease still exists after
/// this long (the proposal may have been lost with a leader change; etcd retries after 3 s).
const LEASE_REVOKE_RETRY_MS: u64 = 3_000;
/// Checkpoints per log entry (etcd's `maxLeaseCheckpointBatchSize`).
const MAX_LEASE_CHECKPOINTS_PER_ENTRY: usize = 1_000;

/// A lease checkpoint entry's data begins with these bytes. Every other entry a member
/// proposes holds the bincode of a `Request`, which begins with its variant index as a
/// little-endian u32 (a handful of variants), never with this; so the entries clients write
/// are the same bytes as before checkpoints existed.
const CHECKPOINT_TAG: [u8; 4] = *b"LCKP";

/// What a command entry of the log holds.
pub(super) enum Command {
    /// A client's write (or an expiry's LeaseRevoke).
    Client(Request),
    /// The leader's lease checkpoints (etcd's internal `LeaseCheckpointRequest`).
    LeaseCheckpoint(Vec<LeaseCheckpoint>),
}

pub(super) fn decode_command(data: &[u8]) -> Command {
    match data.strip_prefix(&CHECKPOINT_TAG) {
        Some(rest) => Command::LeaseCheckpoint(
            bincode::deserialize(rest).expect("checkpoint entries hold serialized checkpoints"),
        ),
        None => Command::Client(
            bincode::deserialize(data).expect("log entries hold serialized requests"),
        ),
    }
}

fn encode_checkpoints(checkpoints: &[LeaseCheckpoint]) -> Vec<u8> {
    let mut data = CHECKPOINT_TAG.to_vec();
    data.extend(bincode::serialize(checkpoints).expect("checkpoints always serialize"));
    data
}

impl NodeCore {
    /// The leader applied the empty entry of its own term: every entry of earlier terms is
    /// applied, so the lease clock starts expiring leases, each from its checkpoint (etcd's
    /// `Promote(electionTimeout)`, called from applyEntryNormal on the leader's empty entry).
    pub(super) fn promote_leases(&mut self) {
        let now_ms = self.clock.now_ms();
        let checkpoints = if self.canary_active(Canary::LeaseNoCheckpoint) {
            // Planted bug (etcd #9888 before checkpoints): every inherited lease restarts at
            // its full TTL, so leader changes alone keep a lease alive forever.
            Vec::new()
        } else {
            self.kv.lease_checkpoints()
        };
        self.lease_clock
            .promote(now_ms, self.config.election_timeout_ms(), &checkpoints);
        self.next_lease_checkpoint_ms =
            now_ms.saturating_add(self.config.lease_checkpoint_interval_ms);
    }

    /// Leader only: propose LeaseRevoke for expired leases, rate limited, each at most once
    /// per `LEASE_REVOKE_RETRY_MS` (etcd's lessor revokeExpiredLeases).
    pub(super) fn revoke_expired_leases(&mut self, now_ms: u64) {
        if self.role != Role::Leader {
            return;
        }
        let mut proposed = 0;
        for id in self.lease_clock.expired(now_ms) {
            if proposed == MAX_LEASE_REVOKES_PER_TICK {
                break;
            }
            if let Some(&at_ms) = self.revoking.get(&id) {
                if now_ms < at_ms.saturating_add(LEASE_REVOKE_RETRY_MS) {
                    continue;
                }
            }
            let request = Request::LeaseRevoke(LeaseRevokeRequest { id });
            let data = bincode::serialize(&request).expect("requests always serialize");
            // No client waits for this proposal; if it is lost, the retry above re-proposes.
            if self.raft.propose(data).is_err() {
                return;
            }
            self.revoking.insert(id, now_ms);
            proposed += 1;
        }
    }

    /// Leader only, every `lease_checkpoint_interval_ms` from its promotion: propose the
    /// remaining TTL of every lease not yet expired. A lost proposal is not retried: the next
    /// sweep carries newer values.
    pub(super) fn checkpoint_leases(&mut self, now_ms: u64) {
        if self.role != Role::Leader
            || !self.lease_clock.is_primary()
            || now_ms < self.next_lease_checkpoint_ms
        {
            return;
        }
        self.next_lease_checkpoint_ms =
            now_ms.saturating_add(self.config.lease_checkpoint_interval_ms);
        let checkpoints: Vec<LeaseCheckpoint> = self
            .lease_clock
            .checkpoints(now_ms)
            .into_iter()
            .map(|(id, remaining_ms)| LeaseCheckpoint {
                id,
                remaining_ttl_ms: Some(remaining_ms),
            })
            .collect();
        for batch in checkpoints.chunks(MAX_LEASE_CHECKPOINTS_PER_ENTRY) {
            if self.raft.propose(encode_checkpoints(batch)).is_err() {
                return;
            }
        }
    }

    /// Serve a keep-alive on the leader (its ReadIndex is applied): refresh the lease now,
    /// and answer at once, or, for a checkpointed lease, once the clearing of its checkpoint
    /// applied (etcd's `Renew`). The refresh comes first so that a sweep proposed meanwhile
    /// checkpoints the refreshed expiry, never the old one after the clear.
    pub(super) fn serve_keep_alive(&mut self, id: LeaseId, reply: Reply, deadline: Instant) {
        if !self.lease_clock.is_primary() {
            // A leader that has not applied its own term's entry yet (etcd: ErrNotPrimary).
            let _ = reply.send(Err(self.not_leader()));
            return;
        }
        let now_ms = self.clock.now_ms();
        let ttl_seconds = match self.lease_clock.keep_alive(id, now_ms) {
            Some(ttl_seconds) => ttl_seconds,
            None if self.lease_clock.granted_ttl(id).is_some() => {
                // Expired, its revoke not applied yet: answer once it has (etcd's Renew).
                self.keep_alives_awaiting_revoke
                    .entry(id)
                    .or_default()
                    .push((reply, deadline));
                return;
            }
            // etcd answers TTL 0 (not an error) for an unknown lease.
            None => 0,
        };
        let mut response = self.keep_alive_response(id, ttl_seconds);
        if ttl_seconds == 0 || self.kv.lease_checkpoint(id).is_none() {
            self.stamp(&mut response);
            let _ = reply.send(Ok(response));
            return;
        }
        let clear = [LeaseCheckpoint {
            id,
            remaining_ttl_ms: None,
        }];
        match self.raft.propose(encode_checkpoints(&clear)) {
            Ok((term, index)) => {
                let waiter = Waiter::KeepAlive(reply, response);
                let write = PendingWrite {
                    term,
                    waiter,
                    deadline,
                };
                let previous = self.pending_writes.insert(index, write);
                assert!(previous.is_none(), "two proposals at index {index:?}");
            }
            Err(_) => {
                let _ = reply.send(Err(self.not_leader()));
            }
        }
    }

    fn keep_alive_response(&self, id: LeaseId, ttl_seconds: i64) -> Response {
        Response::LeaseKeepAlive(LeaseKeepAliveResponse {
            header: self.header(),
            id,
            ttl_seconds,
        })
    }

    /// The lease is gone from the store (its revoke applied, or it was already gone): the
    /// keep-alives that waited for that answer TTL 0, stamped after the revoke.
    fn answer_keep_alives_awaiting_revoke(&mut self, id: LeaseId) {
        for (reply, _) in self
            .keep_alives_awaiting_revoke
            .remove(&id)
            .unwrap_or_default()
        {
            let mut response = self.keep_alive_response(id, 0);
            self.stamp(&mut response);
            let _ = reply.send(Ok(response));
        }
    }

    /// Every keep-alive waiting for a revoke fails with `error` (the lessor was demoted).
    pub(super) fn fail_keep_alives_awaiting_revoke(&mut self, error: faultline_api::EtcdError) {
        for (_, waiting) in std::mem::take(&mut self.keep_alives_awaiting_revoke) {
            for (reply, _) in waiting {
                let _ = reply.send(Err(error.clone()));
            }
        }
    }

    /// Keep-alives still waiting for a revoke at their deadline time out.
    pub(super) fn expire_keep_alives_awaiting_revoke(&mut self, now: Instant) {
        for waiting in self.keep_alives_awaiting_revoke.values_mut() {
            let (expired, kept): (Vec<_>, Vec<_>) = std::mem::take(waiting)
                .into_iter()
                .partition(|(_, deadline)| *deadline <= now);
            *waiting = kept;
            for (reply, _) in expired {
                let _ = reply.send(Err(faultline_api::EtcdError::Timeout));
            }
        }
        self.keep_alives_awaiting_revoke
            .retain(|_, waiting| !waiting.is_empty());
    }

    /// A follower acknowledges a keep-alive itself, with the granted TTL, and never passes it
    /// on (the `KeepAliveNotForwarded` canary's planted bug). A correct follower answers
    /// NotLeader with the leader's ID, which the simulator's clients follow and
    /// faultline-server forwards (etcd's followers forward keep-alives to the leader).
    pub(super) fn canary_ack_keep_alive_locally(&self, id: LeaseId) -> Response {
        let mut response = Response::LeaseKeepAlive(LeaseKeepAliveResponse {
            header: self.header(),
            id,
            ttl_seconds: self.lease_clock.granted_ttl(id).unwrap_or(0),
        });
        self.stamp(&mut response);
        response
    }

    /// Keep the lease clock equal to the replicated lease set on every member, so a member
    /// that becomes leader knows every lease (etcd's lessor Grant/Revoke on apply).
    pub(super) fn mirror_leases(
        &mut self,
        request: &Request,
        result: &Result<Response, faultline_api::EtcdError>,
    ) {
        match (request, result) {
            (Request::LeaseGrant(_), Ok(Response::LeaseGrant(granted))) => {
                self.lease_clock
                    .grant(granted.id, granted.ttl_seconds, self.clock.now_ms());
            }
            (Request::LeaseRevoke(revoke), Ok(_)) => {
                self.lease_clock.revoke(revoke.id);
                self.revoking.remove(&revoke.id);
                self.answer_keep_alives_awaiting_revoke(revoke.id);
            }
            (Request::LeaseRevoke(revoke), Err(_)) => {
                // Already gone (revoked by a client, or by an earlier expiry proposal).
                self.revoking.remove(&revoke.id);
                self.answer_keep_alives_awaiting_revoke(revoke.id);
            }
            _ => {}
        }
        debug_assert_eq!(self.lease_clock.len(), self.kv.leases().len());
    }
}

#[cfg(test)]
mod tests {
    use faultline_api::{LeaseGrantRequest, PutRequest};

    use super::*;

    // Client entries keep their bytes; checkpoint entries are told apart by their tag.
    #[test]
    fn commands_round_trip_and_requests_never_carry_the_tag() {
        let requests = [
            Request::Put(PutRequest::default()),
            Request::LeaseGrant(LeaseGrantRequest::default()),
            Request::LeaseRevoke(LeaseRevokeRequest { id: 7 }),
            Request::LeaseLeases,
        ];
        for request in requests {
            let data = bincode::serialize(&request).unwrap();
            assert!(!data.starts_with(&CHECKPOINT_TAG));
            assert!(matches!(decode_command(&data), Command::Client(r) if r == request));
        }
        let checkpoints = vec![
            LeaseCheckpoint {
                id: 3,
                remaining_ttl_ms: Some(1_500),
            },
            LeaseCheckpoint {
                id: 4,
                remaining_ttl_ms: None,
            },
        ];
        let data = encode_checkpoints(&checkpoints);
        assert!(matches!(decode_command(&data), Command::LeaseCheckpoint(c) if c == checkpoints));
    }
}
