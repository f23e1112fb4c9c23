//! What the engine checks: operations (`Op`), the sequential specification they are checked
//! against (`Model`), and how a model may split a history (`Partition`).

use std::fmt::Debug;
use std::hash::Hash;

/// Return time of an operation that never returned.
pub const NEVER: u64 = u64::MAX;

/// One operation for the engine: model-specific input and output plus timing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Op<I, O> {
    /// Caller's identifier (reported back); need not be dense.
    pub id: u64,
    pub client: u64,
    pub call: u64,
    /// `NEVER` (+infinity) or a finite time; for optional operations a deadline.
    pub ret: u64,
    pub input: I,
    /// `None`: the outcome is unknown, so the operation is optional (it may never take effect)
    /// and any output is acceptable.
    pub output: Option<O>,
}

/// A group of operations that can be checked independently of every other group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Partition {
    /// Shown in reports (for example the key).
    pub label: Option<String>,
    /// Indices into the operation slice.
    pub ops: Vec<usize>,
}

/// A sequential specification.
pub trait Model {
    type State: Clone + Ord + Hash + Debug;
    type Input: Debug;
    type Output: Debug;

    /// Name shown in reports.
    fn name(&self) -> String;
    /// The possible initial states (usually one).
    fn init(&self) -> Vec<Self::State>;
    /// Push every state the operation may lead to from `state` while producing `output`
    /// (`None`: any output) onto `out`. None: the operation is illegal here. (Into a vector
    /// the caller owns: the search reuses one, so a step that leads nowhere new allocates
    /// nothing.)
    fn step_into(
        &self,
        state: &Self::State,
        input: &Self::Input,
        output: Option<&Self::Output>,
        out: &mut Vec<Self::State>,
    );
    /// `step_into` a new vector.
    fn step(
        &self,
        state: &Self::State,
        input: &Self::Input,
        output: Option<&Self::Output>,
    ) -> Vec<Self::State> {
        let mut out = Vec::new();
        self.step_into(state, input, output, &mut out);
        out
    }
    /// Split the history into independent parts. Default: one part.
    fn partition(&self, ops: &[Op<Self::Input, Self::Output>]) -> Vec<Partition> {
        vec![Partition {
            label: None,
            ops: (0..ops.len()).collect(),
        }]
    }
    /// Candidates with a lower hint are tried first. Default: list (call time) order.
    fn order_hint(&self, _input: &Self::Input, _output: Option<&Self::Output>) -> i64 {
        0
    }
    /// Lazy placement (partial-order reduction). `Some(r)` when this optional operation, in
    /// this step from `before` to `after`, only changed a resource `r` that few operations
    /// read (for etcd: an unknown lease grant, or a revoke of a lease with no keys). Such a
    /// step commutes with every operation whose `resources` do not contain `r`, and the
    /// operation could have happened arbitrarily late (its outcome is unknown), so any
    /// linearization can move it to just before the first operation that uses `r` (or drop
    /// it when none does). The search therefore takes such a step only when the next
    /// operation uses `r` (a run of lazy steps must be followed by one operation using all
    /// of them). This is exact, and removes the blow-up of trying every position.
    ///
    /// A required operation (`Model::required`: for etcd, a lease expiry with a deadline) may
    /// be lazy too: it can be moved later until the first operation using `r` or until its
    /// deadline, where the search places it as an ordinary step.
    ///
    /// Contract: `r` is one of the operation's `resources` (so the search can tell before the
    /// step which lazy steps could extend a run). Two lazy steps on the same resource, one right after the other or with only
    /// lazy steps on other resources between them, either leave the state exactly as it was
    /// before the first (etcd: a grant and a revoke of a lease with no keys) or cannot both
    /// succeed (two grants, two revokes); the search skips such pairs.
    fn lazy_resource(
        &self,
        _input: &Self::Input,
        _output: Option<&Self::Output>,
        _before: &Self::State,
        _after: &Self::State,
    ) -> Option<u64> {
        None
    }
    /// A cheap test that `step` would return no state (for example a revision that does
    /// not fit). Candidates it rejects are skipped before sorting and without counting a
    /// step; with thousands of open unknown writes this keeps each level cheap. Must only
    /// return true when `step` would fail.
    fn quick_reject(
        &self,
        _state: &Self::State,
        _input: &Self::Input,
        _output: Option<&Self::Output>,
    ) -> bool {
        false
    }
    /// Gating of `quick_reject`. `Some(g)` when, from every state, `quick_reject` gives this
    /// operation the same answer as every other operation with gate `g` (for etcd: unknown,
    /// unpinned writes other than lease operations, which all need the next revision free).
    /// The search then asks once per gate and level, for the earliest open member, instead of
    /// once per operation: with thousands of open unknown writes that a level rejects alike,
    /// a level costs what its candidates cost, not what every open operation costs.
    fn quick_reject_gate(
        &self,
        _input: &Self::Input,
        _output: Option<&Self::Output>,
    ) -> Option<u64> {
        None
    }
    /// Symmetry reduction. `Some(c)` when this optional operation belongs to a class `c` of
    /// operations that are interchangeable: from every state, each member of the class leads
    /// to states that no operation of the history can tell apart (for etcd: unknown puts of
    /// one key with the same lease whose values no response ever shows). The search then
    /// tries, among the candidates of one class at a level, only the one with the earliest
    /// return: any linearization that places another member `b` here can swap it with the
    /// earliest-returning member `a` (placed later or dropped), because `b`'s deadline is at
    /// least `a`'s. This is exact and removes the symmetric backtracking over such guesses.
    fn interchangeable_class(
        &self,
        _input: &Self::Input,
        _output: Option<&Self::Output>,
    ) -> Option<u64> {
        None
    }
    /// A measure of progress that never decreases along any sequence of steps (for etcd: the
    /// store revision). Used with `latest_progress`.
    fn progress(&self, _state: &Self::State) -> i64 {
        i64::MIN
    }
    /// For an operation with a known outcome: the largest `progress` of a state from which
    /// `step` can still succeed (for etcd: the revision its response shows, minus one for a
    /// write). Once every current state is past it, the operation can never be linearized,
    /// so the search backtracks at once instead of when the operation's return comes up,
    /// possibly thousands of levels later. Exact, since progress never decreases.
    fn latest_progress(&self, _input: &Self::Input, _output: Option<&Self::Output>) -> Option<i64> {
        None
    }
    /// Whether the operation must be linearized (by its `ret`, which must then be finite or
    /// the history's end). Default: exactly the operations with a known outcome. A model may
    /// also require an operation whose output it does not know (for etcd: a lease expiry the
    /// server must have carried out by its deadline), which is then never dropped and in no
    /// symmetry class (it may be lazy: see `lazy_resource`).
    fn required(&self, _input: &Self::Input, output: Option<&Self::Output>) -> bool {
        output.is_some()
    }
    /// Whether `lazy_resource` can ever return `Some` for this operation.
    fn may_be_lazy(&self, _input: &Self::Input, _output: Option<&Self::Output>) -> bool {
        false
    }
    /// The lazy resources this operation's step reads or writes (sorted, deduplicated).
    fn resources(&self, _input: &Self::Input) -> Vec<u64> {
        vec![]
    }
    fn describe_input(&self, input: &Self::Input) -> String {
        format!("{input:?}")
    }
    fn describe_output(&self, output: Option<&Self::Output>) -> String {
        match output {
            Some(o) => format!("{o:?}"),
            None => "unknown outcome".to_string(),
        }
    }
    fn describe_state(&self, state: &Self::State) -> String {
        format!("{state:?}")
    }
}
