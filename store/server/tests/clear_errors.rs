//! Clear errors: a member whose peers cannot be reached says which peers (name and URL) in
//! its log, at startup and when a client request cannot be served; a data directory of
//! another cluster is refused with a message naming both clusters.
//!
//! Real build only: `cargo real-test -p faultline-server --test clear_errors`.
#![cfg(not(madsim))]

mod common;

use std::net::SocketAddr;
use std::process::Command;

use common::{free_port, Cluster, FAULTLINE};
use faultline_node::core::member_id_for;
use faultline_server::identity::cluster_id_for;

fn addr(url: &str) -> SocketAddr {
    url.trim_start_matches("http://")
        .parse()
        .expect("a peer URL")
}

#[test]
fn a_member_without_its_peers_names_them_in_its_log() {
    // One member of three runs: it can reach neither peer, so it has no leader.
    let cluster = Cluster::launch(3, 1);
    let expected: Vec<String> = cluster.members[1..]
        .iter()
        .map(|m| format!("cannot reach peer {} at {}", m.name, m.peer_url))
        .collect();
    let mut log = String::new();
    // A bound on attempts keeps a broken build from looping forever; the pause lets the
    // member try its peers between two puts.
    for _ in 0..50 {
        let put = cluster.etcdctl(0, &["put", "k", "v"]);
        assert!(!put.success, "a put without a quorum: {}", put.stdout);
        log = cluster.members[0].log();
        let served = log.contains("cannot serve a client request");
        if served && expected.iter().all(|line| log.contains(line)) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    for line in &expected {
        assert!(log.contains(line), "no {line:?} in the log:\n{log}");
    }
    let refusal = log
        .lines()
        .find(|l| l.contains("cannot serve a client request"))
        .unwrap_or_else(|| panic!("no refused request in the log:\n{log}"));
    for member in &cluster.members[1..] {
        assert!(
            refusal.contains(&format!("peer {} at {}", member.name, member.peer_url)),
            "{refusal}"
        );
    }
}

#[test]
fn a_data_directory_of_another_cluster_is_refused_naming_both() {
    let mut cluster = Cluster::start(1);
    cluster.members[0].kill();
    let member = &cluster.members[0];
    // The same member (name, peer URL, data directory) in a two-member cluster.
    let other_peer = format!("http://127.0.0.1:{}", free_port());
    let other_cluster = format!("{}={},m9={other_peer}", member.name, member.peer_url);
    let out = Command::new(FAULTLINE)
        .args(["--name", &member.name])
        .arg("--data-dir")
        .arg(&member.data_dir)
        .args(["--listen-client-urls", &member.client_url])
        .args(["--advertise-client-urls", &member.client_url])
        .args(["--listen-peer-urls", &member.peer_url])
        .args(["--initial-advertise-peer-urls", &member.peer_url])
        .args(["--initial-cluster", &other_cluster])
        .output()
        .expect("run faultline-server");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let own = member_id_for(addr(&member.peer_url));
    let recorded = cluster_id_for([own]);
    let flagged = cluster_id_for([own, member_id_for(addr(&other_peer))]);
    let expected =
        format!("belongs to cluster {recorded:x}, not to cluster {flagged:x} of --initial-cluster");
    assert!(stderr.contains(&expected), "{stderr}");
    // Refused, the directory is untouched: the member restarts in its own cluster.
    cluster.restart(0);
    let header = cluster.etcdctl(0, &["get", "k", "-w", "json"]);
    assert!(
        header
            .stdout
            .contains(&format!("\"cluster_id\":{recorded}")),
        "{}",
        header.stdout
    );
}

/// The cluster ID in etcdctl's JSON header from member `index`.
fn cluster_id_at(cluster: &Cluster, index: usize) -> String {
    let out = cluster.etcdctl(index, &["get", "k", "-w", "json"]);
    assert!(out.success, "{}", out.stderr);
    let (_, rest) = out
        .stdout
        .split_once("\"cluster_id\":")
        .expect("a cluster_id");
    rest.chars().take_while(char::is_ascii_digit).collect()
}

#[test]
fn a_joining_member_learns_the_cluster_id_from_its_peers() {
    let mut cluster = Cluster::start(3);
    let expected = cluster_id_at(&cluster, 0);
    let ids: Vec<u64> = cluster
        .members
        .iter()
        .map(|m| member_id_for(addr(&m.peer_url)))
        .collect();
    assert_eq!(expected, cluster_id_for(ids).to_string());
    let joining = cluster.new_member();
    let peer_url = cluster.members[joining].peer_url.clone();
    let name = cluster.members[joining].name.clone();
    let peer_urls = format!("--peer-urls={peer_url}");
    let add = cluster.etcdctl(0, &["member", "add", &name, &peer_urls]);
    assert!(add.success, "{}", add.stderr);
    cluster.start_joining(joining);
    cluster.wait_healthy(joining);
    // Four members now, but the cluster keeps the ID its three initial members gave it.
    assert_eq!(cluster_id_at(&cluster, joining), expected);
    // Restarted, the joined member takes the ID from its data directory.
    cluster.members[joining].kill();
    cluster.start_joining(joining);
    cluster.wait_healthy(joining);
    assert_eq!(cluster_id_at(&cluster, joining), expected);
}

/// A member of another cluster that names one of our peer URLs in its --initial-cluster
/// sends its Raft traffic there (to our member's very ID: IDs are derived from peer URLs).
/// Our member refuses it for its cluster ID, as etcd's peers do, names the foreign cluster
/// in its log, and the foreign member's log names the refusal.
#[test]
fn peer_traffic_of_another_cluster_is_refused_for_its_cluster_id() {
    let cluster = Cluster::start(1);
    let ours = &cluster.members[0];
    let dir = std::env::temp_dir().join(format!(
        "faultline-server-test-{}-foreign",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the foreign member's directory");
    let foreign_peer = format!("http://127.0.0.1:{}", free_port());
    let foreign_client = format!("http://127.0.0.1:{}", free_port());
    let foreign_log = dir.join("m9.log");
    let mut foreign = Command::new(FAULTLINE)
        .args(["--name", "m9"])
        .arg("--data-dir")
        .arg(dir.join("m9.etcd"))
        .args(["--listen-client-urls", &foreign_client])
        .args(["--advertise-client-urls", &foreign_client])
        .args(["--listen-peer-urls", &foreign_peer])
        .args(["--initial-advertise-peer-urls", &foreign_peer])
        .args([
            "--initial-cluster",
            &format!("m9={foreign_peer},{}={}", ours.name, ours.peer_url),
        ])
        .stderr(std::fs::File::create(&foreign_log).expect("create the foreign log"))
        .spawn()
        .expect("start the foreign member");
    let own_id = member_id_for(addr(&ours.peer_url));
    let foreign_cluster = cluster_id_for([own_id, member_id_for(addr(&foreign_peer))]);
    let refusing = format!("refusing peer traffic of cluster {foreign_cluster:x}");
    let (mut log, mut their_log) = (String::new(), String::new());
    // A bound on attempts keeps a broken build from looping forever; the foreign member
    // campaigns (and so calls our member) every election timeout.
    for _ in 0..50 {
        log = ours.log();
        their_log = std::fs::read_to_string(&foreign_log).unwrap_or_default();
        if log.contains(&refusing) && their_log.contains("cluster ID mismatch") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let _ = foreign.kill();
    let _ = foreign.wait();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        log.contains(&refusing),
        "no {refusing:?} in our log:\n{log}"
    );
    assert!(
        their_log.contains("cluster ID mismatch"),
        "the foreign member's log does not name the refusal:\n{their_log}"
    );
    // Our member still serves its own cluster.
    let put = cluster.etcdctl(0, &["put", "k", "v"]);
    assert!(put.success, "{}", put.stderr);
}
