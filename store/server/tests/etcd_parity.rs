//! The same etcdctl 3.4 commands against a real etcd 3.4 cluster (Debian's /usr/bin/etcd)
//! and against faultline-server, three processes each on loopback: every output must match
//! once the values that legitimately differ between two clusters are normalised.
//!
//! Normalisations (each one a value that names or measures a particular cluster, not the
//! behaviour under test):
//! 1. Client endpoints and peer URLs (free ports) become `<client:mN>` / `<peer:mN>`.
//! 2. Member IDs (etcd hashes the peer URLs and the cluster token) become `<id:mN>`.
//! 3. The lease ID (etcd derives it from the member ID and a clock) becomes `<lease>`.
//! 4. `member list` lines are sorted: etcd lists members in ID order.
//! 5. `lease timetolive`'s `remaining(Ns)` becomes `remaining(<s>)`: seconds pass.
//! 6. `endpoint health`'s `took = ...` is dropped: a duration.
//! 7. etcdctl's own JSON log lines on stderr (`{"level":...}`, with timestamps) are dropped.
//! 8. `endpoint status`: the server version, the database size (etcd counts bbolt's pages),
//!    the IS LEADER column (which member won the election), the Raft term and the Raft
//!    (applied) index (how many elections and internal entries each cluster had) are
//!    replaced by placeholders.
//! 9. JSON headers: `cluster_id`, `member_id` (as 2) and `raft_term` (as 8).
//!
//! Before the script, the test waits until `member list` shows every member started (its
//! name and client URLs published through Raft). etcd gives that by construction: a member
//! serves no client before its own publish applied, and the harness waits for every
//! member's `endpoint health`; ours serves before its publish applied (it answers, or waits
//! for a leader), so the first step could otherwise see a member still unstarted.
//!
//! Real build only: `cargo real-test -p faultline-server`.
#![cfg(not(madsim))]

mod common;

use common::{Cluster, Output, ETCD, FAULTLINE};
use faultline_server::identity::cluster_id_for;

/// One step of the script, run the same way on both clusters.
enum Step {
    /// `etcdctl <args>` at member `at`; `$LEASE` in an argument is the lease granted last.
    Run(usize, &'static [&'static str]),
    /// `etcdctl txn` at member `at` with this standard input.
    Txn(usize, &'static str),
    /// A background `etcdctl watch <args>` at member `at`, then the writes, then the number
    /// of lines the watch printed.
    Watch(usize, &'static [&'static str], &'static [Step], usize),
}

use Step::{Run, Txn, Watch};

const SCRIPT: &[Step] = &[
    Run(0, &["member", "list"]),
    Run(0, &["put", "foo/a", "1"]),
    Run(1, &["put", "foo/b", "2"]),
    Run(2, &["put", "foo/c", "3"]),
    Run(0, &["put", "bar", "x"]),
    Run(1, &["get", "--prefix", "foo/"]),
    Run(2, &["get", "--prefix", "foo/", "--limit", "2"]),
    Run(
        0,
        &[
            "get",
            "--prefix",
            "foo/",
            "--sort-by=KEY",
            "--order=DESCEND",
        ],
    ),
    Run(1, &["get", "", "--from-key", "--sort-by=VALUE"]),
    Run(2, &["get", "--prefix", "foo/", "--keys-only"]),
    Run(0, &["get", "--prefix", "foo/", "-w", "json"]),
    Run(1, &["put", "foo/a", "10", "--prev-kv"]),
    Run(2, &["get", "foo/a", "--rev=2"]),
    Run(0, &["del", "foo/b"]),
    Run(1, &["get", "foo/b"]),
    Txn(
        2,
        "mod(\"foo/a\") > \"0\"\n\nput foo/t yes\n\nput foo/t no\n\n",
    ),
    Txn(
        0,
        "value(\"foo/a\") = \"nope\"\n\nput foo/t yes\n\nget foo/c\n\n",
    ),
    Run(1, &["get", "foo/t", "-w", "json"]),
    Run(0, &["lease", "grant", "60"]),
    Run(1, &["put", "--lease", "$LEASE", "leased", "v"]),
    Run(2, &["lease", "timetolive", "$LEASE", "--keys"]),
    Run(0, &["lease", "keep-alive", "--once", "$LEASE"]),
    Run(1, &["lease", "list"]),
    Run(2, &["lease", "revoke", "$LEASE"]),
    Run(0, &["get", "leased"]),
    Run(1, &["lease", "timetolive", "$LEASE"]),
    Run(2, &["lease", "revoke", "1234"]),
    Watch(
        1,
        &["--prefix", "w/", "--rev=1", "--prev-kv"],
        &[
            Run(2, &["put", "w/1", "a"]),
            Run(0, &["put", "w/1", "b"]),
            Run(1, &["del", "w/1"]),
        ],
        12,
    ),
    Run(2, &["compaction", "3"]),
    Run(0, &["get", "foo/a", "--rev=2"]),
    Run(1, &["get", "foo/a", "--rev=100"]),
    Run(2, &["del", "--prefix", "foo/", "--prev-kv"]),
    Run(0, &["endpoint", "health"]),
    Run(1, &["endpoint", "status"]),
];

