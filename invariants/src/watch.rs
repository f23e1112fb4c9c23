//! Watch checks, per watch (etcd-semantics.md §6 and §10 "Validations").
//!
//! Done: the properties a watch's own responses decide: filter, ordered, unique, atomic,
//! bookmarkable. Not done yet: reliable, resumable, prev_kv and is-create, which need a replay
//! of the committed writes (see the report of issue 4).

use faultline_api::{key_in_range, Event, EventType, Revision, WatchFilter};
use serde::{Deserialize, Serialize};

use crate::history::{History, WatchReport};

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
}

fn describe(e: &Event) -> String {
    format!(
        "{:?} {} at revision {}",
        e.kind,
        String::from_utf8_lossy(&e.kv.key),
        e.kv.mod_revision
    )
}

fn check_one(index: usize, w: &WatchReport, out: &mut Vec<WatchViolation>) {
    let mut push = |property, response, explanation: String| {
        out.push(WatchViolation {
            watch: index,
            client: w.client,
            property,
            response,
            explanation,
        })
    };
    let req = &w.request;
    let mut last_event_rev: Revision = 0;
    let mut last_progress_rev: Revision = 0;
    let mut prev_response_last_rev: Option<Revision> = None;
    let mut prev_fragment = false;
    let mut seen: std::collections::BTreeSet<(Revision, Vec<u8>)> = Default::default();
    for (ri, received) in w.responses.iter().enumerate() {
        let r = &received.response;
        if r.events.is_empty() {
            if !r.created && !r.canceled {
                // A progress notification: header revision R says every event <= R was sent.
                let rev = r.header.revision;
                if rev < last_progress_rev {
                    push(
                        WatchProperty::Bookmarkable,
                        ri,
                        format!(
                            "progress notification at revision {rev} after one at {last_progress_rev}"
                        ),
                    );
                }
                if rev < last_event_rev {
                    push(
                        WatchProperty::Bookmarkable,
                        ri,
                        format!(
                            "progress notification at revision {rev} after an event at {last_event_rev}"
                        ),
                    );
                }
                last_progress_rev = last_progress_rev.max(rev);
            }
            continue;
        }
        if let (Some(prev), false) = (prev_response_last_rev, prev_fragment) {
            if r.events[0].kv.mod_revision == prev {
                push(
                    WatchProperty::Atomic,
                    ri,
                    format!("revision {prev} is split over two responses"),
                );
            }
        }
        for e in &r.events {
            let rev = e.kv.mod_revision;
            let filtered = match e.kind {
                EventType::Put => req.filters.contains(&WatchFilter::NoPut),
                EventType::Delete => req.filters.contains(&WatchFilter::NoDelete),
            };
            if !key_in_range(&e.kv.key, &req.key, &req.range_end) || filtered {
                push(
                    WatchProperty::Filter,
                    ri,
                    format!("event {} does not match the watch", describe(e)),
                );
            }
            if rev < last_event_rev {
                push(
                    WatchProperty::Ordered,
                    ri,
                    format!(
                        "event {} after an event at revision {last_event_rev}",
                        describe(e)
                    ),
                );
            }
            if !seen.insert((rev, e.kv.key.clone())) {
                push(
                    WatchProperty::Unique,
                    ri,
                    format!("event {} delivered twice", describe(e)),
                );
            }
            if rev <= last_progress_rev {
                push(
                    WatchProperty::Bookmarkable,
                    ri,
                    format!(
                        "event {} after a progress notification at revision {last_progress_rev}",
                        describe(e)
                    ),
                );
            }
            last_event_rev = last_event_rev.max(rev);
        }
        prev_response_last_rev = r.events.last().map(|e| e.kv.mod_revision);
        prev_fragment = r.fragment;
    }
}

