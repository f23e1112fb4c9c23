//! `faultline-server`: one member of a Faultline cluster, serving etcd's v3 API.

#[cfg(madsim)]
fn main() {
    eprintln!(
        "faultline-server serves real clients over real sockets and must be built without \
         `--cfg madsim`: `cargo real-build -p faultline-server` (binary in \
         target/real/debug/faultline-server)."
    );
    std::process::exit(2);
}

#[cfg(not(madsim))]
fn main() {
    std::process::exit(faultline_server::main());
}
