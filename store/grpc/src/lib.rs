//! etcd's v3 gRPC API over one member, in both builds: the services (`services/`), the
//! conversions between etcd's wire types and the store's (`convert/`), and what a client needs
//! to read a status back as the store's error (`convert::error_from_status`).
//!
//! One code for both: under `--cfg madsim` `tonic` is madsim-tonic (same generated traits
//! and types); otherwise it is tonic itself, and
//! `faultline-server` serves the same services on real sockets. The services ask a
//! [`Backend`]: the member's own handle in simulation, the server's forwarding member for real.
//! The simulator's clients reach the services through `wire` (prost-encoded messages carried
//! over the simulator's own transport, see its doc), not through madsim-tonic's network.

pub mod backend;
pub mod cluster_id;
pub mod convert;
pub mod pb;
pub mod serve;
pub mod services;
#[cfg(madsim)]
pub mod wire;

pub use backend::Backend;
pub use serve::serve;
pub use services::Etcd;
