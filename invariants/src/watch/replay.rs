//! The committed writes in revision order (`Replay`): the linearization the etcd checker
//! found, stepped through the etcd model, so every revision has its events and every key its
//! state; extended by unknown writes that alone explain what watches saw after it.

use std::collections::{BTreeMap, BTreeSet};

use faultline_api::{Event, EventType, KeyValue, Request, Revision};

use crate::etcd::{prepare_expiring, ExtraFacts, Linearization, Prepared};
use crate::history::{History, Outcome};
use crate::linearizability::Model;
use crate::models::etcd::{kv_of, EtcdModel, EtcdState};

/// The committed writes in revision order: every event of every revision, and every key's
/// state after each of its changes.
#[derive(Clone, Debug, Default)]
pub struct Replay {
    /// Events per revision, in key order (a txn's op order is not reconstructed).
    pub events: BTreeMap<Revision, Vec<Event>>,
    /// Per key: (revision, KV after the change; `None` = deleted), ascending.
    pub key_history: BTreeMap<Vec<u8>, Vec<(Revision, Option<KeyValue>)>>,
    /// The last revision the replay knows.
    pub last_revision: Revision,
    /// Revisions an unknown-outcome write filled in this replay: another linearization may
    /// fill them differently, so a watch that disagrees there proves nothing on its own.
    pub uncertain_revisions: BTreeSet<Revision>,
}

/// The events that turn `before` into `after` (a revision step), in key order.
fn diff_events(model: &EtcdModel, before: &EtcdState, after: &EtcdState) -> Vec<Event> {
    debug_assert_eq!(after.revision, before.revision + 1);
    let mut events = Vec::new();
    for (k, b, a) in before.keys.changes(&after.keys) {
        let key = &model.keys[k];
        let prev_kv = b.as_ref().map(|ks| kv_of(key, ks));
        events.push(match a {
            Some(ks) => Event {
                kind: EventType::Put,
                kv: kv_of(key, ks),
                prev_kv,
            },
            None => Event {
                kind: EventType::Delete,
                kv: KeyValue {
                    key: key.clone(),
                    mod_revision: after.revision,
                    ..KeyValue::default()
                },
                prev_kv,
            },
        });
    }
    events
}

/// What an event shows, without prev_kv (judged separately).
pub(super) fn same_event(a: &Event, b: &Event) -> bool {
    a.kind == b.kind && a.kv == b.kv
}

impl Replay {
    /// Step the etcd model through `linearization`, then extend it with unknown writes that
    /// explain what watches saw after it.
    pub fn build(history: &History, linearization: &Linearization) -> Result<Replay, String> {
        // Stepping a linearization needs no pruning by what watches or historical reads
        // observed (the watch checks judge the watches against it).
        let prepared = prepare_expiring(history, ExtraFacts::NONE, &linearization.expiries);
        let mut replay = Replay::default();
        let (state, placed) = replay.step_linearization(&prepared, linearization)?;
        replay.extend_with_watched_writes(history, &prepared.model, state, &placed);
        Ok(replay)
    }

    /// Record the step `before` -> `after` (nothing when the revision stays).
    fn record(&mut self, model: &EtcdModel, before: &EtcdState, after: &EtcdState) {
        if after.revision == before.revision {
            return;
        }
        let events = diff_events(model, before, after);
        for e in &events {
            let kv = (e.kind == EventType::Put).then(|| e.kv.clone());
            self.key_history
                .entry(e.kv.key.clone())
                .or_default()
                .push((after.revision, kv));
        }
        self.events.insert(after.revision, events);
        self.last_revision = after.revision;
    }

    /// Step the model through the linearization; the state after it and the ids placed.
    fn step_linearization(
        &mut self,
        prepared: &Prepared,
        linearization: &Linearization,
    ) -> Result<(EtcdState, BTreeSet<u64>), String> {
        let model = &prepared.model;
        let by_id: BTreeMap<u64, usize> = prepared
            .ops
            .iter()
            .enumerate()
            .map(|(i, op)| (op.id, i))
            .collect();
        let mut state = model.init().remove(0);
        self.last_revision = state.revision;
        let mut placed = BTreeSet::new();
        for id in &linearization.op_ids {
            let i = *by_id
                .get(id)
                .ok_or_else(|| format!("linearization names operation {id}, not in the history"))?;
            let op = &prepared.ops[i];
            let next = model.step(&state, &op.input, op.output.as_ref());
            let unknown_outcome = op.output.is_none();
            // A linearization the search found steps; several states only for a grant whose
            // id the server chose, which no key shows.
            let Some(next) = next.into_iter().next() else {
                return Err(format!(
                    "the linearization does not replay at operation {id} (revision {})",
                    state.revision
                ));
            };
            if unknown_outcome && next.revision != state.revision {
                self.uncertain_revisions.insert(next.revision);
            }
            self.record(model, &state, &next);
            state = next;
            placed.insert(*id);
        }
        Ok((state, placed))
    }

    /// Beyond the linearization: revisions watches saw, each explained by an unknown write
    /// left out of it (the first that produces every event seen there).
    fn extend_with_watched_writes(
        &mut self,
        history: &History,
        model: &EtcdModel,
        mut state: EtcdState,
        placed: &BTreeSet<u64>,
    ) {
        let mut seen: BTreeMap<Revision, Vec<&Event>> = BTreeMap::new();
        for w in &history.watches {
            for r in &w.responses {
                for e in &r.response.events {
                    seen.entry(e.kv.mod_revision).or_default().push(e);
                }
            }
        }
        let candidates: Vec<&Request> = history
            .ops
            .iter()
            .filter(|op| {
                matches!(op.outcome, Outcome::Unknown(_))
                    && op.request.is_write()
                    && !matches!(op.request, Request::Compact(_))
                    && !placed.contains(&op.id)
            })
            .map(|op| &op.request)
            .collect();
        let mut used = vec![false; candidates.len()];
        // Bounded by the candidates: each step uses one.
        while let Some(observed) = seen.get(&(state.revision + 1)) {
            let explained = candidates.iter().enumerate().find_map(|(c, req)| {
                if used[c] {
                    return None;
                }
                let (next, _, _) = model.apply(&state, req, None).ok()?;
                if next.revision != state.revision + 1 {
                    return None;
                }
                let events = diff_events(model, &state, &next);
                observed
                    .iter()
                    .all(|o| events.iter().any(|e| same_event(e, o)))
                    .then_some((c, next))
            });
            let Some((c, next)) = explained else { break };
            used[c] = true;
            self.record(model, &state, &next);
            state = next;
        }
    }

    /// The key's KV as of `rev` (`None`: absent).
    pub fn state_at(&self, key: &[u8], rev: Revision) -> Option<&KeyValue> {
        let h = self.key_history.get(key)?;
        let n = h.partition_point(|(r, _)| *r <= rev);
        if n == 0 {
            None
        } else {
            h[n - 1].1.as_ref()
        }
    }
}
