//! The pipeline that turns a history into the search's input: the etcd model with its facts,
//! and one engine operation per operation taking part. Each pass is a function of its own
//! (in the sibling files); this file runs them in order and builds the operations.

use faultline_api::{Request, Response, Revision};

use super::expiry::ExpiryWindow;
use super::historical::reads_at;
use super::key_facts::key_facts;
use super::lease_facts::{lease_facts, LeaseNeeds, UnknownLeaseOp};
use super::observations::ExtraFacts;
use super::requests::{takes_part, Universe};
use super::revisions::{merge_intervals, unclaimed, Deadlines, RevisionFacts};
use super::symmetry::SymmetryClasses;
use super::watch_facts::{cover_watch_windows, pin_watched_deletes, pin_watched_puts};
use crate::history::{History, Operation, Outcome};
use crate::linearizability::{Op, NEVER};
use crate::models::etcd::{normalize, response_mutates, single_written_key, EtcdInput, EtcdModel};

/// The prepared search input.
pub struct Prepared {
    pub model: EtcdModel,
    pub ops: Vec<Op<EtcdInput, Response>>,
}

/// Build the model and the engine's operations from a history (every observation prunes).
pub fn prepare(history: &History) -> Prepared {
    prepare_with(history, ExtraFacts::ALL)
}

/// Build the model and the engine's operations, pruning with the given extra observations
/// (no lease expires).
pub fn prepare_with(history: &History, extra: ExtraFacts) -> Prepared {
    prepare_expiring(history, extra, &[])
}

/// Build the model and the engine's operations with the server's lease expiries `expiries`
/// (`expiry::expiry_windows`): each takes part as an unknown revoke of a client of its own,
/// so every pass treats it as one (it fills a revision nobody claims, may delete any key
/// attached to its lease, a watch may see its delete events), except that a required one must
/// be placed by its deadline (`EtcdInput::expiry`).
pub fn prepare_expiring(
    history: &History,
    extra: ExtraFacts,
    expiries: &[ExpiryWindow],
) -> Prepared {
    if expiries.is_empty() {
        return prepare_passes(history, extra, &[]);
    }
    let mut with_expiries = history.clone();
    for (j, w) in expiries.iter().enumerate() {
        with_expiries
            .ops
            .push(w.as_operation(EXPIRY_CLIENT_BASE - j as u64));
    }
    prepare_passes(&with_expiries, extra, expiries)
}

/// Client ids of the synthetic expiry operations count down from here.
pub const EXPIRY_CLIENT_BASE: u64 = u64::MAX;

/// The passes, in order: the universe (keys, leases, writers); revision claims, pins and
/// unmodified intervals from the responses; deadlines; pins and unmodified intervals from
/// watches (extra); lease needs; symmetry classes; the operations; key facts; historical reads
/// (extra); lease facts.
/// The last `expiries.len()` operations of `history` are the expiries.
fn prepare_passes(history: &History, extra: ExtraFacts, expiries: &[ExpiryWindow]) -> Prepared {
    let universe = Universe::of(history);
    let mut revisions = RevisionFacts::from_responses(history, &universe);
    let deadlines = Deadlines::new(history, revisions.max_revision);
    if extra.watches {
        pin_watched_puts(history, &universe, &mut revisions.pins);
        pin_watched_deletes(history, &universe, &mut revisions);
    }
    revisions.claim_pins();
    if extra.watches {
        cover_watch_windows(history, &universe.keys, &mut revisions.unmodified);
    }
    let claimed = revisions.claimed();
    let unclaimed = unclaimed(&claimed, revisions.max_revision);
    let mut model = EtcdModel {
        keys: universe.keys,
        lease_universe: universe.leases,
        claimed,
        max_revision: revisions.max_revision,
        unmodified: merge_intervals(std::mem::take(&mut revisions.unmodified)),
        facts: None,
        lease_facts: None,
        reads_at: None,
    };
    let mut builder = OpsBuilder {
        history,
        model: &model,
        revisions: &revisions,
        deadlines: &deadlines,
        unclaimed: &unclaimed,
        lease_needs: LeaseNeeds::of(history),
        classes: SymmetryClasses::new(history, &universe.ignore_value_keys),
        // At most one per operation: no doubling of a vector of 100,000 large entries.
        ops: Vec::with_capacity(history.ops.len()),
        unknown_lease_ops: Vec::new(),
        first_expiry: history.ops.len() - expiries.len(),
        expiries,
    };
    for (i, op) in history.ops.iter().enumerate() {
        builder.add(i, op);
    }
    let (ops, unknown_lease_ops) = (builder.ops, builder.unknown_lease_ops);
    model.facts = Some(key_facts(
        &model,
        extra,
        history,
        &revisions,
        &unclaimed,
        &universe.key_leases,
    ));
    if extra.historical_reads {
        model.reads_at = Some(reads_at(history));
    }
    model.lease_facts = Some(lease_facts(
        &model.lease_universe,
        history,
        &unknown_lease_ops,
    ));
    Prepared { model, ops }
}

