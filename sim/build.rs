//! Records the git commit the simulator was built from (for seed files: "found with which
//! code"). Tolerates building outside a git checkout or without git: the commit is then empty.

use std::path::Path;
use std::process::Command;

fn main() {
    let commit = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    println!("cargo:rustc-env=FAULTLINE_GIT_COMMIT={commit}");
    // Re-run when HEAD moves. Only name files that exist: a missing one would make cargo
    // re-run this script (and rebuild the crate) on every build.
    let git_dir = Path::new("../.git");
    let head = git_dir.join("HEAD");
    if head.exists() {
        println!("cargo:rerun-if-changed={}", head.display());
        if let Ok(text) = std::fs::read_to_string(&head) {
            if let Some(reference) = text.strip_prefix("ref: ") {
                let reference = git_dir.join(reference.trim());
                if reference.exists() {
                    println!("cargo:rerun-if-changed={}", reference.display());
                }
            }
        }
        let packed = git_dir.join("packed-refs");
        if packed.exists() {
            println!("cargo:rerun-if-changed={}", packed.display());
        }
    } else {
        println!("cargo:rerun-if-changed=build.rs");
    }
}
