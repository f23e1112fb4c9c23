//! Starting a member: the data directory, the listeners, the member's loop, the gRPC servers,
//! and a graceful stop on SIGTERM or Ctrl-C.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use faultline_api::ClusterRequest;
use faultline_grpc::Etcd;
use faultline_node::{drive_member, member_channel, NodeConfig, NodeEvent, Observer, RuntimeClock};
use faultline_storage::FileDisk;
use real_tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_stream::{Stream, StreamExt};
use tonic::service::Routes;
use tonic::transport::Server;

use crate::flags::ServerConfig;
use crate::http::{self, EventCounters};
use crate::identity;
use crate::member::LocalMember;
use crate::pb::etcdserverpb::{
    cluster_server::ClusterServer, kv_server::KvServer, lease_server::LeaseServer,
    maintenance_server::MaintenanceServer, watch_server::WatchServer,
};
use crate::pb::peer::peer_server::PeerServer;
use crate::peer::{PeerService, Peers};

/// Why a member could not start or stopped; printed as the process's last line.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{0}")]
    DataDir(String),
    #[error("cannot listen on {addr} ({flag}): {source}")]
    Listen {
        flag: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("gRPC server on {addr}: {source}")]
    Serve {
        addr: SocketAddr,
        source: tonic::transport::Error,
    },
}

/// Logs what the member reports (elections at info, the rest at debug) and counts what
/// `/metrics` reports from events.
struct LogObserver {
    counters: Arc<EventCounters>,
}

impl Observer for LogObserver {
    fn on_event(&self, member: u64, event: NodeEvent) {
        if let NodeEvent::RoleChanged { leader, .. } = &event {
            self.counters.on_leader(*leader);
        }
        match event {
            NodeEvent::Applied { .. } | NodeEvent::WriteAcked { .. } => {
                tracing::trace!(member = format!("{member:x}"), ?event)
            }
            NodeEvent::RoleChanged { .. } | NodeEvent::Recovered { .. } => {
                tracing::info!(member = format!("{member:x}"), ?event)
            }
            _ => tracing::debug!(member = format!("{member:x}"), ?event),
        }
    }
}

/// How long a call to a peer may take: an election timeout.
fn peer_timeout_ms(config: &ServerConfig) -> u64 {
    config.tick_interval_ms * config.election_timeout_ticks
}

/// The member's settings; etcd's defaults where etcd has one.
fn node_config(config: &ServerConfig) -> NodeConfig {
    let election_timeout_ms = config.tick_interval_ms * config.election_timeout_ticks;
    // Outside a simulation the member's own randomness (election jitter, lease IDs) need not
    // replay: it comes from the clock and the process ID.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    NodeConfig {
        id: config.id,
        members: config.members.clone(),
        initial_cluster_state: config.initial_cluster_state,
        attributes: faultline_node::Attributes {
            name: config.name.clone(),
            client_urls: config.advertise_client_urls.clone(),
        },
        tick_interval_ms: config.tick_interval_ms,
        election_timeout_ticks: config.election_timeout_ticks,
        heartbeat_interval_ticks: 1,
        pre_vote: true,
        check_quorum: true,
        max_entries_per_append: 256,
        // etcd: 5 s plus twice the election timeout.
        request_timeout_ms: 5_000 + 2 * election_timeout_ms,
        peer_timeout_ms: peer_timeout_ms(config),
        rng_seed: nanos ^ u64::from(std::process::id()).rotate_left(32),
        watch_progress_notify_interval_ms: 10 * 60 * 1000,
        watch_poll_timeout_ms: 1_000,
        watch_slow_backlog_responses: 128,
        max_watch_response_bytes: 1536 * 1024,
        snapshot_threshold_entries: 10_000,
        snapshot_catch_up_entries: 5_000,
        wal_segment_size_bytes: 64 * 1024 * 1024,
        // etcd's --experimental-lease-checkpoint-interval default.
        lease_checkpoint_interval_ms: 5 * 60 * 1000,
        canary: None,
        buggify: faultline_node::Buggify::default(),
    }
}

async fn bind_all(flag: &'static str, addrs: &[SocketAddr]) -> Result<Vec<TcpListener>, RunError> {
    let mut listeners = Vec::new();
    for &addr in addrs {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| RunError::Listen { flag, addr, source })?;
        listeners.push(listener);
    }
    Ok(listeners)
}

