//! What several subcommands share: argument parsers, loading a scenario, refusing a canary
//! in a build without canaries, shortening a report.

use std::path::Path;

use faultline_node::Canary;

use crate::plan::Scenario;

/// Exit code of every command when an output file (a report, a summary) cannot be written:
/// distinct from bad input (2) and from `dst check`'s verdicts (0..3).
pub(crate) const EXIT_CANNOT_WRITE: i32 = 4;

pub(crate) fn parse_canary(text: &str) -> Result<Canary, String> {
    Canary::from_name(text).ok_or_else(|| {
        let known: Vec<&str> = Canary::ALL.iter().map(|c| c.name()).collect();
        format!("unknown canary {text:?}; known: {}", known.join(", "))
    })
}

pub(crate) fn load_scenario(path: Option<&Path>) -> Result<Scenario, String> {
    let Some(path) = path else {
        return Ok(Scenario::default_scenario());
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read scenario {}: {e}", path.display()))?;
    let scenario: Scenario =
        toml::from_str(&text).map_err(|e| format!("scenario {}: {e}", path.display()))?;
    scenario
        .validate()
        .map_err(|e| format!("scenario {}: {e}", path.display()))?;
    Ok(scenario)
}

pub(crate) fn check_canary_available(canary: Option<Canary>) -> Result<(), String> {
    if canary.is_some() && !cfg!(feature = "canaries") {
        return Err(
            "this dst was built without canaries; rebuild with `--features canaries`".into(),
        );
    }
    Ok(())
}

pub(crate) fn first_lines(text: &str, lines: usize) -> String {
    let mut out: Vec<&str> = text.lines().take(lines).collect();
    if text.lines().count() > lines {
        out.push("... (use --verbose for the full report)");
    }
    out.join("\n")
}
