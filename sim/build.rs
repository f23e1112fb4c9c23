//! Records the git commit the simulator was built from (for seed files: "found with which
//! code"). Tolerates building outside a git checkout or without git: the commit is then empty.

use std::path::PathBuf;
use std::process::Command;

/// `git rev-parse ARGS`, trimmed; None outside a checkout or without git.
fn rev_parse(args: &[&str]) -> Option<String> {
    Command::new("git")
        .arg("rev-parse")
        .args(args)
        .output()
        .ok()
        .filter(|out| out.status.success())
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .map(|s| s.trim().to_string())
}

fn main() {
    let commit = rev_parse(&["--short=12", "HEAD"]).unwrap_or_default();
    println!("cargo:rustc-env=FAULTLINE_GIT_COMMIT={commit}");
    // Re-run when HEAD moves. Git names the files (a worktree's HEAD lives in its own git
    // directory, its branches in the common one). Only name files that exist: a missing one
    // would make cargo re-run this script (and rebuild the crate) on every build.
    let watched: Vec<PathBuf> = ["HEAD", "packed-refs"]
        .iter()
        .filter_map(|name| rev_parse(&["--path-format=absolute", "--git-path", name]))
        .chain(
            rev_parse(&["--symbolic-full-name", "HEAD"]).and_then(|reference| {
                rev_parse(&["--path-format=absolute", "--git-path", &reference])
            }),
        )
        .map(PathBuf::from)
        .filter(|path| path.exists())
        .collect();
    if watched.is_empty() {
        println!("cargo:rerun-if-changed=build.rs");
    }
    for path in watched {
        println!("cargo:rerun-if-changed={}", path.display());
    }
}
