//! The simulation as CI runs it: a budget of seeds, each a world of many users and
//! devices over faulty storage, with every invariant checked after every step.
//!
//! `SIM_SEEDS`, `SIM_STEPS`, `SIM_FIRST_SEED` and `SIM_THREADS` change the budget;
//! `SIM_SEED` (with `SIM_STEPS`, and `SIM_MUTANT` if any) replays one seed via the
//! `replay` test.

use chat_harness::config::SimConfig;
use chat_harness::runner::{env_mutant, env_u64, report, run_seeds, simulate, Budget};
use chat_harness::trace::Trace;

/// Seeds and steps per seed that CI runs by default.
const DEFAULT_SEEDS: u64 = 1_000;
const DEFAULT_STEPS: usize = 2_000;

/// Runs shrinking may take on a failure.
const SHRINK_RUNS: usize = 2_000;

#[test]
fn every_seed_keeps_every_invariant() {
    let budget = Budget::from_env(DEFAULT_SEEDS, DEFAULT_STEPS);
    let started = std::time::Instant::now();
    let summary = run_seeds(&budget);
    eprintln!("simulated {budget:?} in {:.1?}\n  {}", started.elapsed(), summary.stats);
    if let Some(failure) = summary.failures.first() {
        panic!("\n{}", report(failure, SHRINK_RUNS));
    }
}

#[test]
fn replay() {
    let Some(seed) = env_u64("SIM_SEED") else { return };
    let steps = env_u64("SIM_STEPS").map_or(DEFAULT_STEPS, |s| s as usize);
    let cfg = SimConfig::from_seed(seed, steps).with_mutant(env_mutant());
    let outcome = simulate(&cfg, None, Trace::off());
    eprintln!("seed {seed}: {}", outcome.stats);
    if outcome.violation.is_some() {
        panic!("\n{}", report(&outcome, SHRINK_RUNS));
    }
}
