//! What `dst check FILE --format F` does, as a small process of this crate alone (so the
//! porcupine comparison, invariants/bench/vs_porcupine.sh, needs no simulator build): read
//! the file, parse it, check it within the default budget of `dst check` (100M steps), and
//! print the verdict and the time of parse + check. Exit code as `dst check`: 0 linearizable,
//! 1 not, 2 unknown, 3 unreadable.
//! `cargo run --release -p faultline-invariants --example check_file -- jepsen|porcupine-kv|faultline FILE`
use faultline_invariants::formats::{
    check_kv_ops, check_register_ops, parse_jepsen_register, parse_porcupine_kv,
};
use faultline_invariants::history::History;
use faultline_invariants::linearizability::Verdict;

/// `dst check`'s default budget (sim/src/cli/check.rs).
const BUDGET_STEPS: u64 = 100_000_000;

fn check(format: &str, text: &str) -> Result<Verdict, String> {
    match format {
        "jepsen" => parse_jepsen_register(text)
            .map(|ops| check_register_ops(&ops, BUDGET_STEPS))
            .map_err(|e| e.to_string()),
        "porcupine-kv" => parse_porcupine_kv(text)
            .map(|ops| check_kv_ops(&ops, BUDGET_STEPS))
            .map_err(|e| e.to_string()),
        "faultline" => serde_json::from_str::<History>(text)
            .map(|h| faultline_invariants::check_etcd_history(&h, BUDGET_STEPS))
            .map_err(|e| e.to_string()),
        other => Err(format!("unknown format {other:?}")),
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(format), Some(path)) = (args.next(), args.next()) else {
        eprintln!("usage: check_file jepsen|porcupine-kv|faultline FILE");
        std::process::exit(3);
    };
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        eprintln!("error: {path}: {e}");
        std::process::exit(3);
    });
    let started = std::time::Instant::now();
    let verdict = check(&format, &text).unwrap_or_else(|e| {
        eprintln!("error: {path}: {e}");
        std::process::exit(3);
    });
    let ms = started.elapsed().as_secs_f64() * 1e3;
    let (name, code) = match verdict {
        Verdict::Linearizable => ("linearizable", 0),
        Verdict::NotLinearizable(_) => ("not-linearizable", 1),
        Verdict::Unknown { .. } => ("unknown", 2),
    };
    println!("{path}: {name} ({ms:.2} ms)");
    std::process::exit(code);
}
