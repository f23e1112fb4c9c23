//! Who this member and its cluster are: the cluster ID (derived from the initial members as
//! etcd derives it, or learned from a running member when joining), and the data directory's
//! record of the member and cluster it belongs to, so that a directory of another member or
//! another cluster is refused instead of being mixed with this one's.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use faultline_api::{ClusterRequest, ClusterResponse};

use crate::cluster_id::serve_cluster_id;
pub use crate::cluster_id::{cluster_id_for, served_cluster_id};
use crate::flags::ServerConfig;
use crate::peer::Peers;

/// What `member.id` in the data directory records.
#[derive(Debug, PartialEq, Eq)]
struct Recorded {
    id: String,
    name: String,
    /// Absent in directories written before the cluster was recorded.
    cluster: Option<u64>,
}

fn parse(text: &str) -> Recorded {
    let field = |key: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(key)?.strip_prefix('='))
            .map(str::to_string)
    };
    Recorded {
        id: field("id").unwrap_or_default(),
        name: field("name").unwrap_or_default(),
        cluster: field("cluster").and_then(|c| u64::from_str_radix(&c, 16).ok()),
    }
}

fn record(path: &Path, config: &ServerConfig, cluster_id: u64) -> Result<(), String> {
    let text = format!(
        "id={:x}\nname={}\ncluster={cluster_id:x}\n",
        config.id, config.name
    );
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Claim `--data-dir` for this member and its cluster, and serve that cluster's ID: a
/// directory recorded for another member, or for another cluster than --initial-cluster
/// describes (`--initial-cluster-state new`), is refused with a message naming both. With
/// `existing`, the recorded cluster is the member's; a member joining a running cluster for
/// the first time learns the ID from its peers.
pub async fn claim_data_dir(config: &ServerConfig, peers: &Peers) -> Result<u64, String> {
    let dir = &config.data_dir;
    std::fs::create_dir_all(dir).map_err(|e| format!("--data-dir {}: {e}", dir.display()))?;
    let path = dir.join("member.id");
    let recorded = match std::fs::read_to_string(&path) {
        Ok(text) => Some(parse(&text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    if let Some(found) = &recorded {
        if found.id != format!("{:x}", config.id) || found.name != config.name {
            return Err(format!(
                "--data-dir {} belongs to another member (id={}, name={}), not to {} ({:x}); \
                 use another directory or remove it",
                dir.display(),
                found.id,
                found.name,
                config.name,
                config.id
            ));
        }
    }
    let cluster_id = match (recorded.as_ref().and_then(|r| r.cluster), config.cluster_id) {
        (Some(found), Some(flags)) if found != flags => {
            return Err(format!(
                "--data-dir {} belongs to cluster {found:x}, not to cluster {flags:x} of \
                 --initial-cluster {}; use another directory or remove it (or, if this \
                 member's cluster has changed its members since it started, restart it with \
                 --initial-cluster-state existing)",
                dir.display(),
                describe_members(config)
            ))
        }
        (Some(found), _) => found,
        (None, Some(flags)) => flags,
        (None, None) => learn_cluster_id(config, peers).await?,
    };
    if recorded.and_then(|r| r.cluster).is_none() {
        record(&path, config, cluster_id)?;
    }
    serve_cluster_id(cluster_id);
    Ok(cluster_id)
}

fn describe_members(config: &ServerConfig) -> String {
    config
        .names
        .iter()
        .map(|(id, name)| format!("{name}=http://{}", config.members[id]))
        .collect::<Vec<_>>()
        .join(",")
}

/// Ask the other members of --initial-cluster for the cluster's ID (a joining member must
/// carry the ID of the cluster it joins, as etcd's members fetch it from their peers); a few
/// rounds, then an error naming each peer, its URL and why it did not answer.
async fn learn_cluster_id(config: &ServerConfig, peers: &Peers) -> Result<u64, String> {
    let others: Vec<SocketAddr> = config
        .members
        .iter()
        .filter(|(id, _)| **id != config.id)
        .map(|(_, addr)| *addr)
        .collect();
    let list = ClusterRequest::MemberList {
        linearizable: false,
    };
    let mut failures = Vec::new();
    for _round in 0..10 {
        failures.clear();
        for &addr in &others {
            match peers.forward_cluster(addr, &list).await {
                Ok(ClusterResponse::MemberList { header, .. }) if header.cluster_id != 0 => {
                    return Ok(header.cluster_id)
                }
                Ok(_) => failures.push(format!("{} has no cluster ID", peers.describe(addr))),
                Err(e) => failures.push(format!("{}: {e}", peers.describe(addr))),
            }
        }
        real_tokio::time::sleep(Duration::from_secs(1)).await;
    }
    Err(format!(
        "--initial-cluster-state existing: cannot learn the cluster's ID from any other member \
         of --initial-cluster: {}; {}",
        failures.join("; "),
        match peers.unreachable().as_slice() {
            [] => "every one answered".to_string(),
            unreachable => format!("unreachable: {}", unreachable.join(", ")),
        }
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cluster_id_depends_on_the_set_of_members_only() {
        let id = cluster_id_for([3, 1, 2]);
        assert_eq!(id, cluster_id_for([1, 2, 3]));
        assert_ne!(id, cluster_id_for([1, 2]));
        assert_ne!(id, 0);
    }

    #[test]
    fn the_cluster_id_is_etcds_sha1_of_the_big_endian_member_ids() {
        // SHA-1 of 8 zero bytes is 05fe405753166f125559e7c9ac558654f107c7e9 (computed
        // independently with `printf '\0\0\0\0\0\0\0\0' | sha1sum`).
        assert_eq!(cluster_id_for([0]), 0x05fe_4057_5316_6f12);
    }

    #[test]
    fn a_recorded_identity_parses_with_or_without_its_cluster() {
        assert_eq!(
            parse("id=a1\nname=m0\ncluster=ff\n"),
            Recorded {
                id: "a1".into(),
                name: "m0".into(),
                cluster: Some(0xff)
            }
        );
        assert_eq!(parse("id=a1\nname=m0\n").cluster, None);
    }
}
