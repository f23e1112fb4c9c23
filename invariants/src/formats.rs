//! Parsers for the recorded histories in `shared/data/porcupine` (see its README) and a
//! checking function per format. Times in these histories are line numbers.

use std::collections::BTreeMap;

use crate::linearizability::{check, Op, TimeUnit, Verdict, NEVER};
use crate::models::kv::{KvInput, KvModel, KvOutput, KvWholeModel};
use crate::models::register::{RegisterInput, RegisterModel, RegisterOutput};

pub type RegisterOp = Op<RegisterInput, RegisterOutput>;
pub type KvOp = Op<KvInput, KvOutput>;

/// A line that could not be understood.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    pub message: String,
}

fn err(line: usize, message: impl Into<String>) -> ParseError {
    ParseError {
        line,
        message: message.into(),
    }
}

fn parse_register_value(line: usize, tok: &str) -> Result<Option<i64>, ParseError> {
    if tok == "nil" {
        return Ok(None);
    }
    tok.parse::<i64>()
        .map(Some)
        .map_err(|_| err(line, format!("expected nil or an integer, found {tok:?}")))
}

fn parse_cas_args(line: usize, toks: &[&str]) -> Result<(i64, i64), ParseError> {
    let joined = toks.join(" ");
    let inner = joined
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .ok_or_else(|| err(line, format!("expected [A B] for :cas, found {joined:?}")))?;
    let parts: Vec<&str> = inner.split_whitespace().collect();
    if parts.len() != 2 {
        return Err(err(line, format!("expected two values in {joined:?}")));
    }
    let a = parts[0]
        .parse()
        .map_err(|_| err(line, format!("bad cas value {:?}", parts[0])))?;
    let b = parts[1]
        .parse()
        .map_err(|_| err(line, format!("bad cas value {:?}", parts[1])))?;
    Ok((a, b))
}

/// Parse a Jepsen etcd register log (`INFO  jepsen.util - P :type :f value` lines).
///
/// Reads that failed or never completed are dropped (they have no effect); `:fail` writes are
/// dropped (they did not happen); `:fail` CASes are kept as CASes that found another value;
/// `:info` and never-completed writes/CASes are optional operations whose return is at
/// +infinity. Times are line numbers.
pub fn parse_jepsen_register(text: &str) -> Result<Vec<RegisterOp>, ParseError> {
    const MARK: &str = "jepsen.util - ";
    let mut open: BTreeMap<u64, (usize, RegisterInput)> = BTreeMap::new();
    let mut ops: Vec<RegisterOp> = Vec::new();
    let mut finish = |proc_: u64, call: usize, input: RegisterInput, ret: u64, output| {
        ops.push(Op {
            id: 0,
            client: proc_,
            call: call as u64,
            ret,
            input,
            output,
        });
    };
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let Some(pos) = raw.find(MARK) else { continue };
        let toks: Vec<&str> = raw[pos + MARK.len()..].split_whitespace().collect();
        if toks.len() < 3 {
            return Err(err(line, "expected `process :type :f value`"));
        }
        let proc_: u64 = toks[0]
            .parse()
            .map_err(|_| err(line, format!("process {:?} is not a number", toks[0])))?;
        let kind = toks[1];
        let f = toks[2];
        let args = &toks[3..];
        match kind {
            ":invoke" => {
                let input = match f {
                    ":read" => RegisterInput::Read,
                    ":write" => {
                        let v = args
                            .first()
                            .ok_or_else(|| err(line, "write without a value"))?;
                        RegisterInput::Write(
                            parse_register_value(line, v)?
                                .ok_or_else(|| err(line, "write of nil"))?,
                        )
                    }
                    ":cas" => {
                        let (a, b) = parse_cas_args(line, args)?;
                        RegisterInput::Cas(a, b)
                    }
                    other => return Err(err(line, format!("unknown function {other}"))),
                };
                if let Some((prev, _)) = open.insert(proc_, (line, input)) {
                    return Err(err(
                        line,
                        format!("process {proc_} invoked again while its operation from line {prev} is open"),
                    ));
                }
            }
            ":ok" | ":fail" | ":info" => {
                let (call, input) = open.remove(&proc_).ok_or_else(|| {
                    err(
                        line,
                        format!("process {proc_} completes an operation it never invoked"),
                    )
                })?;
                let f_matches = matches!(
                    (f, input),
                    (":read", RegisterInput::Read)
                        | (":write", RegisterInput::Write(_))
                        | (":cas", RegisterInput::Cas(..))
                );
                if !f_matches {
                    return Err(err(
                        line,
                        format!("{f} does not match the invoked {input:?}"),
                    ));
                }
                match (kind, input) {
                    (":ok", RegisterInput::Read) => {
                        let v = args
                            .first()
                            .ok_or_else(|| err(line, "read without a value"))?;
                        let v = parse_register_value(line, v)?;
                        finish(
                            proc_,
                            call,
                            input,
                            line as u64,
                            Some(RegisterOutput::Read(v)),
                        );
                    }
                    (":ok", RegisterInput::Write(_)) => {
                        finish(proc_, call, input, line as u64, Some(RegisterOutput::Write))
                    }
                    (":ok", RegisterInput::Cas(..)) => finish(
                        proc_,
                        call,
                        input,
                        line as u64,
                        Some(RegisterOutput::Cas(true)),
                    ),
                    (":fail", RegisterInput::Cas(..)) => finish(
                        proc_,
                        call,
                        input,
                        line as u64,
                        Some(RegisterOutput::Cas(false)),
                    ),
                    // Failed reads/writes did nothing; unknown reads have no effect.
                    (":fail", _) | (":info", RegisterInput::Read) => {}
                    (":info", _) => finish(proc_, call, input, NEVER, None),
                    _ => unreachable!("kind is one of :ok :fail :info"),
                }
            }
            other => return Err(err(line, format!("unknown type {other}"))),
        }
    }
    for (proc_, (call, input)) in open {
        if input != RegisterInput::Read {
            finish(proc_, call, input, NEVER, None);
        }
    }
    ops.sort_by_key(|op| (op.call, op.client));
    for (i, op) in ops.iter_mut().enumerate() {
        op.id = i as u64;
    }
    Ok(ops)
}

