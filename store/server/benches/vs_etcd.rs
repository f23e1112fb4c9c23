//! faultline-server against etcd 3.4 (Debian's /usr/bin/etcd), three processes each on
//! loopback with fresh data directories, driven by the same load generator: `CLIENTS`
//! concurrent `etcd-client` callers sharing `CONNECTIONS` clients (each connected to all
//! three members), first puts of unique keys with 256-byte values for a fixed time, then
//! linearizable single-key gets of the keys written for the same time. Prints throughput and
//! p50/p99 latency side by side. A benchmark, not a test: it asserts nothing about speed.
//!
//! `cargo real-bench -p faultline-server --bench vs_etcd` (FAULTLINE_BENCH_SECS: seconds per
//! phase, default 10).

#[cfg(madsim)]
fn main() {
    eprintln!("the benchmark runs real processes: cargo real-bench -p faultline-server");
}

#[cfg(not(madsim))]
#[path = "../tests/common/mod.rs"]
mod common;

#[cfg(not(madsim))]
fn main() {
    real::main();
}

#[cfg(not(madsim))]
mod real {
    use std::time::{Duration, Instant};

    use crate::common::{Cluster, ETCD, FAULTLINE};
    use etcd_client::{Client, ConnectOptions};

    /// Concurrent callers, and the clients (connection sets) they share.
    const CLIENTS: usize = 16;
    const CONNECTIONS: usize = 4;
    const VALUE_SIZE_BYTES: usize = 256;

    /// One phase's result: operations done, wall time, each operation's latency, and the
    /// CPU time the three member processes used meanwhile.
    struct Phase {
        ops: usize,
        elapsed: Duration,
        latencies: Vec<Duration>,
        server_cpu: Duration,
    }

    impl Phase {
        fn ops_per_sec(&self) -> f64 {
            self.ops as f64 / self.elapsed.as_secs_f64()
        }

        /// Server CPU time (all three members) per operation, in milliseconds.
        fn cpu_ms_per_op(&self) -> f64 {
            self.server_cpu.as_secs_f64() * 1000.0 / self.ops as f64
        }

        /// The latency below which `fraction` of the operations finished, in milliseconds.
        fn percentile_ms(&self, fraction: f64) -> f64 {
            if self.latencies.is_empty() {
                return f64::NAN;
            }
            let index = ((self.latencies.len() - 1) as f64 * fraction).round() as usize;
            self.latencies[index].as_secs_f64() * 1000.0
        }
    }

    struct Results {
        put: Phase,
        range: Phase,
        failed: usize,
    }

    #[derive(Clone, Copy)]
    enum Op {
        Put,
        Get,
    }

    /// Caller `caller`'s loop: its own keys `bench/<caller>/<n>`; puts write them, gets read
    /// back the ones this caller wrote (round-robin), until `deadline`.
    async fn caller(
        mut client: Client,
        caller: usize,
        op: Op,
        written: usize,
        deadline: Instant,
    ) -> (Vec<Duration>, usize) {
        let value = vec![b'v'; VALUE_SIZE_BYTES];
        let mut latencies = Vec::new();
        let mut failed = 0;
        let mut n = 0usize;
        while Instant::now() < deadline {
            let key = match op {
                Op::Put => format!("bench/{caller:02}/{n:08}"),
                Op::Get => format!("bench/{caller:02}/{:08}", n % written.max(1)),
            };
            let started = Instant::now();
            let outcome = match op {
                Op::Put => client.put(key, value.clone(), None).await.map(|_| ()),
                Op::Get => client.get(key, None).await.map(|r| {
                    assert_eq!(r.kvs().len(), 1, "a written key reads back");
                }),
            };
            match outcome {
                Ok(()) => latencies.push(started.elapsed()),
                Err(_) => failed += 1,
            }
            n += 1;
        }
        (latencies, failed)
    }

    /// User + system CPU time of the member processes so far (/proc/<pid>/stat fields 14 and
    /// 15, in clock ticks of 10 ms: Linux's USER_HZ is 100).
    fn server_cpu(cluster: &Cluster) -> Duration {
        let ticks: u64 = cluster
            .members
            .iter()
            .filter_map(|m| m.pid())
            .map(|pid| {
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
                // Fields after the command name (which is in parentheses and may hold spaces).
                let after = stat.rsplit_once(") ").map_or("", |(_, rest)| rest);
                let fields: Vec<&str> = after.split(' ').collect();
                let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
                field(14).unwrap_or(0) + field(15).unwrap_or(0)
            })
            .sum();
        Duration::from_millis(ticks * 10)
    }

