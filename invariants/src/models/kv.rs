//! A key/value map with get, put and append (porcupine's kv test), checked per key.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::linearizability::{Model, Op, Partition};

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum KvInput {
    Get { key: String },
    Put { key: String, value: String },
    Append { key: String, value: String },
}

impl KvInput {
    pub fn key(&self) -> &str {
        match self {
            KvInput::Get { key } | KvInput::Put { key, .. } | KvInput::Append { key, .. } => key,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum KvOutput {
    /// The full value; "" when the key is absent.
    Get(String),
    Ok,
}

/// The map restricted to one key: its value ("" when absent). The history is partitioned per
/// key, so one key's state is enough.
pub struct KvModel;

impl Model for KvModel {
    type State = String;
    type Input = KvInput;
    type Output = KvOutput;

    fn name(&self) -> String {
        "kv".to_string()
    }

    fn init(&self) -> Vec<String> {
        vec![String::new()]
    }

    fn step_into(
        &self,
        state: &String,
        input: &KvInput,
        output: Option<&KvOutput>,
        out: &mut Vec<String>,
    ) {
        let next = match (input, output) {
            (KvInput::Get { .. }, None) => state.clone(),
            (KvInput::Get { .. }, Some(KvOutput::Get(v))) if v == state => state.clone(),
            (KvInput::Put { value, .. }, None | Some(KvOutput::Ok)) => value.clone(),
            (KvInput::Append { value, .. }, None | Some(KvOutput::Ok)) => {
                let mut s = String::with_capacity(state.len() + value.len());
                s.push_str(state);
                s.push_str(value);
                s
            }
            _ => return,
        };
        out.push(next);
    }

    /// A get that saw another value fails from this state (what `step_into` checks first).
    fn quick_reject(&self, state: &String, input: &KvInput, output: Option<&KvOutput>) -> bool {
        matches!((input, output), (KvInput::Get { .. }, Some(KvOutput::Get(v))) if v != state)
    }

    fn partition(&self, ops: &[Op<KvInput, KvOutput>]) -> Vec<Partition> {
        let mut by_key: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (i, op) in ops.iter().enumerate() {
            by_key.entry(op.input.key()).or_default().push(i);
        }
        by_key
            .into_iter()
            .map(|(k, ops)| Partition {
                label: Some(format!("key {k:?}")),
                ops,
            })
            .collect()
    }

    fn describe_input(&self, input: &KvInput) -> String {
        match input {
            KvInput::Get { key } => format!("get {key:?}"),
            KvInput::Put { key, value } => format!("put {key:?} {value:?}"),
            KvInput::Append { key, value } => format!("append {key:?} {value:?}"),
        }
    }

    fn describe_output(&self, output: Option<&KvOutput>) -> String {
        match output {
            None => "unknown outcome".to_string(),
            Some(KvOutput::Get(v)) => format!("{v:?}"),
            Some(KvOutput::Ok) => "ok".to_string(),
        }
    }
}

/// The same model without the per-key split (for comparison with porcupine's single-history
/// timings): the state is the whole map.
pub struct KvWholeModel;

impl Model for KvWholeModel {
    type State = BTreeMap<String, String>;
    type Input = KvInput;
    type Output = KvOutput;

    fn name(&self) -> String {
        "kv (unpartitioned)".to_string()
    }

    fn init(&self) -> Vec<Self::State> {
        vec![BTreeMap::new()]
    }

    fn step_into(
        &self,
        state: &Self::State,
        input: &KvInput,
        output: Option<&KvOutput>,
        out: &mut Vec<Self::State>,
    ) {
        let key = input.key().to_string();
        let current = state.get(&key).cloned().unwrap_or_default();
        out.extend(KvModel.step(&current, input, output).into_iter().map(|v| {
            let mut s = state.clone();
            if v.is_empty() {
                s.remove(&key);
            } else {
                s.insert(key.clone(), v);
            }
            s
        }))
    }
}
