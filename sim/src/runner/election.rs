//! Leader-election clients: each round grants a lease, campaigns for the election key
//! (`plan::campaign`), and, when it won, keeps the lease alive while writing under the
//! lock's guard until it resigns. A lost campaign is retried in the next round; a failed
//! keep-alive (or a guarded write that finds the key gone) means the client no longer
//! holds the lock, and it campaigns again with a new lease.

use std::time::Duration;

use faultline_api::{LeaseId, Response, Revision};
use faultline_invariants::history::Outcome;
use madsim::runtime::Handle;
use madsim::task::JoinHandle;

use super::client::{ClientContext, Session};
use crate::plan::{
    campaign, guarded_write, keep_alive, lease_id, resign, ElectionPlan, ElectionRound, Plan,
};

/// Start every election client on its own node (named like a key-value client).
pub(super) fn spawn_elections(plan: &Plan, ctx: &ClientContext) -> Vec<JoinHandle<()>> {
    let handle = Handle::current();
    let settings = ElectionSettings {
        ttl_seconds: plan.scenario.lease_ttl_seconds,
        keep_alive_interval: Duration::from_millis(plan.scenario.keep_alive_interval_ms()),
    };
    plan.elections
        .iter()
        .map(|election| {
            let node = handle
                .create_node()
                .name(format!("client-{}", election.id))
                .ip(election.ip)
                .build();
            let ctx = ctx.clone();
            let election = election.clone();
            node.spawn(async move { run_election(election, settings, ctx).await })
        })
        .collect()
}

#[derive(Clone, Copy)]
struct ElectionSettings {
    ttl_seconds: i64,
    keep_alive_interval: Duration,
}

async fn run_election(plan: ElectionPlan, settings: ElectionSettings, ctx: ClientContext) {
    let mut session = Session::new(plan.id, 1, ctx).await;
    let mut writes = 0;
    for (n, round) in plan.rounds.iter().enumerate() {
        madsim::time::sleep(Duration::from_millis(round.think_time_ms)).await;
        session.target = round.member;
        let lease = lease_id(plan.id, n as u32);
        let granted = session
            .execute(crate::plan::grant_lease(lease, settings.ttl_seconds))
            .await;
        if !matches!(granted, Outcome::Ok(_)) {
            continue;
        }
        let value = format!("c{}-l{n}", plan.id).into_bytes();
        let created = match session.execute(campaign(lease, value)).await {
            Outcome::Ok(Response::Txn(txn)) if txn.succeeded => txn.header.revision,
            // Lost (or unknown): the lease is left to expire; campaign again next round.
            _ => continue,
        };
        let holder = Holder {
            client: plan.id,
            lease,
            created,
        };
        if holder
            .hold(&mut session, round, settings, &mut writes)
            .await
        {
            session.execute(resign(lease)).await;
        }
    }
}

/// A client that won a campaign: its lease and the revision its election key was created at.
struct Holder {
    client: u64,
    lease: LeaseId,
    created: Revision,
}

impl Holder {
    /// Hold the lock for the round's hold time: keep the lease alive every keep-alive
    /// interval and write under the guard in between. True if it still holds the lock at
    /// the end (then it resigns), false once it learned it lost it.
    async fn hold(
        &self,
        session: &mut Session,
        round: &ElectionRound,
        settings: ElectionSettings,
        writes: &mut u32,
    ) -> bool {
        let now = madsim::time::Instant::now();
        let until = now + Duration::from_millis(round.hold_ms);
        let write_interval = Duration::from_millis(round.write_interval_ms);
        let mut next_keep_alive = now + settings.keep_alive_interval;
        let mut next_write = now + write_interval;
        loop {
            let next = next_keep_alive.min(next_write).min(until);
            madsim::time::sleep(next - madsim::time::Instant::now().min(next)).await;
            let now = madsim::time::Instant::now();
            if now >= until {
                return true;
            }
            if now >= next_keep_alive {
                next_keep_alive += settings.keep_alive_interval;
                match session.execute(keep_alive(self.lease)).await {
                    Outcome::Ok(Response::LeaseKeepAlive(answer)) if answer.ttl_seconds > 0 => {}
                    // Not renewed (expired, unknown, unreachable): no longer the holder.
                    _ => return false,
                }
            } else {
                next_write = now + write_interval;
                *writes += 1;
                let value = format!("c{}-w{writes}", self.client).into_bytes();
                match session.execute(guarded_write(self.created, value)).await {
                    Outcome::Ok(Response::Txn(txn)) if !txn.succeeded => return false,
                    _ => {}
                }
            }
        }
    }
}
