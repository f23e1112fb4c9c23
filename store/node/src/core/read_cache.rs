//! The stable-leader-read-cache canary (issue 13's bug that only a swarm-drawn fault subset
//! reaches): a leader that has held its term for `LONG_TERM_TICKS` ticks takes a copy of its
//! key space as a "read cache" for linearizable ranges, and the bug is that only a change of
//! term or role refreshes it, never its own applies. Any fault that ends the leader's term
//! (a crash of the leader, its isolation, a pause or a slow clock past the election timeout,
//! a disk fault that stops it) throws the cache away before it can go stale: a fixed mix with
//! every fault kind on ends terms every few seconds and never reaches it. A seed whose swarm
//! draw leaves out every kind that deposes leaders (or draws long quiet spells) keeps one
//! leader for the whole run, and its reads go stale: a history no linearization explains.
//! Only with the `canaries` feature and `NodeConfig::canary`.

use faultline_api::{EtcdError, Request, Response};
use faultline_raft::Role;

use crate::Canary;

use super::NodeCore;

/// Ticks of one term as leader before the cache is taken: 5 s at the default 10 ms tick.
const LONG_TERM_TICKS: u64 = 500;

impl NodeCore {
    /// On each tick: count the ticks this member has led its term, and take the cache when
    /// the term has lasted long enough.
    pub(super) fn read_cache_tick(&mut self) {
        if !self.canary_active(Canary::StableLeaderReadCache) || self.role != Role::Leader {
            return;
        }
        self.leader_ticks += 1;
        if self.leader_ticks == LONG_TERM_TICKS {
            tracing::debug!(member = self.config.id, "canary: read cache taken");
            self.read_cache = Some(Box::new(self.kv.clone()));
        }
    }

    /// A change of term or role: the cache and the count start over.
    pub(super) fn read_cache_reset(&mut self) {
        self.leader_ticks = 0;
        self.read_cache = None;
    }

    /// A linearizable range answered from the cache, without a ReadIndex round and from a
    /// key space that stopped at the cache's revision. `None`: not cached (no canary, no
    /// cache yet, or not a range).
    pub(super) fn canary_cached_read(
        &mut self,
        request: &Request,
    ) -> Option<Result<Response, EtcdError>> {
        let cache = self.read_cache.as_ref()?;
        if !matches!(request, Request::Range(_)) {
            return None;
        }
        Some(cache.read(request).map(|mut response| {
            self.stamp(&mut response);
            response
        }))
    }
}
