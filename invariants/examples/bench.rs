//! Benchmark: `cargo run --release -p faultline-invariants --example bench -- OPS UNKNOWN% SERIALIZABLE%`
//! generates an etcd history (16 clients) and checks it with growing budgets.
use faultline_invariants::testkit::*;
fn main() {
    let n: usize = std::env::args().nth(1).unwrap().parse().unwrap();
    let unk: u64 = std::env::args().nth(2).unwrap().parse().unwrap();
    let ser: u64 = std::env::args().nth(3).unwrap().parse().unwrap();
    let mut o = GenOptions::benchmark(0);
    o.ops = n;
    o.unknown_percent = unk;
    o.serializable_percent = ser;
    if std::env::var("FL_NO_LEASES").is_ok() {
        o.leases_and_compaction = false;
    }
    let h = generate_etcd_history(&o);
    let p = faultline_invariants::etcd::prepare(&h);
    let unknown = p.ops.iter().filter(|o| o.output.is_none()).count();
    let pinned = p.ops.iter().filter(|o| o.input.pin.is_some()).count();
    let never = p
        .ops
        .iter()
        .filter(|o| o.output.is_none() && o.ret == u64::MAX)
        .count();
    let unclaimed = p.model.claimed.iter().skip(2).filter(|c| !**c).count();
    if let Ok(ids) = std::env::var("FL_SHOW") {
        for id in ids.split(",") {
            let id: usize = id.parse().unwrap();
            println!("{:?}", h.ops[id]);
        }
    }
    if let Ok(r) = std::env::var("FL_REV") {
        let (a, b) = r.split_once("..").unwrap();
        let (a, b): (i64, i64) = (a.parse().unwrap(), b.parse().unwrap());
        let t0 = h.ops.iter().find(|o| matches!(&o.outcome, faultline_invariants::history::Outcome::Ok(r) if r.header().revision >= a)).unwrap().invoke_ns;
        let t1 = h.ops.iter().find(|o| matches!(&o.outcome, faultline_invariants::history::Outcome::Ok(r) if r.header().revision > b)).unwrap().complete_ns;
        for op in &h.ops {
            if op.complete_ns >= t0.saturating_sub(4_000_000) && op.invoke_ns <= t1 {
                let s = faultline_invariants::etcd::summarize(op);
                println!("{} c{} [{} {:?}] {} => {}", s.id, s.client, s.invoke, s.complete, s.request, s.response);
            }
        }
    }
    println!(
        "ops {} in search {} unknown {} pinned {} never {} unclaimed {} maxrev {}",
        h.ops.len(),
        p.ops.len(),
        unknown,
        pinned,
        never,
        unclaimed,
        p.model.max_revision
    );
    for b in [
        10_000u64,
        30_000,
        100_000,
        300_000,
        1_000_000,
        10_000_000,
        100_000_000,
    ] {
        let t = std::time::Instant::now();
        let v = faultline_invariants::check_etcd_history(&h, b);
        println!(
            "budget {b}: {} in {:?}",
            match &v {
                faultline_invariants::linearizability::Verdict::Linearizable => "ok".to_string(),
                other => format!("{other}").chars().take(300).collect(),
            },
            t.elapsed()
        );
        if v.is_linearizable() {
            break;
        }
    }
}
