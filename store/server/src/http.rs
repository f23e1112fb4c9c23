//! etcd's HTTP endpoints on the client listener (etcd serves them next to gRPC on the client
//! URLs too): `/livez`, `/readyz`, `/health` and `/metrics` in Prometheus's text format.
//!
//! What they mean follows etcd 3.6: `/livez` says the process serves (here: the member's loop
//! answers); `/readyz` says the member can serve traffic: a leader is known and a
//! linearizable read succeeds, which means the leader confirmed its leadership with a quorum
//! and this member applied everything the leader had committed when the read began.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use faultline_api::{RangeRequest, Request};
use faultline_node::MemberMetrics;

use crate::member::LocalMember;

/// How long `/readyz` waits for its linearizable read: a probe answers well within a
/// prober's usual timeout instead of waiting out the member's request timeout.
const READ_CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// What the member's events tell that its state does not: etcd's leader changes counter.
#[derive(Debug, Default)]
pub struct EventCounters {
    leader_changes_seen: AtomicU64,
    /// The last leader this member reported (0: none yet).
    last_leader: AtomicU64,
}

impl EventCounters {
    /// The member reported `leader` (etcd counts every change to a known, different leader).
    pub fn on_leader(&self, leader: Option<u64>) {
        let Some(leader) = leader else { return };
        if self.last_leader.swap(leader, Ordering::Relaxed) != leader {
            self.leader_changes_seen.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The routes, added to the client listener's gRPC router.
pub fn routes(member: LocalMember, counters: Arc<EventCounters>) -> Router {
    let (live, ready, health) = (member.clone(), member.clone(), member.clone());
    Router::new()
        .route("/livez", get(move || livez(live.clone())))
        .route("/readyz", get(move || readyz(ready.clone())))
        .route("/health", get(move || health_json(health.clone())))
        .route(
            "/metrics",
            get(move || metrics(member.clone(), counters.clone())),
        )
}

async fn livez(member: LocalMember) -> (StatusCode, String) {
    match member.handle.metrics().await {
        Some(_) => (StatusCode::OK, "ok\n".into()),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "[-]member failed: the member's loop stopped\nlivez check failed\n".into(),
        ),
    }
}

/// `/readyz`'s checks in etcd's format: one `[+]name ok` or `[-]name failed: why` a line.
async fn readyz(member: LocalMember) -> (StatusCode, String) {
    let checks = ready_checks(&member).await;
    let mut body = String::new();
    for (name, result) in &checks {
        match result {
            Ok(()) => writeln!(body, "[+]{name} ok"),
            Err(why) => writeln!(body, "[-]{name} failed: {why}"),
        }
        .expect("writing to a String");
    }
    if checks.iter().all(|(_, result)| result.is_ok()) {
        body.push_str("ok\n");
        (StatusCode::OK, body)
    } else {
        body.push_str("readyz check failed\n");
        (StatusCode::SERVICE_UNAVAILABLE, body)
    }
}

type Check = (&'static str, Result<(), String>);

async fn ready_checks(member: &LocalMember) -> Vec<Check> {
    let Some(figures) = member.handle.metrics().await else {
        return vec![("member", Err("the member's loop stopped".into()))];
    };
    let leader = match figures.leader {
        Some(_) => Ok(()),
        None => Err("no leader known".to_string()),
    };
    let read = Request::Range(RangeRequest {
        key: b"health".to_vec(),
        ..RangeRequest::default()
    });
    let linearizable_read =
        match real_tokio::time::timeout(READ_CHECK_TIMEOUT, member.client(read)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(error)) => Err(error.to_string()),
            Err(_) => Err(format!("no answer within {READ_CHECK_TIMEOUT:?}")),
        };
    vec![("leader", leader), ("linearizable_read", linearizable_read)]
}

/// etcd 3.4's `/health`: `{"health":"true"}` when ready.
async fn health_json(member: LocalMember) -> (StatusCode, String) {
    let ready = ready_checks(&member).await.iter().all(|(_, r)| r.is_ok());
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, format!("{{\"health\":\"{ready}\"}}"))
}

async fn metrics(member: LocalMember, counters: Arc<EventCounters>) -> (StatusCode, String) {
    match member.handle.metrics().await {
        Some(figures) => (StatusCode::OK, prometheus_text(&figures, &counters)),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "the member's loop stopped\n".into(),
        ),
    }
}

/// The figures under etcd's metric names, in Prometheus's text exposition format.
pub fn prometheus_text(figures: &MemberMetrics, counters: &EventCounters) -> String {
    let leader_changes = counters.leader_changes_seen.load(Ordering::Relaxed);
    let samples: [(&str, &str, &str, u64); 9] = [
        (
            "etcd_server_has_leader",
            "gauge",
            "Whether or not a leader exists. 1 is existence, 0 is not.",
            u64::from(figures.leader.is_some()),
        ),
        (
            "etcd_server_leader_changes_seen_total",
            "counter",
            "The number of leader changes seen.",
            leader_changes,
        ),
        (
            "etcd_server_proposals_committed_total",
            "gauge",
            "The highest Raft log index this member knows committed.",
            figures.commit_index,
        ),
        (
            "etcd_server_proposals_applied_total",
            "gauge",
            "The highest Raft log index this member applied.",
            figures.applied_index,
        ),
        (
            "etcd_server_term",
            "gauge",
            "The member's Raft term.",
            figures.term,
        ),
        (
            "etcd_mvcc_db_total_size_in_bytes",
            "gauge",
            "The size of the key space's serialized state, in bytes.",
            figures.db_size_bytes,
        ),
        (
            "etcd_debugging_mvcc_current_revision",
            "gauge",
            "The key space's current revision.",
            u64::try_from(figures.revision).unwrap_or(0),
        ),
        (
            "etcd_debugging_mvcc_watcher_total",
            "gauge",
            "The number of watchers.",
            figures.watchers,
        ),
        (
            "etcd_debugging_mvcc_watch_stream_total",
            "gauge",
            "The number of watch streams.",
            figures.watch_streams,
        ),
    ];
    let mut text = String::new();
    for (name, kind, help, value) in samples {
        writeln!(
            text,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        )
        .expect("writing to a String");
    }
    text
}
