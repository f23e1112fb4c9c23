//! Jepsen's etcd register logs (`INFO  jepsen.util - P :type :f value` lines).

use std::collections::BTreeMap;

use super::{err, no_operations, number_in_call_order, quoted, ParseError, RegisterOp};
use crate::linearizability::{Op, NEVER};
use crate::models::register::{RegisterInput, RegisterOutput};

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
    let mut open: BTreeMap<u64, (usize, RegisterInput)> = BTreeMap::new();
    let mut ops: Vec<RegisterOp> = Vec::new();
    let mut operation_lines = 0usize;
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let Some(toks) = operation_tokens(line, raw)? else {
            continue;
        };
        operation_lines += 1;
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
    if operation_lines == 0 {
        return Err(no_operations(text.lines().count(), EXPECTED));
    }
    number_in_call_order(&mut ops);
    Ok(ops)
}

/// What the operation lines of the format look like, for errors.
const EXPECTED: &str = "lines `INFO  jepsen.util - <process> <:invoke|:ok|:fail|:info> \
     <:read|:write|:cas> <value>` (a Jepsen etcd register log)";

/// The tokens after `jepsen.util - ` of an operation line (at least process, type and
/// function); `None` for a line Jepsen's logs carry besides client operations; an error for
/// any other line.
fn operation_tokens(line: usize, raw: &str) -> Result<Option<Vec<&str>>, ParseError> {
    const MARK: &str = "jepsen.util - ";
    if let Some(pos) = raw.find(MARK) {
        let toks: Vec<&str> = raw[pos + MARK.len()..].split_whitespace().collect();
        // The nemesis logs its faults as operations of process `:nemesis`; they do not touch
        // the register.
        if toks.first() == Some(&":nemesis") {
            return Ok(None);
        }
        if toks.len() < 3 {
            return Err(err(
                line,
                format!(
                    "expected `<process> <:type> <:f> <value>` after `{MARK}`, found {}",
                    quoted(raw)
                ),
            ));
        }
        return Ok(Some(toks));
    }
    if raw.trim().is_empty() || is_other_log_record(raw) || is_stack_trace_line(raw) {
        return Ok(None);
    }
    Err(err(
        line,
        format!(
            "not a line of a Jepsen register log: expected {EXPECTED}, or a line such logs \
             carry besides operations (another logger's record, a stack trace, a blank line); \
             found {}",
            quoted(raw)
        ),
    ))
}

/// A record of another logger, as Jepsen's log writes them: an optional date and time, a
/// level, an optional `[thread]`, a dotted logger name, then ` - ` or `:` and the message
/// (`INFO  jepsen.core - Run complete`, `2017-01-01 12:00:00,000 WARN [jepsen worker 1]
/// jepsen.os.debian: ...`).
fn is_other_log_record(raw: &str) -> bool {
    const LEVELS: [&str; 6] = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"];
    let mut rest = raw.trim_start();
    // Date and time: up to two leading tokens that start with a digit.
    for _ in 0..2 {
        if rest.starts_with(|c: char| c.is_ascii_digit()) {
            rest = rest
                .split_once(char::is_whitespace)
                .map_or("", |(_, r)| r.trim_start());
        }
    }
    let Some((level, after_level)) = rest.split_once(char::is_whitespace) else {
        return false;
    };
    if !LEVELS.contains(&level) {
        return false;
    }
    let mut rest = after_level.trim_start();
    if rest.starts_with('[') {
        let Some(end) = rest.find(']') else {
            return false;
        };
        rest = rest[end + 1..].trim_start();
    }
    let logger_end = rest
        .find(|c: char| c.is_whitespace() || c == ':')
        .unwrap_or(rest.len());
    let (logger, after_logger) = rest.split_at(logger_end);
    // `jepsen.util` is the operations' logger: a record of it in another layout is not noise.
    logger != "jepsen.util"
        && is_dotted_name(logger)
        && (after_logger.starts_with(" - ") || after_logger.starts_with(':'))
}

/// A line of a Java stack trace that follows a logged exception: `\tat a.b.C.m(C.java:1)`,
/// `\t... 12 more`, `Caused by: ...`, or the exception's own line (`java.net.
/// SocketTimeoutException: Read timed out`).
fn is_stack_trace_line(raw: &str) -> bool {
    let trimmed = raw.trim_start();
    let indented = trimmed.len() < raw.len();
    if indented && (trimmed.starts_with("at ") || trimmed.starts_with("... ")) {
        return true;
    }
    if trimmed.starts_with("Caused by: ") {
        return true;
    }
    let first = trimmed.split_whitespace().next().unwrap_or("");
    first.strip_suffix(':').is_some_and(is_dotted_name)
        || (first == trimmed && is_dotted_name(first))
}

/// A Java or Clojure qualified name: `jepsen.core`, `java.net.SocketTimeoutException`.
fn is_dotted_name(name: &str) -> bool {
    name.contains('.')
        && !name.starts_with('.')
        && !name.ends_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '$'))
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
