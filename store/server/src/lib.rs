//! The store as a real etcd server: etcd's v3 gRPC API (tonic) in front of one member
//! (`faultline_node`), peers over TCP, data in a real directory (`faultline_storage::FileDisk`).
//!
//! Real build only: under `--cfg madsim` this library is empty (see Cargo.toml).
#![cfg(not(madsim))]

pub mod convert;
pub mod pb;

/// The command line's entry point; returns the process exit code.
pub fn main() -> i32 {
    0
}
