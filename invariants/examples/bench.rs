//! Benchmark: `cargo run --release -p faultline-invariants --example bench -- OPS UNKNOWN%
//! SERIALIZABLE% [BUDGET_STEPS]` generates an etcd history (16 clients) and checks it once
//! within BUDGET_STEPS search steps (default 10,000,000), printing the time of generation and
//! of the check. FL_SHAPE=1 then also prints the history's shape (it prepares the history once
//! more, after the check).
//! An exhausted budget prints "unknown", never a pass.
//! FL_LEASE_TTL=S: leases of S seconds that expire (keep-alives instead of revokes,
//! `testkit::generate_short_lease_history`), checked with expiry windows; FL_SHAPE=1 then
//! also counts the windows.
//! FL_NO_DEADLINE=1 leaves the expiry deadline unenforced.
//! Debugging aids: FL_NO_LEASES=1 (no leases or compaction), FL_WITNESS=1 (replays the
//! generator's own order through the model and real-time rules and names the first step it
//! rejects; FL_WITNESS_GAPS=1 also lists which unknown write filled each unclaimed revision),
//! FL_REV=A..B (prints the operations around revisions A..B), FL_SHOW=id,id.
use faultline_invariants::describe::summarize;
use faultline_invariants::etcd::{
    check_etcd_history_expiring, expiry_windows, prepare, LeaseExpiryBounds, Prepared,
};
use faultline_invariants::history::{History, Outcome};
use faultline_invariants::linearizability::{Model, Verdict};
use faultline_invariants::testkit::*;

fn main() {
    let o = options_from_args();
    let budget_steps: u64 = std::env::args()
        .nth(4)
        .map_or(10_000_000, |b| b.parse().expect("BUDGET_STEPS"));
    let t = std::time::Instant::now();
    let short_ttl: Option<i64> = std::env::var("FL_LEASE_TTL")
        .ok()
        .map(|v| v.parse().expect("FL_LEASE_TTL: seconds"));
    let (h, witness) = match short_ttl {
        Some(ttl) => (generate_short_lease_history(&o, ttl), vec![]),
        None => generate_etcd_history_with_witness(&o),
    };
    println!("generated in {:?}", t.elapsed());
    check_once(&h, budget_steps);
    if !["FL_SHAPE", "FL_WITNESS", "FL_SHOW", "FL_REV"]
        .iter()
        .any(|v| std::env::var(v).is_ok())
    {
        return;
    }
    // After the check, so that neither its time nor its memory counts as the checker's.
    let p = prepare(&h);
    print_shape(&h, &p);
    let windows = expiry_windows(&h, &bench_bounds()).windows;
    println!(
        "expiry windows: {} ({} with an enforced deadline)",
        windows.len(),
        windows.iter().filter(|w| w.required).count()
    );
    if std::env::var("FL_WITNESS").is_ok() {
        let placed = replay_witness(&p, &witness);
        check_witness_real_time(&p, &placed);
    }
    if let Ok(ids) = std::env::var("FL_SHOW") {
        for id in ids.split(",") {
            let id: usize = id.parse().unwrap();
            println!("{:?}", h.ops[id]);
        }
    }
    if let Ok(r) = std::env::var("FL_REV") {
        show_revisions(&h, &r);
    }
}

/// OPS UNKNOWN% SERIALIZABLE% from the command line, FL_NO_LEASES from the environment.
fn options_from_args() -> GenOptions {
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
    o
}

