//! What the watch checks conclude: the guarantees (`WatchProperty`), a broken one
//! (`WatchViolation`), the verdict, and the collector of one watch's findings.

use faultline_api::{Event, EventType, WatchFilter};
use serde::{Deserialize, Serialize};

use crate::history::WatchReport;

/// A watch guarantee.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum WatchProperty {
    /// Every event matches the watch's key range and filters.
    Filter,
    /// Event revisions never decrease.
    Ordered,
    /// No (revision, key) event twice.
    Unique,
    /// One revision is never split over two responses (fragments excepted).
    Atomic,
    /// No event at or below a progress notification's revision after it; notifications never
    /// go backwards nor below an event already delivered.
    Bookmarkable,
    /// The events received are exactly the committed events matching the watch in its
    /// window (from its start revision, or its creation, to its last event or progress
    /// notification): no gap, no extra, no altered event.
    Reliable,
    /// A watch from a start revision begins with the first committed matching event at or
    /// after that revision.
    Resumable,
    /// A prev_kv an event carries is the key as it was at the event's revision - 1.
    PrevKv,
    /// A PUT event is a creation (version 1) exactly when the key was absent just before.
    IsCreate,
}

/// One broken guarantee.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchViolation {
    /// Index into `History::watches`.
    pub watch: usize,
    pub client: u64,
    pub property: WatchProperty,
    /// Index of the response (in arrival order) where it shows.
    pub response: usize,
    pub explanation: String,
}

/// The verdict of `check_watches`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WatchVerdict {
    Ok,
    Violated(Vec<WatchViolation>),
    /// The replay-based properties could not be judged (no linearization of the KV history
    /// was found); never a pass.
    Unknown {
        reason: String,
    },
}

/// Collects the violations of one watch.
pub(super) struct Findings<'a> {
    /// Index into `History::watches`.
    pub watch: usize,
    pub client: u64,
    pub out: &'a mut Vec<WatchViolation>,
}

impl Findings<'_> {
    pub(super) fn push(&mut self, property: WatchProperty, response: usize, explanation: String) {
        self.out.push(WatchViolation {
            watch: self.watch,
            client: self.client,
            property,
            response,
            explanation,
        });
    }
}

/// Whether an event matches a watch's key range and filters.
pub(super) fn matches_watch(w: &WatchReport, e: &Event) -> bool {
    let filtered = match e.kind {
        EventType::Put => w.request.filters.contains(&WatchFilter::NoPut),
        EventType::Delete => w.request.filters.contains(&WatchFilter::NoDelete),
    };
    faultline_api::key_in_range(&e.kv.key, &w.request.key, &w.request.range_end) && !filtered
}
