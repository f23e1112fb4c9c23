//! Seed files: a failing (or regression) run written down so that it replays bit for bit.
//!
//! Format (TOML, `format = 1`; every field is checked on load and an error names it):
//! ```toml
//! format = 1                          # version of this layout; bumped on incompatible change
//! description = "what this seed shows"
//! seed = 17                           # madsim's seed and the seed of every ChaCha8 stream
//! canary = "stale-follower-read"      # optional: the planted bug to switch on (`dst --canary`)
//!
//! [expect]
//! verdict = "not-linearizable"        # pass | unknown | raft-safety | not-linearizable |
//!                                     # divergence | liveness | panic | watch-guarantee
//! trace_hash = "a1b2c3d4e5f60718"     # optional: FNV-1a over trace and history, 16 hex digits
//!
//! [found_with]                        # the code that produced `expect` (informational)
//! crate_version = "0.1.0"
//! git_commit = "455725b1c2d3"         # empty when built outside git
//!
//! [scenario]                          # the scenario, as in sim/scenarios/default.toml
//! ...
//!
//! [plan]                              # optional: an edited (shrunk) plan; replaces
//! ...                                 # Plan::generate(seed, scenario) when present
//! ```
//! The trace hash changes whenever the code changes what a run does (a new workload operation,
//! a different election timing), so a replay with a different `found_with` reports a hash
//! mismatch as expected drift; the verdict is what a regression test holds on to.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::plan::{Plan, Scenario};

/// The layout version this code writes and reads.
pub const SEED_FILE_FORMAT: u32 = 1;

/// The class of a verdict, as a seed file names it: `pass`, `unknown`, or a failure kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum VerdictKind {
    Pass,
    Unknown,
    RaftSafety,
    NotLinearizable,
    Divergence,
    Liveness,
    Panic,
    WatchGuarantee,
    RevisionDecrease,
    Availability,
    LockExclusion,
}

impl fmt::Display for VerdictKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            VerdictKind::Pass => "pass",
            VerdictKind::Unknown => "unknown",
            VerdictKind::RaftSafety => "raft-safety",
            VerdictKind::NotLinearizable => "not-linearizable",
            VerdictKind::Divergence => "divergence",
            VerdictKind::Liveness => "liveness",
            VerdictKind::Panic => "panic",
            VerdictKind::WatchGuarantee => "watch-guarantee",
            VerdictKind::RevisionDecrease => "revision-decrease",
            VerdictKind::Availability => "availability",
            VerdictKind::LockExclusion => "lock-exclusion",
        };
        f.write_str(name)
    }
}

/// What a replay must reproduce.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expectation {
    pub verdict: VerdictKind,
    /// The run's fingerprint as 16 hex digits, if the file pins it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_hash: Option<String>,
}

/// Which code produced a seed file's expectation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodeVersion {
    pub crate_version: String,
    /// Short git commit at build time; empty when built outside a git checkout.
    #[serde(default)]
    pub git_commit: String,
}

impl CodeVersion {
    /// The version of the code running now.
    pub fn current() -> CodeVersion {
        CodeVersion {
            crate_version: env!("CARGO_PKG_VERSION").to_string(),
            git_commit: env!("FAULTLINE_GIT_COMMIT").to_string(),
        }
    }
}

impl fmt::Display for CodeVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.git_commit.is_empty() {
            write!(f, "{} (no git commit)", self.crate_version)
        } else {
            write!(f, "{} at {}", self.crate_version, self.git_commit)
        }
    }
}

/// One seed file. See the module documentation for the layout.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedFile {
    pub format: u32,
    pub description: String,
    #[serde(with = "crate::plan::wide_u64")]
    pub seed: u64,
    /// Name of the planted bug to switch on (`faultline_node::Canary::name`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<String>,
    pub expect: Expectation,
    pub found_with: CodeVersion,
    pub scenario: Scenario,
    /// An edited plan (the output of `dst shrink`); when absent the plan is generated from
    /// (seed, scenario).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<Plan>,
}

