//! A self-contained HTML report of a checked history, for a person to read: one timeline lane
//! per client (every operation a bar from invocation to completion), faults and leader changes
//! overlaid, the longest linearizable prefix, and the operations that cannot be placed (and the
//! stale reads and mismatches) highlighted and listed in full.
//!
//! Pure: a function from (operations, verdict, marks) to a `String`. No I/O, no clock, no
//! randomness; the same input gives the same bytes. The page has inline CSS and SVG only (no
//! script, no network, no fonts), so it opens anywhere and can be attached to a bug report.
//! Every piece of text from the history is escaped: keys and values are arbitrary bytes.
//!
//! Size: every operation gets a bar (with a short tooltip) in the overview; full details only
//! go to the operations the verdict names and to a window of time around the failure, so a
//! history of 100,000 operations still gives a file of a few tens of megabytes at most.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use faultline_api::Request;
use serde::{Deserialize, Serialize};

use crate::formats::{KvOp, RegisterOp};
use crate::history::{History, Outcome};
use crate::linearizability::{Model, OpSummary, Report, StaleKind, TimeUnit, Verdict, NEVER};
use crate::models::kv::{KvInput, KvModel};
use crate::models::register::{RegisterInput, RegisterModel};

/// What a timeline mark shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum MarkKind {
    /// Members crashed (a band while they are down).
    Crash,
    /// Links cut (a band while the partition lasts).
    Partition,
    /// A process frozen (a band while it is paused).
    Pause,
    /// Any other fault (a band).
    Fault,
    /// A member's disk lost or tore its unsynced writes (an instant).
    DiskCrash,
    /// A member became leader (an instant).
    Leader,
    /// Every fault was healed (an instant).
    Heal,
    /// Anything else worth a line on the timeline.
    Note,
}

impl MarkKind {
    fn css(self) -> &'static str {
        match self {
            MarkKind::Crash => "m-crash",
            MarkKind::Partition => "m-partition",
            MarkKind::Pause => "m-pause",
            MarkKind::Fault => "m-fault",
            MarkKind::DiskCrash => "m-disk",
            MarkKind::Leader => "m-leader",
            MarkKind::Heal => "m-heal",
            MarkKind::Note => "m-note",
        }
    }
}

/// Something that happened outside the clients, drawn over the timeline: a band from `at_ns`
/// to `end_ns` (faults), or a line at `at_ns` (leader changes, disk crashes, heal). Times are in
/// the history's unit (simulated nanoseconds for this project's histories).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimelineMark {
    pub at_ns: u64,
    /// End of a band; `None` for an instant.
    pub end_ns: Option<u64>,
    pub kind: MarkKind,
    pub label: String,
}

/// The kind of an operation, for its color.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OpKind {
    Read,
    Write,
    Txn,
    Lease,
    Other,
}

impl OpKind {
    fn css(self) -> &'static str {
        match self {
            OpKind::Read => "k-read",
            OpKind::Write => "k-write",
            OpKind::Txn => "k-txn",
            OpKind::Lease => "k-lease",
            OpKind::Other => "k-other",
        }
    }
}

/// What the client learned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OpOutcome {
    Ok,
    /// Definitely did not take effect.
    Failed,
    /// May take effect at any time after the invocation, or never: drawn open-ended.
    Unknown,
}

impl OpOutcome {
    fn css(self) -> &'static str {
        match self {
            OpOutcome::Ok => "o-ok",
            OpOutcome::Failed => "o-failed",
            OpOutcome::Unknown => "o-unknown",
        }
    }
    fn word(self) -> &'static str {
        match self {
            OpOutcome::Ok => "ok",
            OpOutcome::Failed => "failed",
            OpOutcome::Unknown => "unknown",
        }
    }
}

/// One operation as the timeline draws it, whatever the history's format.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimelineOp {
    pub id: u64,
    pub client: u64,
    pub member: Option<u64>,
    pub invoke: u64,
    /// When the client got its answer or gave up; `None` when it never returned.
    pub complete: Option<u64>,
    pub kind: OpKind,
    pub outcome: OpOutcome,
    pub request: String,
    pub response: String,
}

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
}

