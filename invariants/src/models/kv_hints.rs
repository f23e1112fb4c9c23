//! Order hints for the kv model, read off the history: where each write shows up in the values
//! the gets returned.
//!
//! Appends and puts never fail in the kv model; only a get can tell that a guessed order of
//! concurrent writes was wrong, often many levels deeper. With 50 clients appending
//! concurrently, trying candidates in call order makes the search backtrack over orders of
//! appends that the next get already shows. The gets spell the order out: an append's value
//! sits at a fixed offset of every later value of its key (until a put replaces it). So each
//! write gets a hint "(epoch, offset)" (an epoch is what followed one put; epochs are numbered
//! by the put's call time), each get the length of what it returned, and the search tries the
//! candidates in that order.
//!
//! Hints only change the order in which the search tries candidates, never which
//! linearizations it accepts: any hint, even a wrong one, gives the same verdict (at most
//! more steps).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::kv::{KvInput, KvModel, KvOutput};
use crate::linearizability::{Model, Op, Partition};

/// Bits of a hint below the epoch: offsets and lengths (twice a byte count, plus one) fit.
const EPOCH_SHIFT: u32 = 40;
/// Where an append that no get shows is tried: after the shown ones of its epoch.
const UNSEEN_OFFSET: i64 = 1 << (EPOCH_SHIFT - 1);

/// `KvModel` with order hints computed from the history it checks (`HintedKvModel::new`).
pub struct HintedKvModel {
    keys: HashMap<String, KeyHints>,
}

/// The hints of one key. (Looked up by `&str`: `order_hint` allocates nothing.)
#[derive(Default)]
struct KeyHints {
    /// Value written -> hint, for puts and appends.
    writes: HashMap<String, i64>,
    /// The values put, in call order (epoch i + 1 starts with the i-th).
    puts: Vec<String>,
}

impl KeyHints {
    /// The epoch a returned value belongs to: that of the longest value put it starts with.
    fn epoch_of(&self, value: &str) -> i64 {
        self.puts
            .iter()
            .enumerate()
            .filter(|(_, p)| !p.is_empty() && value.starts_with(p.as_str()))
            .max_by_key(|(i, p)| (p.len(), std::cmp::Reverse(*i)))
            .map_or(0, |(i, _)| i as i64 + 1)
    }

    fn get_hint(&self, value: &str) -> i64 {
        (self.epoch_of(value) << EPOCH_SHIFT) + 2 * value.len() as i64
    }
}

impl HintedKvModel {
    /// The hints of the history `ops`.
    pub fn new(ops: &[Op<KvInput, KvOutput>]) -> Self {
        let mut by_key: BTreeMap<&str, Vec<&Op<KvInput, KvOutput>>> = BTreeMap::new();
        for op in ops {
            by_key.entry(op.input.key()).or_default().push(op);
        }
        let keys = by_key
            .into_iter()
            .map(|(key, ops)| (key.to_string(), key_hints(&ops)))
            .collect();
        HintedKvModel { keys }
    }
}

/// The hints of one key's operations `ops` (in call order).
fn key_hints(ops: &[&Op<KvInput, KvOutput>]) -> KeyHints {
    let mut hints = KeyHints::default();
    // Epoch 0 starts from the empty value; epoch e >= 1 from the e-th put (call order).
    let put_calls: Vec<u64> = ops
        .iter()
        .filter_map(|op| match &op.input {
            KvInput::Put { value, .. } => {
                hints.puts.push(value.clone());
                Some(op.call)
            }
            _ => None,
        })
        .collect();
    let mut longest: BTreeMap<i64, &str> = BTreeMap::new();
    for op in ops {
        if let Some(KvOutput::Get(v)) = &op.output {
            let l = longest.entry(hints.epoch_of(v)).or_insert("");
            if v.len() > l.len() {
                *l = v;
            }
        }
    }
    let appends: BTreeSet<&str> = ops
        .iter()
        .filter_map(|op| match &op.input {
            KvInput::Append { value, .. } if !value.is_empty() => Some(value.as_str()),
            _ => None,
        })
        .collect();
    let lengths: BTreeSet<usize> = appends.iter().map(|v| v.len()).collect();
    for (&epoch, value) in &longest {
        let start = match epoch {
            0 => 0,
            e => hints.puts[e as usize - 1].len(),
        };
        place_appends(&mut hints.writes, epoch, value, start, &appends, &lengths);
    }
    for (e, v) in hints.puts.iter().enumerate() {
        hints
            .writes
            .entry(v.clone())
            .or_insert((e as i64 + 1) << EPOCH_SHIFT);
    }
    // An append no get shows: at the end of the epoch of the last put called before it.
    for op in ops {
        if let KvInput::Append { value, .. } = &op.input {
            let epoch = put_calls.iter().filter(|&&call| call < op.call).count() as i64;
            hints
                .writes
                .entry(value.clone())
                .or_insert((epoch << EPOCH_SHIFT) + UNSEEN_OFFSET);
        }
    }
    hints
}

