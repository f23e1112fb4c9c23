//! Running seeds: one on a fresh thread (a madsim runtime per seed), or a range over workers.

#[cfg(madsim)]
pub use imp::*;

#[cfg(madsim)]
mod imp {
    use std::path::Path;
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
    use std::sync::Mutex;

    use faultline_node::Canary;
    use std::time::Instant;

    use serde::{Deserialize, Serialize};

    use crate::plan::{Plan, Scenario};
    use crate::runner::{simulate, RunOptions, RunOutput};
    use crate::seedrange::SeedRange;
    use crate::trace::{fingerprint, summarize, TraceSummary};
    use crate::verdict::{check_plan, FailureKind, Verdict};

    /// The outcome of one seed: verdict, fingerprint and a summary.
    #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
    pub struct RunResult {
        pub seed: u64,
        pub verdict: Verdict,
        pub trace_hash: u64,
        pub summary: TraceSummary,
        /// Wall-clock time of the run (simulation and checks); for reports only, never
        /// part of a verdict or a hash.
        pub wall_ms: u64,
    }

    impl RunResult {
        /// The operator's work, when it did any.
        fn membership_part(&self) -> String {
            let s = &self.summary;
            if s.members_added + s.members_removed + s.leader_transfers + s.operator_gave_up == 0 {
                return String::new();
            }
            format!(
                " | members added {}, promoted {}, removed {}; {} leader transfer(s); {} step(s) given up",
                s.members_added, s.members_promoted, s.members_removed, s.leader_transfers,
                s.operator_gave_up
            )
        }

        /// Planned maintenance's work, when there was any.
        fn maintenance_part(&self) -> String {
            let s = &self.summary;
            if s.maintenance_restarts + s.maintenance_replacements + s.maintenance_stopped == 0 {
                return String::new();
            }
            format!(
                " | maintenance: {} restart(s), {} replacement(s), {} action(s) stopped",
                s.maintenance_restarts, s.maintenance_replacements, s.maintenance_stopped
            )
        }

        pub fn one_line(&self) -> String {
            format!(
                "seed {} {} trace {:016x} | ops {} (ok {}, failed {}, unknown {}) | faults {} \
                 | elections {} | committed {} | snapshots {} taken, {} installed{}{} | {} ms",
                self.seed,
                self.verdict.label(),
                self.trace_hash,
                self.summary.ops,
                self.summary.ops_ok,
                self.summary.ops_failed,
                self.summary.ops_unknown,
                self.summary.faults,
                self.summary.elections,
                self.summary.entries_committed,
                self.summary.snapshots_taken,
                self.summary.snapshots_installed,
                self.membership_part(),
                self.maintenance_part(),
                self.wall_ms
            )
        }
    }

