//! The search over one partition: Wing & Gong's depth-first search with Lowe's memo.
//!
//! A level of the search is a configuration (the operations decided so far and the model
//! states). At each level it
//! 1. selects the candidates (`Search::select_candidates`): every operation whose call comes
//!    before the first return still in the list, less those the model rejects cheaply and the
//!    symmetric duplicates, in the model's order; plus "never happened" for an optional
//!    operation whose return is first;
//! 2. tries them in turn (`Search::try_choices`), each one a step of the budget: the model step
//!    (`Search::apply_choice`, which also handles lazy steps), the progress limits, and the
//!    memo; the first that leads somewhere new becomes the next level (`Search::descend`);
//! 3. when none does, records the longest prefix (`LongestPrefix`) and backtracks
//!    (`Search::backtrack`) to the next choice of the level above.

use super::choice::Choice;
use super::entries::{EntryList, NIL};
use super::gates::Gates;
use super::lazy::{may_follow, pending_after};
use super::memo::Memo;
use super::model::{Model, Op};
use super::pruning::{ProgressLimits, Symmetry};

/// What one partition's search ended with.
pub(crate) enum Outcome {
    /// Indices (into the partition's op list) in linearization order.
    Linearizable(Vec<usize>),
    Violation {
        prefix: Vec<usize>,
        unplaceable: Vec<usize>,
    },
    OutOfBudget,
}

/// What the search needs to know about each operation of one partition, computed once.
pub(crate) struct OpTable<'a, I, O> {
    ops: &'a [&'a Op<I, O>],
    /// `Model::order_hint`: lower is tried first.
    hints: Vec<i64>,
    /// Not `Model::required` (usually: an unknown outcome): may be dropped.
    optional: Vec<bool>,
    /// `Model::may_be_lazy`.
    lazy_capable: Vec<bool>,
    /// `Model::resources` (sorted).
    resources: Vec<Vec<u64>>,
    /// Symmetry classes (see `Model::interchangeable_class`); only optional ops may have one.
    class: Vec<Option<u64>>,
    /// `Model::quick_reject_gate`, numbered densely (`NIL`: none), and how many there are.
    gates: Vec<u32>,
    n_gates: usize,
}

impl<'a, I, O> OpTable<'a, I, O> {
    /// The table of one partition's operations `ops`.
    pub(crate) fn new<M: Model<Input = I, Output = O>>(model: &M, ops: &'a [&'a Op<I, O>]) -> Self {
        assert!(
            ops.len() < (u32::MAX / 2 - 1) as usize,
            "history too long for the entry list"
        );
        let mut gate_ids = std::collections::BTreeMap::new();
        let gates: Vec<u32> = ops
            .iter()
            .map(
                |op| match model.quick_reject_gate(&op.input, op.output.as_ref()) {
                    Some(g) => {
                        let next = gate_ids.len() as u32;
                        *gate_ids.entry(g).or_insert(next)
                    }
                    None => NIL,
                },
            )
            .collect();
        OpTable {
            gates,
            n_gates: gate_ids.len(),
            ops,
            hints: ops
                .iter()
                .map(|op| model.order_hint(&op.input, op.output.as_ref()))
                .collect(),
            optional: ops
                .iter()
                .map(|op| !model.required(&op.input, op.output.as_ref()))
                .collect(),
            lazy_capable: ops
                .iter()
                .map(|op| op.output.is_none() && model.may_be_lazy(&op.input, op.output.as_ref()))
                .collect(),
            resources: ops.iter().map(|op| model.resources(&op.input)).collect(),
            class: ops
                .iter()
                .map(|op| {
                    op.output
                        .is_none()
                        .then(|| model.interchangeable_class(&op.input, op.output.as_ref()))
                        .flatten()
                })
                .collect(),
        }
    }

    /// The progress limits of the operations with a known outcome.
    fn progress_limits<M: Model<Input = I, Output = O>>(&self, model: &M) -> ProgressLimits {
        ProgressLimits::new(
            self.ops
                .iter()
                .enumerate()
                .filter(|(_, op)| op.output.is_some())
                .filter_map(|(i, op)| {
                    model
                        .latest_progress(&op.input, op.output.as_ref())
                        .map(|l| (l, i as u32))
                })
                .collect(),
            self.ops.len(),
        )
    }
}

