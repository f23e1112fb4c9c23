//! faultline-server's HTTP endpoints on the client URL (`/livez`, `/readyz`, `/health`,
//! `/metrics`), read with a plain HTTP/1.1 client over TCP, before a leader exists, in a
//! serving cluster, and after the quorum is gone. Real build only:
//! `cargo real-test -p faultline-server`.
#![cfg(not(madsim))]

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::Cluster;

/// `GET path` on a member's client URL: the status code and the body.
fn get(cluster: &Cluster, index: usize, path: &str) -> (u16, String) {
    try_get(cluster, index, path).expect("connect to the client URL")
}

/// [`get`], or `None` when nothing listens on the client URL (yet).
fn try_get(cluster: &Cluster, index: usize, path: &str) -> Option<(u16, String)> {
    try_get_at(&cluster.members[index].endpoint(), path)
}

/// `GET path` at `endpoint` (`host:port`); `None` when nothing listens there (yet).
fn try_get_at(endpoint: &str, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(endpoint).ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {endpoint}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    let (head, body) = response.split_once("\r\n\r\n").expect("head and body");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("a status line: {head}"));
    Some((status, body.to_string()))
}

/// GET until `done` holds for the answer; a bound on attempts only keeps a broken build
/// from hanging the test.
fn get_until(
    cluster: &Cluster,
    index: usize,
    path: &str,
    done: impl Fn(u16, &str) -> bool,
) -> (u16, String) {
    let mut last = None;
    for _ in 0..200 {
        last = try_get(cluster, index, path);
        if let Some((status, body)) = &last {
            if done(*status, body) {
                return (*status, body.clone());
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("GET {path} on member {index} never got there; last answer: {last:?}");
}

/// `/metrics`' samples by name (Prometheus's text format: `# ...` lines, then `name value`).
fn metrics(cluster: &Cluster, index: usize) -> BTreeMap<String, u64> {
    let (status, body) = get(cluster, index, "/metrics");
    assert_eq!(status, 200, "{body}");
    body.lines()
        .filter(|line| !line.starts_with('#'))
        .map(|line| {
            let (name, value) = line.split_once(' ').expect("name value");
            (name.to_string(), value.parse().expect("an integer value"))
        })
        .collect()
}

#[test]
fn livez_readyz_and_metrics_follow_the_cluster() {
    // One member of three: it serves, but cannot elect a leader alone.
    let mut cluster = Cluster::launch(3, 1);
    let (status, body) = get_until(&cluster, 0, "/livez", |status, _| status == 200);
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    let (status, body) = get(&cluster, 0, "/readyz");
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("[-]leader failed: no leader known\n"),
        "{body}"
    );
    assert!(body.ends_with("readyz check failed\n"), "{body}");
    assert_eq!(
        get(&cluster, 0, "/health"),
        (503, "{\"health\":\"false\"}".into())
    );
    let before = metrics(&cluster, 0);
    assert_eq!(before["etcd_server_has_leader"], 0);
    assert_eq!(before["etcd_server_leader_changes_seen_total"], 0);

    // The other two start: a leader is elected and every member becomes ready.
    cluster.start_member(1);
    cluster.start_member(2);
    for i in 0..3 {
        cluster.wait_healthy(i);
        let (_, body) = get_until(&cluster, i, "/readyz", |status, _| status == 200);
        assert_eq!(body, "[+]leader ok\n[+]linearizable_read ok\nok\n");
        assert_eq!(
            get(&cluster, i, "/health"),
            (200, "{\"health\":\"true\"}".into())
        );
    }
    for (key, value) in [("a", "1"), ("b", "2"), ("c", "3")] {
        assert!(cluster.etcdctl(0, &["put", key, value]).success);
    }
    let watch = cluster.watch(0, &["--prefix", "w/"]);
    get_until(&cluster, 0, "/metrics", |_, body| {
        body.contains("\netcd_debugging_mvcc_watcher_total 1\n")
    });
    let after = metrics(&cluster, 0);
    assert_eq!(after["etcd_server_has_leader"], 1);
    assert!(
        after["etcd_server_leader_changes_seen_total"] >= 1,
        "{after:?}"
    );
    // Three puts after the empty key space's revision 1.
    assert_eq!(after["etcd_debugging_mvcc_current_revision"], 4);
    assert!(
        after["etcd_server_proposals_applied_total"] >= 3,
        "{after:?}"
    );
    assert!(
        after["etcd_server_proposals_committed_total"]
            >= after["etcd_server_proposals_applied_total"],
        "{after:?}"
    );
    assert!(after["etcd_mvcc_db_total_size_in_bytes"] > 0, "{after:?}");
    assert_eq!(after["etcd_debugging_mvcc_watch_stream_total"], 1);
    drop(watch);

    // --listen-metrics-urls serves the same endpoints.
    let metrics_at = cluster.members[0].metrics_url.trim_start_matches("http://");
    let get_there = |path| try_get_at(metrics_at, path).expect("the metrics URL serves");
    assert_eq!(get_there("/livez"), (200, "ok\n".into()));
    assert_eq!(get_there("/readyz").0, 200);
    let (status, text) = get_there("/metrics");
    assert_eq!(status, 200);
    assert!(text.contains("\netcd_server_has_leader 1\n"), "{text}");

    // Two of three gone: no quorum, so the survivor is live but not ready.
    cluster.members[1].kill();
    cluster.members[2].kill();
    let (_, body) = get_until(&cluster, 0, "/readyz", |status, _| status == 503);
    assert!(body.contains("[-]"), "{body}");
    assert!(body.ends_with("readyz check failed\n"), "{body}");
    assert_eq!(get(&cluster, 0, "/livez"), (200, "ok\n".into()));
}
