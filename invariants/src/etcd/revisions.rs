//! Passes over revisions: which revisions known writes claim, the revision an unknown write is
//! pinned to (a response shows its unique value), where keys are shown unmodified, and by
//! when each revision must have been produced.

use std::collections::BTreeMap;

use faultline_api::Revision;

use super::observations::observations;
use super::requests::{takes_part, Universe};
use crate::history::{History, Outcome};
use crate::linearizability::NEVER;
use crate::models::etcd::response_mutates;

/// Per key: revision intervals (a, b] in which the key is shown unmodified.
pub(super) type Intervals = BTreeMap<Vec<u8>, Vec<(Revision, Revision)>>;

/// What the known responses of the operations taking part show about revisions.
pub(super) struct RevisionFacts {
    /// The highest revision any response shows (at least 1).
    pub max_revision: Revision,
    /// Revision -> the operation (index) that produced it: known writes, then pinned unknown
    /// writes (`claim_pins`).
    pub claimed_by: BTreeMap<Revision, usize>,
    /// Unknown write (index) -> the revision it must produce.
    pub pins: BTreeMap<usize, Revision>,
    /// Where keys are shown unmodified (a read at b saw mod_revision a); not merged yet.
    pub unmodified: Intervals,
}

impl RevisionFacts {
    /// Pass: revision claims, pins and unmodified intervals from the known responses. A
    /// known write claims the revision its response shows; a key-value shown at a known
    /// revision was unmodified since its mod_revision; a value only one unknown write can
    /// have written pins that write to the value's mod_revision.
    pub(super) fn from_responses(history: &History, universe: &Universe) -> Self {
        let mut f = RevisionFacts {
            max_revision: 1,
            claimed_by: BTreeMap::new(),
            pins: BTreeMap::new(),
            unmodified: BTreeMap::new(),
        };
        for (i, op) in history.ops.iter().enumerate() {
            let (true, Outcome::Ok(resp)) = (takes_part(op), &op.outcome) else {
                continue;
            };
            let h = resp.header().revision;
            f.max_revision = f.max_revision.max(h);
            if response_mutates(&op.request, resp) == Some(true) {
                f.claimed_by.entry(h).or_insert(i);
            }
            let mut obs = Vec::new();
            observations(&op.request, resp, &mut obs);
            for (kv, at) in obs {
                if let Some(at) = at.filter(|&at| at > kv.mod_revision) {
                    f.unmodified
                        .entry(kv.key.clone())
                        .or_default()
                        .push((kv.mod_revision, at));
                }
                if let Some(w) = universe.sole_unknown_writer(history, &kv.key, &kv.value) {
                    f.pins.entry(w).or_insert(kv.mod_revision);
                }
            }
        }
        f
    }

    /// Pinned unknown writes claim their revision too (a known write's claim stands).
    pub(super) fn claim_pins(&mut self) {
        for (&u, &p) in &self.pins {
            self.claimed_by.entry(p).or_insert(u);
        }
    }

    /// `claimed[r]`: whether revision r is claimed (indexed up to `max_revision + 1`).
    pub(super) fn claimed(&self) -> Vec<bool> {
        let mut claimed = vec![false; self.max_revision as usize + 2];
        for &r in self.claimed_by.keys() {
            if r >= 0 && (r as usize) < claimed.len() {
                claimed[r as usize] = true;
            }
        }
        claimed
    }

    /// The invocation time of the write that produced the highest claimed revision at or
    /// below `h` (0 when none did): a serializable read at `h` may have been served from then.
    pub(super) fn claimer_call(&self, history: &History, h: Revision) -> u64 {
        self.claimed_by
            .range(..=h)
            .next_back()
            .map(|(_, &i)| history.ops[i].invoke_ns)
            .unwrap_or(0)
    }
}

/// The revisions in 2..=max_revision nobody claims: only unknown writes can fill them.
pub(super) fn unclaimed(claimed: &[bool], max_revision: Revision) -> Vec<Revision> {
    (2..=max_revision)
        .filter(|&r| !claimed[r as usize])
        .collect()
}

/// Merge each key's intervals (sorted, overlapping ones joined).
pub(super) fn merge_intervals(mut intervals: Intervals) -> Intervals {
    for iv in intervals.values_mut() {
        iv.sort();
        let mut merged: Vec<(Revision, Revision)> = Vec::new();
        for &(a, b) in iv.iter() {
            match merged.last_mut() {
                Some(last) if a <= last.1 => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        *iv = merged;
    }
    intervals
}

/// `at(g)`: the earliest return of an operation taking part that must follow revision `g`
/// (a known operation applies at or after the revision its response shows, less one for a
/// write). An unknown write filling revision `g` must take effect before then.
pub(super) struct Deadlines {
    /// Suffix minima by revision.
    by_revision: Vec<u64>,
}

impl Deadlines {
    /// Pass: deadlines from the known responses.
    pub(super) fn new(history: &History, max_revision: Revision) -> Self {
        let size = max_revision as usize + 2;
        let mut deadline = vec![NEVER; size + 1];
        for op in &history.ops {
            let (true, Outcome::Ok(resp)) = (takes_part(op), &op.outcome) else {
                continue;
            };
            let h = resp.header().revision;
            let lb = match response_mutates(&op.request, resp) {
                Some(false) => h,
                _ => h - 1,
            };
            let idx = lb.clamp(0, size as i64) as usize;
            deadline[idx] = deadline[idx].min(op.complete_ns);
        }
        for g in (0..size).rev() {
            deadline[g] = deadline[g].min(deadline[g + 1]);
        }
        Deadlines {
            by_revision: deadline,
        }
    }

    pub(super) fn at(&self, g: Revision) -> u64 {
        let size = self.by_revision.len() - 1;
        self.by_revision[g.clamp(0, size as i64) as usize]
    }
}
