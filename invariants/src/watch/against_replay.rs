//! The properties judged against a replay of the committed writes: prev_kv, is-create,
//! resumable and reliable.

use std::collections::{BTreeMap, BTreeSet};

use faultline_api::{Event, EventType, Revision};

use super::replay::{same_event, Replay};
use super::verdict::{matches_watch, Findings, WatchProperty, WatchViolation};
use crate::describe::{describe_event, describe_kv};
use crate::etcd::watch_facts::{window, Window};
use crate::history::WatchReport;

/// Check one watch (`index` into `History::watches`) against the replay.
pub(super) fn check_against_replay(
    index: usize,
    w: &WatchReport,
    replay: &Replay,
    out: &mut Vec<WatchViolation>,
) {
    let mut f = Findings {
        watch: index,
        client: w.client,
        out,
    };
    let Some(Window {
        first,
        last,
        received,
    }) = window(w)
    else {
        return;
    };
    let last = last.min(replay.last_revision);
    for &(ri, e) in &received {
        check_event_state(&mut f, ri, e, replay);
    }
    if last < first {
        return;
    }
    let expected: Vec<&Event> = replay
        .events
        .range(first..=last)
        .flat_map(|(_, es)| es.iter())
        .filter(|e| matches_watch(w, e))
        .collect();
    let got: Vec<(usize, &Event)> = received
        .iter()
        .copied()
        .filter(|(_, e)| (first..=last).contains(&e.kv.mod_revision))
        .collect();
    check_resumable(&mut f, w, &got, &expected);
    check_reliable(&mut f, w, (first, last), &got, &expected);
}

/// prev_kv and is-create of one received event (response `ri`) the replay knows; an event
/// beyond the replay has no committed write behind it (reliable).
fn check_event_state(f: &mut Findings<'_>, ri: usize, e: &Event, replay: &Replay) {
    let rev = e.kv.mod_revision;
    if rev > replay.last_revision {
        // No write of the history can be placed there (the replay tried every unknown
        // write that was left out): the event has no committed write behind it.
        f.push(
            WatchProperty::Reliable,
            ri,
            format!(
                "event {} (value {:?}) is beyond every write the history can place (the \
                 replay ends at revision {})",
                describe_event(e),
                String::from_utf8_lossy(&e.kv.value),
                replay.last_revision
            ),
        );
        return;
    }
    let before = replay.state_at(&e.kv.key, rev - 1);
    if let Some(p) = &e.prev_kv {
        if Some(p) != before {
            f.push(
                WatchProperty::PrevKv,
                ri,
                format!(
                    "event {} carries prev_kv {:?} but the key at revision {} was {:?}",
                    describe_event(e),
                    describe_kv(p),
                    rev - 1,
                    before.map(describe_kv)
                ),
            );
        }
    }
    if e.kind == EventType::Put {
        let is_create = e.kv.create_revision == e.kv.mod_revision;
        if is_create != before.is_none() {
            f.push(
                WatchProperty::IsCreate,
                ri,
                format!(
                    "event {} is {}a creation but the key was {} at revision {}",
                    describe_event(e),
                    if is_create { "" } else { "not " },
                    if before.is_none() {
                        "absent"
                    } else {
                        "present"
                    },
                    rev - 1
                ),
            );
        }
    }
}

/// Resumable: a watch from a revision starts at the first matching committed event there.
fn check_resumable(
    f: &mut Findings<'_>,
    w: &WatchReport,
    got: &[(usize, &Event)],
    expected: &[&Event],
) {
    if w.request.start_revision <= 0 {
        return;
    }
    if let (Some(&(ri, e)), Some(x)) = (got.first(), expected.first()) {
        if e.kv.mod_revision != x.kv.mod_revision {
            f.push(
                WatchProperty::Resumable,
                ri,
                format!(
                    "watch from revision {} began with {}, the first committed event is {}",
                    w.request.start_revision,
                    describe_event(e),
                    describe_event(x)
                ),
            );
        }
    }
}

/// Reliable: per revision of the window (`first`, `last`), the same events (as sets, key
/// order) as committed.
fn check_reliable(
    f: &mut Findings<'_>,
    w: &WatchReport,
    (first, last): (Revision, Revision),
    got: &[(usize, &Event)],
    expected: &[&Event],
) {
    let mut exp_by_rev: BTreeMap<Revision, Vec<&Event>> = BTreeMap::new();
    for e in expected {
        exp_by_rev.entry(e.kv.mod_revision).or_default().push(e);
    }
    let mut got_by_rev: BTreeMap<Revision, Vec<(usize, &Event)>> = BTreeMap::new();
    for &(ri, e) in got {
        got_by_rev
            .entry(e.kv.mod_revision)
            .or_default()
            .push((ri, e));
    }
    let revs: BTreeSet<Revision> = exp_by_rev
        .keys()
        .chain(got_by_rev.keys())
        .copied()
        .collect();
    let at_response = |rev: Revision| -> usize {
        // Where a missing revision should have shown: the first response after it.
        got.iter()
            .find(|(_, e)| e.kv.mod_revision > rev)
            .map_or(w.responses.len().saturating_sub(1), |(ri, _)| *ri)
    };
    for rev in revs {
        let exp = exp_by_rev.get(&rev).map(Vec::as_slice).unwrap_or(&[]);
        let gotv = got_by_rev.get(&rev).map(Vec::as_slice).unwrap_or(&[]);
        for x in exp {
            if !gotv.iter().any(|(_, e)| same_event(e, x)) {
                f.push(
                    WatchProperty::Reliable,
                    gotv.first().map_or_else(|| at_response(rev), |(ri, _)| *ri),
                    format!(
                        "committed event {} (value {:?}) missing in the window [{first}, {last}]",
                        describe_event(x),
                        String::from_utf8_lossy(&x.kv.value)
                    ),
                );
            }
        }
        for &(ri, e) in gotv {
            if !exp.iter().any(|x| same_event(e, x)) {
                f.push(
                    WatchProperty::Reliable,
                    ri,
                    format!(
                        "event {} (value {:?}, version {}) matches no committed write",
                        describe_event(e),
                        String::from_utf8_lossy(&e.kv.value),
                        e.kv.version
                    ),
                );
            }
        }
    }
}
