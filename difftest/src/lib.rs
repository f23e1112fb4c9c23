//! Differential testing of the store's key space against a real etcd 3.4.
//!
//! The same single-client sequence of requests (generated from a seed, [`gen`]) goes to a real
//! etcd process ([`etcd::EtcdServer`], through the `etcd-client` crate, [`real`]) and to
//! `faultline_mvcc` (`KvStore` + `WatchHub` + a primary `LeaseClock`); every response is
//! compared field by field ([`compare`]) after one normalization function for the known,
//! listed differences (DIFFERENCES.md). Watches compare the events each one received.
//!
//! Runs outside any simulation, with real tokio and real sockets; never depend on this crate
//! from the store, the simulator or the checkers.
//!
//! ```no_run
//! use faultline_difftest::{etcd::EtcdServer, run::{run, probe, RunOptions}};
//! let mut server = EtcdServer::start().expect("etcd installed");
//! server.wait_healthy(20_000, probe).expect("etcd healthy");
//! let options = RunOptions { seeds: 0..10, ops_per_seed: 200, tamper: None };
//! let summary = run(&server.endpoint(), &options).expect("store matches etcd");
//! println!("{summary:?}");
//! ```

pub mod compare;
pub mod etcd;
pub mod gen;
pub mod real;
pub mod run;

use serde::{Deserialize, Serialize};

/// An error as a client sees it: the gRPC status code's name and etcd's message
/// (`code` is "client" for failures inside the client library).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ErrorOutcome {
    pub code: String,
    pub message: String,
}
