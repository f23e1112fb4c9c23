//! The stable-leader-read-cache canary (issue 13's bug that only a swarm-drawn fault subset
//! reaches): the leader of the cluster's first term, once it has led for `QUIET_LEADERSHIP`
//! of simulated time without any voter silent for an election timeout, takes a copy of its
//! key space as a "read cache" for linearizable ranges (a start-up optimisation for a
//! cluster that has been stable from the start), and the bug is that only a change of term
//! or role refreshes it, never its own applies. Any fault that deposes the first leader or
//! silences a member for an election timeout (a crash, an isolation, a pause, a partition, a
//! disk fault that stops it, a slow disk or a delay spike long enough) rules the cache out
//! for good: a fixed mix with every kind on disturbs someone within a few seconds and never
//! reaches it, and the quiet time after the last fault window comes too late. A seed whose
//! swarm draw leaves out every disturbing kind keeps its first leader quiet long enough, and
//! its reads go stale. Only with the `canaries` feature and `NodeConfig::canary`.

use std::collections::BTreeMap;
use std::time::Duration;

use faultline_api::{EtcdError, Request, Response};
use faultline_mvcc::KvStore;
use faultline_raft::{NodeId, Role};
use tokio::time::Instant;

use crate::Canary;

use super::NodeCore;

/// How long a leader must have led a quiet cluster before it takes the cache.
const QUIET_LEADERSHIP: Duration = Duration::from_secs(6);

/// The canary's state on one member (empty without the canary).
#[derive(Default)]
pub(super) struct ReadCache {
    /// Since when this member has led a quiet cluster.
    quiet_since: Option<Instant>,
    /// A voter was silent for an election timeout in this term: no cache in it.
    disturbed: bool,
    /// When each peer was last heard from.
    heard: BTreeMap<NodeId, Instant>,
    cache: Option<Box<KvStore>>,
}

impl NodeCore {
    /// On each tick (simulated time, not the member's own clock) of the first term's leader:
    /// start the quiet time when it leads, rule the cache out for the term when a voter
    /// stayed silent for an election timeout, and take the cache once it has lasted long
    /// enough.
    pub(super) fn read_cache_tick(&mut self, now: Instant) {
        if !self.canary_active(Canary::StableLeaderReadCache)
            || self.role != Role::Leader
            || self.term.0 != 1
            || self.read_cache.disturbed
        {
            return;
        }
        let timeout = Duration::from_millis(self.config.election_timeout_ms());
        let me = NodeId(self.config.id);
        let state = &mut self.read_cache;
        let since = *state.quiet_since.get_or_insert(now);
        let silent = self.raft.conf_state().voters.iter().any(|&voter| {
            let heard = *state.heard.entry(voter).or_insert(now);
            voter != me && now.duration_since(heard) > timeout
        });
        if silent {
            state.disturbed = true;
            state.cache = None;
        } else if state.cache.is_none() && now.duration_since(since) >= QUIET_LEADERSHIP {
            tracing::debug!(member = self.config.id, "canary: read cache taken");
            state.cache = Some(Box::new(self.kv.clone()));
        }
    }

    /// A message from `peer` arrived.
    pub(super) fn read_cache_heard(&mut self, peer: NodeId) {
        if self.canary_active(Canary::StableLeaderReadCache) {
            self.read_cache.heard.insert(peer, Instant::now());
        }
    }

    /// A change of term or role: the cache and the quiet time start over.
    pub(super) fn read_cache_reset(&mut self) {
        self.read_cache = ReadCache::default();
    }

    /// A linearizable range answered from the cache, without a ReadIndex round and from a
    /// key space that stopped at the cache's revision. `None`: not cached (no canary, no
    /// cache yet, or not a range).
    pub(super) fn canary_cached_read(
        &mut self,
        request: &Request,
    ) -> Option<Result<Response, EtcdError>> {
        let cache = self.read_cache.cache.as_ref()?;
        if !matches!(request, Request::Range(_)) {
            return None;
        }
        Some(cache.read(request).map(|mut response| {
            self.stamp(&mut response);
            response
        }))
    }
}
