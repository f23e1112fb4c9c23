//! Pass: lease expiry as windows. The server may expire a lease (a `LeaseRevoke` it issues
//! itself: the lease's keys are deleted at one new revision, if it had any); when is a fact
//! about time, not a choice the search branches on. Each lease generation (a grant, up to the
//! next grant of the same id) gets one synthetic server operation, `ExpiryWindow`, with an
//! interval [earliest, latest]: the search places it like an unknown revoke invoked at
//! `earliest`, and must place it by `latest` when that is enforced. TimeToLive and KeepAlive
//! answers are checked against the windows directly (`ExpiryPlan::findings`).
//!
//! The windows, with p = `clock_rate_bound_percent` (a member's clock runs at (100 ± p)% of
//! simulated time), T the lease's TTL in ns (the grant's response, else its request):
//! * earliest = a + T·100/(100+p), a = the invocation of the grant or of the last keep-alive
//!   the server acknowledged with a TTL > 0 (the leader processed it after its invocation, and
//!   a fast clock measures T in T·100/(100+p)). A new leader never shortens a lease (etcd's
//!   Promote extends), so leader changes do not move it.
//! * latest = s + T·100/(100−p) + E, s = the completion of the grant or of the last
//!   keep-alive sent and not failed (acknowledged or not: a request is not processed after the
//!   client gave up on it), E = `election_ms` stretched the same way; then, in time order,
//!   every leader change at or after the invocation of that last keep-alive and before the
//!   deadline adds `checkpoint_interval_ms` + 2·E (the new leader resumes the lease from a
//!   checkpoint at most one interval old, after an election, and extends it by an election
//!   timeout: etcd's Promote), and every window in which no leader may exist (faults that may
//!   take a quorum away) that overlaps [s, latest] adds its overlap plus the same allowance.
//!   A new leader that restarts an inherited lease at its full TTL (etcd #9888, no checkpoint)
//!   outlives this deadline once leader changes come faster than the TTL.
//!   Not enforced (`NEVER`) without `election_ms`, for a grant whose TTL no response showed,
//!   or when it lies after the history's end (nothing observed after it).
//! * A lease whose window overlaps one in which some clock ran outside the bound
//!   (`skewed_windows_ns`) has neither bound (etcd promises nothing then): earliest = the
//!   grant's invocation, latest not enforced; `ExpiryPlan::weakened` says so.
//! * A KeepAlive answered TTL 0, or a TimeToLive answered -1, after the grant completed and
//!   with no client revoke of the lease invoked before it completed, shows the lease gone: the
//!   expiry must have happened by then (latest is capped there), and it is a finding when
//!   that is before `earliest`. A TimeToLive showing the lease alive after an enforced
//!   deadline, a remaining TTL above the granted one, or a granted TTL other than the
//!   grant's, are findings too.
//!
//! Not checked: an expiry before a grant that completed only after it (the search may then
//! place the expiry as a no-op before the grant, which can only hide a late expiry), grants
//! whose id the server picked and whose response is unknown (no expiry at all).

use std::collections::BTreeMap;

use faultline_api::{LeaseId, LeaseRevokeRequest, Request, Response};
use serde::{Deserialize, Serialize};

use crate::describe::summarize;
use crate::history::{History, Operation, Outcome, TimeNs};
use crate::linearizability::{Mismatch, NEVER};

const NS_PER_MS: u64 = 1_000_000;
const NS_PER_S: u64 = 1_000_000_000;

/// The inputs of the expiry windows (see the module docs). The simulator fills them from the
/// scenario and the run's trace (`sim/src/verdict.rs`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseExpiryBounds {
    /// A member's clock runs at (100 ± this)% of simulated time; below 100.
    pub clock_rate_bound_percent: u64,
    /// An election's worth of time: the longest a cluster with a quorum stays without a
    /// leader. `None`: the deadline is not enforced (only the earliest expiry is checked).
    pub election_ms: Option<u64>,
    /// How stale the remaining TTL a new leader resumes a lease from may be.
    pub checkpoint_interval_ms: u64,
    /// When a member became leader (ns), sorted.
    pub leader_changes_ns: Vec<TimeNs>,
    /// Windows (start, end ns) in which there may be no leader at all.
    pub leaderless_windows_ns: Vec<(TimeNs, TimeNs)>,
    /// Windows (start, end ns) in which some member's clock ran outside the bound.
    pub skewed_windows_ns: Vec<(TimeNs, TimeNs)>,
}

