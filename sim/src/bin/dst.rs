//! `dst`: run, fuzz, check and replay simulated clusters. See `faultline_sim::cli`.

#[cfg(not(madsim))]
fn main() {
    eprintln!(
        "dst runs simulations and must be built with `--cfg madsim` (the workspace default: \
         `cargo dst ...` or `cargo run -p faultline-sim --bin dst`)."
    );
    std::process::exit(2);
}

/// glibc's malloc and free took ~20% of a seed's instructions; mimalloc's thread-local
/// free lists make them a few percent. Allocation never steers a run: nothing hashes
/// addresses, so the trace hashes are the same under either allocator.
#[cfg(madsim)]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[cfg(madsim)]
fn main() {
    std::process::exit(faultline_sim::cli::main());
}
