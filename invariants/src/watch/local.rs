//! The properties a watch's own responses decide: filter, ordered, unique, atomic and
//! bookmarkable.

use std::collections::BTreeSet;

use faultline_api::{Event, Revision, WatchResponse};

use super::verdict::{matches_watch, Findings, WatchProperty, WatchViolation};
use crate::describe::describe_event;
use crate::history::{History, WatchReport};

/// Check every watch of `history` on its own responses.
pub(super) fn check_local(history: &History) -> Vec<WatchViolation> {
    let mut out = Vec::new();
    for (i, w) in history.watches.iter().enumerate() {
        check_one(i, w, &mut out);
    }
    out
}

/// Check one watch (`index` into `History::watches`) on its own responses.
fn check_one(index: usize, w: &WatchReport, out: &mut Vec<WatchViolation>) {
    let mut f = Findings {
        watch: index,
        client: w.client,
        out,
    };
    let mut seen = Seen::default();
    for (ri, received) in w.responses.iter().enumerate() {
        let r = &received.response;
        if r.events.is_empty() {
            if !r.created && !r.canceled {
                seen.progress(ri, r.header.revision, &mut f);
            }
            continue;
        }
        seen.events(ri, w, r, &mut f);
    }
}

/// What a watch has delivered so far.
#[derive(Default)]
struct Seen {
    last_event_rev: Revision,
    last_progress_rev: Revision,
    /// The revision of the last event of the previous response with events.
    prev_response_last_rev: Option<Revision>,
    /// Whether that response was a fragment (its revision continues in the next one).
    prev_fragment: bool,
    events: BTreeSet<(Revision, Vec<u8>)>,
}

impl Seen {
    /// A progress notification: header revision `rev` says every event <= `rev` was sent.
    fn progress(&mut self, ri: usize, rev: Revision, f: &mut Findings<'_>) {
        let last_progress_rev = self.last_progress_rev;
        if rev < last_progress_rev {
            f.push(
                WatchProperty::Bookmarkable,
                ri,
                format!("progress notification at revision {rev} after one at {last_progress_rev}"),
            );
        }
        let last_event_rev = self.last_event_rev;
        if rev < last_event_rev {
            f.push(
                WatchProperty::Bookmarkable,
                ri,
                format!(
                    "progress notification at revision {rev} after an event at {last_event_rev}"
                ),
            );
        }
        self.last_progress_rev = last_progress_rev.max(rev);
    }

    /// A response with events (`ri`: its index).
    fn events(&mut self, ri: usize, w: &WatchReport, r: &WatchResponse, f: &mut Findings<'_>) {
        if let (Some(prev), false) = (self.prev_response_last_rev, self.prev_fragment) {
            if r.events[0].kv.mod_revision == prev {
                f.push(
                    WatchProperty::Atomic,
                    ri,
                    format!("revision {prev} is split over two responses"),
                );
            }
        }
        for e in &r.events {
            self.event(ri, w, e, f);
        }
        self.prev_response_last_rev = r.events.last().map(|e| e.kv.mod_revision);
        self.prev_fragment = r.fragment;
    }

    fn event(&mut self, ri: usize, w: &WatchReport, e: &Event, f: &mut Findings<'_>) {
        let rev = e.kv.mod_revision;
        if !matches_watch(w, e) {
            f.push(
                WatchProperty::Filter,
                ri,
                format!("event {} does not match the watch", describe_event(e)),
            );
        }
        let last_event_rev = self.last_event_rev;
        if rev < last_event_rev {
            f.push(
                WatchProperty::Ordered,
                ri,
                format!(
                    "event {} after an event at revision {last_event_rev}",
                    describe_event(e)
                ),
            );
        }
        if !self.events.insert((rev, e.kv.key.clone())) {
            f.push(
                WatchProperty::Unique,
                ri,
                format!("event {} delivered twice", describe_event(e)),
            );
        }
        let last_progress_rev = self.last_progress_rev;
        if rev <= last_progress_rev {
            f.push(
                WatchProperty::Bookmarkable,
                ri,
                format!(
                    "event {} after a progress notification at revision {last_progress_rev}",
                    describe_event(e)
                ),
            );
        }
        self.last_event_rev = last_event_rev.max(rev);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::WatchReceived;
    use crate::watch::WatchVerdict;
    use faultline_api::{
        EventType, KeyValue, ResponseHeader, WatchCreateRequest, WatchFilter, WatchResponse,
    };

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
        let mut out = Vec::new();
        for (i, w) in h.watches.iter().enumerate() {
            check_one(i, w, &mut out);
        }
        match if out.is_empty() {
            WatchVerdict::Ok
        } else {
            WatchVerdict::Violated(out)
        } {
            WatchVerdict::Ok | WatchVerdict::Unknown { .. } => vec![],
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

    /// A revision split over responses passes only as etcd's fragments (all parts but the
    /// last say `fragment`); split parts delivered out of order break Ordered.
    #[test]
    fn a_split_revision_passes_only_as_fragments() {
        let mut first = resp(vec![ev(Put, "k1", 2)]);
        first.response.fragment = true;
        let h = watch(
            vec![],
            vec![first, resp(vec![ev(Put, "k2", 2), ev(Put, "k3", 3)])],
        );
        assert_eq!(violated(&h), vec![]);
        // Split at a revision boundary, parts swapped.
        let h = watch(
            vec![],
            vec![
                resp(vec![ev(Put, "k3", 3)]),
                resp(vec![ev(Put, "k1", 2), ev(Put, "k2", 2)]),
            ],
        );
        let mut v = violated(&h);
        v.dedup(); // one finding per event out of order
        assert_eq!(v, vec![WatchProperty::Ordered]);
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
