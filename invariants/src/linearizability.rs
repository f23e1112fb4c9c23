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
//! * The cache stores 128-bit fingerprints instead of full bitsets and states: the set of
//!   decided operations is a Zobrist hash (XOR of a random 128-bit word per operation) and the
//!   state a 128-bit SipHash. A fingerprint collision could only prune a branch wrongly (a false
//!   "not linearizable"); it can never produce a false pass, and at 2^-128 per pair it does not
//!   happen in practice. This keeps memory proportional to the number of steps, not to
//!   steps x history length.
//! * A budget of search steps turns an endless search into `Verdict::Unknown`, never a pass.
//! * Non-deterministic models return the set of next states; the search runs over sets of
//!   states (sorted, deduplicated), as porcupine's `NondeterministicModel` does.

use std::collections::HashSet;
use std::fmt::{self, Debug, Display};
use std::hash::{DefaultHasher, Hash, Hasher};

use serde::{Deserialize, Serialize};

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
    /// Every state the operation may lead to from `state` while producing `output` (`None`:
    /// any output). Empty: the operation is illegal here.
    fn step(
        &self,
        state: &Self::State,
        input: &Self::Input,
        output: Option<&Self::Output>,
    ) -> Vec<Self::State>;
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
    /// Contract: two lazy steps on the same resource, one right after the other or with only
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

/// How to read the times in a report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TimeUnit {
    /// Simulated nanoseconds (printed as milliseconds).
    Nanoseconds,
    /// Logical positions (for example line numbers of a log file).
    Position,
}

/// One operation as a report shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpSummary {
    pub id: u64,
    pub client: u64,
    #[serde(default)]
    pub member: Option<u64>,
    pub invoke: u64,
    /// `None`: never returned (unknown outcome).
    pub complete: Option<u64>,
    pub request: String,
    pub response: String,
}

/// A linearizable read that missed a revision some operation had already reported before the
/// read was invoked (or, for `kind == RevisionRegression`, any operation whose revision went
/// backwards in real time).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaleRead {
    pub kind: StaleKind,
    /// The read (or operation) that saw too old a revision.
    pub op: OpSummary,
    pub op_revision: i64,
    /// An operation that completed before `op` was invoked, with a higher revision.
    pub earlier: OpSummary,
    pub earlier_revision: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StaleKind {
    /// A linearizable Range returned a header revision below one already observed.
    StaleRead,
    /// Another operation's revision went backwards in real time.
    RevisionRegression,
}

/// A response that contradicts the linearization that was found (for example a serializable
/// read that matches no state at its header revision).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mismatch {
    pub op: OpSummary,
    pub expected: String,
    pub explanation: String,
}

/// Why a history is not linearizable.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub model: String,
    /// The partition that failed (for example the key), when the model splits histories.
    #[serde(default)]
    pub partition: Option<String>,
    pub time_unit: TimeUnit,
    /// Ids of the longest linearizable prefix found, in linearization order.
    #[serde(default)]
    pub longest_prefix: Vec<u64>,
    /// The model state after that prefix.
    #[serde(default)]
    pub state_after_prefix: String,
    /// Operations that could not be placed after the prefix. The first one is the operation
    /// whose return forced a decision; the rest were the other candidates at that point.
    #[serde(default)]
    pub unplaceable: Vec<OpSummary>,
    /// Reads that were stale in real time (found by a direct pre-check, etcd only).
    #[serde(default)]
    pub stale_reads: Vec<StaleRead>,
    /// Responses that contradict the linearization found (serializable and historical reads).
    #[serde(default)]
    pub mismatches: Vec<Mismatch>,
}

/// The result of a check. `Unknown` is not a pass.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Verdict {
    Linearizable,
    NotLinearizable(Box<Report>),
    Unknown { reason: String },
}

impl Verdict {
    pub fn is_linearizable(&self) -> bool {
        matches!(self, Verdict::Linearizable)
    }
    pub fn is_not_linearizable(&self) -> bool {
        matches!(self, Verdict::NotLinearizable(_))
    }
    pub fn is_unknown(&self) -> bool {
        matches!(self, Verdict::Unknown { .. })
    }
    pub fn report(&self) -> Option<&Report> {
        match self {
            Verdict::NotLinearizable(r) => Some(r),
            _ => None,
        }
    }
}

