//! The command line: etcd's flags for starting a member, checked into a [`ServerConfig`].
//!
//! Flag names and defaults follow etcd's (`etcd --help`); only `http://` URLs are served (no
//! TLS yet). Errors name the flag and say what is wrong, as etcd's do.

use std::collections::BTreeMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

use clap::{Parser, ValueEnum};
use faultline_node::core::member_id_for;
use faultline_node::InitialClusterState;

use crate::cluster_id::cluster_id_for;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ClusterState {
    New,
    Existing,
}

#[derive(Debug, Parser)]
#[command(
    name = "faultline-server",
    version,
    about = "One member of a Faultline cluster, serving etcd's v3 gRPC API"
)]
pub struct Flags {
    /// Human-readable name of this member (must be a name in --initial-cluster).
    #[arg(long, default_value = "default")]
    pub name: String,
    /// Directory for the member's log and snapshots (default: ${name}.etcd).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Comma-separated URLs to serve clients on.
    #[arg(long, default_value = "http://localhost:2379")]
    pub listen_client_urls: String,
    /// Comma-separated client URLs of this member, as the other members and clients see them.
    #[arg(long, default_value = "http://localhost:2379")]
    pub advertise_client_urls: String,
    /// Comma-separated URLs to serve /livez, /readyz, /health and /metrics on, besides the
    /// client URLs (which serve them too).
    #[arg(long, default_value = "")]
    pub listen_metrics_urls: String,
    /// Comma-separated URLs to serve the other members on.
    #[arg(long, default_value = "http://localhost:2380")]
    pub listen_peer_urls: String,
    /// This member's peer URL, as the other members see it (one URL).
    #[arg(long, default_value = "http://localhost:2380")]
    pub initial_advertise_peer_urls: String,
    /// Every member at start: name=peerURL pairs, comma-separated.
    #[arg(long, default_value = "default=http://localhost:2380")]
    pub initial_cluster: String,
    /// `new` bootstraps the members of --initial-cluster; `existing` joins a running cluster
    /// that added this member (etcdctl member add) first.
    #[arg(long, value_enum, default_value = "new")]
    pub initial_cluster_state: ClusterState,
    /// Accepted for etcd compatibility; the cluster is identified by its members.
    #[arg(long, default_value = "etcd-cluster")]
    pub initial_cluster_token: String,
    /// Time of a heartbeat interval, in milliseconds (Raft's tick).
    #[arg(long, default_value_t = 100)]
    pub heartbeat_interval: u64,
    /// Time of an election timeout, in milliseconds (a multiple of --heartbeat-interval).
    #[arg(long, default_value_t = 1000)]
    pub election_timeout: u64,
}

/// What the flags mean, checked.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub name: String,
    pub data_dir: PathBuf,
    pub listen_client: Vec<SocketAddr>,
    pub advertise_client_urls: Vec<String>,
    pub listen_peer: Vec<SocketAddr>,
    /// Where the HTTP endpoints are served besides the client URLs (none by default).
    pub listen_metrics: Vec<SocketAddr>,
    /// This member's ID (derived from its advertised peer address, as every member derives it).
    pub id: u64,
    /// Every member of --initial-cluster by ID, with its peer address.
    pub members: BTreeMap<u64, SocketAddr>,
    /// The names of --initial-cluster by ID.
    pub names: BTreeMap<u64, String>,
    pub initial_cluster_state: InitialClusterState,
    /// The cluster's ID when --initial-cluster-state is `new` (derived from the initial
    /// members, as every one of them derives it); a joining member learns it from its peers.
    pub cluster_id: Option<u64>,
    pub tick_interval_ms: u64,
    pub election_timeout_ticks: u64,
}

/// A flag that does not make sense; the message names it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct FlagError(pub String);

fn bad(message: impl Into<String>) -> FlagError {
    FlagError(message.into())
}

/// `http://host:port` as a socket address (resolved; IPv4 first, so that `localhost` is the
/// same address on every member).
pub fn parse_url(flag: &str, url: &str) -> Result<SocketAddr, FlagError> {
    let url = url.trim();
    if url.starts_with("https://") || url.starts_with("unixs://") {
        return Err(bad(format!(
            "--{flag}: {url}: TLS is not supported yet (use http://)"
        )));
    }
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| bad(format!("--{flag}: {url}: expected http://host:port")))?;
    let host_port = rest.trim_end_matches('/');
    if host_port.contains('/') {
        return Err(bad(format!("--{flag}: {url}: a URL with a path")));
    }
    let addrs: Vec<SocketAddr> = host_port
        .to_socket_addrs()
        .map_err(|e| bad(format!("--{flag}: {url}: {e}")))?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| addrs.first())
        .copied()
        .ok_or_else(|| bad(format!("--{flag}: {url}: resolves to no address")))
}

fn parse_urls(flag: &str, urls: &str) -> Result<Vec<SocketAddr>, FlagError> {
    let parsed: Vec<SocketAddr> = urls
        .split(',')
        .filter(|u| !u.trim().is_empty())
        .map(|u| parse_url(flag, u))
        .collect::<Result<_, _>>()?;
    if parsed.is_empty() {
        return Err(bad(format!("--{flag} is empty")));
    }
    Ok(parsed)
}

