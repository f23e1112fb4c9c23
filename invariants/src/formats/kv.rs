//! porcupine's key/value histories (EDN-like maps, one a line).

use std::collections::BTreeMap;

use super::{err, no_operations, number_in_call_order, quoted, KvOp, ParseError};
use crate::linearizability::{Op, NEVER};
use crate::models::kv::{KvInput, KvOutput};

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
        .ok_or_else(|| {
            err(
                line,
                format!(
                    "not a line of a porcupine kv history: expected {EXPECTED}, found {}",
                    quoted(text)
                ),
            )
        })?;
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
    let mut operation_lines = 0usize;
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        if raw.trim().is_empty() {
            continue;
        }
        operation_lines += 1;
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
    if operation_lines == 0 {
        return Err(no_operations(text.lines().count(), EXPECTED));
    }
    number_in_call_order(&mut ops);
    Ok(ops)
}

/// What the lines of the format look like, for errors.
const EXPECTED: &str = "lines `{:process <P>, :type <:invoke|:ok|:fail|:info>, \
     :f <:get|:put|:append>, :key \"<K>\", :value <V>}` (a porcupine kv history)";

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