impl Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Linearizable => write!(f, "linearizable"),
            Verdict::NotLinearizable(r) => write!(f, "{r}"),
            Verdict::Unknown { reason } => write!(f, "unknown (not a pass): {reason}"),
        }
    }
}

fn fmt_time(unit: TimeUnit, t: Option<u64>) -> String {
    match (unit, t) {
        (_, None) => "never".to_string(),
        (TimeUnit::Nanoseconds, Some(t)) => format!("{:.3} ms", t as f64 / 1e6),
        (TimeUnit::Position, Some(t)) => format!("#{t}"),
    }
}

impl OpSummary {
    fn write(&self, f: &mut fmt::Formatter<'_>, unit: TimeUnit, indent: &str) -> fmt::Result {
        let member = match self.member {
            Some(m) => format!(" via member {m}"),
            None => String::new(),
        };
        writeln!(
            f,
            "{indent}op {} (client {}{member}) invoked {} completed {}",
            self.id,
            self.client,
            fmt_time(unit, Some(self.invoke)),
            fmt_time(unit, self.complete)
        )?;
        writeln!(f, "{indent}  request:  {}", self.request)?;
        writeln!(f, "{indent}  response: {}", self.response)
    }
}

impl Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not linearizable under the {} model", self.model)?;
        if let Some(p) = &self.partition {
            write!(f, " (partition {p})")?;
        }
        writeln!(f)?;
        let unit = self.time_unit;
        for s in &self.stale_reads {
            let what = match s.kind {
                StaleKind::StaleRead => "stale read",
                StaleKind::RevisionRegression => "revision went backwards",
            };
            writeln!(
                f,
                "{what}: op {} saw revision {} but op {} had completed with revision {} before it was invoked",
                s.op.id, s.op_revision, s.earlier.id, s.earlier_revision
            )?;
            s.op.write(f, unit, "  ")?;
            writeln!(f, "  earlier:")?;
            s.earlier.write(f, unit, "  ")?;
        }
        for m in &self.mismatches {
            writeln!(
                f,
                "response contradicts the linearization found: {}",
                m.explanation
            )?;
            m.op.write(f, unit, "  ")?;
            writeln!(f, "  expected: {}", m.expected)?;
        }
        if !self.unplaceable.is_empty() {
            let n = self.longest_prefix.len();
            let shown: Vec<String> = self
                .longest_prefix
                .iter()
                .skip(n.saturating_sub(20))
                .map(|id| id.to_string())
                .collect();
            writeln!(
                f,
                "longest linearizable prefix: {n} operations{} [{}]",
                if n > 20 { ", the last 20:" } else { ":" },
                shown.join(", ")
            )?;
            writeln!(f, "state after it: {}", self.state_after_prefix)?;
            writeln!(f, "no operation below can be linearized next:")?;
            for op in &self.unplaceable {
                op.write(f, unit, "  ")?;
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// The search.

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn fingerprint<T: Hash>(value: &T) -> u128 {
    let mut a = DefaultHasher::new();
    value.hash(&mut a);
    let mut b = DefaultHasher::new();
    0x5bd1_e995_u64.hash(&mut b);
    value.hash(&mut b);
    ((a.finish() as u128) << 64) | b.finish() as u128
}

/// The memo's hasher. Its keys are a Zobrist hash and a SipHash fingerprint, both uniformly
/// distributed already, so folding them is a good table hash and much cheaper than hashing
/// them again with SipHash (the memo insert dominated short searches). The set still compares
/// whole keys, so this only affects speed.
#[derive(Clone, Copy, Default)]
struct FoldFingerprints;

impl std::hash::BuildHasher for FoldFingerprints {
    type Hasher = FoldHasher;
    fn build_hasher(&self) -> FoldHasher {
        FoldHasher(0)
    }
}

struct FoldHasher(u64);

impl Hasher for FoldHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Not used by `(u128, u128)`; kept correct for any key.
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ b as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u128(&mut self, i: u128) {
        self.0 = self.0.rotate_left(23) ^ (i as u64) ^ ((i >> 64) as u64);
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Choice {
    Linearize(u32),
    Drop(u32),
}

impl Choice {
    fn op(self) -> u32 {
        match self {
            Choice::Linearize(o) | Choice::Drop(o) => o,
        }
    }
}

struct Frame<S> {
    /// States before the choice was applied.
    states: Vec<S>,
    zobrist: u128,
    choices: Vec<Choice>,
    /// Index of the choice applied at this frame.
    taken: usize,
    /// The lazy resources pending before the choice was applied.
    pending: Vec<u64>,
}

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

/// Linked list of call/return entries. Entry `2k` is the call of op k, `2k+1` its return;
/// `head` is a sentinel.
struct EntryList {
    next: Vec<u32>,
    prev: Vec<u32>,
    head: u32,
}

const NIL: u32 = u32::MAX;

impl EntryList {
    fn new(order: &[u32], n_entries: usize) -> Self {
        let head = n_entries as u32;
        let mut next = vec![NIL; n_entries + 1];
        let mut prev = vec![NIL; n_entries + 1];
        let mut last = head;
        for &e in order {
            next[last as usize] = e;
            prev[e as usize] = last;
            last = e;
        }
        EntryList { next, prev, head }
    }

    fn remove(&mut self, e: u32) {
        let (p, n) = (self.prev[e as usize], self.next[e as usize]);
        self.next[p as usize] = n;
        if n != NIL {
            self.prev[n as usize] = p;
        }
    }

    /// Undo `remove(e)`; valid in LIFO order.
    fn restore(&mut self, e: u32) {
        let (p, n) = (self.prev[e as usize], self.next[e as usize]);
        self.next[p as usize] = e;
        if n != NIL {
            self.prev[n as usize] = e;
        }
    }

    /// Remove an op: its return first, then its call (restored in reverse).
    fn lift(&mut self, op: u32) {
        self.remove(2 * op + 1);
        self.remove(2 * op);
    }

    fn unlift(&mut self, op: u32) {
        self.restore(2 * op);
        self.restore(2 * op + 1);
    }
}

/// The unplaced operations with a `Model::latest_progress`, by that limit: `min_excluding`
/// finds the smallest limit among them in amortised O(1) (a cursor over the sorted list that
/// moves back only when an operation is put back).
struct ProgressLimits {
    /// (limit, op), sorted.
    sorted: Vec<(i64, u32)>,
    /// Position of each op in `sorted` (`u32::MAX`: no limit).
    pos: Vec<u32>,
    lifted: Vec<bool>,
    /// Every entry before it is lifted.
    cursor: usize,
}

impl ProgressLimits {
    fn new(mut sorted: Vec<(i64, u32)>, n: usize) -> Self {
        sorted.sort_unstable();
        let mut pos = vec![u32::MAX; n];
        for (p, &(_, o)) in sorted.iter().enumerate() {
            pos[o as usize] = p as u32;
        }
        ProgressLimits {
            sorted,
            pos,
            lifted: vec![false; n],
            cursor: 0,
        }
    }

    fn lift(&mut self, o: u32) {
        debug_assert!(!self.lifted[o as usize]);
        self.lifted[o as usize] = true;
    }

    fn unlift(&mut self, o: u32) {
        debug_assert!(self.lifted[o as usize]);
        self.lifted[o as usize] = false;
        let p = self.pos[o as usize];
        if p != u32::MAX {
            self.cursor = self.cursor.min(p as usize);
        }
    }

    /// The smallest limit of an unplaced operation other than `o`.
    fn min_excluding(&mut self, o: u32) -> Option<i64> {
        while self.cursor < self.sorted.len() && self.lifted[self.sorted[self.cursor].1 as usize] {
            self.cursor += 1;
        }
        self.sorted[self.cursor..]
            .iter()
            .find(|&&(_, x)| x != o && !self.lifted[x as usize])
            .map(|&(l, _)| l)
    }
}

/// Keep, among the `Linearize` choices of one symmetry class, only the member with the
/// earliest return (ties: lowest index). Choices without a class are kept as they are.
///
/// On return `scratch` holds one entry `(class, best hint of the class, representative)` per
/// class present (sorted by representative), so the caller can order classes by their most
/// promising member.
fn reduce_symmetric<I, O>(
    choices: &mut Vec<Choice>,
    class: &[Option<u64>],
    ops: &[&Op<I, O>],
    hints: &[i64],
    scratch: &mut Vec<(u64, u64, u32)>,
) {
    let mut members: Vec<(u64, u64, u32)> = Vec::new();
    scratch.clear();
    for c in choices.iter() {
        if let Choice::Linearize(o) = *c {
            if let Some(k) = class[o as usize] {
                let op = ops[o as usize];
                members.push((k, op.ret.max(op.call), o));
            }
        }
    }
    if members.len() < 2 {
        return;
    }
    members.sort_unstable();
    // The representative of each class is its first entry after sorting; the hint is the
    // lowest of the class (stored as u64 bits of the i64).
    for &(k, _, o) in members.iter() {
        let h = hints[o as usize];
        match scratch.last_mut() {
            Some(last) if last.0 == k => {
                if h < last.1 as i64 {
                    last.1 = h as u64;
                }
            }
            _ => scratch.push((k, h as u64, o)),
        }
    }
    if scratch.len() == members.len() {
        scratch.clear();
        return;
    }
    let mut keep: Vec<u32> = scratch.iter().map(|e| e.2).collect();
    keep.sort_unstable();
    choices.retain(|c| match *c {
        Choice::Linearize(o) => class[o as usize].is_none() || keep.binary_search(&o).is_ok(),
        Choice::Drop(_) => true,
    });
    debug_assert!(!choices.is_empty());
}

/// Check one partition. `ops` are the partition's operations; `steps` counts every attempted
/// step across partitions and stops the search at `budget`.
pub(crate) fn search<M: Model>(
    model: &M,
    ops: &[&Op<M::Input, M::Output>],
    steps: &mut u64,
    budget: u64,
) -> Outcome {
    let n = ops.len();
    assert!(
        n < (u32::MAX / 2 - 1) as usize,
        "history too long for the entry list"
    );
    if n == 0 {
        return Outcome::Linearizable(vec![]);
    }
    // Entries sorted by time; a call before a return at the same time; ties by op index.
    let mut order: Vec<u32> = (0..2 * n as u32).collect();
    let time = |e: u32| -> (u64, u32) {
        let op = ops[(e / 2) as usize];
        if e & 1 == 0 {
            (op.call, 0)
        } else {
            (op.ret.max(op.call), 1)
        }
    };
    order.sort_by_key(|&e| (time(e), e / 2));
    let mut list = EntryList::new(&order, 2 * n);

    let zob: Vec<u128> = (0..n as u64)
        .map(|i| ((splitmix64(2 * i + 1) as u128) << 64) | splitmix64(2 * i + 2) as u128)
        .collect();
    let hints: Vec<i64> = ops
        .iter()
        .map(|op| model.order_hint(&op.input, op.output.as_ref()))
        .collect();
    let optional: Vec<bool> = ops.iter().map(|op| op.output.is_none()).collect();
    let lazy_capable: Vec<bool> = ops
        .iter()
        .map(|op| op.output.is_none() && model.may_be_lazy(&op.input, op.output.as_ref()))
        .collect();
    // Resources of the run of lazy steps just taken (sorted): the next operation that is not
    // lazy must use all of them.
    let mut pending: Vec<u64> = Vec::new();
    let resources: Vec<Vec<u64>> = ops.iter().map(|op| model.resources(&op.input)).collect();
    // Resource sets used together by one operation: a run of lazy steps over several
    // resources is only worth building when some operation uses them all.
    let multi: Vec<&Vec<u64>> = resources.iter().filter(|r| r.len() > 1).collect();
    let covered = |set: &[u64]| -> bool {
        set.len() <= 1
            || multi
                .iter()
                .any(|m| set.iter().all(|r| m.binary_search(r).is_ok()))
    };
    let mut required_left = optional.iter().filter(|o| !**o).count();
    // Symmetry classes (see `Model::interchangeable_class`); only optional ops may have one.
    let class: Vec<Option<u64>> = ops
        .iter()
        .map(|op| {
            op.output
                .is_none()
                .then(|| model.interchangeable_class(&op.input, op.output.as_ref()))
                .flatten()
        })
        .collect();
    // Scratch for the per-level class reduction: (class, return, op).
    let mut class_best: Vec<(u64, u64, u32)> = Vec::new();
    let mut limits = ProgressLimits::new(
        ops.iter()
            .enumerate()
            .filter(|(_, op)| op.output.is_some())
            .filter_map(|(i, op)| {
                model
                    .latest_progress(&op.input, op.output.as_ref())
                    .map(|l| (l, i as u32))
            })
            .collect(),
        n,
    );

    let mut states: Vec<M::State> = model.init();
    states.sort();
    states.dedup();
    let mut zobrist: u128 = 0;
    let mut cache: HashSet<(u128, u128), FoldFingerprints> = HashSet::default();
    let mut stack: Vec<Frame<M::State>> = Vec::new();

    // Longest prefix, maintained incrementally: `best_choices[..low_water]` always equals the
    // current stack's choices.
    let mut best_choices: Vec<Choice> = Vec::new();
    let mut best_unplaceable: Vec<usize> = Vec::new();
    let mut low_water: usize = 0;
    let mut have_best = false;

    // Choices of the level being explored and the next index to try.
    let mut choices: Vec<Choice> = Vec::new();
    let mut next_choice: usize = 0;
    let mut fresh_level = true;

    loop {
        if fresh_level {
            if required_left == 0 {
                let lin = stack
                    .iter()
                    .filter_map(|f| match f.choices[f.taken] {
                        Choice::Linearize(o) => Some(o as usize),
                        Choice::Drop(_) => None,
                    })
                    .collect();
                return Outcome::Linearizable(lin);
            }
            choices.clear();
            let mut e = list.next[list.head as usize];
            let mut first_return = None;
            while e != NIL {
                if e & 1 == 1 {
                    first_return = Some(e / 2);
                    break;
                }
                let op = ops[(e / 2) as usize];
                if !states
                    .iter()
                    .all(|st| model.quick_reject(st, &op.input, op.output.as_ref()))
                {
                    choices.push(Choice::Linearize(e / 2));
                }
                e = list.next[e as usize];
            }
            reduce_symmetric(&mut choices, &class, ops, &hints, &mut class_best);
            // A class is tried where its most promising member would be. (Cached keys: the
            // class lookup is linear, and a level can hold hundreds of choices.)
            choices.sort_by_cached_key(|c| {
                let o = c.op() as usize;
                match class[o] {
                    Some(_) => class_best
                        .iter()
                        .find(|e| e.2 == o as u32)
                        .map_or(hints[o], |e| e.1 as i64),
                    None => hints[o],
                }
            });
            if let Some(r) = first_return {
                if optional[r as usize] {
                    choices.push(Choice::Drop(r));
                }
            }
            if !pending.is_empty() {
                // Drops are excluded: a drop could equally have happened before the lazy
                // steps, at the level where the first of them was chosen. Whether a lazy
                // step is allowed is decided after it is applied (below).
                choices.retain(|c| match *c {
                    Choice::Linearize(o) => {
                        lazy_capable[o as usize]
                            || pending
                                .iter()
                                .all(|r| resources[o as usize].binary_search(r).is_ok())
                    }
                    Choice::Drop(_) => false,
                });
            }
            next_choice = 0;
            fresh_level = false;
        }

        // Try the remaining choices of this level.
        let mut advanced = false;
        while next_choice < choices.len() {
            let idx = next_choice;
            next_choice += 1;
            let choice = choices[idx];
            *steps += 1;
            if *steps > budget {
                return Outcome::OutOfBudget;
            }
            let o = choice.op();
            let mut new_pending: Vec<u64> = Vec::new();
            let new_states = match choice {
                Choice::Drop(_) => states.clone(),
                Choice::Linearize(_) => {
                    let op = ops[o as usize];
                    let mut next: Vec<M::State> = Vec::new();
                    let mut lazy: Option<Option<u64>> = None;
                    for s in &states {
                        for n in model.step(s, &op.input, op.output.as_ref()) {
                            if lazy_capable[o as usize] {
                                let r = model.lazy_resource(&op.input, op.output.as_ref(), s, &n);
                                lazy = Some(match lazy {
                                    None => r,
                                    Some(prev) if prev == r => r,
                                    Some(_) => None,
                                });
                            }
                            next.push(n);
                        }
                    }
                    if next.is_empty() {
                        continue;
                    }
                    let uses = &resources[o as usize];
                    match lazy.flatten() {
                        None => {
                            if !pending.iter().all(|r| uses.binary_search(r).is_ok()) {
                                continue;
                            }
                        }
                        // Two lazy steps on one resource within a run (nothing used it in
                        // between, and the lazy steps between them touch other resources
                        // only, so they commute) compose to no change at all (for etcd: a
                        // grant and a revoke of a lease with no keys), or cannot both
                        // succeed. A linearization holding such a pair stays valid without
                        // both (they are optional), so skipping it is exact; without this the
                        // search burns every subset of such pairs.
                        Some(x) if pending.binary_search(&x).is_ok() => continue,
                        Some(x) => {
                            new_pending = pending
                                .iter()
                                .copied()
                                .filter(|r| uses.binary_search(r).is_err())
                                .collect();
                            if let Err(pos) = new_pending.binary_search(&x) {
                                new_pending.insert(pos, x);
                            }
                            if !covered(&new_pending) {
                                continue;
                            }
                        }
                    }
                    next.sort();
                    next.dedup();
                    next
                }
            };
            // Progress pruning: a required operation whose last chance has passed.
            if let Some(limit) = limits.min_excluding(o) {
                if new_states.iter().all(|st| model.progress(st) > limit) {
                    continue;
                }
            }
            let new_zobrist = zobrist ^ zob[o as usize];
            if !cache.insert((new_zobrist, fingerprint(&(&new_states, &new_pending)))) {
                continue;
            }
            list.lift(o);
            limits.lift(o);
            if !optional[o as usize] {
                required_left -= 1;
            }
            let old_states = std::mem::replace(&mut states, new_states);
            stack.push(Frame {
                states: old_states,
                zobrist,
                choices: std::mem::take(&mut choices),
                taken: idx,
                pending,
            });
            zobrist = new_zobrist;
            pending = std::mem::take(&mut new_pending);
            fresh_level = true;
            advanced = true;
            break;
        }
        if advanced {
            continue;
        }

        // Every choice at this level failed: record the longest prefix, then backtrack.
        let depth = stack.len();
        if depth > best_choices.len() || !have_best {
            have_best = true;
            best_choices.truncate(low_water);
            for f in &stack[low_water..] {
                best_choices.push(f.choices[f.taken]);
            }
            low_water = depth;
            // The op whose return forced the decision first, then the other candidates.
            let mut e = list.next[list.head as usize];
            while e != NIL && e & 1 == 0 {
                e = list.next[e as usize];
            }
            best_unplaceable.clear();
            if e != NIL {
                best_unplaceable.push((e / 2) as usize);
            }
            for c in &choices {
                if !best_unplaceable.contains(&(c.op() as usize)) {
                    best_unplaceable.push(c.op() as usize);
                }
            }
        }
        let Some(frame) = stack.pop() else {
            let prefix = best_choices
                .iter()
                .filter_map(|c| match c {
                    Choice::Linearize(o) => Some(*o as usize),
                    Choice::Drop(_) => None,
                })
                .collect();
            return Outcome::Violation {
                prefix,
                unplaceable: best_unplaceable,
            };
        };
        low_water = low_water.min(stack.len());
        let o = frame.choices[frame.taken].op();
        list.unlift(o);
        limits.unlift(o);
        if !optional[o as usize] {
            required_left += 1;
        }
        states = frame.states;
        zobrist = frame.zobrist;
        pending = frame.pending;
        choices = frame.choices;
        next_choice = frame.taken + 1;
    }
}

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
/// Several partitions are searched in rounds with a doubling step allowance each (restarting a
/// partition that did not finish), so that one partition with a huge search space cannot hide
/// a violation that another partition shows quickly; porcupine gets the same effect by
/// checking partitions in parallel. Every step of every round counts against the budget.
pub fn check_detailed<M: Model>(
    model: &M,
    ops: &[Op<M::Input, M::Output>],
    budget_steps: u64,
    time_unit: TimeUnit,
) -> Checked {
    let parts = model.partition(ops);
    let mut done: Vec<Option<Vec<usize>>> = vec![None; parts.len()];
    let mut spent = 0u64;
    let mut allowance: u64 = if parts.len() > 1 {
        20_000
    } else {
        budget_steps
    };
    loop {
        let mut unfinished = None;
        for (pi, part) in parts.iter().enumerate() {
            if done[pi].is_some() {
                continue;
            }
            let part_ops: Vec<&Op<M::Input, M::Output>> =
                part.ops.iter().map(|&i| &ops[i]).collect();
            let limit = allowance.min(budget_steps - spent);
            let mut steps = 0u64;
            let outcome = search(model, &part_ops, &mut steps, limit);
            spent += steps.min(limit);
            match outcome {
                Outcome::Linearizable(order) => {
                    done[pi] = Some(order.into_iter().map(|i| part.ops[i]).collect());
                }
                Outcome::OutOfBudget => {
                    unfinished.get_or_insert(pi);
                }
                Outcome::Violation {
                    prefix,
                    unplaceable,
                } => {
                    return Checked {
                        verdict: violation(model, part, &part_ops, prefix, unplaceable, time_unit),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn op(id: u64, call: u64, ret: u64) -> Op<(), ()> {
        Op {
            id,
            client: id,
            call,
            ret,
            input: (),
            output: None,
        }
    }

    #[test]
    fn symmetric_choices_keep_the_earliest_return_of_each_class() {
        let ops = [
            op(0, 0, 30),
            op(1, 0, 10),
            op(2, 0, 10),
            op(3, 0, 5),
            op(4, 0, 1),
        ];
        let refs: Vec<&Op<(), ()>> = ops.iter().collect();
        // Ops 0-2 form class 7, op 3 class 8 (alone), op 4 has none.
        let class = [Some(7), Some(7), Some(7), Some(8), None];
        let hints = [-5, 3, 4, 9, 0];
        let mut choices: Vec<Choice> = (0..5).map(Choice::Linearize).collect();
        choices.push(Choice::Drop(4));
        let mut scratch = Vec::new();
        reduce_symmetric(&mut choices, &class, &refs, &hints, &mut scratch);
        // Op 1: earliest return of class 7 (tie with op 2 broken by index).
        assert_eq!(
            choices,
            vec![
                Choice::Linearize(1),
                Choice::Linearize(3),
                Choice::Linearize(4),
                Choice::Drop(4)
            ]
        );
        // Class 7 is tried where its best hint (op 0's) would be.
        let e = scratch.iter().find(|e| e.0 == 7).expect("class 7");
        assert_eq!((e.1 as i64, e.2), (-5, 1));
    }

    #[test]
    fn progress_limits_track_the_smallest_unplaced_limit() {
        let mut l = ProgressLimits::new(vec![(5, 0), (3, 1), (9, 2)], 4);
        assert_eq!(l.min_excluding(3), Some(3));
        assert_eq!(l.min_excluding(1), Some(5));
        l.lift(1);
        assert_eq!(l.min_excluding(3), Some(5));
        l.lift(0);
        assert_eq!(l.min_excluding(2), None);
        l.unlift(0);
        l.unlift(1);
        assert_eq!(l.min_excluding(3), Some(3));
    }
}