    /// Run a plan on a fresh thread (madsim wants one runtime per thread) and check it.
    /// A panic inside the simulation becomes a `Panic` failure, not a crash of the caller.
    pub fn run_plan(plan: &Plan, options: &RunOptions) -> (RunResult, Option<RunOutput>) {
        let started = Instant::now();
        let seed = plan.seed;
        let thread_plan = plan.clone();
        let thread_options = options.clone();
        let joined = std::thread::Builder::new()
            .name(format!("seed-{seed}"))
            .stack_size(64 << 20)
            .spawn(move || {
                let output = simulate(&thread_plan, &thread_options);
                let verdict = check_plan(&thread_plan, &output);
                (output, verdict)
            })
            .expect("spawn simulation thread")
            .join();
        let wall_ms = started.elapsed().as_millis() as u64;
        match joined {
            Ok((output, verdict)) => (
                RunResult {
                    seed,
                    verdict,
                    trace_hash: fingerprint(&output.trace, &output.history),
                    summary: summarize(&output.trace, &output.history),
                    wall_ms,
                },
                Some(output),
            ),
            Err(payload) => {
                let message = payload
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "non-string panic payload".to_string());
                (
                    RunResult {
                        seed,
                        verdict: Verdict::Fail {
                            kind: FailureKind::Panic,
                            report: message,
                        },
                        trace_hash: 0,
                        summary: TraceSummary::default(),
                        wall_ms,
                    },
                    None,
                )
            }
        }
    }

    pub fn run_seed(seed: u64, scenario: &Scenario, options: &RunOptions) -> RunResult {
        run_plan(&Plan::generate(seed, scenario), options).0
    }

    /// Run every seed in `seeds` over `workers` threads; results come back in seed order.
    /// `on_result` sees each result as it finishes (for progress output).
    pub fn run_seeds(
        seeds: &[u64],
        scenario: &Scenario,
        options: &RunOptions,
        workers: usize,
        on_result: &(dyn Fn(&RunResult) + Sync),
    ) -> Vec<RunResult> {
        let next = AtomicUsize::new(0);
        let results = Mutex::new(Vec::with_capacity(seeds.len()));
        let workers = workers.max(1).min(seeds.len().max(1));
        std::thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&seed) = seeds.get(i) else { break };
                    let result = run_seed(seed, scenario, options);
                    on_result(&result);
                    results.lock().expect("results lock").push(result);
                });
            }
        });
        let mut results = results.into_inner().expect("results lock");
        results.sort_by_key(|r| r.seed);
        results
    }

    /// Run the seeds of `seeds` over `workers` threads, lazily (a huge range costs no memory),
    /// until the range ends or `should_stop` says so (checked before each seed; a seed that has
    /// started runs to its end). `on_result` sees each result as it finishes; results are not
    /// kept. Returns how many seeds ran.
    pub fn run_seed_range(
        seeds: &SeedRange,
        scenario: &Scenario,
        options: &RunOptions,
        workers: usize,
        should_stop: &(dyn Fn() -> bool + Sync),
        on_result: &(dyn Fn(&RunResult) + Sync),
    ) -> u64 {
        assert!(workers > 0, "run_seed_range needs at least one worker");
        let next = AtomicU64::new(0);
        let ran = AtomicU64::new(0);
        std::thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|| {
                    while !should_stop() {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(seed) = seeds.nth(i) else { break };
                        let result = run_seed(seed, scenario, options);
                        on_result(&result);
                        ran.fetch_add(1, Ordering::Relaxed);
                    }
                });
            }
        });
        ran.into_inner()
    }

    /// The command that replays one seed of a scenario (without its file: a placeholder names
    /// the scenario; `rerun_command` has the path and the canary).
    pub fn replay_command(seed: u64, scenario: &Scenario) -> String {
        if *scenario == Scenario::default_scenario() {
            format!("cargo dst run --seed {seed}")
        } else {
            format!(
                "cargo dst run --seed {seed} --scenario <file with scenario {:?}>",
                scenario.name
            )
        }
    }

    /// The command that re-runs one seed of a scenario: with the scenario file it came from
    /// (`None`: the embedded default) and the canary, so following it reproduces the run.
    pub fn rerun_command(
        seed: u64,
        scenario_path: Option<&Path>,
        canary: Option<Canary>,
    ) -> String {
        let mut command = format!("{} run --seed {seed}", dst_command(canary.is_some()));
        if let Some(path) = scenario_path {
            command.push_str(&format!(" --scenario {}", path.display()));
        }
        if let Some(canary) = canary {
            command.push_str(&format!(" --canary {}", canary.name()));
        }
        command
    }

    /// How to invoke `dst` from the workspace: canaries need a build with the feature.
    pub fn dst_command(canaries: bool) -> &'static str {
        if canaries {
            "cargo run --release -p faultline-sim --features canaries --bin dst --"
        } else {
            "cargo dst"
        }
    }

    /// Number of worker threads to use by default: the machine's cores.
    pub fn default_workers() -> usize {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    }
}