impl LeaseExpiryBounds {
    /// Bounds for a history that comes without its cluster's configuration (`dst check`):
    /// clocks within 10%, the deadline not enforced.
    pub fn unconfigured() -> Self {
        LeaseExpiryBounds {
            clock_rate_bound_percent: 10,
            election_ms: None,
            checkpoint_interval_ms: 0,
            leader_changes_ns: vec![],
            leaderless_windows_ns: vec![],
            skewed_windows_ns: vec![],
        }
    }

    /// One line for reports: which bound the check used.
    pub fn describe(&self) -> String {
        let deadline = match self.election_ms {
            Some(e) => format!(
                "deadline TTL + {e} ms election, + {} ms checkpoint interval + 2 elections per \
                 leader change ({} changes), + leaderless time ({} windows)",
                self.checkpoint_interval_ms,
                self.leader_changes_ns.len(),
                self.leaderless_windows_ns.len()
            ),
            None => "deadline not enforced".to_string(),
        };
        format!(
            "lease expiry: clock rate within ±{}%, {deadline}; {} clock-skew window(s) beyond \
             the bound",
            self.clock_rate_bound_percent,
            self.skewed_windows_ns.len()
        )
    }

    fn shrink(&self, ns: u64) -> u64 {
        assert!(
            self.clock_rate_bound_percent < 100,
            "clock rate bound below 100%"
        );
        mul_div(ns, 100, 100 + self.clock_rate_bound_percent)
    }

    fn stretch(&self, ns: u64) -> u64 {
        assert!(
            self.clock_rate_bound_percent < 100,
            "clock rate bound below 100%"
        );
        mul_div(ns, 100, 100 - self.clock_rate_bound_percent)
    }

    /// The deadline from the last keep-alive sent (invoked at `sent_invoke`, completed at
    /// `sent_done`) with TTL `ttl_ns`, extended by leader changes and leaderless windows.
    fn deadline(&self, sent_invoke: u64, sent_done: u64, ttl_ns: u64) -> u64 {
        let Some(election_ms) = self.election_ms else {
            return NEVER;
        };
        let election = self.stretch(election_ms.saturating_mul(NS_PER_MS));
        let allowance = self
            .stretch(self.checkpoint_interval_ms.saturating_mul(NS_PER_MS))
            .saturating_add(2 * election);
        let mut latest = sent_done
            .saturating_add(self.stretch(ttl_ns))
            .saturating_add(election);
        // Time order: an extension may bring later changes into the window.
        let mut events: Vec<(u64, u64)> = self
            .leader_changes_ns
            .iter()
            .filter(|&&p| p >= sent_invoke)
            .map(|&p| (p, p))
            .chain(
                self.leaderless_windows_ns
                    .iter()
                    .filter(|w| w.1 >= sent_invoke)
                    .map(|&(a, b)| (a.max(sent_invoke), b)),
            )
            .collect();
        events.sort_unstable();
        for (start, end) in events {
            if start > latest {
                break;
            }
            latest = latest.saturating_add(end - start).saturating_add(allowance);
        }
        latest
    }

    fn skewed(&self, from: u64, to: u64) -> bool {
        self.skewed_windows_ns
            .iter()
            .any(|&(a, b)| a <= to && b >= from)
    }
}

fn mul_div(x: u64, mul: u64, div: u64) -> u64 {
    u64::try_from(u128::from(x) * u128::from(mul) / u128::from(div)).unwrap_or(u64::MAX)
}

fn ttl_ns(ttl_seconds: i64) -> u64 {
    u64::try_from(ttl_seconds.max(0))
        .unwrap_or(0)
        .saturating_mul(NS_PER_S)
}

/// The window of one lease generation's expiry: a synthetic server operation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpiryWindow {
    /// Its id in the search and in `Linearization::op_ids` (above every history op's id).
    pub op_id: u64,
    pub lease: LeaseId,
    /// The grant that started the generation.
    pub grant_op: u64,
    pub ttl_seconds: i64,
    pub earliest_ns: TimeNs,
    /// `NEVER`: not enforced.
    pub latest_ns: TimeNs,
    /// Whether the search must place it (by `latest_ns`).
    pub required: bool,
}

impl ExpiryWindow {
    /// The operation as the passes see it: an unknown revoke by a client of its own.
    pub(super) fn as_operation(&self, client: u64) -> Operation {
        Operation {
            id: self.op_id,
            client,
            member: None,
            invoke_ns: self.earliest_ns,
            complete_ns: self.latest_ns,
            request: Request::LeaseRevoke(LeaseRevokeRequest { id: self.lease }),
            outcome: Outcome::Unknown(format!("lease {:#x} expired (server)", self.lease)),
        }
    }
}

