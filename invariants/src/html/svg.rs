//! The timeline as inline SVG: one lane per client, fault bands and instant marks with their
//! labels, a bar per operation (an open tail for an unknown outcome), and the time axis.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::findings::{Findings, Role};
use super::lanes::LaneBook;
use super::text::{clip, escape, fmt_axis, fmt_time, tick_step};
use super::timeline::{OpOutcome, TimelineMark, TimelineOp};
use crate::linearizability::TimeUnit;

pub(super) const SVG_WIDTH_PX: f64 = 1340.0;
const LANE_LABEL_PX: f64 = 96.0;
pub(super) const RIGHT_PAD_PX: f64 = 16.0;
const MARK_LABEL_ROWS: usize = 4;
const MARK_ROW_PX: f64 = 13.0;
const AXIS_PX: f64 = 22.0;
/// Approximate width of one character of the 10 px label font.
const CHAR_PX: f64 = 5.6;

/// A span of time drawn across the plot.
pub(super) struct Range {
    pub start: u64,
    pub end: u64,
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

/// What every drawing of a page shares.
pub(super) struct Timeline<'a> {
    pub ops: &'a [TimelineOp],
    pub marks: &'a [TimelineMark],
    pub findings: &'a Findings,
    pub lanes: &'a LaneBook,
    pub unit: TimeUnit,
}

/// One drawing: the overview or the window around the failure.
pub(super) struct Drawing<'a> {
    pub range: Range,
    /// `op-` for the overview (the ids other pages and tests link to), `w-op-` for the window.
    pub id_prefix: &'a str,
    /// Text inside the bars (the window, where bars are wide).
    pub labels: bool,
    pub tooltip_chars: usize,
}

/// Whether any part of the operation's bar (or its open tail) falls inside the range.
pub(super) fn op_visible(op: &TimelineOp, range: &Range) -> bool {
    let end = op.complete.unwrap_or(op.invoke);
    let open = op.outcome == OpOutcome::Unknown;
    op.invoke <= range.end && (open || end >= range.start)
}

/// Where the lanes are: the clients in view, top to bottom, each client's incarnations
/// together.
struct Lanes<'a> {
    book: &'a LaneBook,
    clients: Vec<u64>,
    lane_px: f64,
    /// Top of the first lane (below the mark label rows).
    top: f64,
    /// Height of all lanes.
    lanes_px: f64,
    /// Bottom of the last lane (the axis).
    bottom: f64,
}

impl Timeline<'_> {
    pub(super) fn draw(&self, out: &mut String, d: &Drawing<'_>) {
        // A lane for every client id with an operation in view: the window leaves out the idle.
        let clients = self.lanes.in_order(
            self.ops
                .iter()
                .filter(|op| op_visible(op, &d.range))
                .map(|op| op.client),
        );
        let lane_px = if clients.len() <= 24 { 24.0 } else { 14.0 };
        let top = MARK_LABEL_ROWS as f64 * MARK_ROW_PX + 4.0;
        let lanes_px = lane_px * clients.len().max(1) as f64;
        let lanes = Lanes {
            book: self.lanes,
            clients,
            lane_px,
            top,
            lanes_px,
            bottom: top + lanes_px,
        };
        let height = top + lanes_px + AXIS_PX;
        let _ = write!(
            out,
            r#"<svg class="timeline" xmlns="http://www.w3.org/2000/svg" width="{SVG_WIDTH_PX}" height="{height:.0}" viewBox="0 0 {SVG_WIDTH_PX} {height:.0}">"#
        );
        draw_lanes(out, &lanes);
        self.draw_marks(out, d, &lanes);
        self.draw_ops(out, d, &lanes);
        draw_axis(out, d, self.unit, lanes.bottom);
        out.push_str("</svg>");
    }

    /// Bands (faults) under the bars, lines (leaders, heal, disk crashes) above them, each
    /// with its label in the first free label row.
    fn draw_marks(&self, out: &mut String, d: &Drawing<'_>, lanes: &Lanes) {
        let (top, lanes_px, bottom) = (lanes.top, lanes.lanes_px, lanes.bottom);
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
                draw_mark_label(out, m, x0, &mut label_rows_end);
            }
        }
    }

    fn draw_ops(&self, out: &mut String, d: &Drawing<'_>, lanes: &Lanes) {
        let lane_of: BTreeMap<u64, usize> = lanes
            .clients
            .iter()
            .enumerate()
            .map(|(i, c)| (*c, i))
            .collect();
        for op in self.ops {
            if !op_visible(op, &d.range) {
                continue;
            }
            let lane = lane_of[&op.client];
            let y = lanes.top + lane as f64 * lanes.lane_px + 4.0;
            self.draw_op(out, d, op, y, lanes.lane_px - 8.0);
        }
    }

    /// One operation's bar at height `y` (`bar_px` high): its open tail when the outcome is
    /// unknown, its role, its tooltip, and in the window its prefix mark and label.
    fn draw_op(&self, out: &mut String, d: &Drawing<'_>, op: &TimelineOp, y: f64, bar_px: f64) {
        let end = op.complete.unwrap_or(op.invoke);
        let open = op.outcome == OpOutcome::Unknown;
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
            "op {} · {}{} · {} → {} · {}\nrequest: {}\nresponse: {}",
            op.id,
            self.lanes.describe(op.client),
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
}

/// Lanes: the client's name, shading that alternates from one client to the next (the lanes
/// of one client's incarnations share it).
fn draw_lanes(out: &mut String, lanes: &Lanes) {
    let lane_px = lanes.lane_px;
    let mut odd = true;
    let mut previous_owner = None;
    for (i, client) in lanes.clients.iter().enumerate() {
        let owner = lanes.book.owner_order(*client);
        if previous_owner != Some(owner) {
            odd = !odd;
            previous_owner = Some(owner);
        }
        let y = lanes.top + i as f64 * lane_px;
        let _ = write!(
            out,
            r#"<rect class="lane{}" x="0" y="{y:.1}" width="{SVG_WIDTH_PX}" height="{lane_px}"/><text class="lane-label" x="6" y="{:.1}">{}</text>"#,
            if odd { " odd" } else { "" },
            y + lane_px * 0.68,
            escape(&lanes.book.label(*client))
        );
    }
}

/// A mark's label goes in the first row where it does not overlap the previous one; when
/// every row is taken it is left out (the tooltip still has it).
fn draw_mark_label(
    out: &mut String,
    m: &TimelineMark,
    x0: f64,
    label_rows_end: &mut [f64; MARK_LABEL_ROWS],
) {
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

/// The time axis along the bottom of the lanes, with round ticks.
fn draw_axis(out: &mut String, d: &Drawing<'_>, unit: TimeUnit, bottom: f64) {
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
            fmt_axis(unit, t, step)
        );
        t = match t.checked_add(step) {
            Some(next) => next,
            None => break,
        };
    }
}