/// What a cluster printed for the script, and what names its members.
struct Transcript {
    entries: Vec<String>,
    lease: Option<String>,
}

fn run_steps(cluster: &Cluster, steps: &[Step], transcript: &mut Transcript) {
    for step in steps {
        match step {
            Run(at, args) => {
                let lease = transcript.lease.clone().unwrap_or_default();
                let args: Vec<&str> = args
                    .iter()
                    .map(|a| if *a == "$LEASE" { lease.as_str() } else { a })
                    .collect();
                let out = cluster.etcdctl(*at, &args);
                if args[..2] == ["lease", "grant"] {
                    let id = out.stdout.split_whitespace().nth(1);
                    transcript.lease = Some(id.expect("lease <id> granted").to_string());
                }
                transcript
                    .entries
                    .push(entry(&format!("{args:?} at m{at}"), &out));
            }
            Txn(at, input) => {
                let out = cluster.etcdctl_stdin(*at, &["txn"], input);
                transcript
                    .entries
                    .push(entry(&format!("txn {input:?} at m{at}"), &out));
            }
            Watch(at, args, writes, lines) => {
                let watch = cluster.watch(*at, args);
                run_steps(cluster, writes, transcript);
                let printed = watch.lines(*lines).join("\n");
                transcript
                    .entries
                    .push(format!("watch {args:?} at m{at}:\n{printed}"));
            }
        }
    }
}

fn entry(command: &str, out: &Output) -> String {
    // Normalisation 7: etcdctl's client logs.
    let stderr: Vec<&str> = out
        .stderr
        .lines()
        .filter(|line| !line.starts_with("{\"level\":"))
        .collect();
    format!(
        "{command}: success={}\nstdout:\n{}stderr:\n{}",
        out.success,
        out.stdout,
        stderr.join("\n")
    )
}

/// What names a cluster: its members' endpoints, URLs and IDs, and the lease it granted.
struct Names {
    replacements: Vec<(String, String)>,
}

impl Names {
    /// Normalisations 1-3, from the cluster's own `member list` (the script's first step).
    fn of(cluster: &Cluster, transcript: &Transcript) -> Names {
        let mut replacements = Vec::new();
        let member_list = transcript.entries[0]
            .split("stdout:\n")
            .nth(1)
            .expect("stdout");
        // ID, STATUS, NAME, PEER ADDRS, CLIENT ADDRS, IS LEARNER: the ID's member is the one
        // with that peer URL.
        for line in member_list
            .lines()
            .take_while(|l| !l.starts_with("stderr:"))
        {
            let columns: Vec<&str> = line.split(", ").collect();
            let (id, peer_url) = (columns[0], columns[3]);
            let member = cluster.members.iter().find(|m| m.peer_url == peer_url);
            let name = &member.expect("a member with that peer URL").name;
            replacements.push((id.to_string(), format!("<id:{name}>")));
        }
        assert_eq!(replacements.len(), cluster.members.len(), "{member_list}");
        for member in &cluster.members {
            let name = &member.name;
            replacements.push((member.peer_url.clone(), format!("<peer:{name}>")));
            replacements.push((member.endpoint(), format!("<client:{name}>")));
        }
        if let Some(lease) = &transcript.lease {
            replacements.push((lease.clone(), "<lease>".to_string()));
        }
        Names { replacements }
    }

    fn normalise(&self, entry: &str) -> String {
        let mut text = entry.to_string();
        for (from, to) in &self.replacements {
            text = text.replace(from.as_str(), to);
        }
        let lines: Vec<String> = text.lines().map(normalise_line).collect();
        let mut text = lines.join("\n");
        if text.starts_with("[\"member\", \"list\"]") {
            text = sort_stdout(&text);
        }
        text
    }
}

/// Normalisations 5, 6, 8 and 9, on one line.
fn normalise_line(line: &str) -> String {
    let mut line = line.to_string();
    if let Some(at) = line.find(" took = ") {
        line.truncate(at);
    }
    if let Some(start) = line.find("remaining(") {
        if let Some(len) = line[start..].find(')') {
            line.replace_range(start..start + len + 1, "remaining(<s>)");
        }
    }
    for field in ["cluster_id", "member_id", "raft_term"] {
        line = replace_json_number(&line, field);
    }
    let columns: Vec<&str> = line.split(", ").collect();
    if columns.len() == 10 && columns[0].starts_with("<client:") {
        // endpoint status: ENDPOINT, ID, VERSION, DB SIZE, IS LEADER, IS LEARNER, RAFT TERM,
        // RAFT INDEX, RAFT APPLIED INDEX, ERRORS.
        let placeholders = [
            (2, "<version>"),
            (3, "<db size>"),
            (4, "<is leader>"),
            (6, "<term>"),
            (7, "<raft index>"),
            (8, "<applied index>"),
        ];
        let mut columns: Vec<String> = columns.iter().map(|c| c.to_string()).collect();
        for (column, placeholder) in placeholders {
            columns[column] = placeholder.to_string();
        }
        line = columns.join(", ");
    }
    line
}

