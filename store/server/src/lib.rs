//! The store as a real etcd server: etcd's v3 gRPC API (tonic) in front of one member
//! (`faultline_node::drive_member`), peers over gRPC on TCP, data in a real directory
//! (`faultline_storage::FileDisk`).
//!
//! Real build only: under `--cfg madsim` this library is empty (see Cargo.toml).
//! Files, in the order a request meets them: `flags.rs` (the command line), `run.rs`
//! (start and stop), etcd's gRPC services and wire conversions (faultline-grpc's, the code the
//! simulator's members serve too), `http.rs` (/livez, /readyz, /metrics), `member.rs` (the
//! local member, forwarding to the leader: the services' backend), `peer.rs` (member to
//! member traffic), `pb.rs` (generated code).
#![cfg(not(madsim))]

pub mod cluster_id;
pub mod flags;
pub mod http;
pub mod identity;
pub mod member;
pub mod pb;
pub mod peer;
pub mod run;

pub use faultline_grpc::{convert, services};

use clap::Parser;

/// The command line's entry point; returns the process exit code (2: bad flags, 1: the member
/// could not start or failed).
pub fn main() -> i32 {
    let flags = flags::Flags::parse();
    let config = match flags.check() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("faultline-server: {error}");
            return 2;
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match real_tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("faultline-server: cannot start the runtime: {error}");
            return 1;
        }
    };
    match runtime.block_on(run::serve(config)) {
        Ok(()) => 0,
        Err(error) => {
            eprintln!("faultline-server: {error}");
            1
        }
    }
}