/// Step the model through the generator's own order; the indices placed. Stops at (and names)
/// the first step the model rejects.
fn replay_witness(p: &Prepared, witness: &[u64]) -> Vec<usize> {
    let mut states = p.model.init();
    let by_id: std::collections::BTreeMap<u64, usize> =
        p.ops.iter().enumerate().map(|(i, o)| (o.id, i)).collect();
    let mut placed = Vec::new();
    for id in witness {
        let Some(&i) = by_id.get(id) else { continue };
        let op = &p.ops[i];
        let next: Vec<_> = states
            .iter()
            .flat_map(|s| p.model.step(s, &op.input, op.output.as_ref()))
            .collect();
        if next.is_empty() && op.output.is_none() {
            continue; // a no-op unknown write (for example a txn whose compare failed)
        }
        if next.is_empty() {
            println!(
                "witness step rejected: op {id} {} => {} call {} ret {} pin {:?}",
                p.model.describe_input(&op.input),
                p.model.describe_output(op.output.as_ref()),
                op.call,
                op.ret,
                op.input.pin
            );
            println!("state: {}", p.model.describe_state(&states[0]));
            break;
        }
        if op.output.is_none()
            && next[0].revision != states[0].revision
            && std::env::var("FL_WITNESS_GAPS").is_ok()
        {
            println!(
                "witness gap {} filled by op {} {}",
                next[0].revision,
                op.id,
                p.model.describe_input(&op.input)
            );
        }
        states = next;
        placed.push(i);
    }
    placed
}

/// Real-time order: every op placed must be called before the return of every later op.
fn check_witness_real_time(p: &Prepared, placed: &[usize]) {
    let mut min_ret = u64::MAX;
    let mut min_at = 0;
    for &i in placed.iter().rev() {
        let op = &p.ops[i];
        if op.call > min_ret {
            let y = &p.ops[min_at];
            println!(
                "witness breaks real time: op {} called {} after op {} ret {} ({} => {}, pin {:?})",
                op.id,
                op.call,
                y.id,
                y.ret,
                p.model.describe_input(&y.input),
                p.model.describe_output(y.output.as_ref()),
                y.input.pin
            );
        }
        if op.ret < min_ret {
            min_ret = op.ret;
            min_at = i;
        }
    }
}

/// The operations around revisions `A..B`.
fn show_revisions(h: &History, range: &str) {
    let (a, b) = range.split_once("..").unwrap();
    let (a, b): (i64, i64) = (a.parse().unwrap(), b.parse().unwrap());
    let t0 = h
        .ops
        .iter()
        .find(|o| matches!(&o.outcome, Outcome::Ok(r) if r.header().revision >= a))
        .unwrap()
        .invoke_ns;
    let t1 = h
        .ops
        .iter()
        .find(|o| matches!(&o.outcome, Outcome::Ok(r) if r.header().revision > b))
        .unwrap()
        .complete_ns;
    for op in &h.ops {
        if op.complete_ns >= t0.saturating_sub(4_000_000) && op.invoke_ns <= t1 {
            let s = summarize(op);
            println!(
                "{} c{} [{} {:?}] {} => {}",
                s.id, s.client, s.invoke, s.complete, s.request, s.response
            );
        }
    }
}

/// What the search gets: how many operations, unknown, pinned, never returning.
fn print_shape(h: &History, p: &Prepared) {
    let unknown = p.ops.iter().filter(|o| o.output.is_none()).count();
    let pinned = p.ops.iter().filter(|o| o.input.pin.is_some()).count();
    let never = p
        .ops
        .iter()
        .filter(|o| o.output.is_none() && o.ret == u64::MAX)
        .count();
    let unclaimed = p.model.claimed.iter().skip(2).filter(|c| !**c).count();
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
}

/// Check within `budget_steps`, printing the verdict and the time.
/// The expiry bounds of the benchmark: clocks within 10%, elections of 450 ms (the default
/// scenario's 3 x 15 ticks of 10 ms), checkpoints every 2 s, no leader change.
fn bench_bounds() -> LeaseExpiryBounds {
    LeaseExpiryBounds {
        clock_rate_bound_percent: 10,
        election_ms: if std::env::var("FL_NO_DEADLINE").is_ok() {
            None
        } else {
            Some(450)
        },
        checkpoint_interval_ms: 2_000,
        leader_changes_ns: vec![],
        leaderless_windows_ns: vec![],
        skewed_windows_ns: vec![],
    }
}

fn check_once(h: &History, budget_steps: u64) {
    let t = std::time::Instant::now();
    let v = check_etcd_history_expiring(h, budget_steps, &bench_bounds()).0;
    println!(
        "budget {budget_steps}: {} in {:?}",
        match &v {
            Verdict::Linearizable => "ok".to_string(),
            other => format!("{other}").chars().take(300).collect(),
        },
        t.elapsed()
    );
}
