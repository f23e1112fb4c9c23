//! `dst check FILE`: check a recorded history on its own, outside any simulation.
//!
//! Exit codes: 0 linearizable, 1 not linearizable, 2 unknown within the budget (not a pass),
//! 3 unreadable input (the message names the line), 4 the `--html` report cannot be written. The generic CLI error code (2, also
//! clap's) is never used for unreadable input: `run` maps it to 3 explicitly.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use faultline_invariants::formats::{
    check_kv_ops, check_register_ops, parse_jepsen_register, parse_porcupine_kv,
};
use faultline_invariants::history::History;
use faultline_invariants::html::{
    render_timeline_report, timeline_from_history, timeline_from_kv, timeline_from_register,
    ReportMeta, TimelineOp,
};
use faultline_invariants::linearizability::{TimeUnit, Verdict};

/// Default search budget of `dst check` (steps, not time: a budget in steps gives the same
/// verdict on every machine).
pub const DEFAULT_BUDGET_STEPS: u64 = 100_000_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// This project's history file: `History` as JSON (invariants/HISTORY_FORMAT.md).
    Faultline,
    /// Jepsen's etcd register logs (shared/data/porcupine/jepsen).
    Jepsen,
    /// porcupine's key/value logs (shared/data/porcupine/kv).
    PorcupineKv,
}

#[derive(Args)]
pub struct CheckArgs {
    /// The history file.
    pub file: PathBuf,
    /// The history's format (a file that is not in it is refused: exit code 3).
    #[arg(long, value_enum, default_value = "faultline")]
    pub format: Format,
    /// Search steps before the verdict becomes "unknown" (never a pass).
    #[arg(long, default_value_t = DEFAULT_BUDGET_STEPS)]
    pub budget_steps: u64,
    /// Print the verdict as one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// Also write an HTML report (a lane per client, the operations that cannot be placed
    /// highlighted) to this file; any format, linearizable or not.
    #[arg(long)]
    pub html: Option<PathBuf>,
}

/// Input that cannot be checked, with the 1-based line it failed on when known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputError {
    pub line: Option<usize>,
    pub message: String,
}

impl std::fmt::Display for InputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(l) => write!(f, "line {l}: {}", self.message),
            None => write!(f, "{}", self.message),
        }
    }
}

/// Check the text of a history file in `format` (the verdict only; `dst check` itself runs
/// `check_text_timeline`, which also gives the timeline for `--html`).
#[cfg(test)]
pub fn check_text(text: &str, format: Format, budget_steps: u64) -> Result<Verdict, InputError> {
    check_text_timeline(text, format, budget_steps).map(|checked| checked.verdict)
}

/// A checked history file: the verdict and the operations as a timeline for the HTML report.
pub struct CheckedText {
    pub verdict: Verdict,
    pub timeline: Vec<TimelineOp>,
    pub time_unit: TimeUnit,
}

/// Like `check_text`, and also the operations as the HTML report draws them.
pub fn check_text_timeline(
    text: &str,
    format: Format,
    budget_steps: u64,
) -> Result<CheckedText, InputError> {
    match format {
        Format::Faultline => {
            let history: History = serde_json::from_str(text).map_err(|e| InputError {
                line: Some(e.line()),
                message: format!("not a faultline history (JSON `History`): {e}"),
            })?;
            Ok(CheckedText {
                verdict: faultline_invariants::check_etcd_history(&history, budget_steps),
                timeline: timeline_from_history(&history),
                time_unit: TimeUnit::Nanoseconds,
            })
        }
        Format::Jepsen => {
            let ops = parse_jepsen_register(text).map_err(|e| InputError {
                line: e.line,
                message: e.message,
            })?;
            Ok(CheckedText {
                verdict: check_register_ops(&ops, budget_steps),
                timeline: timeline_from_register(&ops),
                time_unit: TimeUnit::Position,
            })
        }
        Format::PorcupineKv => {
            let ops = parse_porcupine_kv(text).map_err(|e| InputError {
                line: e.line,
                message: e.message,
            })?;
            Ok(CheckedText {
                verdict: check_kv_ops(&ops, budget_steps),
                timeline: timeline_from_kv(&ops),
                time_unit: TimeUnit::Position,
            })
        }
    }
}

/// The exit code of a verdict.
pub fn exit_code(verdict: &Verdict) -> i32 {
    match verdict {
        Verdict::Linearizable => 0,
        Verdict::NotLinearizable(_) => 1,
        Verdict::Unknown { .. } => 2,
    }
}

fn verdict_name(verdict: &Verdict) -> &'static str {
    match verdict {
        Verdict::Linearizable => "linearizable",
        Verdict::NotLinearizable(_) => "not-linearizable",
        Verdict::Unknown { .. } => "unknown",
    }
}

