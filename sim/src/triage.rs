//! Triage of a campaign's found seeds: group seed files by failure signature (verdict kind and
//! the first failing property), so a night with 40 failures of one bug shows as one group.
//!
//! `dst fuzz` writes the property into each seed file's description (`[property]`); a file
//! written otherwise is grouped by its description with the numbers blanked out.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::seedfile::{SeedFile, VerdictKind};
use crate::verdict::{FailureKind, Verdict};

/// How `dst fuzz` starts the description of a found seed.
pub const FOUND_PREFIX: &str = "found by `dst fuzz`: ";

/// The first failing property of a verdict, in words without numbers (`stale read`,
/// `Ordered`, `state machine safety`); empty for a pass.
pub fn failing_property(verdict: &Verdict) -> String {
    let (kind, text) = match verdict {
        Verdict::Pass => return String::new(),
        Verdict::Unknown { reason } => (None, reason.as_str()),
        Verdict::Fail { kind, report } => (Some(*kind), report.as_str()),
    };
    let line = match kind {
        Some(FailureKind::WatchGuarantee) => text
            .lines()
            .find_map(|l| {
                let before = l.split_once(" broken at ")?.0;
                Some(before.rsplit_once("): ").map_or(before, |(_, p)| p))
            })
            .unwrap_or(""),
        // The first line names the model (and a partition key); the second the failure.
        Some(FailureKind::NotLinearizable) => text.lines().nth(1).unwrap_or(""),
        _ => text.lines().next().unwrap_or(""),
    };
    let head = line.split_once(':').map_or(line, |(head, _)| head);
    blank_numbers(head.trim())
}

/// Digits replaced by `#`, so `op 17` and `op 203` read alike.
fn blank_numbers(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            if !out.ends_with('#') {
                out.push('#');
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The signature of a seed file's recorded failure: its verdict kind and property.
pub fn file_signature(file: &SeedFile) -> String {
    let property = file
        .description
        .strip_prefix(FOUND_PREFIX)
        .and_then(|rest| {
            let open = rest.find('[')?;
            let close = open + rest[open..].find(']')?;
            Some(rest[open + 1..close].to_string())
        })
        .unwrap_or_else(|| blank_numbers(&file.description));
    signature(file.expect.verdict, &property)
}

pub fn signature(kind: VerdictKind, property: &str) -> String {
    if property.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}: {property}")
    }
}

/// Seed files of one signature.
#[derive(Debug)]
pub struct Group {
    pub signature: String,
    pub files: Vec<(PathBuf, SeedFile)>,
}

/// Every `*.toml` seed file under `dir` (not recursive), grouped by signature; the largest
/// group first. Files that are not seed files are returned with their error.
pub fn group_dir(dir: &Path) -> Result<(Vec<Group>, Vec<String>), String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    paths.sort();
    let mut groups: BTreeMap<String, Vec<(PathBuf, SeedFile)>> = BTreeMap::new();
    let mut unreadable = Vec::new();
    for path in paths {
        match SeedFile::load(&path) {
            Ok(file) => groups
                .entry(file_signature(&file))
                .or_default()
                .push((path, file)),
            Err(e) => unreadable.push(e.to_string()),
        }
    }
    let mut groups: Vec<Group> = groups
        .into_iter()
        .map(|(signature, files)| Group { signature, files })
        .collect();
    groups.sort_by_key(|g| std::cmp::Reverse(g.files.len()));
    Ok((groups, unreadable))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_ignore_numbers_and_name_the_broken_guarantee() {
        let watch = Verdict::Fail {
            kind: FailureKind::WatchGuarantee,
            report: "2 watch guarantee violation(s)\nwatch 3 (client 1, member Some(2), from \
                     revision 7): Ordered broken at response 4: went back\n"
                .into(),
        };
        assert_eq!(failing_property(&watch), "Ordered");
        let stale = |op: u64| Verdict::Fail {
            kind: FailureKind::NotLinearizable,
            report: format!(
                "not linearizable under the etcd model (partition key \"k{op}\")\nstale read: \
                 op {op} saw revision 3 but ..."
            ),
        };
        assert_eq!(failing_property(&stale(17)), "stale read");
        assert_eq!(failing_property(&stale(17)), failing_property(&stale(203)));
        let panic = |line: u32| Verdict::Fail {
            kind: FailureKind::Panic,
            report: format!("index {line} out of range for slice of length {}", line + 1),
        };
        assert_eq!(failing_property(&panic(3)), failing_property(&panic(40)));
        assert_eq!(failing_property(&Verdict::Pass), "");
    }
}
