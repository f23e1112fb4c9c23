//! Shrinking: edit a failing plan until it is small and still fails with the same verdict kind.
//!
//! The plan is edited, never the seed: madsim's scheduling seed stays, while whole parts of
//! the plan go. Passes, cheapest and most effective first, repeated while they make progress:
//! 1. cut time: keep only what is planned before a cutoff (binary search on the cutoff);
//! 2. fewer members (5 → 3 → 1; faults on removed members or zones go, ops are re-targeted);
//! 3. fewer clients and watchers (drop one at a time);
//! 4. fewer fault kinds (ddmin over the kinds the plan has: every window of a dropped kind
//!    goes, which a swarm-drawn subset makes likely to matter), then fewer fault windows
//!    (ddmin, Zeller & Hildebrandt 2002, complements only), then fewer membership steps of
//!    the operator (one at a time);
//! 5. fewer operations (ddmin over every client's ops, then over every watch session);
//! 6. a shorter workload phase (end it with the last fault).
//!
//! Every candidate is one full simulation, so the number of runs is bounded
//! (`ShrinkOptions::max_runs`); a shrink that hits the bound says so.

use crate::campaign::fault_kind_name;
use crate::fuzz::{run_plan, RunResult};
use crate::plan::{
    ClientPlan, Fault, FaultWindow, IsolateTarget, MemberPlan, MembershipAction, Plan, PlannedOp,
    PlannedWatch,
};
use crate::runner::RunOptions;
use crate::seedfile::VerdictKind;

#[derive(Clone, Copy, Debug)]
pub struct ShrinkOptions {
    /// Upper bound on simulations run while shrinking (the first, confirming run included).
    pub max_runs: usize,
}

impl Default for ShrinkOptions {
    fn default() -> Self {
        ShrinkOptions { max_runs: 400 }
    }
}

/// How big a plan is: what a person has to read to understand the failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlanSize {
    /// Client operations plus watch sessions.
    pub ops: usize,
    pub faults: usize,
    /// The operator's membership steps.
    pub membership: usize,
    pub clients: usize,
    pub members: usize,
    pub workload_duration_ms: u64,
}

impl PlanSize {
    pub fn of(plan: &Plan) -> PlanSize {
        PlanSize {
            ops: plan.op_count() + watch_sessions(plan),
            faults: plan.faults.len(),
            membership: plan.membership.len(),
            clients: plan.clients.len(),
            members: plan.members.len(),
            workload_duration_ms: plan.scenario.workload_duration_ms,
        }
    }

    /// The measure shrinking is judged by: operations plus fault windows (membership steps
    /// count as faults: they disturb the cluster).
    pub fn ops_plus_faults(&self) -> usize {
        self.ops + self.faults + self.membership
    }
}

impl std::fmt::Display for PlanSize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ops + {} faults + {} membership steps = {} ({} clients, {} members, workload {} ms)",
            self.ops,
            self.faults,
            self.membership,
            self.ops_plus_faults(),
            self.clients,
            self.members,
            self.workload_duration_ms
        )
    }
}

/// The outcome of a shrink.
#[derive(Clone, Debug)]
pub struct Shrunk {
    pub plan: Plan,
    /// The run of `plan` that failed with the target verdict kind.
    pub result: RunResult,
    pub before: PlanSize,
    pub after: PlanSize,
    pub runs: usize,
    /// The run budget ran out: a smaller failing plan may exist.
    pub budget_exhausted: bool,
}

impl Shrunk {
    /// before / after, in operations plus faults.
    pub fn ratio(&self) -> f64 {
        self.before.ops_plus_faults() as f64 / self.after.ops_plus_faults().max(1) as f64
    }
}

/// Runs candidates and remembers the smallest that still fails the same way.
struct Oracle<'a> {
    options: &'a RunOptions,
    target: VerdictKind,
    max_runs: usize,
    runs: usize,
    exhausted: bool,
    best: Plan,
    best_result: RunResult,
    progress: &'a mut dyn FnMut(&str),
}

