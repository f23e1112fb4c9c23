//! Generates the peer service's gRPC code from proto/ (etcd's own services are generated in
//! faultline-grpc) with protoc from the `protoc-bin-vendored` crate, so no
//! build needs a system protoc. Under `--cfg madsim` the crate is empty and nothing is generated.

#[cfg(madsim)]
fn main() {}

#[cfg(not(madsim))]
fn main() {
    let protoc = protoc_bin_vendored::protoc_bin_path().expect("protoc-bin-vendored has a protoc");
    // prost-build runs the protoc that PROTOC names; the build script is single-threaded.
    std::env::set_var("PROTOC", protoc);
    let protos = ["proto/faultline/peer.proto"];
    tonic_prost_build::configure()
        .compile_protos(&protos, &["proto"])
        .expect("compile the .proto files");
    println!("cargo:rerun-if-changed=proto");
}
