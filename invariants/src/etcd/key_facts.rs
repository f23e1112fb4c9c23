//! Pass: key facts (`KeyFacts`). What known responses (and, as extra facts, historical reads
//! and watch events) show about each key at known revisions, and how many puts and deletes of
//! each key the revisions between them can hold, so the model rejects a wrong guess about an
//! unknown write as soon as it is made instead of at the key's next observation.

use std::collections::BTreeMap;

use faultline_api::{KeyValue, Request, RequestOp, Response, Revision};

use super::observations::ExtraFacts;
use super::requests::{branch_puts, may_delete_key, takes_part, KeyLeases};
use super::revisions::RevisionFacts;
use super::watch_facts::watch_observations;
use crate::history::{History, Operation, Outcome};
use crate::models::etcd::{response_mutates, EtcdModel, KeyFacts, KeyObs};

/// Observations with absence, for `KeyFacts`: what a known response shows about keys of the
/// universe at a known revision.
fn key_observations(
    model: &EtcdModel,
    facts: ExtraFacts,
    req: &Request,
    resp: &Response,
    out: &mut Vec<(usize, Revision, KeyObs)>,
) {
    let present = |kv: &KeyValue, with_value: bool| KeyObs::Present {
        create_revision: kv.create_revision,
        mod_revision: kv.mod_revision,
        version: kv.version,
        lease: kv.lease,
        value: with_value.then(|| kv.value.clone()),
    };
    let h = resp.header().revision;
    match (req, resp) {
        (Request::Range(r), Response::Range(rr)) if r.revision <= 0 || facts.historical_reads => {
            // A historical read shows the key space at its revision (the header shows the
            // current one).
            let h = if r.revision > 0 { r.revision } else { h };
            let mut shown = Vec::new();
            for kv in &rr.kvs {
                if let Some(k) = model.key_id(&kv.key) {
                    out.push((k, h, present(kv, !r.keys_only)));
                    shown.push(k);
                }
            }
            // `count` ignores limit and filters: when every counted key is shown, the other
            // keys of the range are absent.
            if rr.count == 0 || (!r.count_only && rr.kvs.len() as i64 == rr.count) {
                for k in model.key_ids(&r.key, &r.range_end) {
                    if !shown.contains(&k) {
                        out.push((k, h, KeyObs::Absent));
                    }
                }
            }
        }
        (Request::Put(p), Response::Put(pr)) if p.prev_kv => {
            if let Some(k) = model.key_id(&p.key) {
                let o = match &pr.prev_kv {
                    Some(kv) => present(kv, true),
                    None => KeyObs::Absent,
                };
                out.push((k, h - 1, o));
            }
        }
        (Request::DeleteRange(d), Response::DeleteRange(dr)) => {
            if dr.deleted == 0 {
                for k in model.key_ids(&d.key, &d.range_end) {
                    out.push((k, h, KeyObs::Absent));
                }
            } else if d.prev_kv && dr.prev_kvs.len() as i64 == dr.deleted {
                let mut shown = Vec::new();
                for kv in &dr.prev_kvs {
                    if let Some(k) = model.key_id(&kv.key) {
                        out.push((k, h - 1, present(kv, true)));
                        shown.push(k);
                    }
                }
                for k in model.key_ids(&d.key, &d.range_end) {
                    if !shown.contains(&k) {
                        out.push((k, h - 1, KeyObs::Absent));
                    }
                }
            }
        }
        _ => {}
    }
}

/// Build the key facts of the universe of `model`. `unclaimed`: the revisions nobody claims.
pub(super) fn key_facts(
    model: &EtcdModel,
    extra: ExtraFacts,
    history: &History,
    revisions: &RevisionFacts,
    unclaimed: &[Revision],
    key_leases: &KeyLeases,
) -> KeyFacts {
    let n = model.keys.len();
    let mut f = KeyFacts {
        obs: observed_key_states(model, extra, history),
        definite_puts: vec![Vec::new(); n],
        may_put: vec![Vec::new(); n],
        may_delete: vec![Vec::new(); n],
        unclaimed: unclaimed.to_vec(),
        unclaimed_max_puts: vec![0; n],
        unclaimed_may_delete: vec![false; n],
    };
    let claimers: BTreeMap<Revision, &Operation> = revisions
        .claimed_by
        .iter()
        .map(|(&r, &i)| (r, &history.ops[i]))
        .collect();
    count_claimed_writes(&mut f, model, &claimers, key_leases);
    count_unclaimed_writes(
        &mut f,
        model,
        &unclaimed_writers(history, revisions),
        key_leases,
    );
    for v in f
        .definite_puts
        .iter_mut()
        .chain(f.may_put.iter_mut())
        .chain(f.may_delete.iter_mut())
    {
        v.sort();
    }
    f
}

