//! `dst`: run, fuzz, check and replay simulated clusters. See `faultline_sim::cli`.

#[cfg(not(madsim))]
fn main() {
    eprintln!(
        "dst runs simulations and must be built with `--cfg madsim` (the workspace default: \
         `cargo dst ...` or `cargo run -p faultline-sim --bin dst`)."
    );
    std::process::exit(2);
}

#[cfg(madsim)]
fn main() {
    std::process::exit(faultline_sim::cli::main());
}
