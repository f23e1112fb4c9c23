//! A real etcd process for one test run: free loopback ports, a temporary data directory,
//! health-checked at start, killed and cleaned up on drop (also when a test panics).

use std::fmt;
use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Environment variable naming the etcd binary (default: `etcd` found on PATH).
pub const ETCD_BIN_ENV: &str = "FAULTLINE_ETCD_BIN";

/// How the harness could fail; each names what and where.
#[derive(Debug)]
pub enum HarnessError {
    /// No etcd binary: the setup step was not run.
    EtcdNotInstalled {
        looked_for: String,
    },
    /// No two free loopback ports in the candidate range.
    NoFreePorts {
        first_port: u16,
        last_port: u16,
    },
    Io {
        what: String,
        error: std::io::Error,
    },
    /// etcd did not answer a request before the deadline; `log_tail` is the end of its log.
    NotHealthy {
        endpoint: String,
        waited_ms: u128,
        log_tail: String,
    },
    /// etcd exited on its own.
    Exited {
        status: String,
        log_tail: String,
    },
}

impl fmt::Display for HarnessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HarnessError::EtcdNotInstalled { looked_for } => write!(
                f,
                "etcd is not installed (looked for {looked_for}). The differential test needs \
                 etcd 3.4: `apt-get install etcd-server etcd-client protobuf-compiler \
                 libprotobuf-dev` (Debian), or set {ETCD_BIN_ENV} to an etcd binary"
            ),
            HarnessError::NoFreePorts {
                first_port,
                last_port,
            } => write!(
                f,
                "no two free loopback ports between {first_port} and {last_port} for etcd"
            ),
            HarnessError::Io { what, error } => write!(f, "{what}: {error}"),
            HarnessError::NotHealthy {
                endpoint,
                waited_ms,
                log_tail,
            } => write!(
                f,
                "etcd at {endpoint} not healthy after {waited_ms} ms; its log ends with:\n{log_tail}"
            ),
            HarnessError::Exited { status, log_tail } => {
                write!(
                    f,
                    "etcd exited ({status}); its log ends with:\n{log_tail}"
                )
            }
        }
    }
}

impl std::error::Error for HarnessError {}

/// A running single-member etcd on 127.0.0.1. Dropping it kills the process and removes its
/// data directory.
pub struct EtcdServer {
    child: Option<Child>,
    data_dir: PathBuf,
    client_port: u16,
    peer_port: u16,
}

/// Distinguishes the servers of one process (data directory names, port choice).
static SERVERS_STARTED: AtomicU32 = AtomicU32::new(0);

/// Ports are drawn from [PORT_BASE, PORT_BASE + PORT_SPAN): high enough to avoid well-known
/// services, below Linux's ephemeral range (32768+), so an outgoing connection never holds one.
const PORT_BASE: u16 = 21000;
const PORT_SPAN: u16 = 10000;

fn find_etcd() -> Result<PathBuf, HarnessError> {
    if let Ok(path) = std::env::var(ETCD_BIN_ENV) {
        let path = PathBuf::from(path);
        if path.is_file() {
            return Ok(path);
        }
        return Err(HarnessError::EtcdNotInstalled {
            looked_for: format!("{ETCD_BIN_ENV}={}", path.display()),
        });
    }
    let path_var = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path_var) {
        let candidate = dir.join("etcd");
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    Err(HarnessError::EtcdNotInstalled {
        looked_for: "`etcd` on PATH".to_string(),
    })
}

fn port_is_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// Two free ports (client, peer), starting at a place derived from the process id and the
/// server's number, so parallel test processes start apart and one process is repeatable.
fn pick_ports(server_number: u32) -> Result<(u16, u16), HarnessError> {
    let start = (std::process::id().wrapping_mul(7919) + server_number * 2) % u32::from(PORT_SPAN);
    let start = u16::try_from(start).expect("below PORT_SPAN");
    // Pairs are (even, odd) offsets; try every pair once.
    for step in 0..PORT_SPAN / 2 {
        let offset = (start / 2 * 2 + step * 2) % PORT_SPAN;
        let client_port = PORT_BASE + offset;
        let peer_port = client_port + 1;
        if port_is_free(client_port) && port_is_free(peer_port) {
            return Ok((client_port, peer_port));
        }
    }
    Err(HarnessError::NoFreePorts {
        first_port: PORT_BASE,
        last_port: PORT_BASE + PORT_SPAN - 1,
    })
}