/// Per key: the observations, sorted by revision.
fn observed_key_states(
    model: &EtcdModel,
    extra: ExtraFacts,
    history: &History,
) -> Vec<Vec<(Revision, KeyObs)>> {
    let mut found = Vec::new();
    for op in &history.ops {
        if let (true, Outcome::Ok(resp)) = (takes_part(op), &op.outcome) {
            key_observations(model, extra, &op.request, resp, &mut found);
        }
    }
    if extra.watches {
        watch_observations(model, history, &mut found);
    }
    let mut obs = vec![Vec::new(); model.keys.len()];
    for (k, at, o) in found {
        obs[k].push((at, o));
    }
    for (k, obs) in obs.iter_mut().enumerate() {
        obs.sort_by_key(|(at, _)| *at);
        if let Some(intervals) = model.unmodified.get(&model.keys[k]) {
            spread_over_unmodified(obs, intervals);
        }
        // Identical observations of one revision are kept once; `KeyFacts::key_feasible`
        // judges every one left at a revision.
        obs.dedup();
    }
    obs
}

/// A key shown unmodified in (a, b] is the same at every revision of [a, b]: an observation
/// there holds at both ends too (a present key at `a` only if its mod_revision is at most
/// `a`). `key_feasible` judges the first observation at or after the current revision, so the
/// copy at `a` rejects a wrong guess as soon as the key reaches `a`, not at the observation
/// far later (events seed 487: an unknown put of a key a watch never saw, attached to a lease
/// whose expiry the watch saw delete other keys, placed 40 revisions before the expiry; a key
/// absent at 114 and unmodified in (73, 114] is absent at 73). `obs` sorted by revision;
/// left sorted.
fn spread_over_unmodified(obs: &mut Vec<(Revision, KeyObs)>, intervals: &[(Revision, Revision)]) {
    let mut added = Vec::new();
    for &(a, b) in intervals {
        let i = obs.partition_point(|(at, _)| *at < a);
        let Some((at, o)) = obs.get(i).filter(|(at, _)| *at <= b) else {
            continue;
        };
        let holds_at_a = match o {
            KeyObs::Absent => true,
            KeyObs::Present { mod_revision, .. } => *mod_revision <= a,
        };
        if holds_at_a && *at != a {
            added.push((a, o.clone()));
        }
        if *at != b {
            added.push((b, o.clone()));
        }
    }
    if !added.is_empty() {
        obs.extend(added);
        obs.sort_by_key(|(at, _)| *at);
    }
}

/// Per key, the claimed revisions whose writer certainly puts it, may put it, or may delete it.
fn count_claimed_writes(
    f: &mut KeyFacts,
    model: &EtcdModel,
    claimers: &BTreeMap<Revision, &Operation>,
    key_leases: &KeyLeases,
) {
    for (&rev, op) in claimers {
        let puts = branch_puts(&op.request);
        let chosen = match &op.outcome {
            Outcome::Ok(Response::Txn(t)) => Some(Some(t.succeeded)),
            Outcome::Ok(_) => Some(None),
            _ => None, // unknown (pinned): the branch is not known
        };
        for (key, branch) in puts {
            let Some(k) = model.key_id(key) else { continue };
            f.may_put[k].push(rev);
            let top_level_of_chosen = chosen.is_some_and(|c| c == branch)
                && match (&op.request, branch) {
                    (Request::Put(_), None) => true,
                    (Request::Txn(t), Some(b)) => {
                        let ops = if b { &t.success } else { &t.failure };
                        ops.iter()
                            .any(|o| matches!(o, RequestOp::Put(p) if p.key == key))
                    }
                    _ => false,
                };
            if top_level_of_chosen {
                f.definite_puts[k].push(rev);
            }
        }
        for (k, key) in model.keys.iter().enumerate() {
            if may_delete_key(&op.request, key, key_leases) {
                f.may_delete[k].push(rev);
            }
        }
    }
}

/// The writes taking part that claim no revision: unknown writes not pinned, and known
/// operations whose response does not tell (a revoke).
fn unclaimed_writers<'a>(history: &'a History, revisions: &RevisionFacts) -> Vec<&'a Operation> {
    history
        .ops
        .iter()
        .enumerate()
        .filter(|(i, op)| {
            takes_part(op)
                && !revisions.pins.contains_key(i)
                && match &op.outcome {
                    Outcome::Unknown(_) => true,
                    Outcome::Ok(resp) => response_mutates(&op.request, resp).is_none(),
                    Outcome::Failed(_) => false,
                }
        })
        .map(|(_, op)| op)
        .collect()
}

/// Per key, the most puts one unclaimed writer can make, and whether one may delete it.
fn count_unclaimed_writes(
    f: &mut KeyFacts,
    model: &EtcdModel,
    unclaimed_writers: &[&Operation],
    key_leases: &KeyLeases,
) {
    let n = model.keys.len();
    for op in unclaimed_writers {
        let mut per_key = vec![0i64; n];
        for (key, _) in branch_puts(&op.request) {
            if let Some(k) = model.key_id(key) {
                per_key[k] += 1;
            }
        }
        for (k, key) in model.keys.iter().enumerate() {
            f.unclaimed_max_puts[k] = f.unclaimed_max_puts[k].max(per_key[k]);
            if may_delete_key(&op.request, key, key_leases) {
                f.unclaimed_may_delete[k] = true;
            }
        }
    }
}