pub fn run(args: CheckArgs) -> Result<i32, String> {
    let unreadable = |message: String| -> Result<i32, String> {
        eprintln!("error: {}: {message}", args.file.display());
        Ok(3)
    };
    let text = match std::fs::read_to_string(&args.file) {
        Ok(t) => t,
        Err(e) => return unreadable(format!("cannot read: {e}")),
    };
    let started = std::time::Instant::now();
    let checked = match check_text_timeline(&text, args.format, args.budget_steps) {
        Ok(v) => v,
        Err(e) => return unreadable(e.to_string()),
    };
    let elapsed_ms = started.elapsed().as_secs_f64() * 1e3;
    let verdict = &checked.verdict;
    if let Some(out) = &args.html {
        let html = render_check_report(&args.file, args.format, &checked);
        if let Err(e) = std::fs::write(out, html) {
            // Not "unknown" (2) nor "unreadable input" (3): the check ran, its report cannot
            // be written.
            eprintln!("error: cannot write the HTML report {}: {e}", out.display());
            return Ok(super::common::EXIT_CANNOT_WRITE);
        }
    }
    if args.json {
        let out = serde_json::json!({
            "file": args.file.display().to_string(),
            "verdict": verdict_name(verdict),
            "exit_code": exit_code(verdict),
            "budget_steps": args.budget_steps,
            "elapsed_ms": elapsed_ms,
            "detail": verdict,
        });
        println!("{out}");
    } else {
        println!(
            "{}: {} ({elapsed_ms:.1} ms)",
            args.file.display(),
            verdict_name(verdict)
        );
        if !verdict.is_linearizable() {
            println!("{verdict}");
        }
        if let Some(out) = &args.html {
            println!("HTML report written to {}", out.display());
        }
    }
    Ok(exit_code(verdict))
}

