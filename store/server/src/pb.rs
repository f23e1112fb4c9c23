//! The code generated from proto/ (our peer service) and etcd's wire types (faultline-grpc's).
#![allow(clippy::all, clippy::pedantic, missing_docs)]

pub use faultline_grpc::pb::{etcdserverpb, mvccpb};

pub mod peer {
    tonic::include_proto!("faultline.peer");
}
