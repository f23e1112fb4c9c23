//! faultline-server driven by Debian's etcdctl 3.4: a single member, then three processes.
//! Needs /usr/bin/etcdctl (Debian: apt-get install etcd-client). Real build only:
//! `cargo real-test -p faultline-server`.
#![cfg(not(madsim))]

mod common;

use common::{Cluster, Output};

fn ok(out: Output) -> String {
    assert!(
        out.success,
        "etcdctl failed\nstdout: {}\nstderr: {}",
        out.stdout, out.stderr
    );
    out.stdout
}

/// Run an idempotent command until it succeeds, while the cluster elects a new leader (etcd's
/// Unavailable class: "leader changed", "no leader"); any other failure fails at once.
fn retry_ok(cluster: &Cluster, at: usize, args: &[&str]) -> String {
    for _ in 0..100 {
        let out = cluster.etcdctl(at, args);
        if out.success {
            return out.stdout;
        }
        assert!(out.stderr.contains("code = Unavailable"), "{}", out.stderr);
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("etcdctl {args:?} kept failing with Unavailable");
}

/// `lease grant` prints `lease 694d77aa9e38260f granted with TTL(60s)`.
fn lease_id(grant: &str) -> String {
    let id = grant.split_whitespace().nth(1).expect("lease <id> granted");
    assert!(grant.ends_with("granted with TTL(60s)\n"), "{grant}");
    id.to_string()
}

fn key_value_commands(cluster: &Cluster, at: usize) {
    for (key, value) in [("foo/a", "1"), ("foo/b", "2"), ("foo/c", "3"), ("bar", "x")] {
        assert_eq!(ok(cluster.etcdctl(at, &["put", key, value])), "OK\n");
    }
    // Revisions: foo/a 2, foo/b 3, foo/c 4, bar 5.
    let all = "foo/a\n1\nfoo/b\n2\nfoo/c\n3\n";
    assert_eq!(ok(cluster.etcdctl(at, &["get", "--prefix", "foo/"])), all);
    let limited = ok(cluster.etcdctl(at, &["get", "--prefix", "foo/", "--limit", "2"]));
    assert_eq!(limited, "foo/a\n1\nfoo/b\n2\n");
    let sorted = ok(cluster.etcdctl(
        at,
        &[
            "get",
            "--prefix",
            "foo/",
            "--sort-by=KEY",
            "--order=DESCEND",
        ],
    ));
    assert_eq!(sorted, "foo/c\n3\nfoo/b\n2\nfoo/a\n1\n");
    let by_value = ok(cluster.etcdctl(at, &["get", "", "--from-key", "--sort-by=VALUE"]));
    assert_eq!(by_value, "foo/a\n1\nfoo/b\n2\nfoo/c\n3\nbar\nx\n");
    assert_eq!(ok(cluster.etcdctl(at, &["put", "foo/a", "10"])), "OK\n"); // revision 6
    let old = ok(cluster.etcdctl(at, &["get", "foo/a", "--rev=2"]));
    assert_eq!(old, "foo/a\n1\n");
    assert_eq!(ok(cluster.etcdctl(at, &["del", "foo/b"])), "1\n"); // revision 7
    assert_eq!(ok(cluster.etcdctl(at, &["get", "foo/b"])), "");
    let txn = "mod(\"foo/a\") > \"0\"\n\nput foo/t yes\n\nput foo/t no\n\n";
    assert_eq!(
        ok(cluster.etcdctl_stdin(at, &["txn"], txn)),
        "SUCCESS\n\nOK\n"
    );
    let failing = "value(\"foo/a\") = \"nope\"\n\nput foo/t yes\n\nget foo/c\n\n";
    assert_eq!(
        ok(cluster.etcdctl_stdin(at, &["txn"], failing)),
        "FAILURE\n\nfoo/c\n3\n"
    );
    assert_eq!(ok(cluster.etcdctl(at, &["get", "foo/t"])), "foo/t\nyes\n");
}

fn lease_commands(cluster: &Cluster, grant_at: usize, use_at: usize) {
    let id = lease_id(&ok(cluster.etcdctl(grant_at, &["lease", "grant", "60"])));
    let put = ["put", "--lease", id.as_str(), "leased", "v"];
    assert_eq!(ok(cluster.etcdctl(use_at, &put)), "OK\n");
    let ttl = ok(cluster.etcdctl(use_at, &["lease", "timetolive", &id, "--keys"]));
    assert!(
        ttl.contains(&format!("lease {id} granted with TTL(60s)")),
        "{ttl}"
    );
    assert!(ttl.contains("attached keys([leased])"), "{ttl}");
    let kept = ok(cluster.etcdctl(use_at, &["lease", "keep-alive", "--once", &id]));
    assert_eq!(kept, format!("lease {id} keepalived with TTL(60)\n"));
    let list = ok(cluster.etcdctl(use_at, &["lease", "list"]));
    assert!(list.contains(&id), "{list}");
    let revoked = ok(cluster.etcdctl(use_at, &["lease", "revoke", &id]));
    assert_eq!(revoked, format!("lease {id} revoked\n"));
    assert_eq!(ok(cluster.etcdctl(use_at, &["get", "leased"])), "");
    let gone = ok(cluster.etcdctl(use_at, &["lease", "timetolive", &id]));
    assert_eq!(gone, format!("lease {id} already expired\n"));
}

fn watch_commands(cluster: &Cluster, watch_at: usize, write_at: usize) {
    assert_eq!(ok(cluster.etcdctl(write_at, &["put", "w/1", "a"])), "OK\n");
    // From revision 1, so the put above is replayed whether or not the watch started first.
    let watch = cluster.watch(watch_at, &["--prefix", "w/", "--rev=1", "--prev-kv"]);
    assert_eq!(watch.lines(3), ["PUT", "w/1", "a"]);
    assert_eq!(ok(cluster.etcdctl(write_at, &["put", "w/1", "b"])), "OK\n");
    assert_eq!(ok(cluster.etcdctl(write_at, &["del", "w/1"])), "1\n");
    // With --prev-kv, etcdctl prints the previous key-value before the new one.
    assert_eq!(
        watch.lines(9),
        ["PUT", "w/1", "a", "w/1", "b", "DELETE", "w/1", "b", "w/1"]
    );
}

#[test]
fn one_member_serves_etcdctl() {
    let cluster = Cluster::start(1);
    key_value_commands(&cluster, 0);
    lease_commands(&cluster, 0, 0);
    watch_commands(&cluster, 0, 0);
    // Compaction: revision 2 (foo/a=1) is gone afterwards.
    assert_eq!(
        ok(cluster.etcdctl(0, &["compaction", "3"])),
        "compacted revision 3\n"
    );
    let compacted = cluster.etcdctl(0, &["get", "foo/a", "--rev=2"]);
    assert!(!compacted.success);
    assert!(
        compacted
            .stderr
            .contains("etcdserver: mvcc: required revision has been compacted"),
        "{}",
        compacted.stderr
    );
    // etcdctl 3.4 prints a healthy endpoint on stderr.
    let health = cluster.etcdctl(0, &["endpoint", "health"]);
    assert!(health.success);
    assert!(health.stderr.contains("is healthy"), "{}", health.stderr);
    let status = ok(cluster.etcdctl(0, &["endpoint", "status"]));
    assert!(
        status.starts_with(&cluster.members[0].endpoint()),
        "{status}"
    );
    let members = ok(cluster.etcdctl(0, &["member", "list"]));
    assert_eq!(members.lines().count(), 1, "{members}");
    assert!(members.contains(&cluster.members[0].peer_url), "{members}");
}

#[test]
fn three_processes_serve_etcdctl_through_any_member() {
    let mut cluster = Cluster::start(3);
    // Writes and linearizable reads sent to followers are forwarded to the leader.
    for at in 0..3 {
        let key = format!("k{at}");
        assert_eq!(ok(cluster.etcdctl(at, &["put", &key, "v"])), "OK\n");
        for reader in 0..3 {
            let got = ok(cluster.etcdctl(reader, &["get", &key]));
            assert_eq!(got, format!("{key}\nv\n"));
        }
    }
    lease_commands(&cluster, 2, 1);
    watch_commands(&cluster, 1, 2);
    let members = ok(cluster.etcdctl(2, &["member", "list"]));
    assert_eq!(members.lines().count(), 3, "{members}");
    for member in &cluster.members {
        assert!(members.contains(&member.peer_url), "{members}");
    }
    // Exactly one member says it leads (the 5th column of `endpoint status`, IS LEADER).
    let is_leader: Vec<String> = (0..3)
        .map(|at| {
            let status = ok(cluster.etcdctl(at, &["endpoint", "status"]));
            let column = status.split(", ").nth(4);
            column.expect("an IS LEADER column").to_string()
        })
        .collect();
    let leaders = is_leader.iter().filter(|l| *l == "true").count();
    assert_eq!(leaders, 1, "{is_leader:?}");

    // SIGKILL one member: the other two keep serving; restarted, it catches up.
    cluster.members[0].kill();
    assert_eq!(retry_ok(&cluster, 1, &["put", "after-kill", "1"]), "OK\n");
    cluster.restart(0);
    let after = retry_ok(&cluster, 0, &["get", "after-kill"]);
    assert_eq!(after, "after-kill\n1\n");
    // Its own copy, not the leader's: a serializable read is served by the member itself,
    // so seeing the write there means the restarted member caught up.
    let caught_up = (0..100).any(|_| {
        let local = retry_ok(&cluster, 0, &["get", "after-kill", "--consistency=s"]);
        let done = local == "after-kill\n1\n";
        if !done {
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        done
    });
    assert!(
        caught_up,
        "the restarted member never applied the write made while it was down"
    );
    assert_eq!(ok(cluster.etcdctl(0, &["get", "k0"])), "k0\nv\n");
}
