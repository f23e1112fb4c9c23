//! Benchmark of one Jepsen register log (shared/data/porcupine/jepsen), as `dst check --format
//! jepsen` runs it: `cargo run --release -p faultline-invariants --example jepsen_bench -- FILE
//! [RUNS]`. Prints the median over RUNS (default 15) of parse time, check time and their sum.
use std::time::{Duration, Instant};

use faultline_invariants::formats::{check_register_ops, parse_jepsen_register};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().expect("usage: jepsen_bench FILE [RUNS]");
    let runs: usize = args.next().map_or(15, |r| r.parse().expect("RUNS"));
    let text = std::fs::read_to_string(&path).expect("readable file");
    let (mut parse, mut check, mut total) = (Vec::new(), Vec::new(), Vec::new());
    let mut verdict = String::new();
    for _ in 0..runs {
        let t0 = Instant::now();
        let ops = parse_jepsen_register(&text).expect("parsable log");
        let t1 = Instant::now();
        let v = check_register_ops(&ops, 100_000_000);
        let t2 = Instant::now();
        parse.push(t1 - t0);
        check.push(t2 - t1);
        total.push(t2 - t0);
        verdict = match v {
            faultline_invariants::linearizability::Verdict::Linearizable => "linearizable".into(),
            faultline_invariants::linearizability::Verdict::NotLinearizable(_) => {
                "not linearizable".into()
            }
            faultline_invariants::linearizability::Verdict::Unknown { .. } => "unknown".into(),
        };
    }
    println!(
        "{path}: {verdict}; median of {runs}: parse {:.2} ms, check {:.2} ms, total {:.2} ms",
        median(parse).as_secs_f64() * 1e3,
        median(check).as_secs_f64() * 1e3,
        median(total).as_secs_f64() * 1e3
    );
}