/// The windows of a history, and what its TimeToLive/KeepAlive answers contradict.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExpiryPlan {
    pub windows: Vec<ExpiryWindow>,
    pub findings: Vec<Mismatch>,
    /// Leases whose windows overlap a clock skew beyond the bound: checked without bounds.
    pub weakened: Vec<LeaseId>,
}

/// The ops that concern one lease id, in invocation order.
#[derive(Default)]
struct LeaseOps<'h> {
    grants: Vec<&'h Operation>,
    other: Vec<&'h Operation>,
}

fn ops_by_lease(history: &History) -> BTreeMap<LeaseId, LeaseOps<'_>> {
    let mut by_lease: BTreeMap<LeaseId, LeaseOps<'_>> = BTreeMap::new();
    let mut ops: Vec<&Operation> = history
        .ops
        .iter()
        .filter(|op| !matches!(op.outcome, Outcome::Failed(_)))
        .collect();
    ops.sort_by_key(|op| (op.invoke_ns, op.id));
    for op in ops {
        let (lease, is_grant) = match (&op.request, &op.outcome) {
            (Request::LeaseGrant(_), Outcome::Ok(Response::LeaseGrant(g))) => (g.id, true),
            (Request::LeaseGrant(g), _) if g.id != 0 => (g.id, true),
            (Request::LeaseKeepAlive(k), _) => (k.id, false),
            (Request::LeaseTimeToLive(t), _) => (t.id, false),
            (Request::LeaseRevoke(r), _) => (r.id, false),
            _ => continue,
        };
        let e = by_lease.entry(lease).or_default();
        if is_grant {
            e.grants.push(op);
        } else {
            e.other.push(op);
        }
    }
    by_lease
}

/// The latest time anything in the history was observed.
fn history_end(history: &History) -> u64 {
    let ops = history
        .ops
        .iter()
        .map(|op| op.complete_ns)
        .filter(|&t| t != NEVER);
    let watches = history
        .watches
        .iter()
        .flat_map(|w| w.responses.iter().map(|r| r.at_ns));
    ops.chain(watches).max().unwrap_or(0)
}

/// Pass: the expiry windows of every lease generation, and the findings of the TimeToLive
/// and KeepAlive answers. Window ids start at the history's highest op id + 1.
pub fn expiry_windows(history: &History, bounds: &LeaseExpiryBounds) -> ExpiryPlan {
    let mut plan = ExpiryPlan::default();
    let end = history_end(history);
    let mut next_id = history.ops.iter().map(|op| op.id + 1).max().unwrap_or(0);
    for (lease, ops) in ops_by_lease(history) {
        for (i, grant) in ops.grants.iter().enumerate() {
            let next_grant = ops.grants.get(i + 1).copied();
            let until = next_grant.map_or(NEVER, |g| g.invoke_ns);
            let in_window =
                |op: &&Operation, end: u64| op.invoke_ns >= grant.invoke_ns && op.invoke_ns < end;
            let gen: Vec<&Operation> = ops
                .other
                .iter()
                .copied()
                .filter(|op| in_window(op, until))
                .collect();
            // Keep-alives may renew this generation until a later grant surely succeeded (an
            // unknown one may never have, or only after them).
            let next_ok = ops.grants[i + 1..]
                .iter()
                .copied()
                .find(|g| !g.is_unknown());
            let sent_until = next_ok.map_or(NEVER, |g| g.complete_ns);
            let sent: Vec<&Operation> = ops
                .other
                .iter()
                .copied()
                .filter(|op| matches!(op.request, Request::LeaseKeepAlive(_)))
                .filter(|op| in_window(op, sent_until))
                .collect();
            let revokes: Vec<&Operation> = ops
                .other
                .iter()
                .copied()
                .filter(|op| matches!(op.request, Request::LeaseRevoke(_)))
                .collect();
            let g = Generation {
                lease,
                grant,
                next_grant,
                next_ok,
                ops: &gen,
                sent: &sent,
                revokes: &revokes,
            };
            if let Some(mut w) = g.window(bounds, &mut plan) {
                if w.earliest_ns > end {
                    continue; // nothing observed after it could have happened
                }
                if w.latest_ns > end {
                    w.latest_ns = NEVER;
                }
                w.required = w.latest_ns != NEVER;
                w.op_id = next_id;
                next_id += 1;
                plan.windows.push(w);
            }
        }
    }
    plan.weakened.dedup();
    plan
}

