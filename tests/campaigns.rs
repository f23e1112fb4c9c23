//! `dst fuzz` as a user runs it (through `faultline_sim::cli::run_from`, in this process):
//! a canary campaign writes seed files whose printed replay command reproduces the failure,
//! and bad inputs are refused with their own exit codes.
#![cfg(madsim)]

use std::path::{Path, PathBuf};

use faultline_sim::campaign::CampaignSummary;
use faultline_sim::cli::run_from;
use faultline_sim::fuzz::{dst_command, rerun_command};
use faultline_sim::seedfile::VerdictKind;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("faultline-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn dst(args: &[&str]) -> i32 {
    run_from(std::iter::once("dst").chain(args.iter().copied()))
}

/// Run a printed command (`<dst invocation> sub args…`) through `run_from`.
fn follow(command: &str, canaries: bool) -> i32 {
    let args = command
        .strip_prefix(dst_command(canaries))
        .unwrap_or_else(|| {
            panic!(
                "{command:?} does not start with {:?}",
                dst_command(canaries)
            )
        });
    let args: Vec<&str> = args.split_whitespace().collect();
    dst(&args)
}

#[test]
fn a_canary_campaign_prints_replay_commands_that_reproduce_it() {
    let dir = temp_dir("canary-campaign");
    let found = dir.join("found");
    let json = dir.join("summary.json");
    let code = dst(&[
        "fuzz",
        "--seeds",
        "0..3",
        "--canary",
        "stale-follower-read",
        "--workers",
        "1",
        "--found-dir",
        found.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "the canary is caught");
    let summary: CampaignSummary =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("--json written"))
            .expect("a summary");
    assert_eq!(summary.seeds_run, 3);
    assert!(summary.failed >= 1, "{summary:?}");
    assert!(summary.faults.values().sum::<u64>() > 0, "{summary:?}");
    for found_seed in &summary.found {
        let file = found_seed.file.as_deref().expect("seed file written");
        assert!(Path::new(file).exists());
        assert!(
            found_seed.replay.contains("--features canaries") && found_seed.replay.contains(file),
            "{found_seed:?}"
        );
        // Following the printed command reproduces the failure (exit 0: the replay matches
        // the recorded failing verdict).
        assert_eq!(follow(&found_seed.replay, true), 0, "{found_seed:?}");
        // And the `dst run` form carries the canary: the same failure, its exit code.
        let rerun = rerun_command(
            found_seed.seed,
            None,
            Some(faultline_node::Canary::StaleFollowerRead),
        );
        assert!(rerun.contains("--canary stale-follower-read"), "{rerun}");
        if found_seed.verdict == VerdictKind::NotLinearizable {
            assert_eq!(follow(&rerun, true), 11, "{rerun}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_non_default_scenario_is_replayed_from_its_file() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("sim/scenarios/leader-pause.toml");
    assert!(path.exists(), "{}", path.display());
    let command = rerun_command(3, Some(&path), None);
    assert!(
        command.ends_with(&format!("run --seed 3 --scenario {}", path.display())),
        "{command}"
    );
    assert!(!command.contains('<'), "no placeholder: {command}");
}

#[test]
fn bad_inputs_get_their_own_exit_codes() {
    assert_eq!(dst(&["fuzz", "--seeds", "0..10", "--workers", "0"]), 2);
    assert_eq!(dst(&["fuzz", "--seeds", "10..10"]), 2);
    assert_eq!(dst(&["fuzz", "--seeds", "0..4", "--shard", "4/4"]), 2);
    // The largest range starts at once (lazily) and a JSON summary that cannot be written
    // ends with 4, not 2 ("bad input") nor a crash; a time budget of 1 s keeps it short.
    let dir = temp_dir("unwritable");
    let code = dst(&[
        "fuzz",
        "--seeds",
        "0..18446744073709551615",
        "--time",
        "1s",
        "--workers",
        "1",
        "--found-dir",
        dir.to_str().unwrap(),
        "--json",
        "/proc/summary.json",
    ]);
    assert_eq!(code, 4, "an unwritable --json is not bad input (2)");
    let history =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/porcupine/kv/c01-ok.txt");
    let code = dst(&[
        "check",
        history.to_str().unwrap(),
        "--format",
        "porcupine-kv",
        "--html",
        "/nonexistent-dir/report.html",
    ]);
    assert_eq!(code, 4, "an unwritable --html is not 'unknown' (2)");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn triage_groups_a_canary_campaign_into_one_group() {
    let dir = temp_dir("triage");
    let found = dir.join("found");
    let code = dst(&[
        "fuzz",
        "--seeds",
        "0..4",
        "--canary",
        // Seeds 0..4 of the default swarm fail it three times, each a stale read (the
        // watch-back-in-time canary shows as two watch guarantees there: two bugs' worth).
        "stale-follower-read",
        "--workers",
        "1",
        "--found-dir",
        found.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "the canary is caught");
    let files = std::fs::read_dir(&found)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "toml")
        })
        .count();
    assert!(files >= 2, "a campaign of several failures: {files}");
    let (groups, unreadable) = faultline_sim::triage::group_dir(&found).unwrap();
    assert!(unreadable.is_empty(), "{unreadable:?}");
    let signatures: Vec<&str> = groups.iter().map(|g| g.signature.as_str()).collect();
    assert_eq!(groups.len(), 1, "{signatures:?}");
    assert!(
        signatures[0].starts_with("not-linearizable: stale read"),
        "{signatures:?}"
    );
    // The command itself: the example replays with the same signature (exit 0).
    assert_eq!(dst(&["triage", found.to_str().unwrap()]), 0);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The `dst fuzz` command of a campaign definition: from `dst fuzz` to the end of the folded
/// YAML block (lines indented at least as deep), with template values filled in.
fn fuzz_command(text: &str, fill: &[(&str, &str)]) -> Vec<String> {
    let start = text.find("dst fuzz").expect("a dst fuzz command");
    let indent = text[..start].rsplit('\n').next().unwrap().len()
        - text[..start]
            .rsplit('\n')
            .next()
            .unwrap()
            .trim_start()
            .len();
    let mut words = Vec::new();
    for (i, line) in text[start..].lines().enumerate() {
        let depth = line.len() - line.trim_start().len();
        if i > 0 && (line.trim().is_empty() || depth < indent) {
            break;
        }
        let line = fill
            .iter()
            .fold(line.to_string(), |line, (from, to)| line.replace(from, to));
        words.extend(line.split_whitespace().map(str::to_string));
    }
    let mut command: Vec<String> = words.into_iter().skip_while(|w| w != "dst").collect();
    command.retain(|w| !w.is_empty());
    command
}

/// The YAML has no tabs and every line is `key: value`, a list item, a comment or a
/// continuation of a folded block (the workspace has no YAML parser; this catches the
/// commonest breakage, the command lines are checked against the real parser below).
fn check_yaml_shape(name: &str, text: &str) {
    assert!(!text.contains('\t'), "{name}: a tab");
    let mut in_block = None;
    for (i, line) in text.lines().enumerate() {
        let depth = line.len() - line.trim_start().len();
        let trimmed = line.trim();
        if let Some(block_depth) = in_block {
            if trimmed.is_empty() || depth > block_depth {
                continue;
            }
            in_block = None;
        }
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with("- ") {
            if trimmed.ends_with(">-") || trimmed.ends_with('>') {
                in_block = Some(depth);
            }
            continue;
        }
        assert!(trimmed.contains(':'), "{name} line {}: {line:?}", i + 1);
        if trimmed.ends_with(">-") || trimmed.ends_with('>') || trimmed.ends_with('|') {
            in_block = Some(depth);
        }
    }
}

#[test]
fn campaign_definitions_use_real_dst_flags() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let workflow =
        std::fs::read_to_string(root.join(".github/workflows/nightly-fuzz.yml")).unwrap();
    check_yaml_shape("nightly-fuzz.yml", &workflow);
    for scenario in ["default", "leader-churn", "leader-pause", "new-leader-cuts"] {
        assert!(workflow.contains(&format!("- {scenario}")));
        assert!(root.join(format!("sim/scenarios/{scenario}.toml")).exists());
        let command = fuzz_command(
            &workflow,
            &[
                ("${{ matrix.shard }}", "3"),
                ("${{ matrix.scenario }}", scenario),
            ],
        );
        assert_eq!(&command[..2], ["dst", "fuzz"], "{command:?}");
        assert!(command.contains(&"--shard".to_string()), "{command:?}");
        faultline_sim::cli::parse_only(&command).unwrap_or_else(|e| panic!("{command:?}: {e}"));
    }
    let job = std::fs::read_to_string(root.join("deploy/fuzz-job.yaml")).unwrap();
    check_yaml_shape("fuzz-job.yaml", &job);
    assert!(job.contains("completionMode: Indexed"));
    let command = fuzz_command(&job, &[("${JOB_COMPLETION_INDEX}", "7")]);
    assert!(
        command.windows(2).any(|w| w == ["--shard", "7/8"]),
        "{command:?}"
    );
    faultline_sim::cli::parse_only(&command).unwrap_or_else(|e| panic!("{command:?}: {e}"));
    let dockerfile = std::fs::read_to_string(root.join("deploy/Dockerfile")).unwrap();
    assert!(dockerfile.contains("--bin dst") && dockerfile.contains("ENTRYPOINT [\"dst\"]"));
    // A wrong flag is caught by the same check.
    assert!(
        faultline_sim::cli::parse_only(["dst", "fuzz", "--time", "1m", "--shards", "1/2"]).is_err()
    );
}