/// Walk `value` (the longest value returned in `epoch`) from byte `start`, matching append
/// values greedily (the shortest length that matches), and hint each at its offset. The walk
/// stops where no append value matches.
fn place_appends(
    writes: &mut HashMap<String, i64>,
    epoch: i64,
    value: &str,
    start: usize,
    appends: &BTreeSet<&str>,
    lengths: &BTreeSet<usize>,
) {
    let mut at = start;
    'walk: while at < value.len() {
        for &len in lengths {
            let Some(piece) = value.get(at..at + len) else {
                continue;
            };
            if appends.contains(piece) {
                let hint = (epoch << EPOCH_SHIFT) + 2 * at as i64 + 1;
                writes.entry(piece.to_string()).or_insert(hint);
                at += len;
                continue 'walk;
            }
        }
        break;
    }
}

impl Model for HintedKvModel {
    type State = String;
    type Input = KvInput;
    type Output = KvOutput;

    fn name(&self) -> String {
        KvModel.name()
    }

    fn init(&self) -> Vec<String> {
        KvModel.init()
    }

    fn step_into(
        &self,
        state: &String,
        input: &KvInput,
        output: Option<&KvOutput>,
        out: &mut Vec<String>,
    ) {
        KvModel.step_into(state, input, output, out)
    }

    fn quick_reject(&self, state: &String, input: &KvInput, output: Option<&KvOutput>) -> bool {
        KvModel.quick_reject(state, input, output)
    }

    fn partition(&self, ops: &[Op<KvInput, KvOutput>]) -> Vec<Partition> {
        KvModel.partition(ops)
    }

    fn order_hint(&self, input: &KvInput, output: Option<&KvOutput>) -> i64 {
        let Some(key) = self.keys.get(input.key()) else {
            return 0;
        };
        let found = match (input, output) {
            (KvInput::Get { .. }, Some(KvOutput::Get(v))) => Some(key.get_hint(v)),
            (KvInput::Put { value, .. } | KvInput::Append { value, .. }, _) => {
                key.writes.get(value.as_str()).copied()
            }
            _ => None,
        };
        found.unwrap_or(0)
    }

    fn describe_input(&self, input: &KvInput) -> String {
        KvModel.describe_input(input)
    }

    fn describe_output(&self, output: Option<&KvOutput>) -> String {
        KvModel.describe_output(output)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::check_kv_ops;
    use crate::linearizability::{Verdict, NEVER};

    fn op(
        client: u64,
        call: u64,
        ret: u64,
        input: KvInput,
        output: Option<KvOutput>,
    ) -> Op<KvInput, KvOutput> {
        Op {
            id: 0,
            client,
            call,
            ret,
            input,
            output,
        }
    }
    fn append(v: &str) -> KvInput {
        KvInput::Append {
            key: "k".into(),
            value: v.into(),
        }
    }
    fn get() -> KvInput {
        KvInput::Get { key: "k".into() }
    }
    fn got(v: &str) -> Option<KvOutput> {
        Some(KvOutput::Get(v.into()))
    }

    /// Appends are hinted at their offset in the longest value returned, gets at the length
    /// they returned, a put starts an epoch after the one before it; an unseen append goes
    /// to the end of its epoch.
    #[test]
    fn hints_follow_the_values_returned() {
        let ops = vec![
            op(1, 0, 10, append("b1"), Some(KvOutput::Ok)),
            op(2, 0, 10, append("a1"), Some(KvOutput::Ok)),
            op(3, 11, 12, get(), got("a1b1")),
            op(
                1,
                13,
                20,
                KvInput::Put {
                    key: "k".into(),
                    value: "p".into(),
                },
                Some(KvOutput::Ok),
            ),
            op(2, 14, NEVER, append("zz"), None),
            op(3, 21, 22, get(), got("p")),
        ];
        let m = HintedKvModel::new(&ops);
        let hint = |o: &Op<KvInput, KvOutput>| m.order_hint(&o.input, o.output.as_ref());
        let e1 = 1i64 << EPOCH_SHIFT;
        assert_eq!(hint(&ops[1]), 1, "a1 at offset 0");
        assert_eq!(hint(&ops[0]), 2 * 2 + 1, "b1 at offset 2");
        assert_eq!(hint(&ops[2]), 2 * 4);
        assert_eq!(hint(&ops[3]), e1);
        assert_eq!(hint(&ops[4]), e1 + UNSEEN_OFFSET);
        assert_eq!(hint(&ops[5]), e1 + 2);
    }

    /// Hints only order the search: two gets that disagree on the order of two appends are
    /// still not linearizable, whichever order the hints suggest; and a history whose gets
    /// agree is linearizable.
    #[test]
    fn hints_never_change_a_verdict() {
        let base = vec![
            op(1, 0, 10, append("a"), Some(KvOutput::Ok)),
            op(2, 0, 10, append("b"), Some(KvOutput::Ok)),
            op(3, 11, 12, get(), got("ab")),
        ];
        assert_eq!(check_kv_ops(&base, 10_000), Verdict::Linearizable);
        let mut bad = base.clone();
        bad.push(op(4, 13, 14, get(), got("ba")));
        assert!(matches!(
            check_kv_ops(&bad, 10_000),
            Verdict::NotLinearizable(_)
        ));
        // A get that overlaps both appends and shows only the second one hinted.
        let mut bad = base;
        bad.push(op(4, 1, 2, get(), got("b")));
        assert!(matches!(
            check_kv_ops(&bad, 10_000),
            Verdict::NotLinearizable(_)
        ));
    }
}
