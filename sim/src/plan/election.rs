//! The leader-election profile: clients campaign for one key by create-if-absent on a short
//! lease, keep the lease alive while they hold the lock, write under its guard, and resign.
//! What a round does depends on the run (won or lost, keep-alive answered or not), so the
//! plan holds each client's rounds and the requests' exact shapes; `runner::election`
//! plays them. The checker identifies lock operations by these shapes.

use std::net::IpAddr;

use faultline_api::{
    Compare, CompareResult, CompareTarget, LeaseGrantRequest, LeaseId, LeaseKeepAliveRequest,
    LeaseRevokeRequest, PutRequest, RangeRequest, Request, RequestOp, Revision, TxnRequest,
};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::scenario::Scenario;

/// The key whose creator holds the lock.
pub const ELECTION_KEY: &[u8] = b"/election/leader";
/// The key the holder writes under the lock's guard.
pub const GUARDED_KEY: &[u8] = b"/election/data";

/// One campaign of an election client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ElectionRound {
    /// Pause before granting the round's lease and campaigning.
    pub think_time_ms: u64,
    /// The member the round's requests go to first.
    pub member: u64,
    /// How long a winner holds the lock before it resigns.
    pub hold_ms: u64,
    /// A holder writes under the lock's guard this often.
    pub write_interval_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ElectionPlan {
    pub id: u64,
    pub ip: IpAddr,
    pub rounds: Vec<ElectionRound>,
}

/// The rounds of one election client, filling the workload's time.
pub(super) fn generate_rounds(rng: &mut ChaCha8Rng, scenario: &Scenario) -> Vec<ElectionRound> {
    let mut rounds = Vec::new();
    let mut elapsed_ms = 0;
    while elapsed_ms < scenario.workload_duration_ms {
        let round = ElectionRound {
            think_time_ms: rng.random_range(50..=600),
            member: rng.random_range(1..=u64::from(scenario.members)),
            hold_ms: rng.random_range(500..=3000),
            write_interval_ms: rng.random_range(50..=300),
        };
        // A lost campaign takes little time, a won one its hold: plan for a mix.
        elapsed_ms += round.think_time_ms + round.hold_ms / 2;
        rounds.push(round);
    }
    rounds
}

pub fn grant_lease(lease: LeaseId, ttl_seconds: i64) -> Request {
    Request::LeaseGrant(LeaseGrantRequest {
        ttl_seconds,
        id: lease,
    })
}

/// The campaign: `compare: [create_revision(key) == 0]`, `success: [Put{key, value,
/// lease}]`, `failure: [Range key]`. The txn's revision is the holder's create revision.
pub fn campaign(lease: LeaseId, value: Vec<u8>) -> Request {
    Request::Txn(TxnRequest {
        compare: vec![Compare {
            result: CompareResult::Equal,
            target: CompareTarget::CreateRevision(0),
            key: ELECTION_KEY.to_vec(),
            range_end: Vec::new(),
        }],
        success: vec![RequestOp::Put(PutRequest {
            key: ELECTION_KEY.to_vec(),
            value,
            lease,
            ..PutRequest::default()
        })],
        failure: vec![RequestOp::Range(RangeRequest {
            key: ELECTION_KEY.to_vec(),
            ..RangeRequest::default()
        })],
    })
}

/// A write under the lock's guard: it applies only while the election key is still the one
/// this holder created (`create_revision == created`), as etcd's concurrency package guards
/// a leader's writes.
pub fn guarded_write(created: Revision, value: Vec<u8>) -> Request {
    Request::Txn(TxnRequest {
        compare: vec![Compare {
            result: CompareResult::Equal,
            target: CompareTarget::CreateRevision(created),
            key: ELECTION_KEY.to_vec(),
            range_end: Vec::new(),
        }],
        success: vec![RequestOp::Put(PutRequest {
            key: GUARDED_KEY.to_vec(),
            value,
            ..PutRequest::default()
        })],
        failure: vec![RequestOp::Range(RangeRequest {
            key: ELECTION_KEY.to_vec(),
            ..RangeRequest::default()
        })],
    })
}

pub fn keep_alive(lease: LeaseId) -> Request {
    Request::LeaseKeepAlive(LeaseKeepAliveRequest { id: lease })
}

/// Resign: revoke the lease, which deletes the election key with it.
pub fn resign(lease: LeaseId) -> Request {
    Request::LeaseRevoke(LeaseRevokeRequest { id: lease })
}