/// A level the search descended from, to come back to. Its states and choices live in the
/// search's two arenas, stacked like the frames, so a level allocates nothing: the stack can
/// be as deep as the history is long, and most levels are left again at once.
struct Frame {
    /// The decided set (Zobrist hash) before the choice was applied.
    decided: u128,
    /// Where its states (before the choice was applied) and its choices start in the arenas
    /// (they end where the next frame's start, or at the arena's end).
    states_at: u32,
    choices_at: u32,
    /// Index of the choice applied at this frame, and that choice.
    taken: u32,
    choice: Choice,
    /// The lazy resources pending before the choice was applied.
    pending: Vec<u64>,
}

/// The longest linearizable prefix seen, maintained incrementally: `choices[..low_water]`
/// always equals the current stack's choices.
#[derive(Default)]
struct LongestPrefix {
    choices: Vec<Choice>,
    /// The op whose return forced the decision first, then the other candidates.
    unplaceable: Vec<usize>,
    low_water: usize,
    have_best: bool,
}

impl LongestPrefix {
    /// Every choice of the current level failed: keep the path to it if it is the longest.
    fn record(&mut self, stack: &[Frame], list: &EntryList, choices: &[Choice]) {
        let depth = stack.len();
        if depth <= self.choices.len() && self.have_best {
            return;
        }
        self.have_best = true;
        self.choices.truncate(self.low_water);
        for f in &stack[self.low_water..] {
            self.choices.push(f.choice);
        }
        self.low_water = depth;
        self.unplaceable.clear();
        if let Some(o) = list.first_return() {
            self.unplaceable.push(o as usize);
        }
        for c in choices {
            if !self.unplaceable.contains(&(c.op() as usize)) {
                self.unplaceable.push(c.op() as usize);
            }
        }
    }

    /// The search left a level: the stack is now `depth` frames deep.
    fn popped_to(&mut self, depth: usize) {
        self.low_water = self.low_water.min(depth);
    }

    fn into_violation(self) -> Outcome {
        let prefix = self
            .choices
            .iter()
            .filter_map(|c| match c {
                Choice::Linearize(o) => Some(*o as usize),
                Choice::Drop(_) => None,
            })
            .collect();
        Outcome::Violation {
            prefix,
            unplaceable: self.unplaceable,
        }
    }
}

/// How trying the choices of a level ended.
enum Tried {
    /// One led to a new level.
    Descended,
    /// None is left.
    Exhausted,
    OutOfBudget,
}

/// The search over one partition, resumable: `resume` runs it until it ends or has taken a
/// given number of steps in all, and a later `resume` with a larger number goes on from
/// where it stopped, exactly as one run with the larger number would have.
pub(crate) struct Search<'a, M: Model> {
    model: &'a M,
    table: &'a OpTable<'a, M::Input, M::Output>,
    /// Resource sets used together by one operation: a run of lazy steps over several
    /// resources is only worth building when some operation uses them all.
    multi: Vec<&'a [u64]>,
    /// Steps taken so far, and the number `resume` may take in all.
    steps: u64,
    budget: u64,
    /// The next `resume` starts a level (selects its candidates) rather than trying the
    /// remaining choices of the current one.
    fresh_level: bool,
    list: EntryList,
    limits: ProgressLimits,
    memo: Memo,
    /// The current configuration: model states (sorted, deduplicated), decided set, and the
    /// resources of the run of lazy steps just taken (sorted): the next operation that is not
    /// lazy must use all of them.
    states: Vec<M::State>,
    decided: u128,
    pending: Vec<u64>,
    required_left: usize,
    stack: Vec<Frame>,
    /// The states and choices of the frames, in stack order.
    state_arena: Vec<M::State>,
    choice_arena: Vec<u32>,
    /// Scratch for the successors of a step (`apply_choice`), reused while steps lead
    /// nowhere new.
    spare: Vec<M::State>,
    /// Choices of the level being explored and the next index to try.
    choices: Vec<Choice>,
    next_choice: usize,
    /// The per-level class reduction.
    symmetry: Symmetry,
    /// Scratch for sorting a level's choices: (hint, rank of the call, packed choice).
    keyed: Vec<(i64, u32, u32)>,
    gates: Gates,
    prefix: LongestPrefix,
}

