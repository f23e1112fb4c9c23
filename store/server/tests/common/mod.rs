//! Test harness: faultline-server processes on loopback (free ports, a fresh data directory
//! each, killed and removed on drop) and Debian's etcdctl 3.4 (`/usr/bin/etcdctl`, API v3).
// Each test crate compiles this module and uses a part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;

const ETCDCTL: &str = "/usr/bin/etcdctl";
/// Debian's etcd 3.4 server (apt-get install etcd-server), the yardstick.
pub const ETCD: &str = "/usr/bin/etcd";
/// This crate's server.
pub const FAULTLINE: &str = env!("CARGO_BIN_EXE_faultline-server");

/// A port nobody listens on now (the OS picks it; another process could take it before the
/// member binds it, which would fail the test loudly, not wrongly).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("address").port()
}

fn fresh_dir(label: &str) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!(
        "faultline-server-test-{}-{label}-{n}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the test directory");
    dir
}

/// One member process.
pub struct Member {
    pub name: String,
    pub client_url: String,
    pub peer_url: String,
    /// Where it serves /livez, /readyz, /health and /metrics besides its client URL.
    pub metrics_url: String,
    pub data_dir: PathBuf,
    /// The server binary ([`FAULTLINE`] or [`ETCD`]: both take etcd's flags).
    program: &'static str,
    child: Option<Child>,
    log: PathBuf,
}

impl Member {
    /// Member `m<index>` with free ports and its files under `dir`; not started.
    fn new(dir: &std::path::Path, index: usize, program: &'static str) -> Member {
        Member {
            name: format!("m{index}"),
            client_url: format!("http://127.0.0.1:{}", free_port()),
            peer_url: format!("http://127.0.0.1:{}", free_port()),
            metrics_url: format!("http://127.0.0.1:{}", free_port()),
            data_dir: dir.join(format!("m{index}.etcd")),
            program,
            child: None,
            log: dir.join(format!("m{index}.log")),
        }
    }

    fn spawn(&mut self, initial_cluster: &str, state: &str) {
        let log = std::fs::File::create(&self.log).expect("create the member's log");
        let child = Command::new(self.program)
            .args(["--name", &self.name])
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(["--listen-client-urls", &self.client_url])
            .args(["--advertise-client-urls", &self.client_url])
            .args(["--listen-peer-urls", &self.peer_url])
            .args(["--initial-advertise-peer-urls", &self.peer_url])
            .args(["--listen-metrics-urls", &self.metrics_url])
            .args(["--initial-cluster", initial_cluster])
            .args(["--initial-cluster-state", state])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", self.program));
        self.child = Some(child);
    }

    pub fn endpoint(&self) -> String {
        self.client_url.trim_start_matches("http://").to_string()
    }

    /// SIGKILL, and wait for the process to be gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The running process's ID.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A cluster of member processes on loopback; dropped, it kills them and removes its files.
pub struct Cluster {
    pub members: Vec<Member>,
    dir: PathBuf,
}

impl Cluster {
    /// Start `size` members (`--initial-cluster-state new`) and wait until every one answers
    /// `endpoint health`.
    pub fn start(size: usize) -> Cluster {
        Cluster::start_program(FAULTLINE, size)
    }

    /// [`Cluster::start`] with another server binary that takes etcd's flags.
    pub fn start_program(program: &'static str, size: usize) -> Cluster {
        let cluster = Cluster::launch_program(program, size, size);
        for i in 0..size {
            cluster.wait_healthy(i);
        }
        cluster
    }

    /// A cluster of `size` members of which only the first `running` are started (without
    /// waiting for them); [`Cluster::start_member`] starts the others.
    pub fn launch(size: usize, running: usize) -> Cluster {
        Cluster::launch_program(FAULTLINE, size, running)
    }

    /// [`Cluster::launch`] with another server binary that takes etcd's flags.
    pub fn launch_program(program: &'static str, size: usize, running: usize) -> Cluster {
        let dir = fresh_dir(&format!("cluster{size}"));
        let members: Vec<Member> = (0..size).map(|i| Member::new(&dir, i, program)).collect();
        let mut cluster = Cluster { members, dir };
        for i in 0..running {
            cluster.start_member(i);
        }
        cluster
    }

    /// A new member (not started, not yet in the cluster's member list: `etcdctl member add`
    /// it, then [`Cluster::start_joining`] it); returns its index.
    pub fn new_member(&mut self) -> usize {
        let index = self.members.len();
        let program = self.members[0].program;
        self.members.push(Member::new(&self.dir, index, program));
        index
    }

    /// Start member `index` with `--initial-cluster-state existing` (every member in
    /// --initial-cluster, as etcd's `member add` prints it); no waiting.
    pub fn start_joining(&mut self, index: usize) {
        let initial_cluster = self.initial_cluster();
        self.members[index].spawn(&initial_cluster, "existing");
    }

    fn initial_cluster(&self) -> String {
        self.members
            .iter()
            .map(|m| format!("{}={}", m.name, m.peer_url))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Start member `index` (again, with its data directory, if it ran before); no waiting.
    pub fn start_member(&mut self, index: usize) {
        let initial_cluster = self.initial_cluster();
        self.members[index].spawn(&initial_cluster, "new");
    }

    /// Restart a killed member with its data directory and wait until it is healthy.
    pub fn restart(&mut self, index: usize) {
        self.start_member(index);
        self.wait_healthy(index);
    }

    /// Poll `endpoint health` (a linearizable read) until it succeeds; a bound on attempts
    /// only keeps a broken build from hanging the test.
    pub fn wait_healthy(&self, index: usize) {
        for _ in 0..300 {
            let out = self.etcdctl(index, &["endpoint", "health"]);
            if out.success {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "member {index} never became healthy; its log:\n{}",
            self.members[index].log()
        );
    }

    pub fn etcdctl(&self, index: usize, args: &[&str]) -> Output {
        etcdctl(&self.members[index].endpoint(), args, None)
    }

    pub fn etcdctl_stdin(&self, index: usize, args: &[&str], stdin: &str) -> Output {
        etcdctl(&self.members[index].endpoint(), args, Some(stdin))
    }

    /// `etcdctl watch ...` in the background; its stdout lines arrive on the channel.
    pub fn watch(&self, index: usize, args: &[&str]) -> Watch {
        let mut child = Command::new(ETCDCTL)
            .env("ETCDCTL_API", "3")
            .args(["--endpoints", &self.members[index].endpoint(), "watch"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("run etcdctl watch");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Watch { child, lines }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for member in &mut self.members {
            member.kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub struct Output {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

pub fn etcdctl(endpoint: &str, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(ETCDCTL)
        .env("ETCDCTL_API", "3")
        .args(["--endpoints", endpoint, "--command-timeout", "10s"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("run {ETCDCTL} (Debian: apt-get install etcd-client): {e}"));
    let mut input = child.stdin.take().expect("piped stdin");
    input
        .write_all(stdin.unwrap_or("").as_bytes())
        .expect("write etcdctl's stdin");
    drop(input);
    let out = child.wait_with_output().expect("etcdctl finishes");
    Output {
        success: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A background `etcdctl watch`, killed on drop.
pub struct Watch {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Watch {
    /// The next `count` lines it printed (a generous bound keeps a lost event from hanging
    /// the test; it is not a timing assertion).
    pub fn lines(&self, count: usize) -> Vec<String> {
        (0..count)
            .map(|i| {
                self.lines
                    .recv_timeout(Duration::from_secs(30))
                    .unwrap_or_else(|_| panic!("watch printed only {i} of {count} lines"))
            })
            .collect()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
