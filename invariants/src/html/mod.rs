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
//!
//! Files: `text` (escaping and formatting), `timeline` (what is drawn, from each format),
//! `lanes` (a lane per client id, grouped by client), `findings` (what the verdict names),
//! `svg` (the timeline drawing), `page` (the page).

mod findings;
mod lanes;
mod page;
mod svg;
mod text;
mod timeline;

pub use lanes::LaneOwner;
pub use page::{render_timeline_report, ReportMeta};
pub use text::escape;
pub use timeline::{
    timeline_from_history, timeline_from_kv, timeline_from_register, MarkKind, OpKind, OpOutcome,
    TimelineMark, TimelineOp,
};

use crate::history::History;
use crate::linearizability::{TimeUnit, Verdict};

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
        lane_owners: Default::default(),
    };
    render_timeline_report(&timeline_from_history(history), verdict, marks, &meta)
}

#[cfg(test)]
mod tests;