impl<'a, M: Model> Search<'a, M> {
    /// A search of the partition `table` describes, no step taken yet.
    pub(crate) fn new(model: &'a M, table: &'a OpTable<'a, M::Input, M::Output>) -> Self {
        let mut states = model.init();
        states.sort();
        states.dedup();
        let symmetry = Symmetry::new(&table.class, table.ops);
        let gates = Gates::new(&table.gates, table.n_gates, &symmetry);
        Search {
            model,
            table,
            multi: table
                .resources
                .iter()
                .filter(|r| r.len() > 1)
                .map(Vec::as_slice)
                .collect(),
            steps: 0,
            budget: 0,
            fresh_level: true,
            list: EntryList::of_ops(table.ops, &table.gates, table.n_gates),
            limits: table.progress_limits(model),
            memo: Memo::new(table.ops.len()),
            states,
            decided: 0,
            pending: Vec::new(),
            required_left: table.optional.iter().filter(|o| !**o).count(),
            stack: Vec::new(),
            state_arena: Vec::new(),
            choice_arena: Vec::new(),
            spare: Vec::new(),
            choices: Vec::new(),
            next_choice: 0,
            symmetry,
            keyed: Vec::new(),
            gates,
            prefix: LongestPrefix::default(),
        }
    }

    /// The steps taken so far.
    pub(crate) fn steps(&self) -> u64 {
        self.steps
    }

    /// Search on until the search ends or `budget` steps have been taken in all (then
    /// `OutOfBudget`; the search can be resumed with a larger budget). Not to be called again
    /// once it returned anything else.
    pub(crate) fn resume(&mut self, budget: u64) -> Outcome {
        self.budget = budget;
        loop {
            if self.fresh_level {
                if self.required_left == 0 {
                    return Outcome::Linearizable(self.linearization());
                }
                self.select_candidates();
                self.fresh_level = false;
            }
            match self.try_choices() {
                Tried::Descended => {
                    self.fresh_level = true;
                    continue;
                }
                Tried::OutOfBudget => return Outcome::OutOfBudget,
                Tried::Exhausted => {}
            }
            self.prefix.record(&self.stack, &self.list, &self.choices);
            if !self.backtrack() {
                return std::mem::take(&mut self.prefix).into_violation();
            }
        }
    }

    /// The linearized operations of the current path, in order.
    fn linearization(&self) -> Vec<usize> {
        self.stack
            .iter()
            .filter_map(|f| match f.choice {
                Choice::Linearize(o) => Some(o as usize),
                Choice::Drop(_) => None,
            })
            .collect()
    }

    /// Candidate selection: the choices of a new level, in the order they are tried.
    fn select_candidates(&mut self) {
        let table = self.table;
        self.choices.clear();
        self.symmetry.begin_level();
        let (first_return, in_time_order) = self.open_calls();
        let reps = self.symmetry.representatives().map(Choice::Linearize);
        self.choices.extend(reps);
        // A class is tried where its most promising member would be; ties in time order.
        // Choices of the main list alone come in time order; with their hints in order too
        // they are sorted already (the usual case for models without hints).
        let hints = &table.hints;
        let sorted = in_time_order == self.choices.len()
            && self
                .choices
                .windows(2)
                .all(|w| hints[w[0].op() as usize] <= hints[w[1].op() as usize]);
        if !sorted {
            // Each key computed once (a level can hold thousands of choices), then one sort
            // of plain tuples.
            let (symmetry, list) = (&self.symmetry, &self.list);
            self.keyed.clear();
            self.keyed.extend(self.choices.iter().map(|c| {
                let o = c.op();
                (symmetry.hint(o, hints), list.rank(2 * o), c.pack())
            }));
            // Every key is distinct (ranks are), so an unstable sort gives the one order.
            self.keyed.sort_unstable();
            self.choices.clear();
            let sorted = self.keyed.iter().map(|k| Choice::unpack(k.2));
            self.choices.extend(sorted);
        }
        if let Some(r) = first_return {
            if table.optional[r as usize] {
                self.choices.push(Choice::Drop(r));
            }
        }
        if !self.pending.is_empty() {
            // Drops are excluded: a drop could equally have happened before the lazy steps,
            // at the level where the first of them was chosen. A lazy-capable operation that
            // does not use every pending resource can only be another lazy step, and only
            // one that `pending_after` would allow; whether it is lazy at all is known only
            // after it is applied (`apply_choice`), so this keeps every choice that could
            // succeed and drops those that would fail anyway (each a wasted model step).
            let (pending, multi) = (&self.pending, &self.multi);
            self.choices.retain(|c| match *c {
                Choice::Linearize(o) => may_follow(
                    pending,
                    &table.resources[o as usize],
                    table.lazy_capable[o as usize],
                    multi,
                ),
                Choice::Drop(_) => false,
            });
        }
        self.next_choice = 0;
    }