/// Run the member until SIGTERM or Ctrl-C. Everything acknowledged is already on disk (the
/// member syncs its WAL before it answers), so stopping loses nothing.
pub async fn serve(config: ServerConfig) -> Result<(), RunError> {
    let peer_names = config
        .names
        .iter()
        .map(|(id, name)| (config.members[id], name.clone()))
        .collect();
    let peers = Peers::new(Duration::from_millis(peer_timeout_ms(&config)), peer_names);
    let cluster_id = identity::claim_data_dir(&config, &peers)
        .await
        .map_err(RunError::DataDir)?;
    let dir = &config.data_dir;
    let disk = FileDisk::open(dir.join("member"))
        .map_err(|e| RunError::DataDir(format!("--data-dir {}: {e}", dir.display())))?;
    let client_listeners = bind_all("--listen-client-urls", &config.listen_client).await?;
    let peer_listeners = bind_all("--listen-peer-urls", &config.listen_peer).await?;
    let metrics_listeners = bind_all("--listen-metrics-urls", &config.listen_metrics).await?;
    let node = node_config(&config);
    let prober = real_tokio::spawn(probe_peers(config.clone(), peers.clone()));
    let (handle, inbox) = member_channel();
    let counters = Arc::new(EventCounters::default());
    let member_task = real_tokio::spawn(drive_member(
        node,
        Box::new(disk),
        Arc::new(LogObserver {
            counters: counters.clone(),
        }),
        Arc::new(RuntimeClock::new()),
        inbox,
        Arc::new(peers.clone()),
    ));
    let etcd = Etcd {
        member: LocalMember {
            handle: handle.clone(),
            peers,
            // Two election timeouts: the first election after a start, with pre-vote.
            leader_wait: Duration::from_millis(2 * peer_timeout_ms(&config)),
        },
    };
    let (stop_tx, stop_rx) = real_tokio::sync::watch::channel(false);
    let mut servers = Vec::new();
    for listener in client_listeners {
        servers.push(real_tokio::spawn(serve_clients(
            listener,
            etcd.clone(),
            counters.clone(),
            stop_rx.clone(),
        )));
    }
    for listener in metrics_listeners {
        let routes = http::routes(etcd.member.clone(), counters.clone());
        servers.push(real_tokio::spawn(serve_http(
            listener,
            routes,
            stop_rx.clone(),
        )));
    }
    for listener in peer_listeners {
        let service = PeerService::new(handle.clone());
        servers.push(real_tokio::spawn(serve_peers(
            listener,
            service,
            stop_rx.clone(),
        )));
    }
    tracing::info!(
        name = %config.name,
        id = format!("{:x}", config.id),
        cluster = format!("{cluster_id:x}"),
        client = ?config.listen_client,
        peer = ?config.listen_peer,
        metrics = ?config.listen_metrics,
        "serving"
    );
    wait_for_stop_signal().await;
    tracing::info!("stopping: no new requests; finishing the ones in flight");
    let _ = stop_tx.send(true);
    let mut result = Ok(());
    for server in servers {
        if let Ok(Err(error)) = server.await {
            result = Err(error);
        }
    }
    prober.abort();
    member_task.abort();
    result
}

/// Call the other members of --initial-cluster that this member has not reached yet, at start
/// and every few seconds after, so that an unreachable peer is named in the log (by
/// `Peers`) even before Raft has a message for it. A peer's own member list is the cheapest
/// call it answers.
async fn probe_peers(config: ServerConfig, peers: Peers) {
    let list = ClusterRequest::MemberList {
        linearizable: false,
    };
    loop {
        for (&id, &addr) in &config.members {
            if id != config.id && !peers.reached(addr) {
                let _ = peers.forward_cluster(addr, &list).await;
            }
        }
        real_tokio::time::sleep(Duration::from_secs(5)).await;
    }
}

/// The listener's connections with Nagle's algorithm off: small gRPC messages (a Raft
/// heartbeat, a forwarded request, an answer) otherwise wait for the peer's delayed ACK
/// (~40 ms on Linux) before they leave.
fn incoming(
    listener: TcpListener,
) -> impl Stream<Item = std::io::Result<real_tokio::net::TcpStream>> {
    TcpListenerStream::new(listener).map(|stream| {
        let stream = stream?;
        stream.set_nodelay(true)?;
        Ok(stream)
    })
}

async fn stopped(mut stop: real_tokio::sync::watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

async fn serve_clients(
    listener: TcpListener,
    etcd: Etcd<LocalMember>,
    counters: Arc<EventCounters>,
    stop: real_tokio::sync::watch::Receiver<bool>,
) -> Result<(), RunError> {
    let addr = listener
        .local_addr()
        .expect("a bound listener has an address");
    let mut grpc = Routes::builder();
    grpc.add_service(KvServer::new(etcd.clone()))
        .add_service(WatchServer::new(etcd.clone()))
        .add_service(LeaseServer::new(etcd.clone()))
        .add_service(ClusterServer::new(etcd.clone()))
        .add_service(MaintenanceServer::new(etcd.clone()));
    // One port for gRPC (HTTP/2) and the HTTP endpoints (HTTP/1.1 too), as etcd's client URLs.
    let router = grpc
        .routes()
        .into_axum_router()
        .merge(http::routes(etcd.member, counters));
    Server::builder()
        .accept_http1(true)
        .add_routes(Routes::from(router))
        .serve_with_incoming_shutdown(incoming(listener), stopped(stop))
        .await
        .map_err(|source| RunError::Serve { addr, source })
}

/// The HTTP endpoints alone (`--listen-metrics-urls`).
async fn serve_http(
    listener: TcpListener,
    routes: axum::Router,
    stop: real_tokio::sync::watch::Receiver<bool>,
) -> Result<(), RunError> {
    let addr = listener
        .local_addr()
        .expect("a bound listener has an address");
    Server::builder()
        .accept_http1(true)
        .add_routes(Routes::from(routes))
        .serve_with_incoming_shutdown(incoming(listener), stopped(stop))
        .await
        .map_err(|source| RunError::Serve { addr, source })
}

async fn serve_peers(
    listener: TcpListener,
    service: PeerService,
    stop: real_tokio::sync::watch::Receiver<bool>,
) -> Result<(), RunError> {
    let addr = listener
        .local_addr()
        .expect("a bound listener has an address");
    Server::builder()
        .add_service(PeerServer::new(service))
        .serve_with_incoming_shutdown(incoming(listener), stopped(stop))
        .await
        .map_err(|source| RunError::Serve { addr, source })
}

async fn wait_for_stop_signal() {
    use real_tokio::signal::unix::{signal, SignalKind};
    let mut terminate = signal(SignalKind::terminate()).expect("install the SIGTERM handler");
    real_tokio::select! {
        biased;
        _ = terminate.recv() => {}
        _ = real_tokio::signal::ctrl_c() => {}
    }
}
