//! Passes over what watches observed, used as facts only with `ExtraFacts::watches` (a wrong
//! watch must not make the history itself fail; see `check_etcd_history_detailed`): the
//! revisions a watch reports on completely (its `Window`, which the watch checks judge too),
//! pins from put events, unmodified intervals from windows, and key observations from events.

use std::collections::{BTreeMap, BTreeSet};

use faultline_api::{Event, EventType, KeyValue, Revision};

use super::requests::{may_delete_key, takes_part, Universe};
use super::revisions::{Intervals, RevisionFacts};
use crate::history::{History, Outcome, WatchReport};
use crate::models::etcd::{response_mutates, EtcdModel, KeyObs};

/// The revisions a watch reports on completely (etcd's Reliable guarantee) and the events it
/// received there, with the index of each one's response.
pub(crate) struct Window<'a> {
    pub first: Revision,
    pub last: Revision,
    pub received: Vec<(usize, &'a Event)>,
}

/// A watch's window: from the start revision (or the revision after creation for a watch from
/// "now"; else the first event or first progress notification + 1) to the last event or
/// progress notification. `None` for a watch that never learned where it starts.
pub(crate) fn window(w: &WatchReport) -> Option<Window<'_>> {
    if w.request.start_revision < 0 {
        return None;
    }
    let mut first: Option<Revision> =
        (w.request.start_revision > 0).then_some(w.request.start_revision);
    let mut last: Revision = 0;
    let mut received: Vec<(usize, &Event)> = Vec::new();
    for (ri, r) in w.responses.iter().enumerate() {
        let resp = &r.response;
        if resp.created {
            if first.is_none() && resp.header.revision > 0 {
                first = Some(resp.header.revision + 1);
            }
            continue;
        }
        if resp.canceled {
            // The watch is dead: later responses on the stream (a broadcast progress
            // notification) are not about it.
            break;
        }
        if resp.events.is_empty() {
            first.get_or_insert(resp.header.revision + 1);
            last = last.max(resp.header.revision);
            continue;
        }
        for e in &resp.events {
            first.get_or_insert(e.kv.mod_revision);
            last = last.max(e.kv.mod_revision);
            received.push((ri, e));
        }
    }
    Some(Window {
        first: first?,
        last,
        received,
    })
}

/// Pass: watch pins. A put event carrying the unique value of an unknown write pins that
/// write to the event's revision, so the linearization (which the watch checks replay) places
/// it where the watch saw it. (Delete events pin only a sole candidate, `pin_watched_deletes`:
/// which of several unknown deletes made a revision is left to the search, which the watch
/// facts steer. Pinning the earliest-invoked one, as before, is not exact when a candidate is
/// also needed elsewhere, and a wrong pin made "no linearization agrees with the watches" look
/// true: default seed 3092.)
pub(super) fn pin_watched_puts(
    history: &History,
    universe: &Universe,
    pins: &mut BTreeMap<usize, Revision>,
) {
    for w in &history.watches {
        for received in &w.responses {
            for e in &received.response.events {
                if e.kind != EventType::Put {
                    continue;
                }
                if let Some(wr) = universe.sole_unknown_writer(history, &e.kv.key, &e.kv.value) {
                    pins.entry(wr).or_insert(e.kv.mod_revision);
                }
            }
        }
    }
}

