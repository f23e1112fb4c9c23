//! What a fuzz campaign found, as it runs: counts by verdict, how often each fault kind fired
//! (from the plans' fault windows), the failing seeds with their files and replay commands,
//! and a progress line. Serializable: `dst fuzz --json` writes it for CI.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::fuzz::RunResult;
use crate::plan::Plan;
use crate::seedfile::VerdictKind;
use crate::verdict::Verdict;

/// One failing or unknown seed of a campaign.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FoundSeed {
    pub seed: u64,
    pub verdict: VerdictKind,
    /// The seed file written for it (absent if writing failed).
    pub file: Option<String>,
    /// A command that reproduces it.
    pub replay: String,
}

/// The running totals of a campaign.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CampaignSummary {
    pub scenario: String,
    pub canary: Option<String>,
    /// The seeds asked for, e.g. `0..200` or `40.. step 4` (a shard of an open range).
    pub seeds: String,
    /// Seeds in the range, when it has an end.
    pub seeds_planned: Option<u64>,
    pub seeds_run: u64,
    pub passed: u64,
    pub failed: u64,
    pub unknown: u64,
    /// Runs per verdict kind (`pass`, `not-linearizable`, …).
    pub verdicts: BTreeMap<String, u64>,
    /// Fault windows per fault kind over every plan that ran.
    pub faults: BTreeMap<String, u64>,
    /// Snapshots and membership changes that happened, over every run.
    #[serde(default)]
    pub cluster_events: BTreeMap<String, u64>,
    /// What a swarm scenario's seeds drew (`members 3`, `workload events`, `kinds 2`, ...),
    /// seeds per value; empty for a scenario without a swarm.
    #[serde(default)]
    pub swarm_draws: BTreeMap<String, u64>,
    pub elapsed_s: f64,
    /// Why the campaign ended early (`time budget`, `SIGINT`, …); absent when the range ended.
    pub stopped_by: Option<String>,
    /// Failing and unknown seeds, in the order found.
    pub found: Vec<FoundSeed>,
}

/// The kind of a fault as the plan's serialized form names it (`Crash`, `Isolate`, …), so a
/// new kind is counted without a change here.
pub fn fault_kind_name(fault: &crate::plan::Fault) -> String {
    match serde_json::to_value(fault) {
        Ok(serde_json::Value::String(name)) => name,
        Ok(serde_json::Value::Object(map)) => map.keys().next().cloned().unwrap_or_default(),
        _ => "unnamed".to_string(),
    }
}

impl CampaignSummary {
    /// Count one finished run and the faults its plan scheduled.
    pub fn record(&mut self, result: &RunResult, plan: &Plan) {
        self.seeds_run += 1;
        match &result.verdict {
            Verdict::Pass => self.passed += 1,
            Verdict::Fail { .. } => self.failed += 1,
            Verdict::Unknown { .. } => self.unknown += 1,
        }
        let kind = VerdictKind::of(&result.verdict).to_string();
        *self.verdicts.entry(kind).or_default() += 1;
        for (name, count) in result.summary.cluster_events() {
            *self.cluster_events.entry(name.to_string()).or_default() += count;
        }
        for (name, count) in &result.summary.rare_paths {
            *self.cluster_events.entry(name.clone()).or_default() += count;
        }
        for window in &plan.faults {
            *self
                .faults
                .entry(fault_kind_name(&window.fault))
                .or_default() += 1;
        }
    }

    /// Count what a swarm drew for one seed (its plan's scenario).
    pub fn record_draw(&mut self, drawn: &crate::plan::Scenario) {
        let workload = serde_json::to_value(drawn.workload)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let kinds = crate::plan::weights_of(&drawn.faults).len();
        for draw in [
            format!("members {}", drawn.members),
            format!("zones {}", drawn.zones),
            format!("entries/append {}", drawn.max_entries_per_append),
            format!("workload {workload}"),
            format!("fault kinds {kinds}"),
            format!("buggify {}", if drawn.buggify { "on" } else { "off" }),
            format!(
                "profile {}",
                drawn.swarm_profile.as_deref().unwrap_or("none")
            ),
        ] {
            *self.swarm_draws.entry(draw).or_default() += 1;
        }
    }

    pub fn seeds_per_s(&self) -> f64 {
        self.seeds_run as f64 / self.elapsed_s.max(1e-9)
    }

