//! Interaction tests as readable scripts with golden output, one per feature. The scripts
//! live in tests/scripts/*.txt (the language is described in tests/harness/script.rs); the
//! transcripts are insta snapshots in tests/snapshots/. After an intended change in
//! behaviour, review the new transcript and accept it (`cargo insta review`, or
//! `INSTA_UPDATE=always cargo test -p faultline-raft --test scripts`).
//!
//! The safety checker runs after every step of every script, so a transcript that ends
//! without `VIOLATION` or `PANIC` also passed every safety property.

mod harness;

fn transcript(name: &str) -> String {
    let path = format!("{}/tests/scripts/{name}.txt", env!("CARGO_MANIFEST_DIR"));
    let script = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    harness::script::run(&script)
}

/// Runs the script and compares its transcript with the golden one. Unless the script is
/// expected to catch something (`caught`), a transcript must not end in a violation.
fn check(name: &str, caught: Option<&str>) {
    let out = transcript(name);
    match caught {
        None => assert!(
            !out.contains("VIOLATION") && !out.contains("PANIC"),
            "{name} failed:\n{out}"
        ),
        Some(what) => assert!(out.contains(what), "{name} did not catch {what}:\n{out}"),
    }
    insta::assert_snapshot!(name, out);
}

#[test]
fn snapshot_catch_up() {
    check("snapshot_catch_up", None);
}

#[test]
fn flow_control() {
    check("flow_control", None);
}

#[test]
fn add_remove_voter() {
    check("add_remove_voter", None);
}

#[test]
fn learner_promote() {
    check("learner_promote", None);
}

#[test]
fn removed_leader() {
    check("removed_leader", None);
}

#[test]
fn removed_member() {
    check("removed_member", None);
}

#[test]
fn leader_transfer() {
    check("leader_transfer", None);
}

/// A canary's script, run without its canary: nothing may be caught then, so what the canary
/// script catches is the planted bug and not the scenario.
fn check_without_canary(name: &str) {
    let path = format!("{}/tests/scripts/{name}.txt", env!("CARGO_MANIFEST_DIR"));
    let script = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let without: String = script
        .lines()
        .map(|line| {
            let words: Vec<&str> = line
                .split_whitespace()
                .filter(|word| !word.starts_with("canary="))
                .collect();
            words.join(" ") + "\n"
        })
        .collect();
    assert_ne!(without.trim(), script.trim(), "{name} names no canary");
    let out = harness::script::run(&without);
    assert!(
        !out.contains("VIOLATION") && !out.contains("PANIC"),
        "{name} fails without its canary:\n{out}"
    );
}

#[test]
fn canary_scripts_pass_without_their_canary() {
    for name in [
        "canary_conf_change_no_guard",
        "canary_conf_change_two_pending",
        "canary_install_stale_snapshot",
        "canary_promote_unready_learner",
    ] {
        check_without_canary(name);
    }
}

#[cfg(feature = "canaries")]
mod canaries {
    use super::check;

    #[test]
    fn conf_change_no_guard_is_caught() {
        check(
            "canary_conf_change_no_guard",
            Some("VIOLATION leader completeness"),
        );
    }

    #[test]
    fn conf_change_two_pending_is_caught() {
        check(
            "canary_conf_change_two_pending",
            Some("2 uncommitted configuration changes"),
        );
    }

    #[test]
    fn install_stale_snapshot_is_caught() {
        check(
            "canary_install_stale_snapshot",
            Some("VIOLATION state machine safety"),
        );
    }

    #[test]
    fn promote_unready_learner_is_caught() {
        check(
            "canary_promote_unready_learner",
            Some("VIOLATION promotion readiness"),
        );
    }
}