/// `name=url,name=url`: the members by name (one URL each).
fn parse_initial_cluster(text: &str) -> Result<Vec<(String, SocketAddr)>, FlagError> {
    let mut members: Vec<(String, SocketAddr)> = Vec::new();
    for pair in text.split(',').filter(|p| !p.trim().is_empty()) {
        let (name, url) = pair.split_once('=').ok_or_else(|| {
            bad(format!(
                "--initial-cluster: {pair:?} is not name=URL (example: one=http://10.0.0.1:2380)"
            ))
        })?;
        let addr = parse_url("initial-cluster", url)?;
        if members.iter().any(|(n, _)| n == name) {
            return Err(bad(format!(
                "--initial-cluster: member {name} is listed twice (one peer URL per member)"
            )));
        }
        if members.iter().any(|(_, a)| *a == addr) {
            return Err(bad(format!(
                "--initial-cluster: two members share the peer URL {url}"
            )));
        }
        members.push((name.trim().to_string(), addr));
    }
    if members.is_empty() {
        return Err(bad("--initial-cluster is empty"));
    }
    Ok(members)
}

impl Flags {
    pub fn check(&self) -> Result<ServerConfig, FlagError> {
        let cluster = parse_initial_cluster(&self.initial_cluster)?;
        let advertised = parse_urls(
            "initial-advertise-peer-urls",
            &self.initial_advertise_peer_urls,
        )?;
        if advertised.len() != 1 {
            return Err(bad(
                "--initial-advertise-peer-urls: one URL per member is supported",
            ));
        }
        let own = cluster
            .iter()
            .find(|(name, _)| *name == self.name)
            .ok_or_else(|| {
                bad(format!(
                    "--initial-cluster has no member named {:?} (--name); it lists {}",
                    self.name,
                    cluster
                        .iter()
                        .map(|(n, _)| n.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?;
        if own.1 != advertised[0] {
            return Err(bad(format!(
                "--initial-cluster has {}={} but --initial-advertise-peer-urls is {} (they must match)",
                own.0, own.1, self.initial_advertise_peer_urls
            )));
        }
        if self.heartbeat_interval == 0
            || !self
                .election_timeout
                .is_multiple_of(self.heartbeat_interval)
        {
            return Err(bad(
                "--election-timeout must be a positive multiple of --heartbeat-interval",
            ));
        }
        let election_timeout_ticks = self.election_timeout / self.heartbeat_interval;
        if election_timeout_ticks < 5 {
            return Err(bad(
                "--election-timeout must be at least 5 times --heartbeat-interval",
            ));
        }
        let members = cluster
            .iter()
            .map(|(_, a)| (member_id_for(*a), *a))
            .collect();
        let names = cluster
            .iter()
            .map(|(n, a)| (member_id_for(*a), n.clone()))
            .collect();
        let cluster_id = match self.initial_cluster_state {
            ClusterState::New => Some(cluster_id_for(
                cluster.iter().map(|(_, a)| member_id_for(*a)),
            )),
            ClusterState::Existing => None,
        };
        Ok(ServerConfig {
            name: self.name.clone(),
            data_dir: self
                .data_dir
                .clone()
                .unwrap_or_else(|| PathBuf::from(format!("{}.etcd", self.name))),
            listen_client: parse_urls("listen-client-urls", &self.listen_client_urls)?,
            advertise_client_urls: self
                .advertise_client_urls
                .split(',')
                .map(|u| u.trim().to_string())
                .filter(|u| !u.is_empty())
                .collect(),
            listen_peer: parse_urls("listen-peer-urls", &self.listen_peer_urls)?,
            listen_metrics: match self.listen_metrics_urls.trim() {
                "" => Vec::new(),
                urls => parse_urls("listen-metrics-urls", urls)?,
            },
            id: member_id_for(advertised[0]),
            members,
            names,
            initial_cluster_state: match self.initial_cluster_state {
                ClusterState::New => InitialClusterState::New,
                ClusterState::Existing => InitialClusterState::Existing,
            },
            cluster_id,
            tick_interval_ms: self.heartbeat_interval,
            election_timeout_ticks,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(args: &[&str]) -> Flags {
        let mut all = vec!["faultline-server"];
        all.extend_from_slice(args);
        Flags::try_parse_from(all).expect("flags parse")
    }

    #[test]
    fn a_three_member_cluster_checks() {
        let config = flags(&[
            "--name",
            "b",
            "--initial-advertise-peer-urls",
            "http://127.0.0.1:12380",
            "--initial-cluster",
            "a=http://127.0.0.1:2380,b=http://127.0.0.1:12380,c=http://127.0.0.1:22380",
            "--listen-client-urls",
            "http://127.0.0.1:2379,http://127.0.0.1:3379",
        ])
        .check()
        .unwrap();
        assert_eq!(config.members.len(), 3);
        assert_eq!(config.names[&config.id], "b");
        assert_eq!(config.listen_client.len(), 2);
        assert!(config.listen_metrics.is_empty());
        assert_eq!(config.data_dir, PathBuf::from("b.etcd"));
        assert_eq!(config.election_timeout_ticks, 10);
    }

    #[test]
    fn bad_flags_say_what_is_wrong() {
        let error = |args: &[&str]| flags(args).check().unwrap_err().to_string();
        assert!(error(&["--name", "x"]).contains("no member named \"x\""));
        assert!(error(&["--initial-cluster", "default"]).contains("is not name=URL"));
        assert!(error(&["--listen-client-urls", "https://127.0.0.1:1"]).contains("TLS"));
        assert!(error(&["--listen-peer-urls", "127.0.0.1:1"]).contains("expected http://"));
        assert!(
            error(&["--initial-advertise-peer-urls", "http://127.0.0.1:9"]).contains("must match")
        );
        assert!(error(&["--election-timeout", "150"]).contains("multiple"));
        assert!(error(&["--listen-metrics-urls", "127.0.0.1:1"]).contains("expected http://"));
        let unknown = Flags::try_parse_from(["faultline-server", "--initial-cluster-state", "old"]);
        assert!(unknown.is_err());
    }
}