    /// One line: seeds done, rate, ETA when the range has an end, failures and unknowns.
    pub fn progress_line(&self, elapsed: Duration) -> String {
        let rate = self.seeds_run as f64 / elapsed.as_secs_f64().max(1e-9);
        let eta = match self.seeds_planned {
            Some(planned) if rate > 0.0 => {
                let left = planned.saturating_sub(self.seeds_run) as f64 / rate;
                format!(", ETA {}", human_duration(left))
            }
            _ => String::new(),
        };
        let of = self
            .seeds_planned
            .map(|p| format!("/{p}"))
            .unwrap_or_default();
        format!(
            "[{}] {}{of} seeds, {rate:.1} seeds/s{eta}, {} failed, {} unknown",
            human_duration(elapsed.as_secs_f64()),
            self.seeds_run,
            self.failed,
            self.unknown
        )
    }

    /// The summary table printed at the end.
    pub fn table(&self) -> String {
        let mut out = format!(
            "summary: {} seeds run, {} failed, {} unknown, {} passed, in {:.1} s ({:.1} seeds/s){}\n",
            self.seeds_run,
            self.failed,
            self.unknown,
            self.passed,
            self.elapsed_s,
            self.seeds_per_s(),
            self.stopped_by
                .as_deref()
                .map(|why| format!("; stopped by {why}"))
                .unwrap_or_default()
        );
        out.push_str("  verdicts:");
        for (kind, count) in &self.verdicts {
            out.push_str(&format!(" {kind} {count},"));
        }
        out.pop();
        out.push_str("\n  faults fired:");
        if self.faults.is_empty() {
            out.push_str(" none,");
        }
        for (kind, count) in &self.faults {
            out.push_str(&format!(" {kind} {count},"));
        }
        out.pop();
        out.push_str("\n  cluster events:");
        for (name, count) in &self.cluster_events {
            out.push_str(&format!(" {name} {count},"));
        }
        out.pop();
        if !self.swarm_draws.is_empty() {
            out.push_str("\n  swarm drew (seeds):");
            for (draw, count) in &self.swarm_draws {
                out.push_str(&format!(" {draw}: {count},"));
            }
            out.pop();
        }
        out.push('\n');
        for found in &self.found {
            out.push_str(&format!(
                "  seed {} {}: replay with `{}`\n",
                found.seed, found.verdict, found.replay
            ));
        }
        out
    }
}

/// Seconds as `42s`, `3m07s` or `2h05m`.
pub fn human_duration(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Scenario;
    use crate::trace::TraceSummary;

    fn result(seed: u64, verdict: Verdict) -> RunResult {
        RunResult {
            seed,
            verdict,
            trace_hash: 0,
            summary: TraceSummary::default(),
            wall_ms: 0,
        }
    }

    #[test]
    fn counts_verdicts_and_every_fault_window_of_the_plans() {
        let scenario = Scenario::default_scenario();
        let mut summary = CampaignSummary {
            seeds_planned: Some(4),
            ..CampaignSummary::default()
        };
        let mut windows = 0;
        for seed in 0..3 {
            let plan = Plan::generate(seed, &scenario);
            windows += plan.faults.len() as u64;
            let verdict = if seed == 1 {
                Verdict::Unknown { reason: "x".into() }
            } else {
                Verdict::Pass
            };
            summary.record(&result(seed, verdict), &plan);
            summary.record_draw(&plan.scenario);
        }
        assert!(summary.swarm_draws.len() >= 5, "{:?}", summary.swarm_draws);
        assert_eq!(
            summary
                .swarm_draws
                .iter()
                .filter(|(k, _)| k.starts_with("members "))
                .map(|(_, n)| n)
                .sum::<u64>(),
            3
        );
        assert!(windows > 0, "the default scenario schedules faults");
        assert_eq!(summary.faults.values().sum::<u64>(), windows);
        assert!(summary.faults.contains_key("Crash") || summary.faults.len() > 1);
        assert_eq!(
            (summary.passed, summary.unknown, summary.seeds_run),
            (2, 1, 3)
        );
        assert_eq!(summary.verdicts.get("pass"), Some(&2));
        let line = summary.progress_line(Duration::from_secs(3));
        assert!(
            line.contains("3/4 seeds, 1.0 seeds/s, ETA 1s, 0 failed, 1 unknown"),
            "{line}"
        );
        let table = summary.table();
        assert!(table.contains("faults fired:"), "{table}");
        assert!(table.contains("swarm drew (seeds):"), "{table}");
        let json = serde_json::to_string(&summary).unwrap();
        let back: CampaignSummary = serde_json::from_str(&json).unwrap();
        assert_eq!(back, summary);
    }

    #[test]
    fn durations_read_as_a_person_writes_them() {
        assert_eq!(human_duration(42.4), "42s");
        assert_eq!(human_duration(187.0), "3m07s");
        assert_eq!(human_duration(7500.0), "2h05m");
    }
}