/// Builds the engine's operations, one per operation taking part.
struct OpsBuilder<'a> {
    history: &'a History,
    model: &'a EtcdModel,
    revisions: &'a RevisionFacts,
    deadlines: &'a Deadlines,
    unclaimed: &'a [Revision],
    lease_needs: LeaseNeeds,
    classes: SymmetryClasses<'a>,
    ops: Vec<Op<EtcdInput, Response>>,
    unknown_lease_ops: Vec<UnknownLeaseOp>,
    /// Index in `history.ops` of the first expiry (`expiries[i - first_expiry]`).
    first_expiry: usize,
    expiries: &'a [ExpiryWindow],
}

impl OpsBuilder<'_> {
    fn add(&mut self, i: usize, op: &Operation) {
        if !takes_part(op) {
            return;
        }
        match &op.outcome {
            Outcome::Ok(resp) => self.add_known(op, resp),
            Outcome::Unknown(_) => self.add_unknown(i, op),
            Outcome::Failed(_) => unreachable!("failed operations take no part"),
        }
    }

    /// A known operation. Serializable reads take part with their call relaxed to the call
    /// of the write that produced the highest claimed revision at or below their header.
    fn add_known(&mut self, op: &Operation, resp: &Response) {
        let serializable = matches!(&op.request, Request::Range(r) if r.serializable);
        let call = if serializable {
            op.invoke_ns.min(
                self.revisions
                    .claimer_call(self.history, resp.header().revision),
            )
        } else {
            op.invoke_ns
        };
        self.ops.push(Op {
            id: op.id,
            client: op.client,
            call,
            ret: op.complete_ns.max(call),
            input: EtcdInput {
                request: op.request.clone(),
                mutating: response_mutates(&op.request, resp),
                pin: None,
                serializable,
                invoke_ns: op.invoke_ns,
                class: None,
                lease_op_tag: None,
                expiry: None,
            },
            output: Some(normalize(resp)),
        });
    }

    /// An unknown write: optional, with the deadline by which it must have taken effect to
    /// matter, or left out when it cannot matter.
    fn add_unknown(&mut self, i: usize, op: &Operation) {
        let pin = self.revisions.pins.get(&i).copied();
        let expiry = i.checked_sub(self.first_expiry).map(|j| &self.expiries[j]);
        let required = expiry.is_some_and(|w| w.required);
        let deadline = if required {
            expiry.map(|w| w.latest_ns)
        } else {
            self.unknown_deadline(op, pin)
        };
        let Some(ret) = deadline else {
            return;
        };
        let lease_op = match &op.request {
            Request::LeaseGrant(g) => Some((g.id, true)),
            Request::LeaseRevoke(r) => Some((r.id, false)),
            _ => None,
        };
        let lease_op_tag = lease_op.map(|(lease, is_grant)| {
            let tag = self.unknown_lease_ops.len() as u32;
            self.unknown_lease_ops
                .push((lease, is_grant, op.invoke_ns, tag));
            tag
        });
        let class = (pin.is_none() && !required)
            .then(|| self.classes.class_id(&op.request))
            .flatten();
        self.ops.push(Op {
            id: op.id,
            client: op.client,
            call: op.invoke_ns,
            ret: ret.max(op.invoke_ns),
            input: EtcdInput {
                request: op.request.clone(),
                mutating: None,
                pin,
                serializable: false,
                invoke_ns: op.invoke_ns,
                class,
                lease_op_tag,
                expiry: expiry.map(|w| w.required),
            },
            output: None,
        });
    }

    /// The deadline of an unknown write (`None`: it cannot matter, leave it out). A pinned
    /// write must produce its revision in time for the operations after it.
    fn unknown_deadline(&self, op: &Operation, pin: Option<Revision>) -> Option<u64> {
        let needs = &self.lease_needs;
        let deadline = match (&op.request, pin) {
            (_, Some(p)) => self.deadlines.at(p),
            (Request::LeaseGrant(g), None) => {
                // Adding a lease only helps operations that need it; after the last of them
                // it can only hurt. Needed by nobody: drop it.
                let id = if g.id != 0 { Some(g.id) } else { None };
                let need = id.map_or(needs.last_use_any, |l| {
                    needs.needed_by.get(&l).copied().unwrap_or(0)
                });
                if need == 0 || need < op.invoke_ns {
                    return None;
                }
                need
            }
            (Request::LeaseRevoke(r), None) => {
                // Useful to let a later grant of the same id succeed, or to fill a revision
                // nobody claims by deleting the lease's keys.
                let grant = needs.granted_by.get(&r.id).copied().unwrap_or(0);
                let gap = self.unclaimed.last().map_or(0, |&g| self.deadlines.at(g));
                let d = grant.max(if gap == NEVER { 0 } else { gap });
                if d == 0 || d < op.invoke_ns {
                    return None;
                }
                d
            }
            (req, None) => self.unclaimed_revision_deadline(op, single_written_key(req))?,
        };
        Some(deadline)
    }

    /// An unpinned unknown write may only produce a revision nobody claims, at most the
    /// highest anyone saw, and not one where its key is shown unmodified: its deadline is that
    /// of the latest such revision it could still fill (`None`: it cannot have produced any
    /// observable revision).
    fn unclaimed_revision_deadline(&self, op: &Operation, key: Option<&[u8]>) -> Option<u64> {
        for &g in self.unclaimed.iter().rev() {
            let d = self.deadlines.at(g);
            if d < op.invoke_ns {
                return None;
            }
            if key.is_some_and(|k| self.model.is_unmodified(k, g)) {
                continue;
            }
            return Some(d);
        }
        None
    }
}
