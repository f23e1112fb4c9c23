//! Generates etcd's gRPC code from proto/ with protoc from the `protoc-bin-vendored` crate, so
//! no build needs a system protoc. madsim-tonic-build writes both the real code and, under
//! `sim/`, the simulated one; `tonic::include_proto!` (madsim-tonic) picks the build's.

fn main() {
    let protoc = protoc_bin_vendored::protoc_bin_path().expect("protoc-bin-vendored has a protoc");
    // prost-build runs the protoc that PROTOC names; the build script is single-threaded.
    std::env::set_var("PROTOC", protoc);
    let protos = ["proto/mvccpb/kv.proto", "proto/etcdserverpb/rpc.proto"];
    tonic_build::configure()
        .compile_protos(&protos, &["proto"])
        .expect("compile the .proto files");
    println!("cargo:rerun-if-changed=proto");
}