fn temp_root() -> PathBuf {
    // tmpfs makes etcd's fsyncs cheap; any directory works.
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

impl EtcdServer {
    /// Start etcd and return once its client port accepts connections (`wait_healthy` then
    /// checks it answers requests). Fails with `EtcdNotInstalled` if there is no etcd.
    pub fn start() -> Result<EtcdServer, HarnessError> {
        let binary = find_etcd()?;
        let number = SERVERS_STARTED.fetch_add(1, Ordering::SeqCst);
        let (client_port, peer_port) = pick_ports(number)?;
        let data_dir = temp_root().join(format!(
            "faultline-difftest-{}-{}",
            std::process::id(),
            number
        ));
        if data_dir.exists() {
            fs::remove_dir_all(&data_dir).map_err(|error| HarnessError::Io {
                what: format!("removing stale {}", data_dir.display()),
                error,
            })?;
        }
        fs::create_dir_all(&data_dir).map_err(|error| HarnessError::Io {
            what: format!("creating {}", data_dir.display()),
            error,
        })?;
        let log_path = data_dir.join("etcd.log");
        let log = fs::File::create(&log_path).map_err(|error| HarnessError::Io {
            what: format!("creating {}", log_path.display()),
            error,
        })?;
        let log_err = log.try_clone().map_err(|error| HarnessError::Io {
            what: "cloning the log handle".to_string(),
            error,
        })?;
        let client_url = format!("http://127.0.0.1:{client_port}");
        let peer_url = format!("http://127.0.0.1:{peer_port}");
        let child = Command::new(&binary)
            .arg("--name")
            .arg("difftest")
            .arg("--data-dir")
            .arg(data_dir.join("data"))
            .arg("--listen-client-urls")
            .arg(&client_url)
            .arg("--advertise-client-urls")
            .arg(&client_url)
            .arg("--listen-peer-urls")
            .arg(&peer_url)
            .arg("--initial-advertise-peer-urls")
            .arg(&peer_url)
            .arg("--initial-cluster")
            .arg(format!("difftest={peer_url}"))
            .arg("--initial-cluster-state")
            .arg("new")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err))
            .spawn()
            .map_err(|error| HarnessError::Io {
                what: format!("starting {}", binary.display()),
                error,
            })?;
        Ok(EtcdServer {
            child: Some(child),
            data_dir,
            client_port,
            peer_port,
        })
    }

    /// The client endpoint, `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    pub fn peer_port(&self) -> u16 {
        self.peer_port
    }

    /// The last lines of etcd's log (for failure messages).
    pub fn log_tail(&self) -> String {
        let text = fs::read_to_string(self.data_dir.join("etcd.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Err if the process has exited.
    pub fn check_running(&mut self) -> Result<(), HarnessError> {
        let child = self.child.as_mut().expect("running until drop");
        match child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(HarnessError::Exited {
                status: status.to_string(),
                log_tail: self.log_tail(),
            }),
            Err(error) => Err(HarnessError::Io {
                what: "polling etcd".to_string(),
                error,
            }),
        }
    }

    /// Poll with `probe` (which should make one request) until it succeeds or `timeout_ms`
    /// passes. Wall-clock time is fine here: this runs outside any simulation.
    pub fn wait_healthy(
        &mut self,
        timeout_ms: u64,
        mut probe: impl FnMut(&str) -> bool,
    ) -> Result<(), HarnessError> {
        let started = Instant::now();
        let endpoint = self.endpoint();
        loop {
            self.check_running()?;
            if probe(&endpoint) {
                return Ok(());
            }
            if started.elapsed() > Duration::from_millis(timeout_ms) {
                return Err(HarnessError::NotHealthy {
                    endpoint,
                    waited_ms: started.elapsed().as_millis(),
                    log_tail: self.log_tail(),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for EtcdServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = fs::remove_dir_all(&self.data_dir);
    }
}
