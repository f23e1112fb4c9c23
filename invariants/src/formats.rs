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
        let (kind, f, args) = (toks[1], toks[2], &toks[3..]);
        match kind {
            ":invoke" => {
                let input = jepsen_invocation(line, f, args)?;
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
                if let Some((ret, output)) = jepsen_completion(line, kind, f, input, args)? {
                    ops.push(Op {
                        id: 0,
                        client: proc_,
                        call: call as u64,
                        ret,
                        input,
                        output,
                    });
                }
            }
            other => return Err(err(line, format!("unknown type {other}"))),
        }
    }
    for (proc_, (call, input)) in open {
        if input != RegisterInput::Read {
            ops.push(Op {
                id: 0,
                client: proc_,
                call: call as u64,
                ret: NEVER,
                input,
                output: None,
            });
        }
    }
    number_in_call_order(&mut ops);
    Ok(ops)
}

/// The input of a Jepsen `:invoke` of function `f`.
fn jepsen_invocation(line: usize, f: &str, args: &[&str]) -> Result<RegisterInput, ParseError> {
    Ok(match f {
        ":read" => RegisterInput::Read,
        ":write" => {
            let v = args
                .first()
                .ok_or_else(|| err(line, "write without a value"))?;
            RegisterInput::Write(
                parse_register_value(line, v)?.ok_or_else(|| err(line, "write of nil"))?,
            )
        }
        ":cas" => {
            let (a, b) = parse_cas_args(line, args)?;
            RegisterInput::Cas(a, b)
        }
        other => return Err(err(line, format!("unknown function {other}"))),
    })
}

/// What a Jepsen completion (`kind` of function `f`, at `line`) of `input` makes of it: its
/// return and output, or `None` when the operation is dropped.
fn jepsen_completion(
    line: usize,
    kind: &str,
    f: &str,
    input: RegisterInput,
    args: &[&str],
) -> Result<Option<(u64, Option<RegisterOutput>)>, ParseError> {
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
    let ret = line as u64;
    Ok(match (kind, input) {
        (":ok", RegisterInput::Read) => {
            let v = args
                .first()
                .ok_or_else(|| err(line, "read without a value"))?;
            Some((
                ret,
                Some(RegisterOutput::Read(parse_register_value(line, v)?)),
            ))
        }
        (":ok", RegisterInput::Write(_)) => Some((ret, Some(RegisterOutput::Write))),
        (":ok", RegisterInput::Cas(..)) => Some((ret, Some(RegisterOutput::Cas(true)))),
        (":fail", RegisterInput::Cas(..)) => Some((ret, Some(RegisterOutput::Cas(false)))),
        // Failed reads/writes did nothing; unknown reads have no effect.
        (":fail", _) | (":info", RegisterInput::Read) => None,
        (":info", _) => Some((NEVER, None)),
        _ => unreachable!("kind is one of :ok :fail :info"),
    })
}

