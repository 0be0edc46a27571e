//! A failing run is reported with its seed, the command that replays it, the tail of its
//! trace, and its steps shrunk to a short script that still fails the same way.

use chat_core::mutants::Mutant;
use chat_harness::config::SimConfig;
use chat_harness::runner::{replay_command, report, simulate};
use chat_harness::shrink::shrink;
use chat_harness::trace::Trace;

/// A run that fails: the first seed on which acking before the commit is caught.
fn failing_run() -> chat_harness::runner::Outcome {
    (0..50)
        .map(|seed| simulate(&SimConfig::from_seed(seed, 2_000).with_mutant(Some(Mutant::AckBeforeCommit)), None, Trace::off()))
        .find(|outcome| outcome.violation.is_some())
        .expect("the mutant is caught within 50 seeds")
}

#[test]
fn a_failure_shrinks_to_a_few_steps_that_still_fail_the_same_way() {
    let failed = failing_run();
    let kind = failed.violation.as_ref().map(|v| v.kind).unwrap();
    let shrunk = shrink(&failed.cfg, &failed.steps, kind, 500);
    assert!(shrunk.len() <= 5, "shrunk to {} steps: {shrunk:?}", shrunk.len());
    let again = simulate(&failed.cfg, Some(&shrunk), Trace::off());
    assert_eq!(again.violation.map(|v| v.kind), Some(kind));
}

#[test]
fn a_failure_report_names_the_seed_the_replay_command_and_the_trace() {
    let failed = failing_run();
    let text = report(&failed, 200);
    let command = replay_command(&failed.cfg);
    assert!(command.contains(&format!("SIM_SEED={}", failed.cfg.seed)) && command.contains("SIM_MUTANT=AckBeforeCommit"), "{command}");
    assert!(text.contains(&command), "{text}");
    assert!(text.contains("[acked-not-stored]"), "{text}");
    assert!(text.contains("shrunk from"), "{text}");
    assert!(text.contains("trace tail") && text.contains("message:send"), "{text}");
}
