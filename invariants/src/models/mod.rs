//! Sequential specifications for the linearizability engine.

pub mod etcd;
pub mod kv;
pub mod kv_hints;
pub mod register;