/// Pass: watch delete pins. The delete events of one revision come from the one write that
/// made it; when no known write claims the revision and exactly one write taking part may
/// have deleted every key the events name there (a revoke only deletes keys some put attached
/// to its lease: `may_delete_key`), and it is unknown and not pinned elsewhere, it made that
/// revision. Typically a lease's expiry: its revision pinned, its keys cannot vanish anywhere
/// else, so a wrong guess about an unknown put attached to the lease is rejected where it is
/// made (events seed 487). A sole candidate is exact, unlike a pick among several (see
/// `pin_watched_puts`). Runs after the put pins, before `claim_pins`.
pub(super) fn pin_watched_deletes(
    history: &History,
    universe: &Universe,
    revisions: &mut RevisionFacts,
) {
    let mut deleted: BTreeMap<Revision, Vec<&[u8]>> = BTreeMap::new();
    for w in &history.watches {
        for received in &w.responses {
            for e in &received.response.events {
                if e.kind == EventType::Delete {
                    deleted
                        .entry(e.kv.mod_revision)
                        .or_default()
                        .push(&e.kv.key);
                }
            }
        }
    }
    if deleted.is_empty() {
        return;
    }
    let pinned_revisions: BTreeSet<Revision> = revisions.pins.values().copied().collect();
    // Writes that may have made a revision no known write claims: unknown writes not pinned,
    // and known ones whose response does not tell (a revoke), at their header revision.
    let candidates: Vec<(usize, Option<Revision>)> = history
        .ops
        .iter()
        .enumerate()
        .filter(|(i, op)| takes_part(op) && !revisions.pins.contains_key(i))
        .filter_map(|(i, op)| match &op.outcome {
            Outcome::Unknown(_) if op.request.is_write() => Some((i, None)),
            Outcome::Ok(resp) if response_mutates(&op.request, resp).is_none() => {
                Some((i, Some(resp.header().revision)))
            }
            _ => None,
        })
        .collect();
    for (r, keys) in deleted {
        if revisions.claimed_by.contains_key(&r) || pinned_revisions.contains(&r) {
            continue;
        }
        let mut makers = candidates.iter().filter(|(i, at)| {
            at.is_none_or(|h| h == r)
                && keys
                    .iter()
                    .all(|k| may_delete_key(&history.ops[*i].request, k, &universe.key_leases))
        });
        if let (Some(&(i, None)), None) = (makers.next(), makers.next()) {
            revisions.pins.entry(i).or_insert(r);
        }
    }
}

/// Pass: watch windows. A watch reports every change in its window (Reliable): a key of its
/// range is unmodified between two of its events, and from the window's start or to its end.
pub(super) fn cover_watch_windows(history: &History, keys: &[Vec<u8>], unmodified: &mut Intervals) {
    for w in &history.watches {
        let Some(window) = window(w) else {
            continue;
        };
        if !w.request.filters.is_empty() {
            continue;
        }
        for key in keys
            .iter()
            .filter(|k| faultline_api::key_in_range(k, &w.request.key, &w.request.range_end))
        {
            let mut changed: Vec<Revision> = window
                .received
                .iter()
                .filter(|(_, e)| e.kv.key == *key)
                .map(|(_, e)| e.kv.mod_revision)
                .collect();
            changed.sort();
            changed.dedup();
            let mut from = window.first - 1;
            for rev in changed.into_iter().chain([window.last + 1]) {
                if rev - 1 > from {
                    unmodified
                        .entry(key.clone())
                        .or_default()
                        .push((from, rev - 1));
                }
                from = from.max(rev);
            }
        }
    }
}

/// Pass: what watch events show about keys at their revisions (etcd-semantics.md §10): a put
/// event's KV is the key at the event's revision, a delete event's key is absent there, a
/// prev_kv is the key one revision earlier, and a creation (version 1) means it was absent
/// one revision earlier.
pub(super) fn watch_observations(
    model: &EtcdModel,
    history: &History,
    out: &mut Vec<(usize, Revision, KeyObs)>,
) {
    let present = |kv: &KeyValue| KeyObs::Present {
        create_revision: kv.create_revision,
        mod_revision: kv.mod_revision,
        version: kv.version,
        lease: kv.lease,
        value: Some(kv.value.clone()),
    };
    for w in &history.watches {
        for received in &w.responses {
            for e in &received.response.events {
                let Some(k) = model.key_id(&e.kv.key) else {
                    continue;
                };
                let r = e.kv.mod_revision;
                match e.kind {
                    EventType::Put => {
                        out.push((k, r, present(&e.kv)));
                        if e.kv.version == 1 {
                            out.push((k, r - 1, KeyObs::Absent));
                        }
                    }
                    EventType::Delete => out.push((k, r, KeyObs::Absent)),
                }
                if let Some(prev) = &e.prev_kv {
                    out.push((k, r - 1, present(prev)));
                }
            }
        }
    }
}
