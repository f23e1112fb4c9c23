//! Lease expiry: the part of etcd's lessor that is NOT replicated (etcd-semantics.md §8).
//!
//! Only the leader ("primary") tracks expiry; followers hold every lease forever. The node
//! mirrors the replicated lease set into its `LeaseClock` on every member (`grant`/`revoke` as
//! it applies LeaseGrant/LeaseRevoke, `sync` after a snapshot restore or restart), and calls
//! `promote` when it becomes leader and `demote` when it stops. Expired leases are revoked by
//! proposing `LeaseRevoke` through Raft; the clock only says which ones are due.
//!
//! Lease checkpoints (etcd #9888's fix, see `KvStore::apply_lease_checkpoints`) are replicated
//! state and live in the store; the clock only reads them: `promote` resumes each lease from
//! its checkpointed remaining TTL, and `checkpoints` says what the leader should propose.
//!
//! Pure: times are milliseconds passed in by the caller (the node's simulated clock).

use std::collections::BTreeMap;

use faultline_api::LeaseId;

#[derive(Clone, Debug, PartialEq, Eq)]
struct ClockLease {
    ttl_seconds: i64,
    /// `None`: never expires (follower, or a leader that has not refreshed it).
    expiry_ms: Option<u64>,
}

/// Expiry tracking for the leader (etcd's lessor primary/demoted states).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct LeaseClock {
    leases: BTreeMap<LeaseId, ClockLease>,
    primary: bool,
}

/// A TTL in seconds as milliseconds (negative counts as 0).
pub(crate) fn ttl_ms(ttl_seconds: i64) -> u64 {
    u64::try_from(ttl_seconds.max(0))
        .unwrap_or(0)
        .saturating_mul(1000)
}

impl LeaseClock {
    /// A follower's clock with no leases.
    pub fn new() -> LeaseClock {
        LeaseClock::default()
    }

    pub fn is_primary(&self) -> bool {
        self.primary
    }

    pub fn len(&self) -> usize {
        self.leases.len()
    }

    pub fn is_empty(&self) -> bool {
        self.leases.is_empty()
    }

    /// A lease was granted (applied). On the primary it expires at now + ttl.
    pub fn grant(&mut self, id: LeaseId, ttl_seconds: i64, now_ms: u64) {
        assert!(id != 0);
        assert!(ttl_seconds >= 0);
        let expiry_ms = self
            .primary
            .then(|| now_ms.saturating_add(ttl_ms(ttl_seconds)));
        self.leases.insert(
            id,
            ClockLease {
                ttl_seconds,
                expiry_ms,
            },
        );
    }

    /// A lease was revoked (applied). Unknown ids are ignored.
    pub fn revoke(&mut self, id: LeaseId) {
        self.leases.remove(&id);
    }

    /// Make the lease set equal to the store's (after restore/restart), keeping the expiry of
    /// leases already known; new ones get now + ttl on the primary.
    pub fn sync(&mut self, leases: &[(LeaseId, i64)], now_ms: u64) {
        let mut next = BTreeMap::new();
        for &(id, ttl_seconds) in leases {
            let lease = match self.leases.remove(&id) {
                Some(known) => ClockLease {
                    ttl_seconds,
                    expiry_ms: known.expiry_ms,
                },
                None => ClockLease {
                    ttl_seconds,
                    expiry_ms: self
                        .primary
                        .then(|| now_ms.saturating_add(ttl_ms(ttl_seconds))),
                },
            };
            next.insert(id, lease);
        }
        self.leases = next;
    }

    /// Leader only: reset the lease's expiry to now + TTL and return the TTL. `None` for an
    /// unknown or already-expired lease (the client sees TTL 0), or on a follower (which must
    /// forward the keep-alive to the leader).
    pub fn keep_alive(&mut self, id: LeaseId, now_ms: u64) -> Option<i64> {
        if !self.primary {
            return None;
        }
        let lease = self.leases.get_mut(&id)?;
        let expiry_ms = lease.expiry_ms.expect("primary leases have an expiry");
        if expiry_ms <= now_ms {
            return None;
        }
        lease.expiry_ms = Some(now_ms.saturating_add(ttl_ms(lease.ttl_seconds)));
        Some(lease.ttl_seconds)
    }

    /// Leader only: leases whose expiry is <= now, ascending by id (empty on a follower).
    /// They stay until `revoke` (the node proposes LeaseRevoke for each, rate limited).
    pub fn expired(&self, now_ms: u64) -> Vec<LeaseId> {
        if !self.primary {
            return Vec::new();
        }
        self.leases
            .iter()
            .filter(|(_, l)| l.expiry_ms.is_some_and(|e| e <= now_ms))
            .map(|(id, _)| *id)
            .collect()
    }

    /// Become the primary: every lease expires at now + its remaining TTL + extend, where the
    /// remaining TTL is its checkpoint's (`checkpoints`, as `KvStore::lease_checkpoints` gives
    /// them) or else its full TTL. This is etcd's `Promote(electionTimeout)`: the extension
    /// covers the election, so no lease dies before its TTL because leadership moved; with
    /// checkpoints (3.4's `--experimental-enable-lease-checkpoint`, always on in 3.6) a lease
    /// resumes where the last checkpoint left it instead of restarting (etcd #9888).
    pub fn promote(&mut self, now_ms: u64, extend_ms: u64, checkpoints: &[(LeaseId, u64)]) {
        self.primary = true;
        let checkpoints: BTreeMap<LeaseId, u64> = checkpoints.iter().copied().collect();
        for (id, lease) in &mut self.leases {
            let remaining_ms = checkpoints
                .get(id)
                .copied()
                .unwrap_or_else(|| ttl_ms(lease.ttl_seconds));
            lease.expiry_ms = Some(
                now_ms
                    .saturating_add(remaining_ms)
                    .saturating_add(extend_ms),
            );
        }
    }