/// The HTML report of a checked file. A recorded history has no trace, so no fault marks.
pub fn render_check_report(
    file: &std::path::Path,
    format: Format,
    checked: &CheckedText,
) -> String {
    let format_name = match format {
        Format::Faultline => "faultline",
        Format::Jepsen => "jepsen",
        Format::PorcupineKv => "porcupine-kv",
    };
    let meta = ReportMeta {
        title: format!("dst check {}", file.display()),
        time_unit: checked.time_unit,
        notes: vec![format!(
            "dst check {} --format {format_name}: {}",
            file.display(),
            verdict_name(&checked.verdict)
        )],
        text_report: None,
        // Recorded histories do not say which ids are one client's incarnations.
        lane_owners: Default::default(),
    };
    render_timeline_report(&checked.timeline, &checked.verdict, &[], &meta)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn porcupine_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/porcupine")
    }

    /// Every porcupine file gets expected.tsv's verdict through the function the CLI runs.
    #[test]
    fn every_porcupine_file_gets_its_expected_verdict() {
        let dir = porcupine_dir();
        let table = std::fs::read_to_string(dir.join("expected.tsv")).expect("expected.tsv");
        let mut checked = 0;
        let mut wrong = Vec::new();
        for line in table.lines().skip(1).filter(|l| !l.trim().is_empty()) {
            let (file, want) = line.split_once('\t').expect("two columns");
            let format = if file.starts_with("jepsen/") {
                Format::Jepsen
            } else {
                Format::PorcupineKv
            };
            let text = std::fs::read_to_string(dir.join(file)).expect("history file");
            let result = check_text(&text, format, DEFAULT_BUDGET_STEPS);
            checked += 1;
            let want = want.trim();
            if want == "empty" {
                // A file with no operation is not a history: refused, never "linearizable".
                match result {
                    Err(e) if e.line.is_none() && e.message.contains("empty") => {}
                    other => wrong.push(format!(
                        "{file}: want refused as empty, got {:?}",
                        other.map(|v| verdict_name(&v))
                    )),
                }
                continue;
            }
            let verdict = result.unwrap_or_else(|e| panic!("{file}: {e}"));
            if verdict_name(&verdict) != want {
                wrong.push(format!(
                    "{file}: want {want}, got {}",
                    verdict_name(&verdict)
                ));
            }
        }
        assert!(checked > 100, "only {checked} files listed");
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    /// `--html` works for every format: a failing Jepsen log and a passing kv log render with
    /// their verdict, and the failing one names the operation that cannot be placed.
    #[test]
    fn html_reports_render_for_the_porcupine_formats() {
        let dir = porcupine_dir();
        let file = dir.join("jepsen/etcd_000.log");
        let text = std::fs::read_to_string(&file).expect("etcd_000.log");
        let checked =
            check_text_timeline(&text, Format::Jepsen, DEFAULT_BUDGET_STEPS).expect("parse");
        let report = checked
            .verdict
            .report()
            .expect("etcd_000 is not linearizable");
        let html = render_check_report(&file, Format::Jepsen, &checked);
        assert!(html.contains("NOT LINEARIZABLE under the register model"));
        assert!(html.contains("Operations that cannot be placed"));
        let bad = report.unplaceable[0].id;
        assert!(
            html.contains(&format!(r#"<rect id="op-{bad}" "#)),
            "op {bad} has no bar"
        );
        assert_eq!(
            html.matches(r#"<rect id="op-"#).count(),
            checked.timeline.len()
        );

        let kv_file = dir.join("kv/c01-ok.txt");
        let text = std::fs::read_to_string(&kv_file).expect("kv file");
        let checked =
            check_text_timeline(&text, Format::PorcupineKv, DEFAULT_BUDGET_STEPS).expect("parse");
        assert!(checked.verdict.is_linearizable());
        let html = render_check_report(&kv_file, Format::PorcupineKv, &checked);
        assert!(html.contains(r#"class="banner pass""#));
    }

    #[test]
    fn unreadable_input_names_the_line() {
        let e = check_text("{\"ops\": [\n  {\"id\": }\n]}", Format::Faultline, 10).unwrap_err();
        assert_eq!(e.line, Some(2), "{e}");
        let kv = "{:process 0, :type :invoke, :f :get, :key \"0\", :value nil}\nnonsense\n";
        let e = check_text(kv, Format::PorcupineKv, 10).unwrap_err();
        assert_eq!(e.line, Some(2), "{e}");
    }

    /// A file of another format, or with no operation, is unreadable input (exit code 3), never
    /// a verdict: a TOML file and a kv log as `--format jepsen`, an empty file in every format.
    #[test]
    fn files_of_another_format_exit_as_unreadable() {
        let dir = std::env::temp_dir().join(format!("faultline-check-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let empty = dir.join("empty.log");
        std::fs::write(&empty, "").expect("write the empty file");
        let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/default.toml");
        let kv = porcupine_dir().join("kv/c01-ok.txt");
        // (file, format, the line named, what the message says)
        let cases = [
            (
                &scenario,
                Format::Jepsen,
                Some(1),
                "not a line of a Jepsen register log",
            ),
            (
                &kv,
                Format::Jepsen,
                Some(1),
                "not a line of a Jepsen register log",
            ),
            (
                &empty,
                Format::Jepsen,
                None,
                "no operation: the file is empty",
            ),
            (
                &empty,
                Format::PorcupineKv,
                None,
                "no operation: the file is empty",
            ),
            (
                &empty,
                Format::Faultline,
                Some(1),
                "not a faultline history",
            ),
        ];
        for (file, format, line, says) in cases {
            let text = std::fs::read_to_string(file).expect("input file");
            let e = check_text(&text, format, 10).expect_err("refused");
            assert_eq!(e.line, line, "{}: {e}", file.display());
            assert!(e.message.contains(says), "{}: {e}", file.display());
            let args = CheckArgs {
                file: file.clone(),
                format,
                budget_steps: 10,
                json: false,
                html: None,
            };
            assert_eq!(run(args), Ok(3), "{} as {format:?}", file.display());
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn faultline_format_round_trips_and_gets_exit_codes() {
        let mut o = faultline_invariants::testkit::GenOptions::benchmark(1);
        o.ops = 300;
        let h = faultline_invariants::testkit::generate_etcd_history(&o);
        let text = serde_json::to_string(&h).expect("serialize");
        let v = check_text(&text, Format::Faultline, DEFAULT_BUDGET_STEPS).expect("parse");
        assert_eq!(exit_code(&v), 0, "{v}");
        // Break one read: the verdict must turn into a failure (exit code 1).
        let mut bad = h.clone();
        let op = bad
            .ops
            .iter_mut()
            .find(|op| {
                matches!(&op.outcome, faultline_invariants::history::Outcome::Ok(
                    faultline_api::Response::Range(r)) if !r.kvs.is_empty() && !r.kvs[0].value.is_empty())
            })
            .expect("a read with a value");
        if let faultline_invariants::history::Outcome::Ok(faultline_api::Response::Range(r)) =
            &mut op.outcome
        {
            r.kvs[0].value = b"never written".to_vec();
        }
        let text = serde_json::to_string(&bad).expect("serialize");
        let v = check_text(&text, Format::Faultline, DEFAULT_BUDGET_STEPS).expect("parse");
        assert_eq!(exit_code(&v), 1, "{v}");
        assert_eq!(exit_code(&Verdict::Unknown { reason: "x".into() }), 2);
    }
}
