//! Running seeds: one seed (generated or from a script of steps), many seeds across
//! threads, and the report of a failure with the command that replays it.

use crate::action::Step;
use crate::config::SimConfig;
use crate::generate::Generator;
use crate::invariants::Violation;
use crate::shrink::shrink;
use crate::stats::Stats;
use crate::trace::Trace;
use crate::world::World;
use chat_core::mutants::Mutant;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

/// What one run came to.
pub struct Outcome {
    pub cfg: SimConfig,
    /// The steps run, up to and including the failing one.
    pub steps: Vec<Step>,
    pub violation: Option<Violation>,
    pub stats: Stats,
    pub trace_hash: u64,
    pub trace_lines: u64,
    pub tail: Vec<String>,
}

/// Runs `cfg.steps` generated steps (or `script`), then quiescence, checking throughout.
pub fn simulate(cfg: &SimConfig, script: Option<&[Step]>, trace: Trace) -> Outcome {
    chat_core::mutants::set(cfg.mutant);
    let mut world = World::new(cfg.clone(), trace);
    let mut steps = Vec::new();
    let run = catch_unwind(AssertUnwindSafe(|| {
        let mut generator = Generator::new(cfg.seed);
        let count = script.map_or(cfg.steps, <[Step]>::len);
        for i in 0..count {
            let step = match script {
                Some(script) => script[i].clone(),
                None => generator.next(&world),
            };
            steps.push(step.clone());
            world.step(&step);
            if world.checker.failed() {
                return;
            }
        }
        world.quiesce();
    }));
    chat_core::mutants::set(None);
    let mut violation = world.checker.violation.clone();
    if let Err(panic) = run {
        let message = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "(no message)".into());
        violation = Some(Violation { kind: "panic", step: world.step_no, detail: message });
    }
    let mut stats = world.stats.clone();
    stats.runs = 1;
    Outcome {
        cfg: cfg.clone(),
        steps,
        violation,
        stats,
        trace_hash: world.trace.hash(),
        trace_lines: world.trace.len(),
        tail: world.trace.tail(),
    }
}

/// Which seeds to run, and how.
#[derive(Clone, Debug)]
pub struct Budget {
    pub first_seed: u64,
    pub seeds: u64,
    pub steps: usize,
    pub threads: usize,
    pub mutant: Option<Mutant>,
    /// Stop every thread once one run failed.
    pub stop_at_first: bool,
}

impl Budget {
    /// The budget from `SIM_SEEDS`, `SIM_STEPS`, `SIM_FIRST_SEED`, `SIM_THREADS`, with defaults.
    pub fn from_env(seeds: u64, steps: usize) -> Self {
        Self {
            first_seed: env_u64("SIM_FIRST_SEED").unwrap_or(0),
            seeds: env_u64("SIM_SEEDS").unwrap_or(seeds),
            steps: env_u64("SIM_STEPS").map_or(steps, |s| s as usize),
            threads: env_u64("SIM_THREADS").map_or(2, |t| t.max(1) as usize),
            mutant: None,
            stop_at_first: true,
        }
    }
}

pub fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

/// `SIM_MUTANT` by name (`RateLimitOffByOne`, …).
pub fn env_mutant() -> Option<Mutant> {
    let name = std::env::var("SIM_MUTANT").ok()?;
    Mutant::ALL.into_iter().find(|m| format!("{m:?}") == name.trim())
}

pub struct Summary {
    pub stats: Stats,
    /// Failed runs, by seed.
    pub failures: Vec<Outcome>,
}

/// Runs the budget's seeds on its threads.
pub fn run_seeds(budget: &Budget) -> Summary {
    let next = AtomicU64::new(budget.first_seed);
    let end = budget.first_seed + budget.seeds;
    let stop = AtomicBool::new(false);
    let total = Mutex::new(Stats::default());
    let failures = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..budget.threads {
            scope.spawn(|| {
                let mut stats = Stats::default();
                loop {
                    let seed = next.fetch_add(1, Ordering::Relaxed);
                    if seed >= end || stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let cfg = SimConfig::from_seed(seed, budget.steps).with_mutant(budget.mutant);
                    let outcome = simulate(&cfg, None, Trace::off());
                    stats.merge(&outcome.stats);
                    if outcome.violation.is_some() {
                        if budget.stop_at_first {
                            stop.store(true, Ordering::Relaxed);
                        }
                        failures.lock().unwrap_or_else(|e| e.into_inner()).push(outcome);
                    }
                }
                total.lock().unwrap_or_else(|e| e.into_inner()).merge(&stats);
            });
        }
    });
    let mut failures = failures.into_inner().unwrap_or_else(|e| e.into_inner());
    failures.sort_by_key(|o| o.cfg.seed);
    Summary { stats: total.into_inner().unwrap_or_else(|e| e.into_inner()), failures }
}

/// The command that replays a seed.
pub fn replay_command(cfg: &SimConfig) -> String {
    let mutant = cfg.mutant.map(|m| format!("SIM_MUTANT={m:?} ")).unwrap_or_default();
    format!("{mutant}SIM_SEED={} SIM_STEPS={} cargo test -p chat-harness --test simulation replay -- --nocapture", cfg.seed, cfg.steps)
}

/// A failure, explained: the seed and how to replay it, the violation, the steps shrunk
/// (when `shrink_runs` > 0), and the tail of the (re-run, traced) failing run.
pub fn report(outcome: &Outcome, shrink_runs: usize) -> String {
    let cfg = &outcome.cfg;
    let Some(violation) = &outcome.violation else { return format!("seed {} passed", cfg.seed) };
    let mut out = String::new();
    out += &format!("SIMULATION FAILURE: seed {} ({} steps{})\n", cfg.seed, cfg.steps, cfg.mutant.map(|m| format!(", mutant {m:?}")).unwrap_or_default());
    out += &format!("violation [{}] at step {}: {}\n", violation.kind, violation.step, violation.detail);
    out += &format!("replay: {}\n", replay_command(cfg));
    out += &format!("world: {} users × {} devices, {:?}, {:?}\n", cfg.users, cfg.devices, cfg.limits, cfg.faults);
    let lines = env_u64("SIM_TRACE_LINES").map_or(80, |n| n as usize);
    let mut steps = outcome.steps.clone();
    if shrink_runs > 0 {
        steps = shrink(cfg, &outcome.steps, violation.kind, shrink_runs);
        out += &format!("shrunk from {} to {} steps (still [{}]):\n", outcome.steps.len(), steps.len(), violation.kind);
        for (i, step) in steps.iter().enumerate() {
            out += &format!("  {i:>4}: {step:?}\n");
        }
        out += "as a script (for a regression test, with `SimConfig::from_seed(seed, steps)`):\n";
        for step in &steps {
            out += &format!("    {},\n", step.to_rust());
        }
    }
    let traced = simulate(cfg, Some(&steps), Trace::on(lines));
    if let Some(v) = &traced.violation {
        out += &format!("{} run: [{}] at step {}: {}\n", if shrink_runs > 0 { "shrunk" } else { "replayed" }, v.kind, v.step, v.detail);
    }
    out += &format!("trace tail (last {} lines, SIM_TRACE_LINES for more):\n", traced.tail.len());
    for line in &traced.tail {
        out += &format!("  {line}\n");
    }
    out
}