/// This project's etcd history as timeline operations.
pub fn timeline_from_history(history: &History) -> Vec<TimelineOp> {
    history
        .ops
        .iter()
        .map(|op| {
            let summary = crate::describe::summarize(op);
            let kind = match &op.request {
                Request::Range(_) => OpKind::Read,
                Request::Put(_) | Request::DeleteRange(_) => OpKind::Write,
                Request::Txn(_) => OpKind::Txn,
                Request::LeaseGrant(_)
                | Request::LeaseRevoke(_)
                | Request::LeaseKeepAlive(_)
                | Request::LeaseTimeToLive(_)
                | Request::LeaseLeases => OpKind::Lease,
                Request::Compact(_) | Request::HashKv(_) => OpKind::Other,
            };
            let outcome = match op.outcome {
                Outcome::Ok(_) => OpOutcome::Ok,
                Outcome::Failed(_) => OpOutcome::Failed,
                Outcome::Unknown(_) => OpOutcome::Unknown,
            };
            TimelineOp {
                id: op.id,
                client: op.client,
                member: op.member,
                invoke: op.invoke_ns,
                // An unknown op's `complete_ns` is when the client gave up: the solid bar
                // ends there and an open tail runs on to the right edge.
                complete: Some(op.complete_ns),
                kind,
                outcome,
                request: summary.request,
                response: summary.response,
            }
        })
        .collect()
}

fn engine_op<M: Model>(
    model: &M,
    op: &crate::linearizability::Op<M::Input, M::Output>,
    kind: OpKind,
) -> TimelineOp {
    let returned = op.output.is_some() && op.ret != NEVER;
    TimelineOp {
        id: op.id,
        client: op.client,
        member: None,
        invoke: op.call,
        complete: returned.then_some(op.ret),
        kind,
        outcome: if op.output.is_some() {
            OpOutcome::Ok
        } else {
            OpOutcome::Unknown
        },
        request: model.describe_input(&op.input),
        response: model.describe_output(op.output.as_ref()),
    }
}

/// A Jepsen register history (times are line numbers) as timeline operations.
pub fn timeline_from_register(ops: &[RegisterOp]) -> Vec<TimelineOp> {
    ops.iter()
        .map(|op| {
            let kind = match op.input {
                RegisterInput::Read => OpKind::Read,
                RegisterInput::Write(_) => OpKind::Write,
                RegisterInput::Cas(..) => OpKind::Txn,
            };
            engine_op(&RegisterModel, op, kind)
        })
        .collect()
}

/// A porcupine key/value history (times are line numbers) as timeline operations.
pub fn timeline_from_kv(ops: &[KvOp]) -> Vec<TimelineOp> {
    ops.iter()
        .map(|op| {
            let kind = match op.input {
                KvInput::Get { .. } => OpKind::Read,
                KvInput::Put { .. } | KvInput::Append { .. } => OpKind::Write,
            };
            engine_op(&KvModel, op, kind)
        })
        .collect()
}

/// Render the report of an etcd history checked with `check_etcd_history`.
pub fn render_report(
    history: &History,
    verdict: &Verdict,
    marks: &[TimelineMark],
    title: &str,
) -> String {
    let meta = ReportMeta {
        title: title.to_string(),
        time_unit: TimeUnit::Nanoseconds,
        notes: vec![],
        text_report: None,
    };
    render_timeline_report(&timeline_from_history(history), verdict, marks, &meta)
}

// ---------------------------------------------------------------------------------------------
// Escaping and formatting.

/// Escape text for HTML element content and attribute values. Control characters (other than
/// tab and newline) become U+FFFD: they are not allowed in HTML text.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' => out.push(c),
            c if c.is_control() => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// At most `max_chars` characters of `text`, with an ellipsis when cut.
fn clip(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max_chars.saturating_sub(1)).collect();
    out.push('…');
    out
}

fn fmt_time(unit: TimeUnit, t: Option<u64>) -> String {
    match (unit, t) {
        (_, None) => "never".to_string(),
        (TimeUnit::Nanoseconds, Some(t)) => format!("{:.3} ms", t as f64 / 1e6),
        (TimeUnit::Position, Some(t)) => format!("line {t}"),
    }
}

fn fmt_axis(unit: TimeUnit, t: u64, step: u64) -> String {
    match unit {
        TimeUnit::Nanoseconds if step >= 1_000_000 => format!("{} ms", t / 1_000_000),
        TimeUnit::Nanoseconds => format!("{:.3} ms", t as f64 / 1e6),
        TimeUnit::Position => format!("{t}"),
    }
}

/// A round tick step (1, 2 or 5 times a power of ten) giving about `target` ticks over `span`.
fn tick_step(span: u64, target: u64) -> u64 {
    let raw = (span / target.max(1)).max(1);
    let mut power = 1u64;
    while power.saturating_mul(10) <= raw {
        power *= 10;
    }
    for m in [1, 2, 5, 10] {
        if power.saturating_mul(m) >= raw {
            return power.saturating_mul(m);
        }
    }
    power.saturating_mul(10)
}

