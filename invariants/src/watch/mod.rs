//! Watch checks, per watch (etcd-semantics.md §6 and §10 "Validations").
//!
//! What a watch's own responses decide: filter, ordered, unique, atomic, bookmarkable. What
//! needs the committed writes: reliable, resumable, prev_kv and is-create, judged against a
//! `Replay`: the writes of the linearization the etcd checker found (`etcd::Linearization`),
//! stepped through the etcd model, so every revision has its events and every key its state.
//! Unknown writes a watch saw beyond the linearization's last revision extend the replay when
//! exactly one such write explains what the watches show at the next revision.
//!
//! Limits: events of one revision are compared as a set (key order), not in the txn's op
//! order; a watch's window ends at its last event or progress notification, capped at the
//! replay's last revision.
//!
//! Files: `verdict` (the properties and the verdict), `local` (what a watch's own responses
//! decide), `replay` (the committed writes), `against_replay` (what needs them); the watch's
//! window comes from the etcd checker's watch facts (`etcd::watch_facts`), which use it too.

mod against_replay;
mod local;
mod replay;
mod verdict;

pub use replay::Replay;
pub use verdict::{WatchProperty, WatchVerdict, WatchViolation};

use against_replay::check_against_replay;
use local::check_local;

use crate::etcd::{check_etcd_history_detailed, Linearization};
use crate::history::History;
use crate::linearizability::Verdict;

/// Search budget `check_watches` gives the etcd checker to find the linearization it
/// replays (the simulator's own budget, so a history it found linearizable replays here).
pub const REPLAY_BUDGET_STEPS: u64 = 5_000_000;

/// Check every watch of `history`: the properties its own responses decide, then, against a
/// replay of the linearization the etcd checker finds (within `REPLAY_BUDGET_STEPS`),
/// reliable, resumable, prev_kv and is-create. Callers that already ran the etcd checker
/// should call `check_watches_with` and save the second search.
pub fn check_watches(history: &History) -> WatchVerdict {
    if history.watches.is_empty() {
        return WatchVerdict::Ok;
    }
    match check_etcd_history_detailed(history, REPLAY_BUDGET_STEPS) {
        (_, Some(lin)) => check_watches_with(history, &lin),
        (verdict, None) => {
            let local = check_local(history);
            if !local.is_empty() {
                return WatchVerdict::Violated(local);
            }
            WatchVerdict::Unknown {
                reason: match verdict {
                    Verdict::Unknown { reason } => reason,
                    _ => "the KV history is not linearizable: no write order to replay".into(),
                },
            }
        }
    }
}

/// Check every watch of `history` against `linearization` (from
/// `etcd::check_etcd_history_detailed`): all properties.
pub fn check_watches_with(history: &History, linearization: &Linearization) -> WatchVerdict {
    let mut out = check_local(history);
    // Replay-dependent findings on watches whose window holds a revision an unknown write
    // filled: the linearization is one choice among possibly several (found on default seed
    // 795: two watches agreed on a delete where the search had placed an unknown put).
    let mut uncertain: Vec<WatchViolation> = Vec::new();
    match Replay::build(history, linearization) {
        Ok(replay) => {
            for (i, w) in history.watches.iter().enumerate() {
                let mut found = Vec::new();
                check_against_replay(i, w, &replay, &mut found);
                if found.is_empty() {
                    continue;
                }
                if !linearization.watches_contradicted && saw_uncertain_revision(w, &replay) {
                    uncertain.extend(found);
                } else {
                    out.extend(found);
                }
            }
        }
        Err(reason) => {
            if out.is_empty() {
                return WatchVerdict::Unknown { reason };
            }
        }
    }
    if !out.is_empty() {
        WatchVerdict::Violated(out)
    } else if linearization.watches_contradicted {
        WatchVerdict::Unknown {
            reason: "no linearization agrees with what the watches observed, yet no watch \
                     property check against the one replayed names a finding"
                .to_string(),
        }
    } else if let Some(first) = uncertain.first() {
        WatchVerdict::Unknown {
            reason: format!(
                "{} watch finding(s) depend on revisions an unknown-outcome write filled in the \
                 one linearization checked; first: watch {} {:?}: {}",
                uncertain.len(),
                first.watch,
                first.property,
                first.explanation
            ),
        }
    } else {
        WatchVerdict::Ok
    }
}

/// Whether the revisions a watch covers (from its start to the last revision it heard of,
/// capped at the replay's end) hold one an unknown write filled in the replay.
fn saw_uncertain_revision(w: &crate::history::WatchReport, replay: &Replay) -> bool {
    let start = w.request.start_revision.max(1);
    let last = w
        .responses
        .iter()
        .flat_map(|r| r.response.events.iter().map(|e| e.kv.mod_revision))
        .chain(w.responses.iter().map(|r| r.response.header.revision))
        .max()
        .unwrap_or(start)
        .min(replay.last_revision);
    replay
        .uncertain_revisions
        .range(start..=last)
        .next()
        .is_some()
}
