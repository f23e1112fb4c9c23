//! The oracle: the store against a real etcd 3.4 (etcd-semantics.md §1-§9).
//! Needs etcd installed (Debian: etcd-server); without it these tests FAIL, naming the setup.

use std::ops::Range;

use faultline_difftest::etcd::EtcdServer;
use faultline_difftest::run::{probe, run, Failure, Phase, RunOptions, Tamper};

const SEEDS_ENV: &str = "FAULTLINE_DIFFTEST_SEEDS";
const DEFAULT_SEEDS: Range<u64> = 0..100;
const OPS_PER_SEED: usize = 200;

fn start_etcd() -> EtcdServer {
    let mut server = EtcdServer::start().unwrap_or_else(|e| panic!("{e}"));
    server
        .wait_healthy(30_000, probe)
        .unwrap_or_else(|e| panic!("{e}"));
    server
}

/// `FAULTLINE_DIFFTEST_SEEDS=a..b` overrides the seed range; bad input is an error naming it.
fn seeds() -> Range<u64> {
    let Ok(text) = std::env::var(SEEDS_ENV) else {
        return DEFAULT_SEEDS;
    };
    let parsed = text
        .split_once("..")
        .and_then(|(a, b)| Some((a.trim().parse::<u64>().ok()?, b.trim().parse::<u64>().ok()?)));
    match parsed {
        Some((start, end)) if start < end => start..end,
        _ => panic!("{SEEDS_ENV}={text:?}: expected a non-empty range such as 0..100"),
    }
}

#[test]
fn store_matches_etcd_on_every_response() {
    let server = start_etcd();
    let seeds = seeds();
    let options = RunOptions {
        seeds: seeds.clone(),
        ops_per_seed: OPS_PER_SEED,
        tamper: None,
    };
    let summary = run(&server.endpoint(), &options).unwrap_or_else(|failure| panic!("{failure}"));
    println!("differential run over seeds {seeds:?}: {summary:#?}");
    // The run really compared what it claims (a run that compared nothing must not pass).
    assert_eq!(summary.seeds, seeds.end - seeds.start);
    assert!(summary.steps >= summary.seeds * OPS_PER_SEED as u64);
    for kind in [
        "Range",
        "Put",
        "DeleteRange",
        "Txn",
        "Compact",
        "LeaseGrant",
        "LeaseRevoke",
        "LeaseTimeToLive",
        "LeaseLeases",
        "LeaseKeepAlive",
        "Watch",
    ] {
        assert!(
            summary.steps_by_kind.get(kind).copied().unwrap_or(0) > 0,
            "no {kind} step was compared: {summary:?}"
        );
    }
    assert!(summary.matching_errors > 0);
    assert!(summary.watch_events > 0);
    // Snapshot/restore was in the loop: the store answered from restored snapshots.
    assert!(summary.restores > 0, "{summary:?}");
}

/// The comparison can fail: a store response altered on purpose is reported, with the seed,
/// the step and both responses.
#[test]
fn an_altered_store_response_is_reported() {
    let server = start_etcd();
    let options = RunOptions {
        seeds: 3..5,
        ops_per_seed: 50,
        tamper: Some(Tamper {
            seed: 4,
            step_index: 17,
        }),
    };
    match run(&server.endpoint(), &options) {
        Err(Failure::Mismatch(m)) => {
            assert_eq!((m.seed, m.phase, m.index), (4, Phase::Generated, 17));
            let text = m.to_string();
            assert!(text.contains("seed 4"), "{text}");
            assert!(text.contains("FAULTLINE_DIFFTEST_SEEDS=3..5"), "{text}");
            assert!(text.contains("store:") && text.contains("etcd:"), "{text}");
        }
        other => panic!("expected a mismatch at seed 4 step 17, got {other:?}"),
    }
}