// ---------------------------------------------------------------------------------------------
// What the verdict names.

/// Why an operation is highlighted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Role {
    /// Cannot be placed after the longest prefix, is a stale read, or contradicts the order.
    Failing,
    /// The earlier operation that shows a read was stale.
    Witness,
}

struct Findings {
    roles: BTreeMap<u64, Role>,
    prefix: BTreeSet<u64>,
}

impl Findings {
    fn of(report: Option<&Report>) -> Findings {
        let mut roles = BTreeMap::new();
        let mut prefix = BTreeSet::new();
        if let Some(r) = report {
            for s in &r.stale_reads {
                roles.entry(s.earlier.id).or_insert(Role::Witness);
            }
            // Failing wins over witness: an operation can be both.
            for s in &r.stale_reads {
                roles.insert(s.op.id, Role::Failing);
            }
            for u in &r.unplaceable {
                roles.insert(u.id, Role::Failing);
            }
            for m in &r.mismatches {
                roles.insert(m.op.id, Role::Failing);
            }
            prefix.extend(r.longest_prefix.iter().copied());
        }
        Findings { roles, prefix }
    }
}

// ---------------------------------------------------------------------------------------------
// The timeline (SVG).

const SVG_WIDTH_PX: f64 = 1340.0;
const LANE_LABEL_PX: f64 = 96.0;
const RIGHT_PAD_PX: f64 = 16.0;
const MARK_LABEL_ROWS: usize = 4;
const MARK_ROW_PX: f64 = 13.0;
const AXIS_PX: f64 = 22.0;
/// Approximate width of one character of the 10 px label font.
const CHAR_PX: f64 = 5.6;
/// Operations in the window around the failure listed in the details table.
const WINDOW_TABLE_ROWS_MAX: usize = 300;
/// Above this many operations, overview tooltips are shortened to keep the file small.
const FULL_TOOLTIP_OPS_MAX: usize = 20_000;

struct Range {
    start: u64,
    end: u64,
}

impl Range {
    fn x(&self, t: u64) -> f64 {
        let plot = SVG_WIDTH_PX - LANE_LABEL_PX - RIGHT_PAD_PX;
        let span = (self.end - self.start).max(1) as f64;
        let t = t.clamp(self.start, self.end);
        LANE_LABEL_PX + (t - self.start) as f64 / span * plot
    }
    fn right(&self) -> f64 {
        SVG_WIDTH_PX - RIGHT_PAD_PX
    }
}

struct Timeline<'a> {
    ops: &'a [TimelineOp],
    marks: &'a [TimelineMark],
    findings: &'a Findings,
    unit: TimeUnit,
}

struct Drawing<'a> {
    range: Range,
    /// `op-` for the overview (the ids other pages and tests link to), `w-op-` for the window.
    id_prefix: &'a str,
    /// Text inside the bars (the window, where bars are wide).
    labels: bool,
    tooltip_chars: usize,
}

/// Whether any part of the operation's bar (or its open tail) falls inside the range.
fn op_visible(op: &TimelineOp, range: &Range) -> bool {
    let end = op.complete.unwrap_or(op.invoke);
    let open = op.outcome == OpOutcome::Unknown;
    op.invoke <= range.end && (open || end >= range.start)
}