/// Sort operations by call (then client) and number them in that order.
fn number_in_call_order<I, O>(ops: &mut [Op<I, O>]) {
    ops.sort_by_key(|op| (op.call, op.client));
    for (i, op) in ops.iter_mut().enumerate() {
        op.id = i as u64;
    }
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
    let mut cur = EdnCursor {
        chars: inner.chars().collect(),
        i: 0,
        line,
    };
    let mut map = BTreeMap::new();
    loop {
        cur.skip_ws();
        if cur.i >= cur.chars.len() {
            break;
        }
        if cur.chars[cur.i] != ':' {
            return Err(err(
                line,
                format!("expected a :keyword at column {}", cur.i + 2),
            ));
        }
        let key = cur.word()[1..].to_string();
        cur.skip_ws();
        if cur.i >= cur.chars.len() {
            return Err(err(line, format!("missing value for :{key}")));
        }
        let value = if cur.chars[cur.i] == '"' {
            Edn::Str(cur.string(&key)?)
        } else {
            let w = cur.word();
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

/// A position in the text of an EDN map.
struct EdnCursor {
    chars: Vec<char>,
    i: usize,
    line: usize,
}

impl EdnCursor {
    fn skip_ws(&mut self) {
        while self.i < self.chars.len()
            && (self.chars[self.i].is_whitespace() || self.chars[self.i] == ',')
        {
            self.i += 1;
        }
    }

    /// Up to the next whitespace or comma.
    fn word(&mut self) -> String {
        let start = self.i;
        while self.i < self.chars.len()
            && !self.chars[self.i].is_whitespace()
            && self.chars[self.i] != ','
        {
            self.i += 1;
        }
        self.chars[start..self.i].iter().collect()
    }

    /// A string in double quotes (the cursor on the opening one), with `\n`, `\t` and `\X`
    /// escapes; `key` names the value in errors.
    fn string(&mut self, key: &str) -> Result<String, ParseError> {
        let line = self.line;
        self.i += 1;
        let mut s = String::new();
        loop {
            match self.chars.get(self.i) {
                None => return Err(err(line, format!("unterminated string for :{key}"))),
                Some('"') => {
                    self.i += 1;
                    return Ok(s);
                }
                Some('\\') => {
                    let c = self
                        .chars
                        .get(self.i + 1)
                        .ok_or_else(|| err(line, "dangling escape"))?;
                    s.push(match c {
                        'n' => '\n',
                        't' => '\t',
                        other => *other,
                    });
                    self.i += 2;
                }
                Some(c) => {
                    s.push(*c);
                    self.i += 1;
                }
            }
        }
    }
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
        let entry = KvEntry::of(line, &map)?;
        let process = entry.process;
        match entry.kind {
            "invoke" => {
                let input = entry.input()?;
                if let Some((prev, _)) = open.insert(process, (line, input)) {
                    return Err(err(
                        line,
                        format!("process {process} invoked again while its operation from line {prev} is open"),
                    ));
                }
            }
            "ok" | "fail" | "info" => {
                let (call, input) = open.remove(&process).ok_or_else(|| {
                    err(
                        line,
                        format!("process {process} completes an operation it never invoked"),
                    )
                })?;
                if let Some(op) = entry.completion(call, input)? {
                    ops.push(op);
                }
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
    number_in_call_order(&mut ops);
    Ok(ops)
}

/// The fields of one line of a porcupine kv history.
struct KvEntry<'a> {
    line: usize,
    process: i64,
    kind: &'a str,
    f: &'a str,
    key: &'a str,
    value: &'a Edn,
}

impl<'a> KvEntry<'a> {
    fn of(line: usize, map: &'a BTreeMap<String, Edn>) -> Result<Self, ParseError> {
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
        Ok(KvEntry {
            line,
            process: *process,
            kind,
            f,
            key,
            value: get("value")?,
        })
    }

    /// The input of an invoke.
    fn input(&self) -> Result<KvInput, ParseError> {
        let key = self.key.to_string();
        Ok(match (self.f, self.value) {
            ("get", _) => KvInput::Get { key },
            ("put", Edn::Str(v)) => KvInput::Put {
                key,
                value: v.clone(),
            },
            ("append", Edn::Str(v)) => KvInput::Append {
                key,
                value: v.clone(),
            },
            (other, v) => {
                return Err(err(
                    self.line,
                    format!("unsupported :f :{other} with value {v:?}"),
                ))
            }
        })
    }

    /// The operation a completion of `input` (invoked at line `call`) makes, or `None` when it
    /// is dropped.
    fn completion(&self, call: usize, input: KvInput) -> Result<Option<KvOp>, ParseError> {
        let line = self.line;
        if input.key() != self.key {
            return Err(err(
                line,
                format!("key {:?} does not match the invoke", self.key),
            ));
        }
        let output = match (self.kind, &input, self.value) {
            ("fail", ..) => return Ok(None),
            ("info", KvInput::Get { .. }, _) => return Ok(None),
            ("info", ..) => None,
            ("ok", KvInput::Get { .. }, Edn::Str(v)) => Some(KvOutput::Get(v.clone())),
            ("ok", KvInput::Get { .. }, Edn::Nil) => Some(KvOutput::Get(String::new())),
            ("ok", KvInput::Get { .. }, v) => return Err(err(line, format!("get returned {v:?}"))),
            ("ok", ..) => Some(KvOutput::Ok),
            _ => unreachable!(),
        };
        let ret = if output.is_some() { line as u64 } else { NEVER };
        Ok(Some(Op {
            id: 0,
            client: self.process as u64,
            call: call as u64,
            ret,
            input,
            output,
        }))
    }
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