    /// Offer every operation whose call comes before the first return still in the list and
    /// that the model does not reject cheaply: pushed as a choice, or to its symmetry class.
    /// The op of that first return, and how many choices came first from the main list (in
    /// time order).
    fn open_calls(&mut self) -> (Option<u32>, usize) {
        let table = self.table;
        let mut e = self.list.first();
        let mut first_return = None;
        while e != NIL {
            if e & 1 == 1 {
                first_return = Some(e / 2);
                break;
            }
            if !self.rejected(e / 2) {
                self.offer(e / 2);
            }
            e = self.list.after(e);
        }
        let in_time_order = self.choices.len();
        let horizon = first_return.map_or(u32::MAX, |r| self.list.rank(2 * r + 1));
        for g in 0..table.n_gates {
            let first = self.list.gate_first(g);
            if first == NIL || self.list.rank(2 * first) >= horizon || self.rejected(first) {
                continue;
            }
            let hints = &table.hints;
            let (choices, list) = (&mut self.choices, &self.list);
            self.gates.offer(
                g,
                horizon,
                list,
                &mut self.symmetry,
                hints,
                |symmetry, o| {
                    if symmetry.offer(o, hints) {
                        choices.push(Choice::Linearize(o));
                    }
                },
            );
            debug_assert!(self.gate_agrees(g, horizon), "gate {g}: members disagree");
        }
        (first_return, in_time_order)
    }

    /// Offer candidate `o`: a choice of its own, or a member of its symmetry class.
    #[inline]
    fn offer(&mut self, o: u32) {
        if self.symmetry.offer(o, &self.table.hints) {
            self.choices.push(Choice::Linearize(o));
        }
    }

    /// Whether the model rejects no member of open gate `g` called before `horizon`.
    fn gate_agrees(&self, g: usize, horizon: u32) -> bool {
        let mut o = self.list.gate_first(g);
        while o != NIL && self.list.rank(2 * o) < horizon {
            if self.rejected(o) {
                return false;
            }
            o = self.list.gate_after(o);
        }
        true
    }

    /// Whether the model rejects op `o` cheaply from every current state.
    #[inline]
    fn rejected(&self, o: u32) -> bool {
        let op = self.table.ops[o as usize];
        self.states
            .iter()
            .all(|st| self.model.quick_reject(st, &op.input, op.output.as_ref()))
    }

    /// Try the remaining choices of this level, each one step of the budget, until one leads
    /// to a configuration not explored yet.
    fn try_choices(&mut self) -> Tried {
        while self.next_choice < self.choices.len() {
            // The budget is checked before the choice is taken, so a resumed search tries
            // it first.
            if self.steps >= self.budget {
                return Tried::OutOfBudget;
            }
            self.steps += 1;
            let idx = self.next_choice;
            self.next_choice += 1;
            let choice = self.choices[idx];
            let o = choice.op();
            let Some(new_pending) = self.apply_choice(choice) else {
                continue;
            };
            // Progress pruning: a required operation whose last chance has passed.
            if let Some(limit) = self.limits.min_excluding(o) {
                if self.spare.iter().all(|st| self.model.progress(st) > limit) {
                    continue;
                }
            }
            let new_decided = self.memo.with_op(self.decided, o);
            if !self.memo.insert(new_decided, &(&self.spare, &new_pending)) {
                continue;
            }
            let new_states = std::mem::take(&mut self.spare);
            self.descend(idx, new_states, new_decided, new_pending);
            return Tried::Descended;
        }
        Tried::Exhausted
    }