/// A seed file that cannot be used, with the file and the field or line at fault.
#[derive(Debug, thiserror::Error)]
pub enum SeedFileError {
    #[error("cannot read seed file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// TOML syntax or a field of the wrong type; the message carries line, column and field.
    #[error("seed file {origin}: {message}")]
    Parse { origin: String, message: String },
    #[error("seed file {origin}: field `{field}`: {message}")]
    Invalid {
        origin: String,
        field: &'static str,
        message: String,
    },
}

impl SeedFile {
    /// A seed file for `plan` and the verdict and hash it produced. The plan is embedded only
    /// if it differs from what (seed, scenario) generates.
    pub fn new(
        description: impl Into<String>,
        plan: &Plan,
        canary: Option<faultline_node::Canary>,
        verdict: VerdictKind,
        trace_hash: Option<u64>,
    ) -> SeedFile {
        let generated = Plan::generate(plan.seed, &plan.scenario);
        SeedFile {
            format: SEED_FILE_FORMAT,
            description: description.into(),
            seed: plan.seed,
            canary: canary.map(|c| c.name().to_string()),
            expect: Expectation {
                verdict,
                trace_hash: trace_hash.map(|h| format!("{h:016x}")),
            },
            found_with: CodeVersion::current(),
            scenario: plan.scenario.clone(),
            plan: (generated != *plan).then(|| plan.clone()),
        }
    }

    /// Parse and validate; `origin` names the source in errors (a path, usually).
    pub fn parse(text: &str, origin: &str) -> Result<SeedFile, SeedFileError> {
        let file: SeedFile = toml::from_str(text).map_err(|e| SeedFileError::Parse {
            origin: origin.to_string(),
            message: e.to_string().trim_end().to_string(),
        })?;
        file.validate(origin)?;
        Ok(file)
    }