/// One grant of a lease and the operations on it until the next grant of the same id.
struct Generation<'a, 'h> {
    lease: LeaseId,
    grant: &'h Operation,
    next_grant: Option<&'h Operation>,
    /// The next grant of the same id that surely succeeded.
    next_ok: Option<&'h Operation>,
    /// Operations on the lease invoked from the grant until the next grant's invocation.
    ops: &'a [&'h Operation],
    /// Keep-alives that may have renewed this generation (see `expiry_windows`).
    sent: &'a [&'h Operation],
    /// Every client revoke of the lease id that did not fail.
    revokes: &'a [&'h Operation],
}

impl Generation<'_, '_> {
    /// The TTL the server granted, when a response showed it.
    fn known_ttl(&self) -> Option<i64> {
        // A TTL of 0 is no TTL the server grants (it raises short ones): not shown.
        if let Outcome::Ok(Response::LeaseGrant(g)) = &self.grant.outcome {
            if g.ttl_seconds > 0 {
                return Some(g.ttl_seconds);
            }
        }
        self.surely_ours().find_map(|op| match &op.outcome {
            Outcome::Ok(Response::LeaseKeepAlive(k)) if k.ttl_seconds > 0 => Some(k.ttl_seconds),
            _ => None,
        })
    }

    /// Operations that surely concern this generation: completed before the next grant was
    /// invoked (a keep-alive concurrent with it may have renewed the next generation).
    fn surely_ours(&self) -> impl Iterator<Item = &&Operation> {
        let until = self.next_grant.map_or(NEVER, |g| g.invoke_ns);
        self.ops.iter().filter(move |op| op.complete_ns < until)
    }

    /// Keep-alives that surely renewed this generation.
    fn keep_alives(&self) -> impl Iterator<Item = &&Operation> {
        self.surely_ours()
            .filter(|op| matches!(op.request, Request::LeaseKeepAlive(_)))
    }

    /// The window, with findings added to `plan`; `None` for a grant with no TTL at all.
    fn window(&self, bounds: &LeaseExpiryBounds, plan: &mut ExpiryPlan) -> Option<ExpiryWindow> {
        let Request::LeaseGrant(req) = &self.grant.request else {
            unreachable!("a generation starts with a grant")
        };
        let known_ttl = self.known_ttl();
        let ttl_seconds = known_ttl.unwrap_or(req.ttl_seconds);
        if ttl_seconds <= 0 {
            return None;
        }
        let acked = self.keep_alives().filter(|op| {
            matches!(&op.outcome, Outcome::Ok(Response::LeaseKeepAlive(k)) if k.ttl_seconds > 0)
        });
        let anchor = acked
            .map(|op| op.invoke_ns)
            .fold(self.grant.invoke_ns, u64::max);
        let mut earliest = anchor.saturating_add(bounds.shrink(ttl_ns(ttl_seconds)));
        let last_sent = self
            .sent
            .iter()
            .copied()
            .chain(std::iter::once(self.grant))
            .max_by_key(|op| (op.complete_ns, op.invoke_ns))
            .expect("the grant itself");
        let sent_invoke = self
            .sent
            .iter()
            .map(|op| op.invoke_ns)
            .fold(self.grant.invoke_ns, u64::max);
        let mut latest = match known_ttl {
            Some(t) => bounds.deadline(sent_invoke, last_sent.complete_ns, ttl_ns(t)),
            None => NEVER,
        };
        let skewed = bounds.skewed(self.grant.invoke_ns, latest.min(NEVER - 1));
        if skewed {
            earliest = self.grant.invoke_ns;
            latest = NEVER;
            plan.weakened.push(self.lease);
        }
        latest = self.cap_by_next_grant(earliest, latest, plan)?;
        self.check_time_to_live(latest, known_ttl, plan);
        if let Some(gone) = self.gone_evidence() {
            if gone.complete_ns < earliest {
                plan.findings.push(Mismatch {
                    op: summarize(gone),
                    expected: format!(
                        "lease {:#x} alive until at least {} ns (TTL {} s from op {} at {} \
                         ns, clock rate within ±{}%)",
                        self.lease,
                        earliest,
                        ttl_seconds,
                        self.anchor_op(anchor).id,
                        anchor,
                        bounds.clock_rate_bound_percent
                    ),
                    explanation: format!(
                        "lease {:#x} was reported gone before it may expire, and no client \
                         revoked it",
                        self.lease
                    ),
                });
                earliest = gone.complete_ns;
            }
            latest = latest.min(gone.complete_ns);
        }
        Some(ExpiryWindow {
            op_id: 0,
            lease: self.lease,
            grant_op: self.grant.id,
            ttl_seconds,
            earliest_ns: earliest,
            latest_ns: latest.max(earliest),
            required: false,
        })
    }

