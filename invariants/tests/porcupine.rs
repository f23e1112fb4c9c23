//! Every recorded history in shared/data/porcupine gets the verdict expected.tsv gives.

use std::path::PathBuf;
use std::time::Instant;

use faultline_invariants::formats::{
    check_kv_ops, check_kv_ops_unpartitioned, check_register_ops, parse_jepsen_register,
    parse_porcupine_kv,
};
use faultline_invariants::linearizability::Verdict;

const BUDGET: u64 = 50_000_000;

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/porcupine")
}

fn expected() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(data_dir().join("expected.tsv")).expect("expected.tsv");
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (f, v) = l.split_once('\t').expect("two columns");
            (f.to_string(), v.trim().to_string())
        })
        .collect()
}

fn verdict_name(v: &Verdict) -> &'static str {
    match v {
        Verdict::Linearizable => "linearizable",
        Verdict::NotLinearizable(_) => "not-linearizable",
        Verdict::Unknown { .. } => "unknown",
    }
}

fn check_file(file: &str) -> (Verdict, usize) {
    let text = std::fs::read_to_string(data_dir().join(file)).expect("read history");
    if file.starts_with("jepsen/") {
        let ops = parse_jepsen_register(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
        (check_register_ops(&ops, BUDGET), ops.len())
    } else {
        let ops = parse_porcupine_kv(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
        (check_kv_ops(&ops, BUDGET), ops.len())
    }
}

#[test]
fn every_file_gets_the_expected_verdict() {
    let mut failures = Vec::new();
    let mut total = std::time::Duration::ZERO;
    let mut slowest = Vec::new();
    for (file, want) in expected() {
        let start = Instant::now();
        let (verdict, n) = check_file(&file);
        let took = start.elapsed();
        total += took;
        slowest.push((took, file.clone(), n));
        let got = verdict_name(&verdict);
        let ok = match want.as_str() {
            "empty" => n == 0 && verdict.is_linearizable(),
            w => w == got,
        };
        if !ok {
            failures.push(format!("{file}: expected {want}, got {got}"));
        }
        if let Verdict::NotLinearizable(report) = &verdict {
            assert!(
                !report.unplaceable.is_empty(),
                "{file}: report names no operation"
            );
        }
    }
    slowest.sort();
    slowest.reverse();
    eprintln!("all porcupine files: {total:?}; slowest:");
    for (t, f, n) in slowest.iter().take(5) {
        eprintln!("  {f} ({n} ops): {t:?}");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_not_linearizable_register_report_names_operations() {
    let (verdict, _) = check_file("jepsen/etcd_000.log");
    let report = verdict.report().expect("etcd_000 is not linearizable");
    let text = report.to_string();
    assert!(text.contains("longest linearizable prefix"), "{text}");
    assert!(text.contains("client"), "{text}");
    let json = serde_json::to_string(&verdict).unwrap();
    let back: Verdict = serde_json::from_str(&json).unwrap();
    assert_eq!(back, verdict);
}

#[test]
fn kv_c10_checked_as_one_history() {
    for (file, want) in [("kv/c10-ok.txt", true), ("kv/c10-bad.txt", false)] {
        let text = std::fs::read_to_string(data_dir().join(file)).unwrap();
        let ops = parse_porcupine_kv(&text).unwrap();
        let start = Instant::now();
        let v = check_kv_ops_unpartitioned(&ops, BUDGET);
        eprintln!(
            "{file} unpartitioned: {:?} in {:?}",
            verdict_name(&v),
            start.elapsed()
        );
        assert_eq!(v.is_linearizable(), want, "{file}");
        assert!(!v.is_unknown());
    }
}

#[test]
fn parse_errors_name_the_line() {
    let bad =
        "INFO  jepsen.util - 0\t:invoke\t:read\tnil\nINFO  jepsen.util - 0\t:ok\t:read\tbanana\n";
    let e = parse_jepsen_register(bad).unwrap_err();
    assert_eq!(e.line, 2);
    assert!(e.to_string().contains("banana"), "{e}");
    let e = parse_jepsen_register("INFO  jepsen.util - 0\t:ok\t:read\t1\n").unwrap_err();
    assert_eq!(e.line, 1);
    let e = parse_porcupine_kv(
        "{:process 0, :type :invoke, :f :get, :key \"1\", :value nil}\n{:process 0 :type :ok}\n",
    )
    .unwrap_err();
    assert_eq!(e.line, 2);
    let e = parse_porcupine_kv("{:process 0, :type :invoke, :f :get, :key \"1, :value nil}")
        .unwrap_err();
    assert_eq!(e.line, 1);
}

#[test]
fn budget_exhaustion_is_unknown() {
    let text = std::fs::read_to_string(data_dir().join("jepsen/etcd_002.log")).unwrap();
    let ops = parse_jepsen_register(&text).unwrap();
    let v = check_register_ops(&ops, 10);
    assert!(v.is_unknown(), "{v:?}");
}
