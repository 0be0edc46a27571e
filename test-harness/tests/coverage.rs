//! The worlds are not vacuous: across a handful of seeds every fault happens, every
//! answer code comes back, and every server event goes out.

use chat_harness::runner::{run_seeds, Budget};

#[test]
fn a_few_seeds_exercise_every_fault_answer_and_event() {
    let budget = Budget { first_seed: 0, seeds: 40, steps: 2_000, threads: 2, mutant: None, stop_at_first: true };
    let summary = run_seeds(&budget);
    assert!(summary.failures.is_empty());
    let stats = summary.stats;
    for (what, count) in [
        ("crashes", stats.crashes),
        ("lost commits", stats.lost_commits),
        ("failed storage operations", stats.failed_ops),
        ("held-back storage results", stats.deferred),
        ("results delivered out of order", stats.out_of_order),
        ("retries", stats.retries),
        ("malformed payloads", stats.malformed),
    ] {
        assert!(count > 0, "no {what}: {stats}");
    }
    for code in ["ok", "VALIDATION_ERROR", "UNAUTHORIZED", "FORBIDDEN", "NOT_FOUND", "RATE_LIMITED", "INTERNAL", "TOO_MANY_CONNECTIONS"] {
        assert!(stats.code(code) > 0, "no {code} answer: {stats}");
    }
    for event in ["message:new", "typing:update", "receipt:update", "inbox:update", "chat:update", "presence:update", "presence:snapshot"] {
        assert!(stats.event(event) > 0, "no {event}: {stats}");
    }
}