    pub fn load(path: &Path) -> Result<SeedFile, SeedFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| SeedFileError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        SeedFile::parse(&text, &path.display().to_string())
    }

    /// Write atomically (a temporary name, then a rename), so a crash never leaves half a file.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir)?;
            }
        }
        let text = self.to_toml();
        let tmp = path.with_extension("toml.tmp");
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, path)
    }

    pub fn to_toml(&self) -> String {
        let body = toml::to_string(self).expect("seed files always serialize");
        format!(
            "# Faultline seed file (format {SEED_FILE_FORMAT}); replay with `cargo dst replay <this file>`.\n{body}"
        )
    }

    fn validate(&self, origin: &str) -> Result<(), SeedFileError> {
        let invalid = |field: &'static str, message: String| SeedFileError::Invalid {
            origin: origin.to_string(),
            field,
            message,
        };
        if self.format != SEED_FILE_FORMAT {
            return Err(invalid(
                "format",
                format!(
                    "version {} is not supported (this dst reads format {SEED_FILE_FORMAT})",
                    self.format
                ),
            ));
        }
        if let Some(name) = &self.canary {
            if faultline_node::Canary::from_name(name).is_none() {
                let known: Vec<&str> = faultline_node::Canary::ALL
                    .iter()
                    .map(|c| c.name())
                    .collect();
                return Err(invalid(
                    "canary",
                    format!("unknown canary {name:?}; known: {}", known.join(", ")),
                ));
            }
        }
        if let Some(hash) = &self.expect.trace_hash {
            if hash.len() != 16 || u64::from_str_radix(hash, 16).is_err() {
                return Err(invalid(
                    "expect.trace_hash",
                    format!("{hash:?} is not 16 hexadecimal digits"),
                ));
            }
        }
        self.scenario
            .validate()
            .map_err(|message| invalid("scenario", message))?;
        if let Some(plan) = &self.plan {
            if plan.seed != self.seed {
                return Err(invalid(
                    "plan.seed",
                    format!("{} differs from the file's seed {}", plan.seed, self.seed),
                ));
            }
            plan.scenario
                .validate()
                .map_err(|message| invalid("plan.scenario", message))?;
            if plan.members.len() != plan.scenario.members as usize {
                return Err(invalid(
                    "plan.members",
                    format!(
                        "{} members listed but plan.scenario.members is {}",
                        plan.members.len(),
                        plan.scenario.members
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The canary to switch on, if any (validated on load).
    pub fn canary(&self) -> Option<faultline_node::Canary> {
        self.canary
            .as_deref()
            .map(|name| faultline_node::Canary::from_name(name).expect("validated on load"))
    }

    /// The plan this file runs: the embedded one, or the one (seed, scenario) generates.
    pub fn plan(&self) -> Plan {
        self.plan
            .clone()
            .unwrap_or_else(|| Plan::generate(self.seed, &self.scenario))
    }

    pub fn expected_trace_hash(&self) -> Option<u64> {
        self.expect
            .trace_hash
            .as_deref()
            .map(|h| u64::from_str_radix(h, 16).expect("validated on load"))
    }
}

#[cfg(madsim)]
impl VerdictKind {
    pub fn of(verdict: &crate::verdict::Verdict) -> VerdictKind {
        use crate::verdict::{FailureKind, Verdict};
        match verdict {
            Verdict::Pass => VerdictKind::Pass,
            Verdict::Unknown { .. } => VerdictKind::Unknown,
            Verdict::Fail { kind, .. } => match kind {
                FailureKind::RaftSafety => VerdictKind::RaftSafety,
                FailureKind::NotLinearizable => VerdictKind::NotLinearizable,
                FailureKind::Divergence => VerdictKind::Divergence,
                FailureKind::Liveness => VerdictKind::Liveness,
                FailureKind::Panic => VerdictKind::Panic,
                FailureKind::WatchGuarantee => VerdictKind::WatchGuarantee,
                FailureKind::RevisionDecrease => VerdictKind::RevisionDecrease,
                FailureKind::Availability => VerdictKind::Availability,
                FailureKind::LockExclusion => VerdictKind::LockExclusion,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> SeedFile {
        let plan = Plan::generate(3, &Scenario::default_scenario());
        SeedFile::new(
            "a sample",
            &plan,
            None,
            VerdictKind::Pass,
            Some(0x0123_4567_89ab_cdef),
        )
    }

    #[test]
    fn round_trips_with_and_without_an_embedded_plan() {
        let file = sample();
        assert!(file.plan.is_none(), "a generated plan is not embedded");
        let text = file.to_toml();
        assert_eq!(SeedFile::parse(&text, "sample").unwrap(), file);

        let mut plan = file.plan();
        plan.clients.truncate(1);
        plan.faults.truncate(1);
        let edited = SeedFile::new("edited", &plan, None, VerdictKind::NotLinearizable, None);
        assert_eq!(edited.plan.as_ref(), Some(&plan));
        let parsed = SeedFile::parse(&edited.to_toml(), "edited").unwrap();
        assert_eq!(parsed.plan(), plan);
        assert_eq!(parsed.expect.verdict, VerdictKind::NotLinearizable);
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let text = sample().to_toml().replace("seed = 3", "seed = three");
        let error = SeedFile::parse(&text, "bad.toml").unwrap_err().to_string();
        assert!(error.contains("bad.toml"), "{error}");
        assert!(error.contains("line"), "{error}");
    }

    #[test]
    fn bad_fields_are_named() {
        let mut file = sample();
        file.format = 99;
        let error = SeedFile::parse(&file.to_toml(), "f")
            .unwrap_err()
            .to_string();
        assert!(error.contains("`format`"), "{error}");

        let mut file = sample();
        file.canary = Some("no-such-bug".into());
        let error = SeedFile::parse(&file.to_toml(), "f")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("`canary`") && error.contains("no-such-bug"),
            "{error}"
        );

        let mut file = sample();
        file.expect.trace_hash = Some("xyz".into());
        let error = SeedFile::parse(&file.to_toml(), "f")
            .unwrap_err()
            .to_string();
        assert!(error.contains("expect.trace_hash"), "{error}");

        let text = sample()
            .to_toml()
            .replace("verdict = \"pass\"", "verdict = \"fine\"");
        let error = SeedFile::parse(&text, "f").unwrap_err().to_string();
        assert!(
            error.contains("verdict") && error.contains("line"),
            "{error}"
        );

        let mut file = sample();
        file.scenario.zones = 0;
        let error = SeedFile::parse(&file.to_toml(), "f")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("`scenario`") && error.contains("zones"),
            "{error}"
        );

        let text = format!("{}\nsurprise = 1\n", sample().to_toml());
        assert!(
            SeedFile::parse(&text, "f").is_err(),
            "unknown fields are refused"
        );
    }
}
