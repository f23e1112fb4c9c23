//! The page: head and verdict banner, the window around the failure, the findings' tables,
//! the overview of the whole history, and the operations in the window.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use super::findings::{primary_failure, Findings, Role};
use super::lanes::{LaneBook, LaneOwner};
use super::svg::{op_visible, Drawing, Range, Timeline};
use super::text::{clip, escape, fmt_time};
use super::timeline::{OpOutcome, TimelineMark, TimelineOp};
use crate::linearizability::{OpSummary, Report, StaleKind, TimeUnit, Verdict};

/// Operations in the window around the failure listed in the details table.
const WINDOW_TABLE_ROWS_MAX: usize = 300;
/// Above this many operations, overview tooltips are shortened to keep the file small.
const FULL_TOOLTIP_OPS_MAX: usize = 20_000;

/// The page's heading and context.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportMeta {
    pub title: String,
    pub time_unit: TimeUnit,
    /// Lines shown under the banner as they are (escaped): the run's own verdict, the command
    /// that replays it, and so on.
    pub notes: Vec<String>,
    /// A longer text (the run's own failure report) shown collapsed at the end of the page.
    pub text_report: Option<String>,
    /// Whose incarnation each client id is, when clients continue under new ids after unknown
    /// outcomes; ids left out are clients of their own (`client N`).
    pub lane_owners: BTreeMap<u64, LaneOwner>,
}

