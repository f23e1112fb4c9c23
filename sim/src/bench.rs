//! `dst bench`: where a seed's wall time goes. Runs seeds one after another on one thread
//! (so the figures are per core) and times each stage of the path of a run: plan,
//! simulation (the cluster, the clients and the nemesis; the history is recorded as it
//! goes), each checker, the trace hash and the summary; and, apart, the HTML report a
//! failure gets.
//!
//! Wall-clock time is read only here, outside every simulation: it measures the run, it
//! never feeds it.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::plan::{Plan, Scenario};
use crate::runner::{simulate, RunOptions, RunOutput};
use crate::trace::{fingerprint, summarize};
use crate::verdict::check_timed_plan;

/// What `bench_seeds` measured over a set of seeds.
#[derive(Clone, Debug, Default, Serialize)]
pub struct BenchFigures {
    pub seeds: u64,
    /// Seeds whose verdict was not a pass (a benchmark of failing seeds measures failures).
    pub not_passed: u64,
    /// Wall time of every stage of every seed, summed.
    pub wall: Duration,
    /// Simulated time covered by the runs (each run's last trace record or operation).
    pub simulated_ns: u64,
    /// Client operations in the histories.
    pub client_ops: u64,
    /// Wall time per stage, summed over the seeds, in the order the stages first ran.
    pub stages: Vec<(String, Duration)>,
    /// Drawing each run's HTML report, summed: `dst fuzz` draws one only for a failing
    /// seed, so it is not part of `wall` or the rates.
    pub html_report: Duration,
}

impl BenchFigures {
    /// Simulated seconds per wall second.
    pub fn simulated_per_wall(&self) -> f64 {
        self.simulated_ns as f64 / 1e9 / self.wall.as_secs_f64().max(1e-9)
    }

    pub fn client_ops_per_wall_second(&self) -> f64 {
        self.client_ops as f64 / self.wall.as_secs_f64().max(1e-9)
    }

    /// Seeds per hour on one core (the seeds ran one after another on one thread).
    pub fn seeds_per_hour_per_core(&self) -> f64 {
        self.seeds as f64 * 3600.0 / self.wall.as_secs_f64().max(1e-9)
    }

    fn add_stage(&mut self, name: &str, took: Duration) {
        match self.stages.iter_mut().find(|(n, _)| n == name) {
            Some((_, total)) => *total += took,
            None => self.stages.push((name.to_string(), took)),
        }
        self.wall += took;
    }

    /// The figures as text: the headline rates, then the stages with their shares.
    pub fn render(&self) -> String {
        let mut out = format!(
            "{} seeds in {:.2} s wall ({} not passed)\n\
             simulated seconds per wall second: {:.0}\n\
             client operations per wall second: {:.0}\n\
             seeds per hour per core: {:.0} ({:.1} ms per seed)\n\
             where the wall time goes:\n",
            self.seeds,
            self.wall.as_secs_f64(),
            self.not_passed,
            self.simulated_per_wall(),
            self.client_ops_per_wall_second(),
            self.seeds_per_hour_per_core(),
            self.wall.as_secs_f64() * 1e3 / (self.seeds.max(1) as f64),
        );
        let wall = self.wall.as_secs_f64().max(1e-9);
        for (name, took) in &self.stages {
            out.push_str(&format!(
                "  {name:<36} {:>9.1} ms {:>5.1}%\n",
                took.as_secs_f64() * 1e3,
                100.0 * took.as_secs_f64() / wall
            ));
        }
        out.push_str(&format!(
            "HTML report, drawn by `dst fuzz` for failing seeds only (not in the figures above): \
             {:.1} ms per seed\n",
            self.html_report.as_secs_f64() * 1e3 / (self.seeds.max(1) as f64)
        ));
        out
    }
}

/// The simulated time a run covered: its last trace record or operation.
fn simulated_ns(output: &RunOutput) -> u64 {
    let traced = output.trace.iter().map(|r| r.at_ns).max().unwrap_or(0);
    let operated = output
        .history
        .ops
        .iter()
        .map(|op| op.complete_ns.max(op.invoke_ns))
        .max()
        .unwrap_or(0);
    traced.max(operated)
}

/// Run one seed stage by stage on a fresh thread (madsim wants one runtime per thread),
/// adding each stage's wall time to `figures`. A seed whose simulation panics counts as not
/// passed, with its simulation time.
fn bench_seed(seed: u64, scenario: &Scenario, options: &RunOptions, figures: &mut BenchFigures) {
    let started = Instant::now();
    let plan = Plan::generate(seed, scenario);
    figures.add_stage("plan", started.elapsed());
    let thread_plan = plan.clone();
    let thread_options = options.clone();
    let simulated = std::thread::Builder::new()
        .name(format!("bench-seed-{seed}"))
        .stack_size(64 << 20)
        .spawn(move || {
            let started = Instant::now();
            let output = simulate(&thread_plan, &thread_options);
            (output, started.elapsed())
        })
        .expect("spawn simulation thread")
        .join();
    figures.seeds += 1;
    let Ok((output, took)) = simulated else {
        figures.not_passed += 1;
        figures.add_stage("simulation", started.elapsed());
        return;
    };
    figures.add_stage("simulation", took);
    figures.simulated_ns += simulated_ns(&output);
    figures.client_ops += output.history.ops.len() as u64;
    let (verdict, checkers) = check_timed_plan(&plan, &output);
    for (name, took) in checkers {
        figures.add_stage(&format!("check: {name}"), took);
    }
    if !verdict.is_pass() {
        figures.not_passed += 1;
    }
    let started = Instant::now();
    std::hint::black_box(fingerprint(&output.trace, &output.history));
    figures.add_stage("trace hash", started.elapsed());
    let started = Instant::now();
    std::hint::black_box(summarize(&output.trace, &output.history));
    figures.add_stage("summary", started.elapsed());
    let started = Instant::now();
    let html = crate::report::render_run_report(&plan, &output, &verdict, "bench", Vec::new());
    std::hint::black_box(html);
    figures.html_report += started.elapsed();
}

/// Run `seeds` one after another and measure where the wall time goes.
pub fn bench_seeds(
    seeds: impl IntoIterator<Item = u64>,
    scenario: &Scenario,
    options: &RunOptions,
    on_seed: &mut dyn FnMut(u64, &BenchFigures),
) -> BenchFigures {
    let mut figures = BenchFigures::default();
    for seed in seeds {
        bench_seed(seed, scenario, options, &mut figures);
        on_seed(seed, &figures);
    }
    figures
}
