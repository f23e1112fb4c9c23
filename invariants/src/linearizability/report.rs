//! What a check concludes (`Verdict`) and, for a failure, the report a person reads (`Report`,
//! with its text form).

use std::fmt::{self, Display};

use serde::{Deserialize, Serialize};

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
