//! A generic linearizability checker: Wing & Gong's search with Lowe's memoisation, as in
//! porcupine.
//!
//! The history becomes a doubly-linked list of call and return events sorted by time (a call
//! sorts before a return at the same instant, so touching intervals count as concurrent). The
//! search repeatedly picks an operation whose call comes before the first return still in the
//! list, applies it to the model and removes it from the list ("lifts" it); when the first entry
//! is a return, every open choice failed and it backtracks. A memo cache of (set of decided
//! operations, model state) prunes configurations that were already explored.
//!
//! Differences from porcupine, each for a reason:
//! * Operations with an unknown outcome are *optional*: they may be linearized anywhere after
//!   their call, or never. Their return is at +infinity unless a model proves an earlier
//!   deadline; reaching the return of an optional operation offers "it never happened" as the
//!   last alternative.
//! * Candidates at one level are tried in the order of the model's `order_hint` (stable, so
//!   list order when the hint is constant). The etcd model uses revisions here, which makes
//!   histories with revisions check in near-linear time.
//! * The cache stores one 128-bit key per configuration instead of full bitsets and states: the
//!   set of decided operations as a Zobrist hash (XOR of a random 128-bit word per operation)
//!   XOR a 128-bit fingerprint of the states (see `memo`). A collision could only prune a
//!   branch wrongly (a false "not linearizable"); it can never produce a false pass. This keeps
//!   memory proportional to the number of steps, not to steps x history length.
//! * Operations whose cheap rejection depends on the state alone share a gate
//!   (`Model::quick_reject_gate`) and leave the call/return list: a level asks the gate once,
//!   so thousands of open unknown writes do not make every level cost thousands.
//! * Partitions are searched in rounds with a doubling allowance, each search resumed where it
//!   stopped, so a violation one partition shows quickly is not hidden behind a large one
//!   (porcupine searches partitions in parallel for the same reason).
//! * A budget of search steps turns an endless search into `Verdict::Unknown`, never a pass.
//! * Non-deterministic models return the set of next states; the search runs over sets of
//!   states (sorted, deduplicated), as porcupine's `NondeterministicModel` does.
//!
//! Files, bottom up: `model` (what is checked: `Op`, `Model`), `report` (what a check
//! concludes), `choice`, `entries` (the call/return lists), `memo`, `pruning` (symmetry and
//! progress limits), `gates` (offering a gate's candidates), `lazy`
//! (the rules of lazy steps), `search` (one partition's search,
//! resumable), and here the driver over partitions.

mod choice;
mod entries;
mod gates;
mod lazy;
mod memo;
mod model;
mod pruning;
mod report;
mod search;

pub use model::{Model, Op, Partition, NEVER};
pub use report::{Mismatch, OpSummary, Report, StaleKind, StaleRead, TimeUnit, Verdict};

use search::{OpTable, Outcome, Search};

fn summarize<M: Model>(model: &M, op: &Op<M::Input, M::Output>) -> OpSummary {
    OpSummary {
        id: op.id,
        client: op.client,
        member: None,
        invoke: op.call,
        complete: (op.output.is_some() && op.ret != NEVER).then_some(op.ret),
        request: model.describe_input(&op.input),
        response: model.describe_output(op.output.as_ref()),
    }
}

/// The detailed result of `check_detailed`.
pub struct Checked {
    pub verdict: Verdict,
    /// On success: for each partition, indices into the op slice in linearization order.
    pub linearizations: Vec<Vec<usize>>,
}

/// Check a history against a model with a budget of search steps.
pub fn check<M: Model>(
    model: &M,
    ops: &[Op<M::Input, M::Output>],
    budget_steps: u64,
    time_unit: TimeUnit,
) -> Verdict {
    check_detailed(model, ops, budget_steps, time_unit).verdict
}

