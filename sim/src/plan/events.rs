//! The event profile (Kubernetes events: written at a high rate, read rarely, expiring with
//! a short lease): each client creates ever-new keys under `/events/`, each attached to
//! its current lease (many keys per lease), grants a new lease every so often, keeps each
//! lease alive for a while at the keep-alive period, then lets it expire.

use faultline_api::{
    prefix_range_end, LeaseGrantRequest, LeaseId, LeaseKeepAliveRequest, PutRequest, RangeRequest,
    Request,
};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::keyspace::EVENTS_PREFIX;
use super::scenario::Scenario;
use super::workload::{lease_id, Fill, PlannedOp};
/// A client starts a new lease this often (drawn per lease).
const LEASE_ROTATION_MS: (u64, u64) = (800, 2000);
/// A lease is kept alive for this long after its grant (drawn per lease), then abandoned.
const LEASE_KEPT_ALIVE_MS: (u64, u64) = (1000, 4000);
/// Share of the ops that list the events (in pages of `EVENT_LIST_PAGE_LIMIT`).
const LIST_PROBABILITY: f64 = 0.03;
const EVENT_LIST_PAGE_LIMIT: i64 = 50;

/// A lease the client still keeps alive: when its next keep-alive is due and until when.
struct KeptLease {
    id: LeaseId,
    next_keep_alive_ms: u64,
    keep_until_ms: u64,
}

/// What one event client does next, in planned time (`elapsed_ms`).
struct EventClient {
    client: u64,
    keep_alive_interval_ms: u64,
    ttl_seconds: i64,
    kept: Vec<KeptLease>,
    leases: u32,
    current: Option<LeaseId>,
    next_grant_ms: u64,
    events: u32,
}

impl EventClient {
    fn next(&mut self, rng: &mut ChaCha8Rng, elapsed_ms: u64) -> (Request, Fill) {
        self.kept
            .retain(|lease| lease.next_keep_alive_ms <= lease.keep_until_ms);
        if let Some(lease) = self
            .kept
            .iter_mut()
            .find(|lease| lease.next_keep_alive_ms <= elapsed_ms)
        {
            lease.next_keep_alive_ms += self.keep_alive_interval_ms;
            let request = LeaseKeepAliveRequest { id: lease.id };
            return (Request::LeaseKeepAlive(request), Fill::None);
        }
        if self.current.is_none() || elapsed_ms >= self.next_grant_ms {
            return self.grant(rng, elapsed_ms);
        }
        if rng.random_bool(LIST_PROBABILITY) {
            let list = RangeRequest {
                key: EVENTS_PREFIX.to_vec(),
                range_end: prefix_range_end(EVENTS_PREFIX),
                limit: EVENT_LIST_PAGE_LIMIT,
                ..RangeRequest::default()
            };
            return (Request::Range(list), Fill::paginate());
        }
        let name = format!("c{}-{}", self.client, self.events);
        self.events += 1;
        let mut key = EVENTS_PREFIX.to_vec();
        key.extend_from_slice(name.as_bytes());
        let put = PutRequest {
            key,
            value: format!("event-{name}").into_bytes(),
            lease: self.current.expect("a lease was granted first"),
            ..PutRequest::default()
        };
        (Request::Put(put), Fill::None)
    }

    fn grant(&mut self, rng: &mut ChaCha8Rng, elapsed_ms: u64) -> (Request, Fill) {
        let id = lease_id(self.client, self.leases);
        self.leases += 1;
        self.current = Some(id);
        self.next_grant_ms =
            elapsed_ms + rng.random_range(LEASE_ROTATION_MS.0..=LEASE_ROTATION_MS.1);
        self.kept.push(KeptLease {
            id,
            next_keep_alive_ms: elapsed_ms + self.keep_alive_interval_ms,
            keep_until_ms: elapsed_ms
                + rng.random_range(LEASE_KEPT_ALIVE_MS.0..=LEASE_KEPT_ALIVE_MS.1),
        });
        let request = LeaseGrantRequest {
            ttl_seconds: self.ttl_seconds,
            id,
        };
        (Request::LeaseGrant(request), Fill::None)
    }
}

/// The ops of one event client.
pub(super) fn generate_event_ops(
    rng: &mut ChaCha8Rng,
    scenario: &Scenario,
    client: u64,
) -> Vec<PlannedOp> {
    let mut state = EventClient {
        client,
        keep_alive_interval_ms: scenario.keep_alive_interval_ms(),
        ttl_seconds: scenario.lease_ttl_seconds,
        kept: Vec::new(),
        leases: 0,
        current: None,
        next_grant_ms: 0,
        events: 0,
    };
    let mut ops = Vec::new();
    let mut elapsed_ms = 0;
    while elapsed_ms < scenario.workload_duration_ms {
        let think_time_ms = rng.random_range(0..=scenario.think_time_ms_max);
        elapsed_ms += think_time_ms + scenario.tick_interval_ms;
        let (request, fill) = state.next(rng, elapsed_ms);
        ops.push(PlannedOp {
            think_time_ms,
            member: rng.random_range(1..=u64::from(scenario.members)),
            request,
            fill,
        });
    }
    ops
}