/// `"field":123` -> `"field":<field>`.
fn replace_json_number(line: &str, field: &str) -> String {
    let key = format!("\"{field}\":");
    let mut out = String::new();
    let mut rest = line;
    while let Some(at) = rest.find(&key) {
        out.push_str(&rest[..at + key.len()]);
        rest = rest[at + key.len()..].trim_start_matches(|c: char| c.is_ascii_digit());
        out.push_str(&format!("<{field}>"));
    }
    out.push_str(rest);
    out
}

/// Normalisation 4: the lines between `stdout:` and `stderr:` in sorted order.
fn sort_stdout(text: &str) -> String {
    let (head, rest) = text.split_once("stdout:\n").expect("stdout");
    let (stdout, stderr) = rest.split_once("stderr:").expect("stderr");
    let mut lines: Vec<&str> = stdout.lines().collect();
    lines.sort_unstable();
    format!("{head}stdout:\n{}\nstderr:{stderr}", lines.join("\n"))
}

/// Poll `member list` at member 0 until every member published its name and client URLs
/// (etcdctl prints `unstarted` and an empty client column before); bounded attempts only
/// keep a broken build from hanging the test.
fn wait_started(cluster: &Cluster) {
    let mut last = String::new();
    for _ in 0..300 {
        let out = cluster.etcdctl(0, &["member", "list"]);
        let lines: Vec<&str> = out.stdout.lines().collect();
        let started = |line: &&str| {
            let columns: Vec<&str> = line.split(", ").collect();
            columns.len() == 6 && columns[1] == "started" && !columns[4].is_empty()
        };
        if out.success && lines.len() == cluster.members.len() && lines.iter().all(started) {
            return;
        }
        last = format!("{}{}", out.stdout, out.stderr);
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("members never all published their attributes; last member list:\n{last}");
}

fn transcript_of(program: &'static str) -> Vec<String> {
    let cluster = Cluster::start_program(program, 3);
    wait_started(&cluster);
    let mut transcript = Transcript {
        entries: Vec::new(),
        lease: None,
    };
    run_steps(&cluster, SCRIPT, &mut transcript);
    let names = Names::of(&cluster, &transcript);
    transcript
        .entries
        .iter()
        .map(|entry| names.normalise(entry))
        .collect()
}

/// Outputs known to differ, by the command's first line, with why. The test fails when
/// another output differs, and when one of these stops differing (remove it from here then).
const KNOWN_DIFFERENCES: &[(&str, &str)] = &[];

/// The numbers after each `"field":` in a line of etcdctl's JSON.
fn json_numbers(json: &str, field: &str) -> Vec<u64> {
    let key = format!("\"{field}\":");
    json.match_indices(&key)
        .map(|(at, _)| {
            let digits: String = json[at + key.len()..]
                .chars()
                .take_while(|c| c.is_ascii_digit())
                .collect();
            digits.parse().expect("a number")
        })
        .collect()
}

/// Our cluster ID is derived as etcd derives its own: etcd's cluster ID is
/// `cluster_id_for` of etcd's member IDs (normalisation 9 then only hides that the member
/// IDs, and so the cluster IDs, of two clusters differ).
#[test]
fn the_cluster_id_is_derived_from_the_member_ids_as_etcd_derives_it() {
    let etcd = Cluster::start_program(ETCD, 3);
    let list = etcd.etcdctl(0, &["member", "list", "-w", "json"]);
    assert!(list.success, "{}", list.stderr);
    let etcd_cluster_id = json_numbers(&list.stdout, "cluster_id");
    let member_ids = json_numbers(&list.stdout, "ID");
    assert_eq!(member_ids.len(), 3, "{}", list.stdout);
    assert_eq!(etcd_cluster_id, [cluster_id_for(member_ids)]);
}

#[test]
fn etcdctl_prints_the_same_against_etcd_and_faultline() {
    let etcd = transcript_of(ETCD);
    let ours = transcript_of(FAULTLINE);
    assert_eq!(etcd.len(), ours.len());
    let mut differences = Vec::new();
    let mut differing = Vec::new();
    for (theirs, ours) in etcd.iter().zip(&ours) {
        if theirs != ours {
            differences.push(format!("etcd 3.4:\n{theirs}\nfaultline:\n{ours}\n"));
            let command = theirs.split(": success=").next().expect("a command");
            differing.push(command.to_string());
        }
    }
    let known: Vec<&str> = KNOWN_DIFFERENCES
        .iter()
        .map(|(command, _)| *command)
        .collect();
    assert_eq!(
        differing,
        known,
        "{} of {} outputs differ:\n{}",
        differences.len(),
        etcd.len(),
        differences.join("\n")
    );
}