impl Oracle<'_> {
    /// Does `plan` still fail with the target kind? Adopts it as the best plan if so.
    /// With a canary, the candidate must also pass without it: otherwise the shrink could
    /// slip from the planted bug to another one that fails with the same kind.
    fn fails(&mut self, plan: &Plan) -> bool {
        if self.runs >= self.max_runs {
            self.exhausted = true;
            return false;
        }
        self.runs += 1;
        let (result, _) = run_plan(plan, self.options);
        let kind = VerdictKind::of(&result.verdict);
        if kind == self.target && self.options.canary.is_some() {
            self.runs += 1;
            let (control, _) = run_plan(plan, &RunOptions::default());
            if !control.verdict.is_pass() {
                return false;
            }
        }
        if kind == self.target {
            self.best = plan.clone();
            self.best_result = result;
            true
        } else {
            false
        }
    }

    fn note(&mut self, step: &str) {
        let line = format!("[{} runs] {step}: {}", self.runs, PlanSize::of(&self.best));
        (self.progress)(&line);
    }
}

/// Shrink `plan`, which must fail with `target` under `options`. Errors if it does not.
pub fn shrink(
    plan: &Plan,
    options: &RunOptions,
    target: VerdictKind,
    shrink_options: &ShrinkOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<Shrunk, String> {
    assert!(
        shrink_options.max_runs >= 1,
        "a shrink needs at least one run"
    );
    if target == VerdictKind::Pass {
        return Err("a passing run has nothing to shrink".to_string());
    }
    let (first, _) = run_plan(plan, options);
    let kind = VerdictKind::of(&first.verdict);
    if kind != target {
        return Err(format!(
            "the plan does not fail as expected: expected {target}, got {kind} ({})",
            first.verdict.label()
        ));
    }
    if options.canary.is_some() && !run_plan(plan, &RunOptions::default()).0.verdict.is_pass() {
        return Err(
            "the plan fails without its canary too: that failure is not the canary's".to_string(),
        );
    }
    let mut oracle = Oracle {
        options,
        target,
        max_runs: shrink_options.max_runs,
        runs: if options.canary.is_some() { 2 } else { 1 },
        exhausted: false,
        best: plan.clone(),
        best_result: first,
        progress,
    };
    // Bounded: each round either shrinks the plan or ends the loop.
    for _round in 0..4 {
        let size_before_round = PlanSize::of(&oracle.best);
        cut_time(&mut oracle);
        oracle.note("cut time");
        fewer_members(&mut oracle);
        fewer_clients(&mut oracle);
        fewer_watchers(&mut oracle);
        oracle.note("fewer members, clients and watchers");
        fewer_fault_kinds(&mut oracle);
        fewer_faults(&mut oracle);
        fewer_membership_steps(&mut oracle);
        oracle.note("fewer faults and membership steps");
        fewer_ops(&mut oracle);
        oracle.note("fewer ops");
        shorter_workload(&mut oracle);
        if oracle.exhausted || PlanSize::of(&oracle.best) == size_before_round {
            break;
        }
    }
    Ok(Shrunk {
        before: PlanSize::of(plan),
        after: PlanSize::of(&oracle.best),
        plan: oracle.best,
        result: oracle.best_result,
        runs: oracle.runs,
        budget_exhausted: oracle.exhausted,
    })
}

fn watch_sessions(plan: &Plan) -> usize {
    plan.watchers.iter().map(|w| w.sessions.len()).sum()
}

/// When each op of a client is planned to start, by its think times (an estimate: the
/// generator budgets one tick per request).
fn planned_starts_ms(client: &ClientPlan, tick_interval_ms: u64) -> Vec<u64> {
    let mut now_ms = 0;
    client
        .ops
        .iter()
        .map(|op| {
            now_ms += op.think_time_ms;
            let start = now_ms;
            now_ms += tick_interval_ms;
            start
        })
        .collect()
}

/// Everything planned before `cutoff_ms`; the workload phase ends there too.
fn cut_at(plan: &Plan, cutoff_ms: u64) -> Plan {
    let mut cut = plan.clone();
    let tick = plan.scenario.tick_interval_ms;
    for client in &mut cut.clients {
        let keep = planned_starts_ms(client, tick)
            .iter()
            .take_while(|&&start| start < cutoff_ms)
            .count();
        client.ops.truncate(keep);
    }
    for watcher in &mut cut.watchers {
        let mut now_ms = 0;
        let keep = watcher
            .sessions
            .iter()
            .take_while(|s| {
                now_ms += s.think_time_ms;
                let start = now_ms;
                now_ms += s.duration_ms;
                start < cutoff_ms
            })
            .count();
        watcher.sessions.truncate(keep);
    }
    cut.faults.retain(|w| w.start_ms < cutoff_ms);
    cut.membership.retain(|step| step.at_ms < cutoff_ms);
    cut.maintenance.retain(|op| op.at_ms < cutoff_ms);
    cut.scenario.workload_duration_ms = cutoff_ms;
    cut
}

fn cut_time(oracle: &mut Oracle) {
    let mut hi = oracle.best.scenario.workload_duration_ms; // fails (the current best)
    let mut lo = 0; // assumed to pass: nothing happens before time 0
    let resolution_ms = (hi / 64).max(20);
    while hi - lo > resolution_ms && !oracle.exhausted {
        let mid = lo + (hi - lo) / 2;
        let candidate = cut_at(&oracle.best, mid);
        if oracle.fails(&candidate) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
}

/// The plan with only members `1..=count`: faults on the others go, ops are re-targeted.
fn with_members(plan: &Plan, count: u32) -> Plan {
    let mut smaller = plan.clone();
    let zones = plan.scenario.zones.min(count);
    smaller.scenario.members = count;
    smaller.scenario.zones = zones;
    smaller.members = plan
        .members
        .iter()
        .take(count as usize)
        .enumerate()
        .map(|(i, m)| MemberPlan {
            zone: i as u32 % zones,
            ..m.clone()
        })
        .collect();
    let kept = |member: u64| member <= u64::from(count);
    smaller.faults.retain(|w| match w.fault {
        Fault::Crash { member } | Fault::CorruptSynced { member, .. } => kept(member),
        Fault::CrashLeader | Fault::CutNewLeaders { .. } | Fault::AimedCrash { .. } => true,
        Fault::DelaySpike { target: None, .. } => true,
        Fault::Isolate { target }
        | Fault::DelaySpike {
            target: Some(target),
            ..
        }
        | Fault::DuplicateMessages { target, .. }
        | Fault::ReorderMessages { target, .. }
        | Fault::ClockJump { target, .. }
        | Fault::PartitionFromPeers { target }
        | Fault::Pause { target }
        | Fault::ClockSkew { target, .. }
        | Fault::FsyncError { target }
        | Fault::DiskFull { target }
        | Fault::DiskReadError { target }
        | Fault::SlowDisk { target, .. } => match target {
            IsolateTarget::Member(member) => kept(member),
            IsolateTarget::Leader => true,
        },
        Fault::ZoneDown { zone } | Fault::ZoneCut { zone } => zone < zones,
        Fault::OneWayCut { from, to } => [from, to].iter().all(|target| match target {
            IsolateTarget::Member(member) => kept(*member),
            IsolateTarget::Leader => true,
        }),
        // Drawn over whoever is live when they start.
        Fault::Bridge { .. } | Fault::MajorityMinority { .. } | Fault::Ring { .. } => true,
    });
    smaller.membership.retain(|step| match step.action {
        MembershipAction::Replace { member } => kept(member),
        _ => true,
    });
    let retarget = |member: u64| (member - 1) % u64::from(count) + 1;
    for client in &mut smaller.clients {
        for op in &mut client.ops {
            op.member = retarget(op.member);
        }
    }
    for watcher in &mut smaller.watchers {
        for session in &mut watcher.sessions {
            session.member = retarget(session.member);
        }
    }
    smaller
}

fn fewer_members(oracle: &mut Oracle) {
    let members = oracle.best.scenario.members;
    // Odd sizes only: an even cluster tolerates no more faults than the odd one below it.
    for count in (1..members).filter(|c| c % 2 == 1) {
        if oracle.exhausted {
            return;
        }
        let candidate = with_members(&oracle.best, count);
        if oracle.fails(&candidate) {
            return;
        }
    }
}

/// Clients keep their ids (lease ids and history client ids derive from them); the runner
/// opens new sessions above `Plan::first_free_client_id`.
fn with_clients(plan: &Plan, clients: Vec<ClientPlan>) -> Plan {
    let mut smaller = plan.clone();
    smaller.scenario.clients = clients.len() as u32;
    smaller.clients = clients;
    smaller
}

fn fewer_watchers(oracle: &mut Oracle) {
    let mut i = 0;
    while i < oracle.best.watchers.len() && !oracle.exhausted {
        let mut candidate = oracle.best.clone();
        candidate.watchers.remove(i);
        candidate.scenario.watchers = candidate.watchers.len() as u32;
        if !oracle.fails(&candidate) {
            i += 1;
        }
    }
}

fn fewer_membership_steps(oracle: &mut Oracle) {
    let mut i = 0;
    while i < oracle.best.membership.len() && !oracle.exhausted {
        let mut candidate = oracle.best.clone();
        candidate.membership.remove(i);
        if !oracle.fails(&candidate) {
            i += 1;
        }
    }
    // Planned maintenance actions, one at a time, likewise.
    let mut i = 0;
    while i < oracle.best.maintenance.len() && !oracle.exhausted {
        let mut candidate = oracle.best.clone();
        candidate.maintenance.remove(i);
        if !oracle.fails(&candidate) {
            i += 1;
        }
    }
}

fn fewer_clients(oracle: &mut Oracle) {
    let mut i = 0;
    while i < oracle.best.clients.len() && oracle.best.clients.len() > 1 && !oracle.exhausted {
        let mut clients = oracle.best.clients.clone();
        clients.remove(i);
        let candidate = with_clients(&oracle.best, clients);
        if !oracle.fails(&candidate) {
            i += 1;
        }
    }
}

/// Delta debugging over `items`: returns a smaller list for which `build` still fails.
/// Tries the empty list first, then removes chunks of decreasing size (complements only).
fn ddmin<T: Clone>(
    oracle: &mut Oracle,
    mut items: Vec<T>,
    build: &dyn Fn(&Plan, &[T]) -> Plan,
) -> Vec<T> {
    if items.is_empty() || oracle.exhausted {
        return items;
    }
    let base = oracle.best.clone();
    if oracle.fails(&build(&base, &[])) {
        return Vec::new();
    }
    let mut granularity = 2usize;
    while items.len() >= 2 && !oracle.exhausted {
        let chunk = items.len().div_ceil(granularity);
        let mut reduced = false;
        let mut start = 0;
        while start < items.len() && !oracle.exhausted {
            let end = (start + chunk).min(items.len());
            let complement: Vec<T> = items[..start]
                .iter()
                .chain(&items[end..])
                .cloned()
                .collect();
            if oracle.fails(&build(&base, &complement)) {
                items = complement;
                granularity = (granularity - 1).max(2);
                reduced = true;
                break;
            }
            start = end;
        }
        if !reduced {
            if granularity >= items.len() {
                break;
            }
            granularity = (granularity * 2).min(items.len());
        }
    }
    items
}

/// The plan's fault windows of the kinds listed only.
fn keep_fault_kinds(base: &Plan, kinds: &[String]) -> Plan {
    let mut plan = base.clone();
    plan.faults
        .retain(|w| kinds.contains(&fault_kind_name(&w.fault)));
    plan
}

fn fewer_fault_kinds(oracle: &mut Oracle) {
    let kinds: std::collections::BTreeSet<String> = oracle
        .best
        .faults
        .iter()
        .map(|w| fault_kind_name(&w.fault))
        .collect();
    if kinds.len() > 1 {
        ddmin(oracle, kinds.into_iter().collect(), &keep_fault_kinds);
    }
}

fn fewer_faults(oracle: &mut Oracle) {
    let faults = oracle.best.faults.clone();
    ddmin(oracle, faults, &|base: &Plan, kept: &[FaultWindow]| {
        let mut plan = base.clone();
        plan.faults = kept.to_vec();
        plan
    });
}

fn fewer_ops(oracle: &mut Oracle) {
    // Every op by (client index, op index), so ddmin can remove across clients.
    let ids: Vec<(usize, usize)> = oracle
        .best
        .clients
        .iter()
        .enumerate()
        .flat_map(|(c, client)| (0..client.ops.len()).map(move |o| (c, o)))
        .collect();
    ddmin(oracle, ids, &|base: &Plan, kept: &[(usize, usize)]| {
        keep_ops(base, kept)
    });
    let sessions: Vec<(usize, usize)> = oracle
        .best
        .watchers
        .iter()
        .enumerate()
        .flat_map(|(w, watcher)| (0..watcher.sessions.len()).map(move |s| (w, s)))
        .collect();
    ddmin(oracle, sessions, &|base: &Plan, kept: &[(usize, usize)]| {
        keep_sessions(base, kept)
    });
    // Clients left without operations go.
    let busy: Vec<ClientPlan> = oracle
        .best
        .clients
        .iter()
        .filter(|c| !c.ops.is_empty())
        .cloned()
        .collect();
    if !busy.is_empty() && busy.len() < oracle.best.clients.len() && !oracle.exhausted {
        let candidate = with_clients(&oracle.best, busy);
        oracle.fails(&candidate);
    }
}

/// Keep only the listed ops. A removed op's think time and its budgeted tick move to the next
/// kept op of that client, so the ops that stay keep roughly their place relative to faults.
fn keep_ops(base: &Plan, kept: &[(usize, usize)]) -> Plan {
    let kept: std::collections::BTreeSet<(usize, usize)> = kept.iter().copied().collect();
    let mut plan = base.clone();
    let tick = base.scenario.tick_interval_ms;
    for (c, client) in plan.clients.iter_mut().enumerate() {
        let mut carried_ms = 0;
        let mut ops: Vec<PlannedOp> = Vec::new();
        for (o, op) in base.clients[c].ops.iter().enumerate() {
            if kept.contains(&(c, o)) {
                ops.push(PlannedOp {
                    think_time_ms: op.think_time_ms + carried_ms,
                    ..op.clone()
                });
                carried_ms = 0;
            } else {
                carried_ms += op.think_time_ms + tick;
            }
        }
        client.ops = ops;
    }
    plan
}

/// Keep only the listed watch sessions; a removed session's think time and duration move to
/// the next kept session of that watcher (as `keep_ops` does for ops).
fn keep_sessions(base: &Plan, kept: &[(usize, usize)]) -> Plan {
    let kept: std::collections::BTreeSet<(usize, usize)> = kept.iter().copied().collect();
    let mut plan = base.clone();
    for (w, watcher) in plan.watchers.iter_mut().enumerate() {
        let mut carried_ms = 0;
        let mut sessions: Vec<PlannedWatch> = Vec::new();
        for (s, session) in base.watchers[w].sessions.iter().enumerate() {
            if kept.contains(&(w, s)) {
                sessions.push(PlannedWatch {
                    think_time_ms: session.think_time_ms + carried_ms,
                    ..session.clone()
                });
                carried_ms = 0;
            } else {
                carried_ms += session.think_time_ms + session.duration_ms;
            }
        }
        watcher.sessions = sessions;
    }
    plan
}

fn shorter_workload(oracle: &mut Oracle) {
    let last_fault_end_ms = oracle
        .best
        .faults
        .iter()
        .map(|w| w.start_ms + w.duration_ms)
        .max()
        .unwrap_or(0);
    if last_fault_end_ms < oracle.best.scenario.workload_duration_ms && !oracle.exhausted {
        let mut candidate = oracle.best.clone();
        candidate.scenario.workload_duration_ms = last_fault_end_ms;
        oracle.fails(&candidate);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Scenario;

    #[test]
    fn edits_keep_plans_consistent() {
        let mut scenario = Scenario::default_scenario().without_swarm();
        scenario.members = 5;
        let plan = Plan::generate(11, &scenario);
        let smaller = with_members(&plan, 3);
        assert_eq!(smaller.members.len(), 3);
        smaller.scenario.validate().unwrap();
        assert!(smaller
            .clients
            .iter()
            .flat_map(|c| &c.ops)
            .all(|op| (1..=3).contains(&op.member)));

        let cut = cut_at(&plan, 1000);
        assert!(cut.op_count() < plan.op_count() / 4);
        assert!(cut.faults.iter().all(|w| w.start_ms < 1000));

        let kept = keep_ops(&plan, &[(1, 5)]);
        assert_eq!(kept.op_count(), 1);
        let expected: u64 = plan.clients[1].ops[..=5]
            .iter()
            .map(|op| op.think_time_ms)
            .sum::<u64>()
            + 5 * scenario.tick_interval_ms;
        assert_eq!(kept.clients[1].ops[0].think_time_ms, expected);

        let kinds: Vec<String> = plan
            .faults
            .iter()
            .map(|w| fault_kind_name(&w.fault))
            .collect();
        let one_kind = keep_fault_kinds(&plan, &kinds[..1]);
        assert!(!one_kind.faults.is_empty());
        assert!(one_kind
            .faults
            .iter()
            .all(|w| fault_kind_name(&w.fault) == kinds[0]));
        assert_eq!(
            one_kind.faults.len(),
            kinds.iter().filter(|k| **k == kinds[0]).count()
        );

        let renumbered = with_clients(&plan, plan.clients[2..].to_vec());
        let left = plan.clients.len() - 2;
        assert_eq!(
            renumbered.clients.iter().map(|c| c.id).collect::<Vec<_>>(),
            (2..plan.clients.len() as u64).collect::<Vec<_>>()
        );
        assert_eq!(renumbered.scenario.clients as usize, left);
        assert_eq!(renumbered.clients[0].ops, plan.clients[2].ops);
    }
}