    /// Run one phase with every caller; `written[c]`: how many keys caller `c` put.
    async fn phase(
        cluster: &Cluster,
        clients: &[Client],
        op: Op,
        written: &[usize],
        seconds: u64,
    ) -> (Phase, Vec<usize>, usize) {
        let cpu_before = server_cpu(cluster);
        let started = Instant::now();
        let deadline = started + Duration::from_secs(seconds);
        let tasks: Vec<_> = (0..CLIENTS)
            .map(|c| {
                let client = clients[c % clients.len()].clone();
                real_tokio::spawn(caller(client, c, op, written[c], deadline))
            })
            .collect();
        let mut latencies = Vec::new();
        let mut per_caller = Vec::new();
        let mut failed = 0;
        for task in tasks {
            let (mine, failures) = task.await.expect("a caller");
            per_caller.push(mine.len());
            latencies.extend(mine);
            failed += failures;
        }
        let elapsed = started.elapsed();
        let server_cpu = server_cpu(cluster).saturating_sub(cpu_before);
        latencies.sort();
        let ops = latencies.len();
        let result = Phase {
            ops,
            elapsed,
            latencies,
            server_cpu,
        };
        (result, per_caller, failed)
    }

    async fn drive(cluster: &Cluster, seconds: u64) -> Results {
        let urls: Vec<String> = cluster
            .members
            .iter()
            .map(|m| m.client_url.clone())
            .collect();
        let mut clients = Vec::new();
        for _ in 0..CONNECTIONS {
            let options = ConnectOptions::new().with_timeout(Duration::from_secs(10));
            let client = Client::connect(&urls, Some(options))
                .await
                .expect("connect");
            clients.push(client);
        }
        let (put, written, put_failed) =
            phase(cluster, &clients, Op::Put, &[0; CLIENTS], seconds).await;
        let (range, _, range_failed) = phase(cluster, &clients, Op::Get, &written, seconds).await;
        Results {
            put,
            range,
            failed: put_failed + range_failed,
        }
    }

    fn run(program: &'static str, seconds: u64, runtime: &real_tokio::runtime::Runtime) -> Results {
        let cluster = Cluster::start_program(program, 3);
        let results = runtime.block_on(drive(&cluster, seconds));
        drop(cluster);
        results
    }

    /// How to read one figure from a cluster's results.
    type Figure = fn(&Results) -> f64;

    /// The table's rows: a label and its figure.
    const ROWS: &[(&str, Figure)] = &[
        ("put ops/s", |r| r.put.ops_per_sec()),
        ("put p50 ms", |r| r.put.percentile_ms(0.5)),
        ("put p99 ms", |r| r.put.percentile_ms(0.99)),
        ("range ops/s", |r| r.range.ops_per_sec()),
        ("range p50 ms", |r| r.range.percentile_ms(0.5)),
        ("range p99 ms", |r| r.range.percentile_ms(0.99)),
        ("put server CPU ms/op", |r| r.put.cpu_ms_per_op()),
        ("range server CPU ms/op", |r| r.range.cpu_ms_per_op()),
    ];

    /// The machine's 1-minute load average: the figures are only comparable on a quiet one.
    fn load_average() -> String {
        let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
        text.split(' ').next().unwrap_or("?").to_string()
    }

    pub fn main() {
        let seconds: u64 = std::env::var("FAULTLINE_BENCH_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(10);
        let runtime = real_tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        println!(
            "3 members each on loopback; {CLIENTS} callers over {CONNECTIONS} clients; \
             {VALUE_SIZE_BYTES}-byte values; {seconds} s of puts, then {seconds} s of \
             linearizable gets; {} CPUs, load average {} at start",
            std::thread::available_parallelism().map_or(0, |n| n.get()),
            load_average()
        );
        let ours = run(FAULTLINE, seconds, &runtime);
        let etcd = run(ETCD, seconds, &runtime);
        println!(
            "| {:<22} | {:>10} | {:>10} | {:>6} |",
            "", "faultline", "etcd 3.4", "ratio"
        );
        println!("|{:-<24}|{:-<12}|{:-<12}|{:-<8}|", "", "", "", "");
        for (label, figure) in ROWS {
            let (ours, etcd) = (figure(&ours), figure(&etcd));
            println!(
                "| {label:<22} | {ours:>10.2} | {etcd:>10.2} | {:>5.2}x |",
                ours / etcd
            );
        }
        println!(
            "puts: {} faultline, {} etcd; gets: {} faultline, {} etcd; failed calls: {} \
             faultline, {} etcd; load average {} at the end",
            ours.put.ops,
            etcd.put.ops,
            ours.range.ops,
            etcd.range.ops,
            ours.failed,
            etcd.failed,
            load_average()
        );
    }
}