impl Timeline<'_> {
    fn draw(&self, out: &mut String, d: &Drawing<'_>) {
        // A lane for every client with an operation in view: the window leaves out the idle.
        let clients: Vec<u64> = self
            .ops
            .iter()
            .filter(|op| op_visible(op, &d.range))
            .map(|op| op.client)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let lane_px = if clients.len() <= 24 { 24.0 } else { 14.0 };
        let top = MARK_LABEL_ROWS as f64 * MARK_ROW_PX + 4.0;
        let lanes_px = lane_px * clients.len().max(1) as f64;
        let height = top + lanes_px + AXIS_PX;
        let bottom = top + lanes_px;
        let _ = write!(
            out,
            r#"<svg class="timeline" xmlns="http://www.w3.org/2000/svg" width="{SVG_WIDTH_PX}" height="{height:.0}" viewBox="0 0 {SVG_WIDTH_PX} {height:.0}">"#
        );
        // Lanes: alternate shading and the client's name.
        for (i, client) in clients.iter().enumerate() {
            let y = top + i as f64 * lane_px;
            let _ = write!(
                out,
                r#"<rect class="lane{}" x="0" y="{y:.1}" width="{SVG_WIDTH_PX}" height="{lane_px}"/><text class="lane-label" x="6" y="{:.1}">client {}</text>"#,
                if i % 2 == 1 { " odd" } else { "" },
                y + lane_px * 0.68,
                // The simulator's final-phase client uses the largest id.
                if *client == u64::MAX {
                    "max".to_string()
                } else {
                    client.to_string()
                }
            );
        }
        // Bands (faults) under the bars, lines (leaders, heal, disk crashes) above them.
        let mut label_rows_end = [f64::MIN; MARK_LABEL_ROWS];
        let visible = |m: &TimelineMark| {
            let end = m.end_ns.unwrap_or(m.at_ns);
            end >= d.range.start && m.at_ns <= d.range.end
        };
        let mut ordered: Vec<&TimelineMark> = self.marks.iter().filter(|m| visible(m)).collect();
        ordered.sort_by_key(|m| (m.at_ns, m.kind));
        for pass_bands in [true, false] {
            for m in ordered.iter().filter(|m| m.end_ns.is_some() == pass_bands) {
                let x0 = d.range.x(m.at_ns);
                let tip = format!(
                    "{} at {}{}",
                    m.label,
                    fmt_time(self.unit, Some(m.at_ns)),
                    m.end_ns
                        .map(|e| format!(" until {}", fmt_time(self.unit, Some(e))))
                        .unwrap_or_default()
                );
                match m.end_ns {
                    Some(end) => {
                        let x1 = d.range.x(end).max(x0 + 1.0);
                        let _ = write!(
                            out,
                            r#"<rect class="band {}" x="{x0:.1}" y="{top:.1}" width="{:.1}" height="{lanes_px:.1}"><title>{}</title></rect>"#,
                            m.kind.css(),
                            x1 - x0,
                            escape(&tip)
                        );
                    }
                    None => {
                        let _ = write!(
                            out,
                            r#"<line class="mark {}" x1="{x0:.1}" x2="{x0:.1}" y1="{:.1}" y2="{bottom:.1}"><title>{}</title></line>"#,
                            m.kind.css(),
                            top - 2.0,
                            escape(&tip)
                        );
                    }
                }
                // The label goes in the first row where it does not overlap the previous one;
                // when every row is taken it is left out (the tooltip still has it).
                let text = clip(&m.label, 40);
                let width = text.chars().count() as f64 * CHAR_PX + 6.0;
                // Near the right edge the label ends at the line instead of starting there.
                let (x_text, anchor) = if x0 + width > SVG_WIDTH_PX {
                    (x0 - width, "end")
                } else {
                    (x0, "start")
                };
                if let Some(row) = label_rows_end.iter().position(|&end| end < x_text) {
                    label_rows_end[row] = x_text + width;
                    let _ = write!(
                        out,
                        r#"<text class="mark-label {}" text-anchor="{anchor}" x="{:.1}" y="{:.1}">{}</text>"#,
                        m.kind.css(),
                        if anchor == "end" { x0 - 1.0 } else { x0 + 1.0 },
                        (row + 1) as f64 * MARK_ROW_PX - 2.0,
                        escape(&text)
                    );
                }
            }
        }
        // Operations.
        let lane_of: BTreeMap<u64, usize> =
            clients.iter().enumerate().map(|(i, c)| (*c, i)).collect();
        let bar_px = lane_px - 8.0;
        for op in self.ops {
            if !op_visible(op, &d.range) {
                continue;
            }
            let end = op.complete.unwrap_or(op.invoke);
            let open = op.outcome == OpOutcome::Unknown;
            let lane = lane_of[&op.client];
            let y = top + lane as f64 * lane_px + 4.0;
            let x0 = d.range.x(op.invoke);
            let x1 = d.range.x(end);
            // A bar is at least 2 px wide so that every operation stays visible.
            let width = (x1 - x0).max(2.0);
            let role = match self.findings.roles.get(&op.id) {
                Some(Role::Failing) => " bad",
                Some(Role::Witness) => " witness",
                None => "",
            };
            let tip = format!(
                "op {} · client {}{} · {} → {} · {}\nrequest: {}\nresponse: {}",
                op.id,
                op.client,
                op.member
                    .map(|m| format!(" via member {m}"))
                    .unwrap_or_default(),
                fmt_time(self.unit, Some(op.invoke)),
                fmt_time(self.unit, op.complete),
                op.outcome.word(),
                clip(&op.request, d.tooltip_chars),
                clip(&op.response, d.tooltip_chars)
            );
            if open {
                // The outcome is unknown: it may take effect any time from now on.
                let _ = write!(
                    out,
                    r#"<line class="tail" x1="{:.1}" x2="{:.1}" y1="{:.1}" y2="{:.1}"/>"#,
                    x0 + width,
                    d.range.right(),
                    y + bar_px / 2.0,
                    y + bar_px / 2.0
                );
            }
            let _ = write!(
                out,
                r#"<rect id="{}{}" class="op {} {}{role}" x="{x0:.1}" y="{y:.1}" width="{width:.1}" height="{bar_px:.1}"><title>{}</title></rect>"#,
                d.id_prefix,
                op.id,
                op.kind.css(),
                op.outcome.css(),
                escape(&tip)
            );
            if self.findings.prefix.contains(&op.id) && d.labels {
                let _ = write!(
                    out,
                    r#"<rect class="in-prefix" x="{x0:.1}" y="{:.1}" width="{width:.1}" height="2"/>"#,
                    y + bar_px + 1.0
                );
            }
            let room = (width / CHAR_PX).floor() as usize;
            if d.labels && room >= 4 {
                let text = clip(&format!("#{} {}", op.id, op.request), room);
                let _ = write!(
                    out,
                    r#"<text class="op-label{role}" x="{:.1}" y="{:.1}">{}</text>"#,
                    x0 + 2.0,
                    y + bar_px * 0.72,
                    escape(&text)
                );
            }
        }
        // Axis.
        let span = d.range.end - d.range.start;
        let step = tick_step(span, 10);
        let first = d.range.start.div_ceil(step) * step;
        let _ = write!(
            out,
            r#"<line class="axis" x1="{LANE_LABEL_PX}" x2="{:.1}" y1="{bottom:.1}" y2="{bottom:.1}"/>"#,
            d.range.right()
        );
        let mut t = first;
        while t <= d.range.end {
            let x = d.range.x(t);
            let _ = write!(
                out,
                r#"<line class="tick" x1="{x:.1}" x2="{x:.1}" y1="{bottom:.1}" y2="{:.1}"/><text class="tick-label" x="{x:.1}" y="{:.1}">{}</text>"#,
                bottom + 4.0,
                bottom + 15.0,
                fmt_axis(self.unit, t, step)
            );
            t = match t.checked_add(step) {
                Some(next) => next,
                None => break,
            };
        }
        out.push_str("</svg>");
    }
}