const STYLE: &str = r#"
body { font: 14px/1.4 "DejaVu Sans", "Liberation Sans", Arial, sans-serif; margin: 20px 24px; color: #1d1d1f; background: #fff; }
h1 { font-size: 21px; margin: 0 0 10px; }
h2 { font-size: 17px; margin: 24px 0 8px; border-bottom: 1px solid #ddd; padding-bottom: 3px; }
.banner { padding: 10px 14px; border-radius: 6px; font-size: 18px; font-weight: bold; margin-bottom: 10px; }
.banner.fail { background: #fde2e1; color: #8c1c13; border: 2px solid #d62728; }
.banner.pass { background: #e3f4e1; color: #1e5b1a; border: 2px solid #3c9a35; }
.banner.unknown { background: #fff3cd; color: #6b4e00; border: 2px solid #d9a400; }
.banner .sub { display: block; font-size: 14px; font-weight: normal; margin-top: 4px; }
.notes { font-family: "DejaVu Sans Mono", monospace; font-size: 12px; white-space: pre-wrap; background: #f6f6f6; padding: 6px 10px; border-radius: 4px; }
.legend span { display: inline-block; margin-right: 14px; font-size: 12px; }
.legend i { display: inline-block; width: 22px; height: 10px; vertical-align: middle; margin-right: 4px; border: 1px solid #666; }
table { border-collapse: collapse; font-size: 12px; margin: 6px 0; max-width: 1340px; }
th, td { border: 1px solid #ccc; padding: 3px 6px; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
td.mono, .mono { font-family: "DejaVu Sans Mono", monospace; word-break: break-all; }
tr.bad td { background: #fdecea; }
tr.witness td { background: #eef3fb; }
.timeline { display: block; margin: 4px 0 2px; }
.lane { fill: #ffffff; } .lane.odd { fill: #f4f5f7; }
.lane-label { font-size: 11px; fill: #444; }
.op { stroke: #00000040; stroke-width: 0.5; }
.k-read { fill: #4e79a7; } .k-write { fill: #f28e2b; } .k-txn { fill: #b07aa1; } .k-lease { fill: #76b7b2; } .k-other { fill: #9c9c9c; }
.o-failed { fill-opacity: 0.3; }
.o-unknown { fill-opacity: 0.55; stroke-dasharray: 3 2; stroke: #555; }
.op.bad { stroke: #d62728; stroke-width: 2.5; fill-opacity: 1; }
.op.witness { stroke: #1f3b73; stroke-width: 2; stroke-dasharray: 4 2; }
.op:target { stroke: #000; stroke-width: 3; }
.tail { stroke: #777; stroke-width: 1; stroke-dasharray: 2 3; opacity: 0.6; }
.in-prefix { fill: #2ca02c; }
.op-label { font-size: 10px; fill: #111; pointer-events: none; }
.op-label.bad { font-weight: bold; fill: #7a0b0b; }
.band.m-crash { fill: #d62728; fill-opacity: 0.13; }
.band.m-partition { fill: #ff9f1c; fill-opacity: 0.16; }
.band.m-pause { fill: #7b4fc9; fill-opacity: 0.14; }
.band.m-fault, .band.m-note { fill: #888; fill-opacity: 0.14; }
.mark { stroke-width: 1.5; }
.mark.m-leader { stroke: #2ca02c; }
.mark.m-heal { stroke: #1f77b4; stroke-dasharray: 5 3; }
.mark.m-disk { stroke: #8c1c13; stroke-dasharray: 2 2; }
.mark.m-note { stroke: #555; }
.mark-label { font-size: 10px; fill: #333; }
.mark-label.m-leader { fill: #1e6b1e; } .mark-label.m-crash, .mark-label.m-disk { fill: #a11d1d; }
.mark-label.m-partition { fill: #9a5a00; } .mark-label.m-pause { fill: #5b36a0; } .mark-label.m-heal { fill: #1f5f9a; }
.axis, .tick { stroke: #666; } .tick-label { font-size: 10px; fill: #444; text-anchor: middle; }
.prefix-list a { margin-right: 4px; white-space: nowrap; }
.muted { color: #666; font-size: 12px; }
td.nw { white-space: nowrap; } td.why { min-width: 200px; }
"#;

/// What a lane is, said on every page: a history with unknown outcomes has more client ids
/// than clients.
const LANES_NOTE: &str = r#"<p id="lanes-note">A lane is one client incarnation: a client that got an unknown outcome continues as a new incarnation under a new client id, so that its later operations are not ordered after the unknown one (etcd's robustness tests do the same; Jepsen gives such a process a new number). The lanes of one client are drawn together, shaded alike and numbered: client 3 #1, client 3 #2, …</p>"#;

fn legend(out: &mut String) {
    out.push_str(r#"<div class="legend">"#);
    for (style, name) in [
        ("background:#4e79a7", "read"),
        ("background:#f28e2b", "write"),
        ("background:#b07aa1", "txn / cas"),
        ("background:#76b7b2", "lease"),
        ("background:#9c9c9c", "other"),
        ("background:#f28e2b55", "failed (no effect)"),
        (
            "background:#f28e2b8c;border-style:dashed",
            "unknown outcome (dotted tail: may take effect later)",
        ),
        (
            "background:#fff;border:2.5px solid #d62728",
            "cannot be placed / stale",
        ),
        (
            "background:#fff;border:2px dashed #1f3b73",
            "earlier op that proves a read stale",
        ),
        (
            "background:#2ca02c;height:3px",
            "in the longest linearizable prefix",
        ),
        ("background:#d6272822", "crash"),
        ("background:#ff9f1c2a", "partition"),
        ("background:#7b4fc924", "pause"),
        ("background:#2ca02c;width:3px", "new leader"),
    ] {
        let _ = write!(out, r#"<span><i style="{style}"></i>{name}</span>"#);
    }
    out.push_str("</div>");
}

fn op_link(id: u64) -> String {
    format!(r##"<a href="#op-{id}">op {id}</a>"##)
}

fn member_text(member: Option<u64>) -> String {
    member.map(|m| m.to_string()).unwrap_or_else(|| "-".into())
}

/// What a table row shows of an operation: its summary, the client as a lane names it, and why
/// it is listed.
struct Row<'a> {
    class: &'a str,
    op: &'a OpSummary,
    note: &'a str,
}

fn summary_row(out: &mut String, row: Row<'_>, lanes: &LaneBook, unit: TimeUnit) {
    let Row { class, op: s, note } = row;
    let _ = write!(
        out,
        r#"<tr class="{class}"><td class="nw">{}</td><td class="why">{}</td><td class="nw">{}</td><td class="nw">{}</td><td class="nw">{}</td><td class="nw">{}</td><td class="mono">{}</td><td class="mono">{}</td></tr>"#,
        op_link(s.id),
        escape(note),
        escape(&lanes.describe(s.client)),
        member_text(s.member),
        fmt_time(unit, Some(s.invoke)),
        fmt_time(unit, s.complete),
        escape(&s.request),
        escape(&s.response)
    );
}

const SUMMARY_HEAD: &str = "<tr><th>op</th><th>why</th><th>client</th><th>member</th><th>invoked</th><th>completed</th><th>request</th><th>response</th></tr>";

/// The time window shown in detail around the primary failure: its operations plus a margin
/// of a few typical operation latencies on both sides (enough to see what ran just before and
/// after, while bars stay wide enough to carry their labels).
fn failure_window(ops: &[TimelineOp], report: Option<&Report>, full: &Range) -> Option<Range> {
    let primary: BTreeSet<u64> = primary_failure(report?).into_iter().collect();
    let named: Vec<&TimelineOp> = ops.iter().filter(|op| primary.contains(&op.id)).collect();
    let start = named.iter().map(|op| op.invoke).min()?;
    let end = named
        .iter()
        .map(|op| op.complete.unwrap_or(op.invoke))
        .max()?
        .max(start + 1);
    let mut latencies: Vec<u64> = ops
        .iter()
        .filter(|op| op.outcome == OpOutcome::Ok)
        .filter_map(|op| op.complete.map(|c| c.saturating_sub(op.invoke)))
        .collect();
    latencies.sort_unstable();
    let median = latencies.get(latencies.len() / 2).copied().unwrap_or(1);
    let margin = (end - start).max(median.saturating_mul(6)).max(1);
    Some(Range {
        start: start.saturating_sub(margin).max(full.start),
        end: end.saturating_add(margin).min(full.end),
    })
}

/// Render the report of any timeline with its verdict.
pub fn render_timeline_report(
    ops: &[TimelineOp],
    verdict: &Verdict,
    marks: &[TimelineMark],
    meta: &ReportMeta,
) -> String {
    let unit = meta.time_unit;
    let report = verdict.report();
    let findings = Findings::of(report);
    let full = full_range(ops, marks, unit);
    let lanes = LaneBook::new(ops, &meta.lane_owners);
    let mut out = String::with_capacity(4096 + ops.len() * 260);
    write_head(&mut out, verdict, ops.len(), meta);
    write_summary(&mut out, ops, marks, &lanes, unit);
    let timeline = Timeline {
        ops,
        marks,
        findings: &findings,
        lanes: &lanes,
        unit,
    };
    let window = failure_window(ops, report, &full);
    if let Some(w) = &window {
        let _ = write!(
            out,
            r#"<h2 id="window">Around the failure: {} to {}</h2>"#,
            fmt_time(unit, Some(w.start)),
            fmt_time(unit, Some(w.end))
        );
        timeline.draw(
            &mut out,
            &Drawing {
                range: Range {
                    start: w.start,
                    end: w.end,
                },
                id_prefix: "w-op-",
                labels: true,
                tooltip_chars: 400,
            },
        );
    }
    if let Some(r) = report {
        write_findings(&mut out, r, &lanes, unit, ops);
    }
    let _ = write!(
        out,
        r#"<h2 id="overview">Whole history, one lane per client incarnation</h2>"#
    );
    timeline.draw(
        &mut out,
        &Drawing {
            range: full,
            id_prefix: "op-",
            labels: false,
            tooltip_chars: if ops.len() > FULL_TOOLTIP_OPS_MAX {
                48
            } else {
                160
            },
        },
    );
    if let Some(w) = &window {
        write_window_table(&mut out, ops, &findings, &lanes, w, unit);
    }
    if let Some(text) = &meta.text_report {
        let _ = write!(
            out,
            r#"<h2 id="text-report">Report as text</h2><details><summary>show</summary><pre>{}</pre></details>"#,
            escape(text)
        );
    }
    out.push_str("\n</body></html>\n");
    out
}

/// The whole history's time range, from the start (simulated time) or the first invocation
/// (positions) to the last event, with a little room on the right for the open tails of
/// unknown outcomes.
fn full_range(ops: &[TimelineOp], marks: &[TimelineMark], unit: TimeUnit) -> Range {
    let last_op_time = ops
        .iter()
        .map(|op| op.complete.unwrap_or(op.invoke).max(op.invoke))
        .max()
        .unwrap_or(0);
    let last_mark_time = marks
        .iter()
        .map(|m| m.end_ns.unwrap_or(m.at_ns).max(m.at_ns))
        .max()
        .unwrap_or(0);
    let first_time = match unit {
        // Simulated time starts at 0: keep it, so the axis reads as time since the start.
        TimeUnit::Nanoseconds => 0,
        TimeUnit::Position => ops.iter().map(|op| op.invoke).min().unwrap_or(0),
    };
    let last_time = last_op_time.max(last_mark_time);
    let full = Range {
        start: first_time,
        end: last_time + ((last_time - first_time) / 50).max(1),
    };
    assert!(full.end > full.start, "the time range is never empty");
    full
}

/// The document head, the title, the verdict's banner and the notes.
fn write_head(out: &mut String, verdict: &Verdict, n_ops: usize, meta: &ReportMeta) {
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head><body>\n",
        escape(&meta.title)
    );
    let _ = writeln!(out, "<h1>{}</h1>", escape(&meta.title));
    match verdict {
        Verdict::Linearizable => {
            let _ = write!(
                out,
                r#"<div class="banner pass" id="verdict">LINEARIZABLE<span class="sub">every one of the {n_ops} operations fits one sequential order of the model, within real time</span></div>"#
            );
        }
        Verdict::Unknown { reason } => {
            let _ = write!(
                out,
                r#"<div class="banner unknown" id="verdict">UNKNOWN (not a pass)<span class="sub">{}</span></div>"#,
                escape(reason)
            );
        }
        Verdict::NotLinearizable(r) => write_failure_banner(out, r),
    }
    if !meta.notes.is_empty() {
        let _ = write!(
            out,
            r#"<div class="notes">{}</div>"#,
            escape(&meta.notes.join("\n"))
        );
    }
}

/// The banner of a failure: what was found, in numbers.
fn write_failure_banner(out: &mut String, r: &Report) {
    let mut what = Vec::new();
    if !r.unplaceable.is_empty() {
        what.push(format!(
            "{} operation(s) cannot be placed",
            r.unplaceable.len()
        ));
    }
    if !r.stale_reads.is_empty() {
        what.push(format!("{} stale read(s)", r.stale_reads.len()));
    }
    if !r.mismatches.is_empty() {
        what.push(format!(
            "{} response(s) contradict the order",
            r.mismatches.len()
        ));
    }
    let _ = write!(
        out,
        r#"<div class="banner fail" id="verdict">NOT LINEARIZABLE under the {} model{}<span class="sub">{}</span></div>"#,
        escape(&r.model),
        r.partition
            .as_ref()
            .map(|p| format!(" (partition {})", escape(p)))
            .unwrap_or_default(),
        escape(&what.join("; "))
    );
}

/// One line of counts, what a lane is, and the legend.
fn write_summary(
    out: &mut String,
    ops: &[TimelineOp],
    marks: &[TimelineMark],
    lanes: &LaneBook,
    unit: TimeUnit,
) {
    let counts = |o: OpOutcome| ops.iter().filter(|op| op.outcome == o).count();
    let _ = write!(
        out,
        r#"<p class="muted">{} operations from {} clients in {} incarnations ({} ok, {} failed, {} unknown outcome); {} marks; time axis in {}. Hover a bar for its details; links jump to it.</p>"#,
        ops.len(),
        lanes.clients(),
        lanes.incarnations(),
        counts(OpOutcome::Ok),
        counts(OpOutcome::Failed),
        counts(OpOutcome::Unknown),
        marks.len(),
        match unit {
            TimeUnit::Nanoseconds => "simulated milliseconds",
            TimeUnit::Position => "line numbers of the log",
        }
    );
    out.push_str(LANES_NOTE);
    legend(out);
}

/// The findings of a failed check, each in its own table, and the longest prefix.
fn write_findings(
    out: &mut String,
    r: &Report,
    lanes: &LaneBook,
    unit: TimeUnit,
    ops: &[TimelineOp],
) {
    if !r.unplaceable.is_empty() {
        write_unplaceable(out, r, lanes, unit);
    }
    if !r.stale_reads.is_empty() {
        write_stale_reads(out, r, lanes, unit);
    }
    if !r.mismatches.is_empty() {
        write_mismatches(out, r, lanes, unit);
    }
    write_prefix(out, r, ops);
}

/// Operations that cannot be placed after the longest prefix.
fn write_unplaceable(out: &mut String, r: &Report, lanes: &LaneBook, unit: TimeUnit) {
    out.push_str(r#"<h2 id="unplaceable">Operations that cannot be placed</h2>"#);
    out.push_str(r#"<p class="muted">After the longest linearizable prefix, none of these can come next in any order the model allows. The first is the operation whose return forced the decision.</p><table>"#);
    out.push_str(SUMMARY_HEAD);
    for (i, s) in r.unplaceable.iter().enumerate() {
        let why = if i == 0 {
            "cannot be placed (forced the decision)"
        } else {
            "cannot be placed (other candidate)"
        };
        let row = Row {
            class: "bad",
            op: s,
            note: why,
        };
        summary_row(out, row, lanes, unit);
    }
    out.push_str("</table>");
}

/// Stale reads, each with the operation that proves it stale.
fn write_stale_reads(out: &mut String, r: &Report, lanes: &LaneBook, unit: TimeUnit) {
    out.push_str(r#"<h2 id="stale">Stale reads</h2><p class="muted">Each read returned a revision below one that an operation completed before the read was invoked had already reported.</p><table>"#);
    out.push_str(SUMMARY_HEAD);
    for s in &r.stale_reads {
        let what = match s.kind {
            StaleKind::StaleRead => "stale read",
            StaleKind::RevisionRegression => "revision went backwards",
        };
        let note = format!("{what}: saw revision {}", s.op_revision);
        let row = Row {
            class: "bad",
            op: &s.op,
            note: &note,
        };
        summary_row(out, row, lanes, unit);
        let note = format!(
            "completed earlier with revision {} (op {})",
            s.earlier_revision, s.op.id
        );
        let row = Row {
            class: "witness",
            op: &s.earlier,
            note: &note,
        };
        summary_row(out, row, lanes, unit);
    }
    out.push_str("</table>");
}

/// Responses that contradict the linearization found.
fn write_mismatches(out: &mut String, r: &Report, lanes: &LaneBook, unit: TimeUnit) {
    out.push_str(r#"<h2 id="mismatches">Responses that contradict the order found</h2><table><tr><th>op</th><th>client</th><th>member</th><th>invoked</th><th>request</th><th>response</th><th>expected</th><th>why</th></tr>"#);
    for m in &r.mismatches {
        let _ = write!(
            out,
            r#"<tr class="bad"><td class="nw">{}</td><td class="nw">{}</td><td class="nw">{}</td><td class="nw">{}</td><td class="mono">{}</td><td class="mono">{}</td><td class="mono">{}</td><td>{}</td></tr>"#,
            op_link(m.op.id),
            escape(&lanes.describe(m.op.client)),
            member_text(m.op.member),
            fmt_time(unit, Some(m.op.invoke)),
            escape(&m.op.request),
            escape(&m.op.response),
            escape(&m.expected),
            escape(&m.explanation)
        );
    }
    out.push_str("</table>");
}

/// The tail of the longest linearizable prefix and the state after it.
fn write_prefix(out: &mut String, r: &Report, ops: &[TimelineOp]) {
    out.push_str(r#"<h2 id="prefix">Longest linearizable prefix</h2>"#);
    if r.longest_prefix.is_empty() {
        out.push_str(r#"<p class="muted">No prefix was recorded (the failure was found by a direct check, not by the search).</p>"#);
    } else {
        // The tail of the prefix is what matters: it is the order just before the failure.
        const SHOWN: usize = 40;
        let n = r.longest_prefix.len();
        let known: BTreeSet<u64> = ops.iter().map(|op| op.id).collect();
        let _ = write!(
            out,
            r#"<p>{n} operations fit one sequential order{}; {} in linearization order:</p><p class="prefix-list mono">"#,
            if n > SHOWN {
                format!(" (marked green in the window above); the last {SHOWN}")
            } else {
                " (marked green in the window above); all of them".to_string()
            },
            if n > SHOWN { "…" } else { "" }
        );
        for id in &r.longest_prefix[n.saturating_sub(SHOWN)..] {
            if known.contains(id) {
                out.push_str(&op_link(*id));
            } else {
                let _ = write!(out, "op {id} ");
            }
        }
        let _ = write!(
            out,
            r#"</p><p>Model state after the prefix:</p><div class="notes">{}</div>"#,
            escape(&clip(&r.state_after_prefix, 4000))
        );
    }
}

fn write_window_table(
    out: &mut String,
    ops: &[TimelineOp],
    findings: &Findings,
    lanes: &LaneBook,
    w: &Range,
    unit: TimeUnit,
) {
    let in_window: Vec<&TimelineOp> = ops.iter().filter(|op| op_visible(op, w)).collect();
    let _ = write!(
        out,
        r#"<h2 id="window-ops">Operations around the failure ({} to {})</h2><p class="muted">{} operations overlap the window{}.</p><table><tr><th>op</th><th>client</th><th>member</th><th>invoked</th><th>completed</th><th>outcome</th><th>in prefix</th><th>request</th><th>response</th></tr>"#,
        fmt_time(unit, Some(w.start)),
        fmt_time(unit, Some(w.end)),
        in_window.len(),
        if in_window.len() > WINDOW_TABLE_ROWS_MAX {
            format!("; the first {WINDOW_TABLE_ROWS_MAX} are listed")
        } else {
            String::new()
        }
    );
    for op in in_window.iter().take(WINDOW_TABLE_ROWS_MAX) {
        let class = match findings.roles.get(&op.id) {
            Some(Role::Failing) => "bad",
            Some(Role::Witness) => "witness",
            None => "",
        };
        let _ = write!(
            out,
            r#"<tr class="{class}"><td class="nw">{}</td><td class="nw">{}</td><td class="nw">{}</td><td class="nw">{}</td><td class="nw">{}</td><td>{}</td><td>{}</td><td class="mono">{}</td><td class="mono">{}</td></tr>"#,
            op_link(op.id),
            escape(&lanes.describe(op.client)),
            member_text(op.member),
            fmt_time(unit, Some(op.invoke)),
            fmt_time(unit, op.complete),
            op.outcome.word(),
            if findings.prefix.contains(&op.id) {
                "yes"
            } else {
                ""
            },
            escape(&op.request),
            escape(&op.response)
        );
    }
    out.push_str("</table>");
}