/// Like `check`, and also returns the linearization found.
///
/// Several partitions are searched in rounds with a doubling step allowance each (a partition
/// that did not finish goes on where it stopped, up to the new allowance in all), so that one
/// partition with a huge search space cannot hide a violation that another partition shows
/// quickly; porcupine gets the same effect by checking partitions in parallel. Every step
/// counts against the budget once.
pub fn check_detailed<M: Model>(
    model: &M,
    ops: &[Op<M::Input, M::Output>],
    budget_steps: u64,
    time_unit: TimeUnit,
) -> Checked {
    let parts = model.partition(ops);
    let part_ops: Vec<Vec<&Op<M::Input, M::Output>>> = parts
        .iter()
        .map(|part| part.ops.iter().map(|&i| &ops[i]).collect())
        .collect();
    let tables: Vec<OpTable<M::Input, M::Output>> =
        part_ops.iter().map(|p| OpTable::new(model, p)).collect();
    let mut searches: Vec<Option<Search<M>>> = tables.iter().map(|_| None).collect();
    let mut done: Vec<Option<Vec<usize>>> = vec![None; parts.len()];
    let mut spent = 0u64;
    // Resumed searches waste no step on a small first allowance; it only lets a violation
    // that one partition shows quickly come out before the others have searched far.
    let mut allowance: u64 = if parts.len() > 1 { 1_000 } else { budget_steps };
    loop {
        let mut unfinished = None;
        for (pi, part) in parts.iter().enumerate() {
            if done[pi].is_some() {
                continue;
            }
            let s = searches[pi].get_or_insert_with(|| Search::new(model, &tables[pi]));
            let before = s.steps();
            let outcome = s.resume(allowance.min(before.saturating_add(budget_steps - spent)));
            spent += s.steps() - before;
            match outcome {
                Outcome::Linearizable(order) => {
                    done[pi] = Some(order.into_iter().map(|i| part.ops[i]).collect());
                    searches[pi] = None; // its memory is not needed any more
                }
                Outcome::OutOfBudget => {
                    unfinished.get_or_insert(pi);
                }
                Outcome::Violation {
                    prefix,
                    unplaceable,
                } => {
                    return Checked {
                        verdict: violation(
                            model,
                            part,
                            &part_ops[pi],
                            prefix,
                            unplaceable,
                            time_unit,
                        ),
                        linearizations: vec![],
                    };
                }
            }
        }
        let Some(pi) = unfinished else { break };
        if spent >= budget_steps {
            return Checked {
                verdict: Verdict::Unknown {
                    reason: format!(
                        "linearizability search ({} model) ran out of its budget of {budget_steps} steps{}",
                        model.name(),
                        parts[pi]
                            .label
                            .as_ref()
                            .map(|l| format!(" in partition {l}"))
                            .unwrap_or_default()
                    ),
                },
                linearizations: vec![],
            };
        }
        allowance = allowance.saturating_mul(2);
    }
    Checked {
        verdict: Verdict::Linearizable,
        linearizations: done.into_iter().map(|d| d.expect("all done")).collect(),
    }
}

fn violation<M: Model>(
    model: &M,
    part: &Partition,
    part_ops: &[&Op<M::Input, M::Output>],
    prefix: Vec<usize>,
    unplaceable: Vec<usize>,
    time_unit: TimeUnit,
) -> Verdict {
    // Replay the prefix to show the state it leaves.
    let mut states = model.init();
    for &i in &prefix {
        let op = part_ops[i];
        let mut next: Vec<M::State> = states
            .iter()
            .flat_map(|s| model.step(s, &op.input, op.output.as_ref()))
            .collect();
        next.sort();
        next.dedup();
        states = next;
    }
    let state_after_prefix = states
        .iter()
        .map(|s| model.describe_state(s))
        .collect::<Vec<_>>()
        .join(" | ");
    Verdict::NotLinearizable(Box::new(Report {
        model: model.name(),
        partition: part.label.clone(),
        time_unit,
        longest_prefix: prefix.iter().map(|&i| part_ops[i].id).collect(),
        state_after_prefix,
        unplaceable: unplaceable
            .iter()
            .map(|&i| summarize(model, part_ops[i]))
            .collect(),
        stale_reads: vec![],
        mismatches: vec![],
    }))
}
