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

/// Parse and check one file; an empty file (expected.tsv: `empty`) is refused as having no
/// operation, and counts as `empty` here.
fn check_file(file: &str) -> (Verdict, usize) {
    let text = std::fs::read_to_string(data_dir().join(file)).expect("read history");
    if text.is_empty() {
        let e = parse_jepsen_register(&text).expect_err("an empty file is refused");
        assert!(e.to_string().contains("empty"), "{file}: {e}");
        return (Verdict::Linearizable, 0);
    }
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
            "empty" => n == 0,
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
    assert_eq!(e.line, Some(2));
    assert!(e.to_string().contains("banana"), "{e}");
    let e = parse_jepsen_register("INFO  jepsen.util - 0\t:ok\t:read\t1\n").unwrap_err();
    assert_eq!(e.line, Some(1));
    let e = parse_porcupine_kv(
        "{:process 0, :type :invoke, :f :get, :key \"1\", :value nil}\n{:process 0 :type :ok}\n",
    )
    .unwrap_err();
    assert_eq!(e.line, Some(2));
    let e = parse_porcupine_kv("{:process 0, :type :invoke, :f :get, :key \"1, :value nil}")
        .unwrap_err();
    assert_eq!(e.line, Some(1));
}

#[test]
fn budget_exhaustion_is_unknown() {
    let text = std::fs::read_to_string(data_dir().join("jepsen/etcd_002.log")).unwrap();
    let ops = parse_jepsen_register(&text).unwrap();
    let v = check_register_ops(&ops, 10);
    assert!(v.is_unknown(), "{v:?}");
}

/// A scenario file of this repository: TOML, no history of any format.
fn toml_text() -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../sim/scenarios/default.toml");
    std::fs::read_to_string(path).expect("sim/scenarios/default.toml")
}

#[test]
fn a_file_of_another_format_is_refused_naming_its_line() {
    let toml = toml_text();
    let e = parse_jepsen_register(&toml).expect_err("TOML is not a Jepsen log");
    let first = toml.lines().next().unwrap();
    // A `#` comment is not Jepsen noise either: the very first line is named.
    assert_eq!(e.line, Some(1), "{e}");
    assert!(
        e.message.contains("not a line of a Jepsen register log"),
        "{e}"
    );
    assert!(
        e.message.contains("jepsen.util - "),
        "says what was expected: {e}"
    );
    assert!(
        e.message
            .contains(&format!("{:?}", first.chars().take(60).collect::<String>())),
        "quotes the line: {e}"
    );

    let kv = std::fs::read_to_string(data_dir().join("kv/c01-ok.txt")).unwrap();
    let e = parse_jepsen_register(&kv).expect_err("a kv log is not a Jepsen log");
    assert_eq!(e.line, Some(1), "{e}");
    assert!(e.message.contains("{:process"), "quotes the line: {e}");

    let jepsen = std::fs::read_to_string(data_dir().join("jepsen/etcd_000.log")).unwrap();
    let e = parse_porcupine_kv(&jepsen).expect_err("a Jepsen log is not a kv log");
    assert_eq!(e.line, Some(1), "{e}");
    assert!(
        e.message.contains("not a line of a porcupine kv history"),
        "{e}"
    );
    let e = parse_porcupine_kv(&toml).expect_err("TOML is not a kv log");
    assert_eq!(e.line, Some(1), "{e}");
}

#[test]
fn a_file_without_operations_is_refused() {
    for text in ["", "\n\n  \n"] {
        let e = parse_jepsen_register(text).expect_err("no operation");
        assert_eq!(e.line, None, "{e}");
        assert!(e.message.starts_with("no operation"), "{e}");
        assert!(e.message.contains("jepsen.util - "), "{e}");
        let e = parse_porcupine_kv(text).expect_err("no operation");
        assert_eq!(e.line, None, "{e}");
        assert!(e.message.contains(":process"), "{e}");
    }
    assert!(parse_jepsen_register("")
        .unwrap_err()
        .message
        .contains("the file is empty"));
    // Only lines Jepsen logs besides operations: still no history.
    let noise = "INFO  jepsen.core - Running test\n\
                 INFO  jepsen.util - :nemesis\t:info\t:start\tnil\n";
    let e = parse_jepsen_register(noise).expect_err("noise only");
    assert!(e.message.contains("none of its 2 lines"), "{e}");
}

#[test]
fn jepsen_log_noise_is_skipped_and_changes_nothing() {
    let ops = "INFO  jepsen.util - 0\t:invoke\t:write\t1\n\
               INFO  jepsen.util - 0\t:ok\t:write\t1\n\
               INFO  jepsen.util - 1\t:invoke\t:read\tnil\n\
               INFO  jepsen.util - 1\t:ok\t:read\t1\n";
    let noisy = "INFO  jepsen.core - Running test with 5 clients\n\
                 2017-03-01 12:00:00,123{GMT}\tWARN\t[jepsen worker 1] jepsen.control: ssh timeout\n\
                 INFO  jepsen.util - 0\t:invoke\t:write\t1\n\
                 java.net.SocketTimeoutException: Read timed out\n\
                 \tat java.net.SocketInputStream.read(SocketInputStream.java:150)\n\
                 \t... 12 more\n\
                 Caused by: java.io.IOException: closed\n\
                 INFO  jepsen.util - 0\t:ok\t:write\t1\n\
                 INFO  jepsen.util - :nemesis\t:info\t:start\tnil\n\
                 \n\
                 INFO  jepsen.util - 1\t:invoke\t:read\tnil\n\
                 INFO  jepsen.util - 1\t:ok\t:read\t1\n";
    let plain = parse_jepsen_register(ops).unwrap();
    let with_noise = parse_jepsen_register(noisy).unwrap();
    assert_eq!(plain.len(), 2);
    let shape = |ops: &[faultline_invariants::formats::RegisterOp]| {
        ops.iter()
            .map(|op| (op.client, op.input, op.output))
            .collect::<Vec<_>>()
    };
    assert_eq!(shape(&plain), shape(&with_noise));
    // The operations' own logger in another layout is not noise: it is refused, not skipped.
    let e = parse_jepsen_register("2020-01-01 00:00:00 INFO [w] jepsen.util: 0 :invoke :read nil")
        .expect_err("jepsen.util records are operations");
    assert_eq!(e.line, Some(1), "{e}");
}
