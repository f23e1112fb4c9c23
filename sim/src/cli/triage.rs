//! `dst triage DIR`: group a campaign's found seed files by failure signature, replay one
//! file per group, and print a table (group, count, example, whether the replay reproduced
//! the recorded signature). Exit 0 when every example reproduced, 1 otherwise, 2 bad input.

use std::path::PathBuf;

use clap::Args;

use super::common::check_canary_available;
use crate::replay::replay;
use crate::seedfile::VerdictKind;
use crate::triage::{failing_property, file_signature, group_dir, signature};

#[derive(Args)]
pub struct TriageArgs {
    /// A folder of seed files (e.g. seeds/found, or a campaign's artifacts).
    dir: PathBuf,
    /// Group only; do not replay an example of each group.
    #[arg(long)]
    no_replay: bool,
}

pub fn run(args: TriageArgs) -> Result<i32, String> {
    let (groups, unreadable) = group_dir(&args.dir)?;
    for error in &unreadable {
        eprintln!("skipped: {error}");
    }
    if groups.is_empty() {
        return Err(format!("no seed file (*.toml) in {}", args.dir.display()));
    }
    let files: usize = groups.iter().map(|g| g.files.len()).sum();
    println!(
        "{files} seed files in {} groups ({})",
        groups.len(),
        args.dir.display()
    );
    println!("| group | signature | count | example | replay |");
    println!("|---|---|---|---|---|");
    let mut all_reproduced = true;
    for (index, group) in groups.iter().enumerate() {
        let (path, file) = &group.files[0];
        let replayed = if args.no_replay {
            "not replayed".to_string()
        } else {
            check_canary_available(file.canary())?;
            let replayed = replay(file);
            let kind = VerdictKind::of(&replayed.result.verdict);
            let got = signature(kind, &failing_property(&replayed.result.verdict));
            if got == file_signature(file) && kind == file.expect.verdict {
                "reproduced".to_string()
            } else {
                all_reproduced = false;
                format!("DIFFERS: {got}")
            }
        };
        println!(
            "| {} | {} | {} | {} | {replayed} |",
            index + 1,
            group.signature,
            group.files.len(),
            path.display()
        );
    }
    Ok(if all_reproduced { 0 } else { 1 })
}
