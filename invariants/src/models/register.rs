//! One register with read, write and compare-and-set (Jepsen's etcd register test).
//! The register starts absent (`None`, Jepsen's nil).

use serde::{Deserialize, Serialize};

use crate::linearizability::Model;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RegisterInput {
    Read,
    Write(i64),
    /// Compare-and-set: if the value is `.0`, set it to `.1`.
    Cas(i64, i64),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RegisterOutput {
    Read(Option<i64>),
    Write,
    /// Whether the CAS applied (`false`: the value was not the expected one).
    Cas(bool),
}

pub struct RegisterModel;

impl Model for RegisterModel {
    type State = Option<i64>;
    type Input = RegisterInput;
    type Output = RegisterOutput;

    fn name(&self) -> String {
        "register".to_string()
    }

    fn init(&self) -> Vec<Option<i64>> {
        vec![None]
    }

    fn step_into(
        &self,
        state: &Option<i64>,
        input: &RegisterInput,
        output: Option<&RegisterOutput>,
        out: &mut Vec<Option<i64>>,
    ) {
        let next = match (input, output) {
            (RegisterInput::Read, None) => *state,
            (RegisterInput::Read, Some(RegisterOutput::Read(v))) if v == state => *state,
            (RegisterInput::Write(v), None | Some(RegisterOutput::Write)) => Some(*v),
            (RegisterInput::Cas(from, to), None) => {
                if *state == Some(*from) {
                    Some(*to)
                } else {
                    *state
                }
            }
            (RegisterInput::Cas(from, to), Some(RegisterOutput::Cas(applied))) => {
                let matches = *state == Some(*from);
                match (matches, applied) {
                    (true, true) => Some(*to),
                    (false, false) => *state,
                    _ => return,
                }
            }
            _ => return,
        };
        out.push(next);
    }

    /// Unknown writes of one value, and unknown CASes with the same pair, change the state
    /// identically. Classes are exact (no hashing): values in [0, 2^31) only, writes as the
    /// value itself, CASes above 2^62; other values get no class.
    fn interchangeable_class(
        &self,
        input: &RegisterInput,
        output: Option<&RegisterOutput>,
    ) -> Option<u64> {
        const SMALL: std::ops::Range<i64> = 0..(1 << 31);
        if output.is_some() {
            return None;
        }
        match *input {
            RegisterInput::Write(v) if SMALL.contains(&v) => Some(v as u64),
            RegisterInput::Cas(a, b) if SMALL.contains(&a) && SMALL.contains(&b) => {
                Some((1 << 62) | ((a as u64) << 31) | b as u64)
            }
            _ => None,
        }
    }

    fn describe_input(&self, input: &RegisterInput) -> String {
        match input {
            RegisterInput::Read => "read".to_string(),
            RegisterInput::Write(v) => format!("write {v}"),
            RegisterInput::Cas(a, b) => format!("cas {a} -> {b}"),
        }
    }

    fn describe_output(&self, output: Option<&RegisterOutput>) -> String {
        match output {
            None => "unknown outcome".to_string(),
            Some(RegisterOutput::Read(None)) => "read nil".to_string(),
            Some(RegisterOutput::Read(Some(v))) => format!("read {v}"),
            Some(RegisterOutput::Write) => "ok".to_string(),
            Some(RegisterOutput::Cas(true)) => "cas applied".to_string(),
            Some(RegisterOutput::Cas(false)) => "cas failed (value differed)".to_string(),
        }
    }

    fn describe_state(&self, state: &Option<i64>) -> String {
        match state {
            None => "nil".to_string(),
            Some(v) => v.to_string(),
        }
    }
}