    /// The model step of a choice: the next states (left in `spare`) and the lazy resources
    /// pending after it, or `None` when the step fails or breaks the rules of lazy steps.
    fn apply_choice(&mut self, choice: Choice) -> Option<Vec<u64>> {
        self.spare.clear();
        let o = match choice {
            Choice::Drop(_) => {
                self.spare.extend(self.states.iter().cloned());
                return Some(Vec::new());
            }
            Choice::Linearize(o) => o as usize,
        };
        let op = self.table.ops[o];
        let lazy_capable = self.table.lazy_capable[o];
        let mut lazy: Option<Option<u64>> = None;
        let (model, spare) = (self.model, &mut self.spare);
        for s in &self.states {
            let from = spare.len();
            model.step_into(s, &op.input, op.output.as_ref(), spare);
            if lazy_capable {
                for n in &spare[from..] {
                    let r = model.lazy_resource(&op.input, op.output.as_ref(), s, n);
                    lazy = Some(match lazy {
                        None => r,
                        Some(prev) if prev == r => r,
                        Some(_) => None,
                    });
                }
            }
        }
        if self.spare.is_empty() {
            return None;
        }
        let mut lazy = lazy.flatten();
        if lazy.is_some() && !self.table.optional[o] && self.list.first_return() == Some(o as u32) {
            // A required operation at its deadline: it cannot wait for an operation using its
            // resource, so it is placed here like any other step.
            lazy = None;
        }
        let new_pending = self.pending_after(o, lazy)?;
        if self.spare.len() > 1 {
            self.spare.sort();
            self.spare.dedup();
        }
        Some(new_pending)
    }

    /// The lazy resources pending after op `o` was applied (`lazy`: the resource it changed
    /// lazily), or `None` when the step is not allowed here.
    #[inline]
    fn pending_after(&self, o: usize, lazy: Option<u64>) -> Option<Vec<u64>> {
        pending_after(&self.pending, &self.table.resources[o], &self.multi, lazy)
    }

    /// Apply the choice `idx` of this level: lift its op and push the level on the stack.
    fn descend(
        &mut self,
        idx: usize,
        new_states: Vec<M::State>,
        new_decided: u128,
        new_pending: Vec<u64>,
    ) {
        let o = self.choices[idx].op();
        self.list.lift(o);
        self.gates.changed(self.table.gates[o as usize]);
        self.limits.lift(o);
        if !self.table.optional[o as usize] {
            self.required_left -= 1;
        }
        let frame = Frame {
            decided: self.decided,
            states_at: u32::try_from(self.state_arena.len()).expect("state arena below 2^32"),
            choices_at: u32::try_from(self.choice_arena.len()).expect("choice arena below 2^32"),
            taken: idx as u32,
            choice: self.choices[idx],
            pending: std::mem::replace(&mut self.pending, new_pending),
        };
        self.stack.push(frame);
        self.state_arena.append(&mut self.states);
        self.choice_arena
            .extend(self.choices.iter().map(|c| c.pack()));
        // `new_states` is the scratch vector; the emptied one becomes the scratch.
        self.spare = std::mem::replace(&mut self.states, new_states);
        self.decided = new_decided;
    }

    /// Go back to the level above and its next choice; false at the root.
    fn backtrack(&mut self) -> bool {
        let Some(frame) = self.stack.pop() else {
            return false;
        };
        self.prefix.popped_to(self.stack.len());
        let o = frame.choice.op();
        self.list.unlift(o);
        self.gates.changed(self.table.gates[o as usize]);
        self.limits.unlift(o);
        if !self.table.optional[o as usize] {
            self.required_left += 1;
        }
        self.states.clear();
        self.states
            .extend(self.state_arena.drain(frame.states_at as usize..));
        self.decided = frame.decided;
        self.pending = frame.pending;
        self.choices.clear();
        let packed = self.choice_arena.drain(frame.choices_at as usize..);
        self.choices.extend(packed.map(Choice::unpack));
        self.next_choice = frame.taken as usize + 1;
        true
    }
}