/// A value in porcupine's EDN-like kv lines.
#[derive(Debug, PartialEq, Eq)]
enum Edn {
    Nil,
    Int(i64),
    Keyword(String),
    Str(String),
}

fn parse_edn_map(line: usize, text: &str) -> Result<BTreeMap<String, Edn>, ParseError> {
    let t = text.trim();
    let inner = t
        .strip_prefix('{')
        .and_then(|s| s.strip_suffix('}'))
        .ok_or_else(|| err(line, "expected a map in braces"))?;
    let chars: Vec<char> = inner.chars().collect();
    let mut i = 0;
    let mut map = BTreeMap::new();
    let skip_ws = |i: &mut usize| {
        while *i < chars.len() && (chars[*i].is_whitespace() || chars[*i] == ',') {
            *i += 1;
        }
    };
    let word = |i: &mut usize| -> String {
        let start = *i;
        while *i < chars.len() && !chars[*i].is_whitespace() && chars[*i] != ',' {
            *i += 1;
        }
        chars[start..*i].iter().collect()
    };
    loop {
        skip_ws(&mut i);
        if i >= chars.len() {
            break;
        }
        if chars[i] != ':' {
            return Err(err(
                line,
                format!("expected a :keyword at column {}", i + 2),
            ));
        }
        let key = word(&mut i)[1..].to_string();
        skip_ws(&mut i);
        if i >= chars.len() {
            return Err(err(line, format!("missing value for :{key}")));
        }
        let value = if chars[i] == '"' {
            i += 1;
            let mut s = String::new();
            loop {
                match chars.get(i) {
                    None => return Err(err(line, format!("unterminated string for :{key}"))),
                    Some('"') => {
                        i += 1;
                        break;
                    }
                    Some('\\') => {
                        let c = chars
                            .get(i + 1)
                            .ok_or_else(|| err(line, "dangling escape"))?;
                        s.push(match c {
                            'n' => '\n',
                            't' => '\t',
                            other => *other,
                        });
                        i += 2;
                    }
                    Some(c) => {
                        s.push(*c);
                        i += 1;
                    }
                }
            }
            Edn::Str(s)
        } else {
            let w = word(&mut i);
            if w == "nil" {
                Edn::Nil
            } else if let Some(k) = w.strip_prefix(':') {
                Edn::Keyword(k.to_string())
            } else {
                Edn::Int(
                    w.parse()
                        .map_err(|_| err(line, format!("bad value {w:?} for :{key}")))?,
                )
            }
        };
        map.insert(key, value);
    }
    Ok(map)
}

