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

    /// One phase's result: operations done, wall time, and each operation's latency.
    struct Phase {
        ops: usize,
        elapsed: Duration,
        latencies: Vec<Duration>,
    }

    impl Phase {
        fn ops_per_sec(&self) -> f64 {
            self.ops as f64 / self.elapsed.as_secs_f64()
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

    /// Run one phase with every caller; `written[c]`: how many keys caller `c` put.
    async fn phase(
        clients: &[Client],
        op: Op,
        written: &[usize],
        seconds: u64,
    ) -> (Phase, Vec<usize>, usize) {
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
        latencies.sort();
        let ops = latencies.len();
        let result = Phase {
            ops,
            elapsed,
            latencies,
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
        let (put, written, put_failed) = phase(&clients, Op::Put, &[0; CLIENTS], seconds).await;
        let (range, _, range_failed) = phase(&clients, Op::Get, &written, seconds).await;
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

    fn row(label: &str, ours: f64, etcd: f64) {
        println!(
            "| {label:<18} | {ours:>12.1} | {etcd:>12.1} | {:>6.2}x |",
            ours / etcd
        );
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
             linearizable gets"
        );
        let ours = run(FAULTLINE, seconds, &runtime);
        let etcd = run(ETCD, seconds, &runtime);
        println!(
            "| {:<18} | {:>12} | {:>12} | {:>7} |",
            "", "faultline", "etcd 3.4", "ratio"
        );
        println!("|{:-<20}|{:-<14}|{:-<14}|{:-<9}|", "", "", "", "");
        row("put ops/s", ours.put.ops_per_sec(), etcd.put.ops_per_sec());
        row(
            "put p50 ms",
            ours.put.percentile_ms(0.5),
            etcd.put.percentile_ms(0.5),
        );
        row(
            "put p99 ms",
            ours.put.percentile_ms(0.99),
            etcd.put.percentile_ms(0.99),
        );
        row(
            "range ops/s",
            ours.range.ops_per_sec(),
            etcd.range.ops_per_sec(),
        );
        row(
            "range p50 ms",
            ours.range.percentile_ms(0.5),
            etcd.range.percentile_ms(0.5),
        );
        row(
            "range p99 ms",
            ours.range.percentile_ms(0.99),
            etcd.range.percentile_ms(0.99),
        );
        println!(
            "puts: {} faultline, {} etcd; gets: {} faultline, {} etcd; failed calls: {} \
             faultline, {} etcd",
            ours.put.ops, etcd.put.ops, ours.range.ops, etcd.range.ops, ours.failed, etcd.failed
        );
    }
}
