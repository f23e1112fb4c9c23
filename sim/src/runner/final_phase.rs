//! The final phase, after the nemesis healed everything: liveness (a write must succeed
//! within the heal timeout), a linearizable read of the whole key space (the end state the
//! checker compares with, like etcd's robustness "tombstone" put), and every member's HashKV
//! at the final revision (convergence).

use std::collections::BTreeMap;
use std::time::Duration;

use faultline_api::{
    prefix_range_end, ClusterRequest, ClusterResponse, PutRequest, RangeRequest, Request, Revision,
};
use faultline_invariants::history::Outcome;
use madsim::runtime::Handle;
use madsim::time::Instant;

use super::client::{grpc_call, grpc_cluster_call, ClientContext, Session};

/// Each member's (compact revision, hash) at the final revision; `None` if it did not
/// answer in time.
pub(super) type FinalHashes = BTreeMap<u64, Option<(i64, u32)>>;

/// Run the final phase on a client node of its own. Returns whether the healed write
/// succeeded, and the members' hashes (empty if it did not).
pub(super) async fn run_final_phase(
    ctx: &ClientContext,
    heal_timeout: Duration,
) -> (bool, FinalHashes) {
    let final_node = Handle::current()
        .create_node()
        .name("client-final")
        .ip("10.1.1.1".parse().expect("ip"))
        .build();
    let ctx = ctx.clone();
    final_node
        .spawn(async move { final_phase(ctx, heal_timeout).await })
        .await
        .expect("final phase")
}

async fn final_phase(ctx: ClientContext, heal_timeout: Duration) -> (bool, FinalHashes) {
    let mut session = Session::new(
        crate::names::FINAL_CLIENT_ID,
        ctx.members.ids()[0],
        ctx.clone(),
    )
    .await;
    let deadline = Instant::now() + heal_timeout;
    let Some(final_revision) = write_once_healed(&mut session, deadline).await else {
        return (false, BTreeMap::new());
    };
    read_everything(&mut session, deadline).await;
    let members = current_members(&session, deadline).await;
    let hashes = member_hashes(&session, &members, final_revision, deadline).await;
    (true, hashes)
}

/// Put until one succeeds or the deadline passes; the revision of the successful put.
async fn write_once_healed(session: &mut Session, deadline: Instant) -> Option<Revision> {
    while Instant::now() < deadline {
        let put = Request::Put(PutRequest {
            key: b"final".to_vec(),
            value: b"healed".to_vec(),
            ..PutRequest::default()
        });
        match session.execute(put).await {
            Outcome::Ok(response) => return Some(response.header().revision),
            _ => madsim::time::sleep(Duration::from_millis(100)).await,
        }
    }
    None
}

/// The members of the cluster at the end, as its leader lists them (it applied every change:
/// the healed write committed after them), that have a node to ask: a change the operator
/// gave up on may have committed after all, and a member it added may never have started.
async fn current_members(session: &Session, deadline: Instant) -> Vec<u64> {
    let known = session.ctx.members.snapshot();
    while Instant::now() < deadline {
        for (&member, &addr) in &known {
            let status = ClusterRequest::Status;
            let Ok(Ok(ClusterResponse::Status(status))) =
                grpc_cluster_call(addr, status, Duration::from_millis(500)).await
            else {
                continue;
            };
            if status.leader != member {
                continue;
            }
            let list = ClusterRequest::MemberList {
                linearizable: false,
            };
            if let Ok(Ok(response)) =
                grpc_cluster_call(addr, list, Duration::from_millis(500)).await
            {
                let listed = response.members().expect("a member list");
                return listed
                    .iter()
                    .map(|m| m.id)
                    .filter(|id| known.contains_key(id))
                    .collect();
            }
        }
        madsim::time::sleep(Duration::from_millis(50)).await;
    }
    known.keys().copied().collect()
}

/// A final linearizable read of the whole key space pins the end state for the checker.
async fn read_everything(session: &mut Session, deadline: Instant) {
    let prefix = &session.ctx.key_prefix;
    let read_all = Request::Range(RangeRequest {
        key: prefix.clone(),
        range_end: prefix_range_end(prefix),
        ..RangeRequest::default()
    });
    while Instant::now() < deadline {
        if let Outcome::Ok(_) = session.execute(read_all.clone()).await {
            break;
        }
        madsim::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every member must reach the final revision and agree on HashKV there. Members are asked
/// in turn until each answered or the deadline passed, so one slow member does not use up
/// the others' time (and the report names every member that lagged).
async fn member_hashes(
    session: &Session,
    members: &[u64],
    final_revision: Revision,
    deadline: Instant,
) -> FinalHashes {
    let mut hashes: FinalHashes = members.iter().map(|&member| (member, None)).collect();
    while Instant::now() < deadline {
        let waiting: Vec<u64> = hashes
            .iter()
            .filter(|(_, hash)| hash.is_none())
            .map(|(&member, _)| member)
            .collect();
        if waiting.is_empty() {
            break;
        }
        for member in waiting {
            let request = Request::HashKv(faultline_api::HashKvRequest {
                revision: final_revision,
            });
            let addr = session
                .ctx
                .members
                .addr(member)
                .expect("members do not change now");
            if let Ok(Ok(faultline_api::Response::HashKv(hash))) =
                grpc_call(addr, request, Duration::from_millis(500)).await
            {
                hashes.insert(member, Some((hash.compact_revision, hash.hash)));
            }
        }
        madsim::time::sleep(Duration::from_millis(50)).await;
    }
    hashes
}
