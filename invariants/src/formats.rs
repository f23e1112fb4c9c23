//! Parsers for the recorded histories in `shared/data/porcupine` (see its README) and a
//! checking function per format. Times in these histories are line numbers.

use std::borrow::Cow;
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

/// A value in porcupine's EDN-like kv lines, borrowed from the line (a string is copied only
/// when it has escapes).
#[derive(Debug, PartialEq, Eq)]
enum Edn<'a> {
    Nil,
    Int(i64),
    Keyword(&'a str),
    Str(Cow<'a, str>),
}

/// The entries of one line's map, in order (a handful: looked up by a linear search).
type EdnMap<'a> = Vec<(&'a str, Edn<'a>)>;

fn parse_edn_map(line: usize, text: &str) -> Result<EdnMap<'_>, ParseError> {
    let t = text.trim();
    let inner = t
        .strip_prefix('{')
        .and_then(|s| s.strip_suffix('}'))
        .ok_or_else(|| err(line, "expected a map in braces"))?;
    let mut cur = EdnCursor {
        text: inner,
        i: 0,
        line,
    };
    let mut map = Vec::with_capacity(5);
    loop {
        cur.skip_ws();
        let Some(c) = cur.peek() else { break };
        if c != b':' {
            return Err(err(
                line,
                format!("expected a :keyword at column {}", cur.column()),
            ));
        }
        let key = &cur.word()[1..];
        cur.skip_ws();
        let Some(c) = cur.peek() else {
            return Err(err(line, format!("missing value for :{key}")));
        };
        let value = if c == b'"' {
            Edn::Str(cur.string(key)?)
        } else {
            let w = cur.word();
            if w == "nil" {
                Edn::Nil
            } else if let Some(k) = w.strip_prefix(':') {
                Edn::Keyword(k)
            } else {
                Edn::Int(
                    w.parse()
                        .map_err(|_| err(line, format!("bad value {w:?} for :{key}")))?,
                )
            }
        };
        // A key given twice keeps its last value, as a map does.
        map.retain(|(k, _)| *k != key);
        map.push((key, value));
    }
    Ok(map)
}

/// A position (a byte index) in the text of an EDN map.
struct EdnCursor<'a> {
    text: &'a str,
    i: usize,
    line: usize,
}

impl<'a> EdnCursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.i).copied()
    }

    /// The 1-based column of the cursor in the whole line (after its `{`), in characters.
    fn column(&self) -> usize {
        self.text[..self.i].chars().count() + 2
    }

    fn skip_ws(&mut self) {
        let rest = &self.text[self.i..];
        let trimmed = rest.trim_start_matches(|c: char| c.is_whitespace() || c == ',');
        self.i += rest.len() - trimmed.len();
    }

    /// Up to the next whitespace or comma.
    fn word(&mut self) -> &'a str {
        let rest = &self.text[self.i..];
        let end = rest
            .find(|c: char| c.is_whitespace() || c == ',')
            .unwrap_or(rest.len());
        self.i += end;
        &rest[..end]
    }

    /// A string in double quotes (the cursor on the opening one), with `\n`, `\t` and `\X`
    /// escapes; `key` names the value in errors.
    fn string(&mut self, key: &str) -> Result<Cow<'a, str>, ParseError> {
        let line = self.line;
        let body = &self.text[self.i + 1..];
        let Some(end) = body.find(['"', '\\']) else {
            return Err(err(line, format!("unterminated string for :{key}")));
        };
        if body.as_bytes()[end] == b'"' {
            self.i += 1 + end + 1;
            return Ok(Cow::Borrowed(&body[..end]));
        }
        // Escapes: build the string.
        let mut s = String::from(&body[..end]);
        let mut chars = body[end..].char_indices();
        while let Some((at, c)) = chars.next() {
            match c {
                '"' => {
                    self.i += 1 + end + at + 1;
                    return Ok(Cow::Owned(s));
                }
                '\\' => {
                    let (_, e) = chars.next().ok_or_else(|| err(line, "dangling escape"))?;
                    s.push(match e {
                        'n' => '\n',
                        't' => '\t',
                        other => other,
                    });
                }
                c => s.push(c),
            }
        }
        Err(err(line, format!("unterminated string for :{key}")))
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
    value: &'a Edn<'a>,
}

impl<'a> KvEntry<'a> {
    fn of(line: usize, map: &'a EdnMap<'a>) -> Result<Self, ParseError> {
        let get = |k: &str| {
            map.iter()
                .find(|(key, _)| *key == k)
                .map(|(_, v)| v)
                .ok_or_else(|| err(line, format!("missing :{k}")))
        };
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
                value: v.to_string(),
            },
            ("append", Edn::Str(v)) => KvInput::Append {
                key,
                value: v.to_string(),
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
            ("ok", KvInput::Get { .. }, Edn::Str(v)) => Some(KvOutput::Get(v.to_string())),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Strings borrow from the line unless they hold escapes; a key given twice keeps its
    /// last value; errors name the column.
    #[test]
    fn edn_lines_parse_with_escapes() {
        let line =
            r#"{:process 3, :type :invoke, :f :put, :key "k\"1", :value "a\nb", :f :append}"#;
        let map = parse_edn_map(7, line).expect("parses");
        let get = |k: &str| &map.iter().find(|(key, _)| *key == k).expect(k).1;
        assert_eq!(get("process"), &Edn::Int(3));
        assert_eq!(get("type"), &Edn::Keyword("invoke"));
        assert_eq!(get("f"), &Edn::Keyword("append"));
        assert_eq!(get("key"), &Edn::Str(Cow::Borrowed("k\"1")));
        assert_eq!(get("value"), &Edn::Str(Cow::Borrowed("a\nb")));
        assert_eq!(map.len(), 5);
        assert!(matches!(get("type"), Edn::Keyword(_)));
        let e = parse_edn_map(7, r#"{:process 1, x}"#).unwrap_err();
        assert_eq!(
            (e.line, e.message.as_str()),
            (7, "expected a :keyword at column 14")
        );
        let e = parse_edn_map(2, r#"{:key "open}"#).unwrap_err();
        assert_eq!(e.message, "unterminated string for :key");
    }
}