    /// A later grant of the same id succeeded: this generation (or, for an unknown grant
    /// that never took effect, the one it would have continued) ended before that
    /// completed, so the expiry must not fall on the next generation: `latest` capped there.
    /// `None`: an unknown grant that cannot have taken effect. A known grant whose earliest
    /// expiry comes after the regrant, with no client revoke between them, is a finding.
    fn cap_by_next_grant(&self, earliest: u64, latest: u64, plan: &mut ExpiryPlan) -> Option<u64> {
        let Some(next) = self.next_ok else {
            return Some(latest);
        };
        if next.complete_ns >= earliest {
            return Some(latest.min(next.complete_ns));
        }
        // A client revoke that may have taken effect between the two grants.
        let revoked = self.revokes.iter().any(|r| {
            r.invoke_ns < next.complete_ns
                && (r.is_unknown() || r.complete_ns >= self.grant.invoke_ns)
        });
        if self.grant.is_unknown() {
            return if revoked { Some(latest) } else { None };
        }
        if !revoked {
            plan.findings.push(Mismatch {
                op: summarize(next),
                expected: format!(
                    "lease {:#x} alive until at least {earliest} ns (granted by op {})",
                    self.lease, self.grant.id
                ),
                explanation: format!(
                    "lease {:#x} was granted again before its previous grant may have \
                     expired, and no client revoked it",
                    self.lease
                ),
            });
        }
        Some(latest.min(next.complete_ns))
    }

    fn anchor_op(&self, anchor: u64) -> &Operation {
        self.keep_alives()
            .copied()
            .find(|op| op.invoke_ns == anchor)
            .unwrap_or(self.grant)
    }

    /// The first KeepAlive answered TTL 0 or TimeToLive answered -1 after the grant
    /// completed, when no client revoke was invoked before it completed.
    fn gone_evidence(&self) -> Option<&Operation> {
        if self.grant.is_unknown() {
            return None;
        }
        let gone = self.ops.iter().copied().find(|op| {
            op.invoke_ns >= self.grant.complete_ns
                && match &op.outcome {
                    Outcome::Ok(Response::LeaseKeepAlive(k)) => k.ttl_seconds <= 0,
                    Outcome::Ok(Response::LeaseTimeToLive(t)) => t.ttl_seconds < 0,
                    _ => false,
                }
        })?;
        let revoked = self.revokes.iter().any(|r| {
            r.invoke_ns < gone.complete_ns
                && (r.is_unknown() || r.complete_ns >= self.grant.invoke_ns)
        });
        (!revoked).then_some(gone)
    }

    /// TimeToLive answers showing the lease alive: within the deadline, the remaining TTL
    /// at most the granted one, the granted one the grant's.
    fn check_time_to_live(&self, latest: u64, known_ttl: Option<i64>, plan: &mut ExpiryPlan) {
        for op in self.surely_ours() {
            let Outcome::Ok(Response::LeaseTimeToLive(t)) = &op.outcome else {
                continue;
            };
            if t.ttl_seconds < 0 {
                continue;
            }
            let mut finding = |expected: String, explanation: String| {
                plan.findings.push(Mismatch {
                    op: summarize(op),
                    expected,
                    explanation,
                })
            };
            if op.invoke_ns > latest {
                finding(
                    format!("lease {:#x} expired by {latest} ns", self.lease),
                    format!(
                        "lease {:#x} is alive after its expiry deadline (it outlived its TTL)",
                        self.lease
                    ),
                );
            }
            if t.ttl_seconds > t.granted_ttl_seconds {
                finding(
                    format!("a remaining TTL of at most {} s", t.granted_ttl_seconds),
                    "the remaining TTL is above the granted TTL".to_string(),
                );
            }
            if let Some(granted) = known_ttl.filter(|&g| g != t.granted_ttl_seconds) {
                finding(
                    format!("granted TTL {granted} s"),
                    format!(
                        "TimeToLive reports another granted TTL for lease {:#x}",
                        self.lease
                    ),
                );
            }
        }
    }
}
