//! porcupine's key/value histories (EDN-like maps, one a line).

use std::borrow::Cow;
use std::collections::BTreeMap;

use super::{err, no_operations, number_in_call_order, quoted, KvOp, ParseError};
use crate::linearizability::{Op, NEVER};
use crate::models::kv::{KvInput, KvOutput};

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
        // Spaces and commas byte by byte first (several times cheaper than by chars; these
        // lines are ASCII), anything else by chars from there.
        let plain = rest
            .bytes()
            .position(|b| b != b' ' && b != b',')
            .unwrap_or(rest.len());
        let rest = &rest[plain..];
        let trimmed = rest.trim_start_matches(|c: char| c.is_whitespace() || c == ',');
        self.i += plain + rest.len() - trimmed.len();
    }

    /// Up to the next whitespace or comma.
    fn word(&mut self) -> &'a str {
        let rest = &self.text[self.i..];
        // Byte by byte up to a space, a comma, a control or a non-ASCII byte; from any of the
        // last two (which may or may not be whitespace) by chars.
        let end = match rest
            .bytes()
            .position(|b| b == b' ' || b == b',' || !(b' '..=b'~').contains(&b))
        {
            Some(at) if rest.as_bytes()[at] == b' ' || rest.as_bytes()[at] == b',' => at,
            Some(at) => {
                at + rest[at..]
                    .find(|c: char| c.is_whitespace() || c == ',')
                    .unwrap_or(rest.len() - at)
            }
            None => rest.len(),
        };
        self.i += end;
        &rest[..end]
    }

    /// A string in double quotes (the cursor on the opening one), with `\n`, `\t` and `\X`
    /// escapes; `key` names the value in errors.
    fn string(&mut self, key: &str) -> Result<Cow<'a, str>, ParseError> {
        let line = self.line;
        let body = &self.text[self.i + 1..];
        let Some(end) = body.bytes().position(|b| b == b'"' || b == b'\\') else {
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
            (Some(7), "expected a :keyword at column 14")
        );
        let e = parse_edn_map(2, r#"{:key "open}"#).unwrap_err();
        assert_eq!(e.message, "unterminated string for :key");
    }
}
