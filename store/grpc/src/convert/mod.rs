//! Conversions between etcd's wire types (`crate::pb`, generated from proto/) and the store's
//! own (`faultline_api`), and from the store's errors to gRPC statuses with etcd's codes and
//! messages. Requests convert both ways (the server decodes them; a client encodes them);
//! responses too, so every conversion is tested as a round trip.
//!
//! One file per service: `kv.rs` (KV and the key-value types), `txn.rs`, `lease.rs`, `watch.rs`,
//! `cluster.rs` (Cluster and Maintenance); `error.rs` maps `EtcdError` to `tonic::Status` and back.

mod cluster;
mod error;
mod kv;
mod lease;
mod txn;
mod watch;

pub use cluster::{member_from_api, status_from_api};
pub use error::{error_from_status, status_from_error, status_from_stream_error, LEADER_HINT_KEY};
pub use kv::{header_from_api, header_to_api};

#[cfg(test)]
mod tests;
