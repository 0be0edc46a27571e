//! Same seed, same run: a failure found once can be replayed and shrunk.

use chat_harness::config::SimConfig;
use chat_harness::runner::simulate;
use chat_harness::trace::Trace;

const STEPS: usize = 2_000;

#[test]
fn the_same_seed_gives_the_same_trace() {
    let cfg = SimConfig::from_seed(11, STEPS);
    let first = simulate(&cfg, None, Trace::on(0));
    let second = simulate(&cfg, None, Trace::on(0));
    assert!(first.violation.is_none(), "{:?}", first.violation);
    assert!(first.trace_lines > STEPS as u64, "the trace records every input and effect");
    assert_eq!((first.trace_hash, first.trace_lines), (second.trace_hash, second.trace_lines));
    assert_eq!(first.steps, second.steps);
    assert_eq!(first.stats, second.stats);
}

#[test]
fn the_recorded_steps_replay_the_same_run() {
    let cfg = SimConfig::from_seed(12, STEPS);
    let generated = simulate(&cfg, None, Trace::on(0));
    let replayed = simulate(&cfg, Some(&generated.steps), Trace::on(0));
    assert_eq!(generated.steps.len(), STEPS);
    assert_eq!((generated.trace_hash, generated.trace_lines), (replayed.trace_hash, replayed.trace_lines));
}

#[test]
fn different_seeds_give_different_worlds() {
    let a = simulate(&SimConfig::from_seed(13, 300), None, Trace::on(0));
    let b = simulate(&SimConfig::from_seed(14, 300), None, Trace::on(0));
    assert_ne!(a.trace_hash, b.trace_hash);
}

#[test]
fn tracing_does_not_change_the_run() {
    let cfg = SimConfig::from_seed(15, STEPS);
    let plain = simulate(&cfg, None, Trace::off());
    let traced = simulate(&cfg, None, Trace::on(10));
    assert_eq!(plain.steps, traced.steps);
    assert_eq!(plain.stats, traced.stats);
}