/// Parse porcupine's kv histories (`{:process 0, :type :invoke, :f :append, :key "0",
/// :value "x 0 0 y"}` per line). Times are line numbers; invokes never completed are optional
/// (gets among them are dropped); `:fail` completions did not happen and are dropped.
pub fn parse_porcupine_kv(text: &str) -> Result<Vec<KvOp>, ParseError> {
    let mut open: BTreeMap<i64, (usize, KvInput)> = BTreeMap::new();
    let mut ops: Vec<KvOp> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let map = parse_edn_map(line, raw)?;
        let get = |k: &str| map.get(k).ok_or_else(|| err(line, format!("missing :{k}")));
        let Edn::Int(process) = get("process")? else {
            return Err(err(line, ":process must be an integer"));
        };
        let Edn::Keyword(kind) = get("type")? else {
            return Err(err(line, ":type must be a keyword"));
        };
        let Edn::Keyword(f) = get("f")? else {
            return Err(err(line, ":f must be a keyword"));
        };
        let Edn::Str(key) = get("key")? else {
            return Err(err(line, ":key must be a string"));
        };
        let value = get("value")?;
        match kind.as_str() {
            "invoke" => {
                let input = match (f.as_str(), value) {
                    ("get", _) => KvInput::Get { key: key.clone() },
                    ("put", Edn::Str(v)) => KvInput::Put {
                        key: key.clone(),
                        value: v.clone(),
                    },
                    ("append", Edn::Str(v)) => KvInput::Append {
                        key: key.clone(),
                        value: v.clone(),
                    },
                    (other, v) => {
                        return Err(err(
                            line,
                            format!("unsupported :f :{other} with value {v:?}"),
                        ))
                    }
                };
                if let Some((prev, _)) = open.insert(*process, (line, input)) {
                    return Err(err(
                        line,
                        format!("process {process} invoked again while its operation from line {prev} is open"),
                    ));
                }
            }
            "ok" | "fail" | "info" => {
                let (call, input) = open.remove(process).ok_or_else(|| {
                    err(
                        line,
                        format!("process {process} completes an operation it never invoked"),
                    )
                })?;
                if input.key() != key {
                    return Err(err(line, format!("key {key:?} does not match the invoke")));
                }
                let output = match (kind.as_str(), &input, value) {
                    ("fail", ..) => continue,
                    ("info", KvInput::Get { .. }, _) => continue,
                    ("info", ..) => None,
                    ("ok", KvInput::Get { .. }, Edn::Str(v)) => Some(KvOutput::Get(v.clone())),
                    ("ok", KvInput::Get { .. }, Edn::Nil) => Some(KvOutput::Get(String::new())),
                    ("ok", KvInput::Get { .. }, v) => {
                        return Err(err(line, format!("get returned {v:?}")))
                    }
                    ("ok", ..) => Some(KvOutput::Ok),
                    _ => unreachable!(),
                };
                let ret = if output.is_some() { line as u64 } else { NEVER };
                ops.push(Op {
                    id: 0,
                    client: *process as u64,
                    call: call as u64,
                    ret,
                    input,
                    output,
                });
            }
            other => return Err(err(line, format!("unknown :type :{other}"))),
        }
    }
    for (process, (call, input)) in open {
        if !matches!(input, KvInput::Get { .. }) {
            ops.push(Op {
                id: 0,
                client: process as u64,
                call: call as u64,
                ret: NEVER,
                input,
                output: None,
            });
        }
    }
    ops.sort_by_key(|op| (op.call, op.client));
    for (i, op) in ops.iter_mut().enumerate() {
        op.id = i as u64;
    }
    Ok(ops)
}

/// Check a register history.
pub fn check_register_ops(ops: &[RegisterOp], budget_steps: u64) -> Verdict {
    check(&RegisterModel, ops, budget_steps, TimeUnit::Position)
}

/// Check a kv history, split per key.
pub fn check_kv_ops(ops: &[KvOp], budget_steps: u64) -> Verdict {
    check(&KvModel, ops, budget_steps, TimeUnit::Position)
}

/// Check a kv history as one history (no per-key split); for comparison only.
pub fn check_kv_ops_unpartitioned(ops: &[KvOp], budget_steps: u64) -> Verdict {
    check(&KvWholeModel, ops, budget_steps, TimeUnit::Position)
}

/// Parse and check a Jepsen register log.
pub fn check_jepsen_register(text: &str, budget_steps: u64) -> Result<Verdict, ParseError> {
    Ok(check_register_ops(
        &parse_jepsen_register(text)?,
        budget_steps,
    ))
}

/// Parse and check a porcupine kv history.
pub fn check_porcupine_kv(text: &str, budget_steps: u64) -> Result<Verdict, ParseError> {
    Ok(check_kv_ops(&parse_porcupine_kv(text)?, budget_steps))
}