// ---------------------------------------------------------------------------------------------
// The page.

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

fn summary_row(out: &mut String, class: &str, s: &OpSummary, unit: TimeUnit, note: &str) {
    let _ = write!(
        out,
        r#"<tr class="{class}"><td class="nw">{}</td><td class="why">{}</td><td class="nw">{}</td><td class="nw">{}</td><td class="nw">{}</td><td class="nw">{}</td><td class="mono">{}</td><td class="mono">{}</td></tr>"#,
        op_link(s.id),
        escape(note),
        s.client,
        member_text(s.member),
        fmt_time(unit, Some(s.invoke)),
        fmt_time(unit, s.complete),
        escape(&s.request),
        escape(&s.response)
    );
}

const SUMMARY_HEAD: &str = "<tr><th>op</th><th>why</th><th>client</th><th>member</th><th>invoked</th><th>completed</th><th>request</th><th>response</th></tr>";

/// The operations the window is centred on: the first one that cannot be placed (the one
/// whose return forced the decision), else the first stale read and the operation that proves
/// it stale, else the first contradicting response.
fn primary_failure(report: &Report) -> Vec<u64> {
    if let Some(u) = report.unplaceable.first() {
        return vec![u.id];
    }
    if let Some(s) = report.stale_reads.first() {
        return vec![s.op.id, s.earlier.id];
    }
    report.mismatches.iter().take(1).map(|m| m.op.id).collect()
}

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
    let clients: Vec<u64> = ops
        .iter()
        .map(|op| op.client)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
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
    // A little room on the right for the open tails of unknown outcomes.
    let full = Range {
        start: first_time,
        end: last_time + ((last_time - first_time) / 50).max(1),
    };
    assert!(full.end > full.start, "the time range is never empty");

    let mut out = String::with_capacity(4096 + ops.len() * 260);
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
                r#"<div class="banner pass" id="verdict">LINEARIZABLE<span class="sub">every one of the {} operations fits one sequential order of the model, within real time</span></div>"#,
                ops.len()
            );
        }
        Verdict::Unknown { reason } => {
            let _ = write!(
                out,
                r#"<div class="banner unknown" id="verdict">UNKNOWN (not a pass)<span class="sub">{}</span></div>"#,
                escape(reason)
            );
        }
        Verdict::NotLinearizable(r) => {
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
    }
    if !meta.notes.is_empty() {
        let _ = write!(
            out,
            r#"<div class="notes">{}</div>"#,
            escape(&meta.notes.join("\n"))
        );
    }
    let counts = |o: OpOutcome| ops.iter().filter(|op| op.outcome == o).count();
    let _ = write!(
        out,
        r#"<p class="muted">{} operations from {} clients ({} ok, {} failed, {} unknown outcome); {} marks; time axis in {}. Hover a bar for its details; links jump to it.</p>"#,
        ops.len(),
        clients.len(),
        counts(OpOutcome::Ok),
        counts(OpOutcome::Failed),
        counts(OpOutcome::Unknown),
        marks.len(),
        match unit {
            TimeUnit::Nanoseconds => "simulated milliseconds",
            TimeUnit::Position => "line numbers of the log",
        }
    );
    legend(&mut out);

    let timeline = Timeline {
        ops,
        marks,
        findings: &findings,
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
        write_findings(&mut out, r, unit, ops);
    }
    let _ = write!(
        out,
        r#"<h2 id="overview">Whole history, one lane per client</h2>"#
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
        write_window_table(&mut out, ops, &findings, w, unit);
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

fn write_findings(out: &mut String, r: &Report, unit: TimeUnit, ops: &[TimelineOp]) {
    if !r.unplaceable.is_empty() {
        out.push_str(r#"<h2 id="unplaceable">Operations that cannot be placed</h2>"#);
        out.push_str(r#"<p class="muted">After the longest linearizable prefix, none of these can come next in any order the model allows. The first is the operation whose return forced the decision.</p><table>"#);
        out.push_str(SUMMARY_HEAD);
        for (i, s) in r.unplaceable.iter().enumerate() {
            let why = if i == 0 {
                "cannot be placed (forced the decision)"
            } else {
                "cannot be placed (other candidate)"
            };
            summary_row(out, "bad", s, unit, why);
        }
        out.push_str("</table>");
    }
    if !r.stale_reads.is_empty() {
        out.push_str(r#"<h2 id="stale">Stale reads</h2><p class="muted">Each read returned a revision below one that an operation completed before the read was invoked had already reported.</p><table>"#);
        out.push_str(SUMMARY_HEAD);
        for s in &r.stale_reads {
            let what = match s.kind {
                StaleKind::StaleRead => "stale read",
                StaleKind::RevisionRegression => "revision went backwards",
            };
            summary_row(
                out,
                "bad",
                &s.op,
                unit,
                &format!("{what}: saw revision {}", s.op_revision),
            );
            summary_row(
                out,
                "witness",
                &s.earlier,
                unit,
                &format!(
                    "completed earlier with revision {} (op {})",
                    s.earlier_revision, s.op.id
                ),
            );
        }
        out.push_str("</table>");
    }
    if !r.mismatches.is_empty() {
        out.push_str(r#"<h2 id="mismatches">Responses that contradict the order found</h2><table><tr><th>op</th><th>client</th><th>member</th><th>invoked</th><th>request</th><th>response</th><th>expected</th><th>why</th></tr>"#);
        for m in &r.mismatches {
            let _ = write!(
                out,
                r#"<tr class="bad"><td class="nw">{}</td><td class="nw">{}</td><td class="nw">{}</td><td class="nw">{}</td><td class="mono">{}</td><td class="mono">{}</td><td class="mono">{}</td><td>{}</td></tr>"#,
                op_link(m.op.id),
                m.op.client,
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
            op.client,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Operation;
    use faultline_api::{
        KeyValue, PutRequest, PutResponse, RangeRequest, RangeResponse, Response, ResponseHeader,
    };

    fn put(id: u64, client: u64, t: (u64, u64), key: &[u8], value: &[u8], rev: i64) -> Operation {
        Operation {
            id,
            client,
            member: Some(1),
            invoke_ns: t.0,
            complete_ns: t.1,
            request: Request::Put(PutRequest {
                key: key.to_vec(),
                value: value.to_vec(),
                ..Default::default()
            }),
            outcome: Outcome::Ok(Response::Put(PutResponse {
                header: ResponseHeader {
                    revision: rev,
                    ..Default::default()
                },
                prev_kv: None,
            })),
        }
    }

    fn get(
        id: u64,
        client: u64,
        t: (u64, u64),
        key: &[u8],
        found: Option<(&[u8], i64)>,
        rev: i64,
    ) -> Operation {
        let kvs: Vec<KeyValue> = found
            .map(|(value, mod_rev)| KeyValue {
                key: key.to_vec(),
                create_revision: 2,
                mod_revision: mod_rev,
                version: mod_rev - 1,
                value: value.to_vec(),
                lease: 0,
            })
            .into_iter()
            .collect();
        Operation {
            id,
            client,
            member: Some(2),
            invoke_ns: t.0,
            complete_ns: t.1,
            request: Request::Range(RangeRequest {
                key: key.to_vec(),
                ..Default::default()
            }),
            outcome: Outcome::Ok(Response::Range(RangeResponse {
                header: ResponseHeader {
                    revision: rev,
                    ..Default::default()
                },
                count: kvs.len() as i64,
                kvs,
                more: false,
            })),
        }
    }

    const MS: u64 = 1_000_000;

    /// Two writes of a hostile key, then a read that returns the first value after the second
    /// write completed: a stale read that cannot be placed.
    fn stale_history() -> History {
        let key: &[u8] = b"<script>alert('k')</script>&";
        History {
            ops: vec![
                put(0, 0, (MS, 3 * MS), key, b"v1", 2),
                put(1, 0, (4 * MS, 6 * MS), key, &[0xff, 0x00, b'<'], 3),
                get(2, 1, (7 * MS, 9 * MS), key, Some((b"v1", 2)), 2),
                Operation {
                    outcome: Outcome::Unknown("timeout".into()),
                    ..put(3, 2, (2 * MS, 5 * MS), b"other", b"x", 0)
                },
            ],
            watches: vec![],
        }
    }

    #[test]
    fn a_stale_read_is_highlighted_escaped_and_listed() {
        let history = stale_history();
        let verdict = crate::check_etcd_history(&history, 100_000);
        assert!(verdict.is_not_linearizable(), "{verdict}");
        let marks = vec![
            TimelineMark {
                at_ns: 2 * MS,
                end_ns: Some(5 * MS),
                kind: MarkKind::Crash,
                label: "crash member <1>".into(),
            },
            TimelineMark {
                at_ns: 6 * MS,
                end_ns: None,
                kind: MarkKind::Leader,
                label: "leader m2 (term 3)".into(),
            },
        ];
        let html = render_report(&history, &verdict, &marks, "stale <test>");
        assert!(html.contains("NOT LINEARIZABLE"), "banner missing");
        assert!(
            html.contains(r#"id="op-2""#),
            "the stale read's bar is missing"
        );
        assert!(
            html.contains(r#"id="w-op-2""#),
            "no window around the failure"
        );
        assert!(html.contains("Stale reads"), "no stale-read table");
        assert!(
            html.contains(r#"class="op k-read o-ok bad""#),
            "stale read not highlighted"
        );
        // The earlier write proves the read stale; the search may also name it as the
        // operation that cannot be placed (then it is drawn as failing, which wins).
        let report = verdict.report().expect("a report");
        let witness_class = if report.unplaceable.iter().any(|u| u.id == 1) {
            "bad"
        } else {
            "witness"
        };
        assert!(
            html.contains(&format!(
                r#"id="op-1" class="op k-write o-ok {witness_class}""#
            )),
            "op 1 not marked {witness_class}: {verdict}"
        );
        assert!(html.contains(r#"<tr class="witness">"#), "no witness row");
        // Every bar, the fault band, the leader line and its label.
        for id in 0..4 {
            assert!(html.contains(&format!(r#"id="op-{id}""#)), "op {id}");
        }
        assert!(html.contains("band m-crash") && html.contains("crash member &lt;1&gt;"));
        assert!(html.contains("mark m-leader") && html.contains("leader m2 (term 3)"));
        // Escaped: no markup from the history or the title reaches the page.
        assert!(!html.contains("<script"), "unescaped key");
        assert!(!html.contains("<test>") && html.contains("stale &lt;test&gt;"));
        assert!(html.contains("&lt;script&gt;alert(&#39;k&#39;)&lt;/script&gt;&amp;"));
        assert!(
            html.contains("0xff003c"),
            "non-UTF-8 value not shown as hex"
        );
        // Self-contained: no external resource of any kind.
        for forbidden in ["http://", "https://", "<script", "<link", "@import", "url("] {
            let without_ns = html.replace("http://www.w3.org/2000/svg", "");
            assert!(!without_ns.contains(forbidden), "found {forbidden}");
        }
    }

    #[test]
    fn unknown_outcomes_run_open_ended_to_the_right_edge() {
        let history = stale_history();
        let verdict = crate::check_etcd_history(&history, 100_000);
        let html = render_report(&history, &verdict, &[], "t");
        let right = format!(r#"x2="{:.1}""#, SVG_WIDTH_PX - RIGHT_PAD_PX);
        let tails: Vec<&str> = html
            .match_indices(r#"<line class="tail""#)
            .map(|(i, _)| &html[i..i + 120])
            .collect();
        // One tail per drawing (the window and the overview), for the one unknown op.
        assert_eq!(tails.len(), 2, "{tails:?}");
        assert!(tails.iter().all(|t| t.contains(&right)), "{tails:?}");
        assert!(html.contains(r#"class="op k-write o-unknown""#));
    }

    #[test]
    fn a_passing_history_renders_with_a_linearizable_banner() {
        let mut o = crate::testkit::GenOptions::benchmark(3);
        o.ops = 200;
        o.clients = 4;
        let history = crate::testkit::generate_etcd_history(&o);
        let verdict = crate::check_etcd_history(&history, 1_000_000);
        assert!(verdict.is_linearizable(), "{verdict}");
        let html = render_report(&history, &verdict, &[], "passing");
        assert!(html.contains(r#"<div class="banner pass" id="verdict">LINEARIZABLE"#));
        assert!(!html.contains("NOT LINEARIZABLE") && !html.contains("w-op-"));
        assert_eq!(html.matches(r#"<rect id="op-"#).count(), 200);
        // Deterministic: same input, same bytes.
        assert_eq!(html, render_report(&history, &verdict, &[], "passing"));
    }

    #[test]
    fn an_unknown_verdict_is_not_shown_as_a_pass() {
        let history = stale_history();
        let verdict = Verdict::Unknown {
            reason: "ran out of its budget of 10 steps".into(),
        };
        let html = render_report(&history, &verdict, &[], "u");
        assert!(html.contains("UNKNOWN (not a pass)"));
        assert!(!html.contains("banner pass"));
    }

    #[test]
    fn porcupine_histories_render_with_line_numbers() {
        let text = "{:process 0, :type :invoke, :f :put, :key \"k\", :value \"a\"}\n\
                    {:process 0, :type :ok, :f :put, :key \"k\", :value \"a\"}\n\
                    {:process 1, :type :invoke, :f :get, :key \"k\", :value nil}\n\
                    {:process 1, :type :ok, :f :get, :key \"k\", :value \"b\"}\n";
        let ops = crate::formats::parse_porcupine_kv(text).expect("parse");
        let verdict = crate::formats::check_kv_ops(&ops, 10_000);
        assert!(verdict.is_not_linearizable(), "{verdict}");
        let meta = ReportMeta {
            title: "kv".into(),
            time_unit: TimeUnit::Position,
            notes: vec!["a note".into()],
            text_report: Some("the <text> report".into()),
        };
        let html = render_timeline_report(&timeline_from_kv(&ops), &verdict, &[], &meta);
        assert!(html.contains("Operations that cannot be placed"));
        assert!(html.contains("line 3") && html.contains("a note"));
        assert!(html.contains("<pre>the &lt;text&gt; report</pre>"));
        let bad = &verdict.report().expect("report").unplaceable[0];
        assert!(html.contains(&format!(r#"id="op-{}" class="op k-read o-ok bad""#, bad.id)));
    }

    #[test]
    fn large_histories_stay_reasonably_small() {
        let mut o = crate::testkit::GenOptions::benchmark(5);
        o.ops = 30_000;
        let history = crate::testkit::generate_etcd_history(&o);
        let verdict = Verdict::Linearizable;
        let html = render_report(&history, &verdict, &[], "big");
        let per_op = html.len() / o.ops;
        assert!(per_op < 400, "{per_op} bytes per operation");
    }

    #[test]
    fn tick_steps_are_round() {
        assert_eq!(tick_step(10_000_000_000, 10), 1_000_000_000);
        assert_eq!(tick_step(35, 10), 5);
        assert_eq!(tick_step(1, 10), 1);
        assert_eq!(tick_step(u64::MAX, 10), 2_000_000_000_000_000_000);
    }
}