/// Check every watch of `history` for the properties its own responses decide.
pub fn check_watches(history: &History) -> WatchVerdict {
    let mut out = Vec::new();
    for (i, w) in history.watches.iter().enumerate() {
        check_one(i, w, &mut out);
    }
    if out.is_empty() {
        WatchVerdict::Ok
    } else {
        WatchVerdict::Violated(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::WatchReceived;
    use faultline_api::{KeyValue, ResponseHeader, WatchCreateRequest, WatchResponse};

    fn ev(kind: EventType, key: &str, rev: Revision) -> Event {
        Event {
            kind,
            kv: KeyValue {
                key: key.as_bytes().to_vec(),
                mod_revision: rev,
                ..Default::default()
            },
            prev_kv: None,
        }
    }

    fn resp(events: Vec<Event>) -> WatchReceived {
        WatchReceived {
            at_ns: 0,
            response: WatchResponse {
                events,
                ..Default::default()
            },
        }
    }

    fn progress(rev: Revision) -> WatchReceived {
        WatchReceived {
            at_ns: 0,
            response: WatchResponse {
                header: ResponseHeader {
                    revision: rev,
                    ..Default::default()
                },
                ..Default::default()
            },
        }
    }

    fn watch(filters: Vec<WatchFilter>, responses: Vec<WatchReceived>) -> History {
        History {
            ops: vec![],
            watches: vec![WatchReport {
                client: 7,
                member: Some(1),
                request: WatchCreateRequest {
                    key: b"k".to_vec(),
                    range_end: b"l".to_vec(),
                    filters,
                    ..Default::default()
                },
                created_ns: 0,
                responses,
            }],
        }
    }

    fn violated(h: &History) -> Vec<WatchProperty> {
        match check_watches(h) {
            WatchVerdict::Ok => vec![],
            WatchVerdict::Violated(v) => {
                assert!(v.iter().all(|x| x.watch == 0 && x.client == 7));
                v.into_iter().map(|x| x.property).collect()
            }
        }
    }

    use EventType::{Delete, Put};

    #[test]
    fn a_correct_watch_passes() {
        let h = watch(
            vec![],
            vec![
                resp(vec![ev(Put, "k1", 2), ev(Put, "k2", 2)]),
                progress(2),
                resp(vec![ev(Delete, "k1", 3)]),
                progress(5),
            ],
        );
        assert_eq!(violated(&h), vec![]);
    }

    #[test]
    fn filter_is_caught() {
        let h = watch(vec![], vec![resp(vec![ev(Put, "z", 2)])]);
        assert_eq!(violated(&h), vec![WatchProperty::Filter]);
        let h = watch(
            vec![WatchFilter::NoDelete],
            vec![resp(vec![ev(Delete, "k", 2)])],
        );
        assert_eq!(violated(&h), vec![WatchProperty::Filter]);
    }

    #[test]
    fn ordered_is_caught() {
        let h = watch(
            vec![],
            vec![resp(vec![ev(Put, "k1", 3)]), resp(vec![ev(Put, "k2", 2)])],
        );
        assert_eq!(violated(&h), vec![WatchProperty::Ordered]);
    }

    #[test]
    fn unique_is_caught() {
        let h = watch(
            vec![],
            vec![resp(vec![ev(Put, "k1", 2)]), resp(vec![ev(Put, "k1", 2)])],
        );
        // A repeated revision across responses also splits it (atomic).
        let v = violated(&h);
        assert!(v.contains(&WatchProperty::Unique), "{v:?}");
    }

    #[test]
    fn atomic_is_caught() {
        let h = watch(
            vec![],
            vec![resp(vec![ev(Put, "k1", 2)]), resp(vec![ev(Put, "k2", 2)])],
        );
        assert_eq!(violated(&h), vec![WatchProperty::Atomic]);
    }

    #[test]
    fn bookmarkable_is_caught() {
        // An event at or below a progress notification (etcd #15220).
        let h = watch(vec![], vec![progress(5), resp(vec![ev(Put, "k1", 4)])]);
        assert_eq!(violated(&h), vec![WatchProperty::Bookmarkable]);
        // A notification going backwards.
        let h = watch(vec![], vec![progress(5), progress(4)]);
        assert_eq!(violated(&h), vec![WatchProperty::Bookmarkable]);
    }
}