    /// Leader only: the remaining TTL of every lease not yet expired, ascending by id (what
    /// the leader proposes as a checkpoint; etcd checkpoints each lease every interval). Empty
    /// on a follower.
    pub fn checkpoints(&self, now_ms: u64) -> Vec<(LeaseId, u64)> {
        if !self.primary {
            return Vec::new();
        }
        self.leases
            .iter()
            .filter_map(|(id, lease)| {
                let expiry_ms = lease.expiry_ms.expect("primary leases have an expiry");
                (expiry_ms > now_ms).then(|| (*id, expiry_ms - now_ms))
            })
            .collect()
    }

    /// Stop being the primary: every lease lives forever again.
    pub fn demote(&mut self) {
        self.primary = false;
        for lease in self.leases.values_mut() {
            lease.expiry_ms = None;
        }
    }

    /// Remaining TTL in whole seconds (truncated, like etcd's TimeToLive; 0 once expired).
    /// On a follower: the granted TTL (it does not know better; forward to the leader).
    /// `None` for an unknown lease.
    pub fn remaining_ttl(&self, id: LeaseId, now_ms: u64) -> Option<i64> {
        let lease = self.leases.get(&id)?;
        Some(match lease.expiry_ms {
            None => lease.ttl_seconds,
            Some(expiry) => i64::try_from(expiry.saturating_sub(now_ms) / 1000).unwrap_or(i64::MAX),
        })
    }

    /// The lease's granted TTL in seconds.
    pub fn granted_ttl(&self, id: LeaseId) -> Option<i64> {
        self.leases.get(&id).map(|l| l.ttl_seconds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // §8: followers hold leases forever; only the primary expires them.
    #[test]
    fn follower_never_expires() {
        let mut clock = LeaseClock::new();
        clock.grant(7, 5, 0);
        assert!(clock.expired(1_000_000).is_empty());
        assert_eq!(clock.remaining_ttl(7, 1_000_000), Some(5));
        assert_eq!(clock.keep_alive(7, 10), None);
    }

    // §8: on promote every lease gets now + ttl + extend; expired() is sorted.
    #[test]
    fn promote_refreshes_with_extend() {
        let mut clock = LeaseClock::new();
        clock.grant(9, 5, 0);
        clock.grant(3, 2, 0);
        clock.promote(10_000, 1_000, &[]);
        assert!(clock.expired(12_999).is_empty());
        assert_eq!(clock.expired(13_000), vec![3]);
        assert_eq!(clock.expired(16_000), vec![3, 9]);
        assert_eq!(clock.remaining_ttl(9, 10_000), Some(6));
        clock.demote();
        assert!(clock.expired(100_000).is_empty());
    }

    // §8: keep-alive resets expiry to now + TTL; expired or unknown leases answer None (TTL 0).
    #[test]
    fn keep_alive_resets_expiry() {
        let mut clock = LeaseClock::new();
        clock.promote(0, 0, &[]);
        clock.grant(1, 10, 0);
        assert_eq!(clock.keep_alive(1, 9_000), Some(10));
        assert!(clock.expired(18_999).is_empty());
        assert_eq!(clock.expired(19_000), vec![1]);
        assert_eq!(clock.keep_alive(1, 19_000), None);
        assert_eq!(clock.keep_alive(2, 0), None);
        clock.revoke(1);
        assert!(clock.expired(100_000).is_empty());
    }

    // etcd #9888's fix: a new primary resumes a checkpointed lease from its remaining TTL
    // (plus the extension), the others from their full TTL; checkpoints list live leases.
    #[test]
    fn promote_resumes_from_checkpoints() {
        let mut clock = LeaseClock::new();
        clock.grant(1, 10, 0);
        clock.grant(2, 10, 0);
        assert!(clock.checkpoints(0).is_empty(), "a follower proposes none");
        clock.promote(50_000, 500, &[(1, 3_000), (9, 1)]);
        assert_eq!(clock.expired(53_499), Vec::<LeaseId>::new());
        assert_eq!(clock.expired(53_500), vec![1]);
        assert_eq!(clock.expired(60_500), vec![1, 2]);
        assert_eq!(clock.checkpoints(53_000), vec![(1, 500), (2, 7_500)]);
        assert_eq!(
            clock.checkpoints(54_000),
            vec![(2, 6_500)],
            "an expired lease is revoked, not checkpointed"
        );
    }

    #[test]
    fn sync_keeps_known_expiry() {
        let mut clock = LeaseClock::new();
        clock.promote(0, 0, &[]);
        clock.grant(1, 10, 0);
        clock.grant(2, 10, 0);
        clock.sync(&[(1, 10), (3, 4)], 5_000);
        assert_eq!(clock.len(), 2);
        assert_eq!(clock.expired(9_000), vec![3]);
        assert_eq!(clock.expired(10_000), vec![1, 3]);
    }
}
