//! The simulation catches bugs: each deliberate bug of `chat_core::mutants`, switched on,
//! breaks an invariant within a few seeds, and shrinks to a short script.

use chat_core::mutants::Mutant;
use chat_harness::runner::{run_seeds, Budget, Outcome};

/// Seeds tried per mutant before declaring it survived.
const SEEDS: u64 = 200;
const STEPS: usize = 2_000;

/// The first failing run with `mutant` on.
fn caught(mutant: Mutant) -> Outcome {
    let budget = Budget { first_seed: 0, seeds: SEEDS, steps: STEPS, threads: 2, mutant: Some(mutant), stop_at_first: true };
    let summary = run_seeds(&budget);
    summary.failures.into_iter().next().unwrap_or_else(|| panic!("{mutant:?} survived {SEEDS} seeds: {}", summary.stats))
}

fn assert_caught_by(mutant: Mutant, kinds: &[&str]) {
    let outcome = caught(mutant);
    let violation = outcome.violation.expect("a failing run has a violation");
    assert!(kinds.contains(&violation.kind), "{mutant:?} caught as [{}]: {}", violation.kind, violation.detail);
}

#[test]
fn a_rate_limiter_off_by_one_is_caught() {
    assert_caught_by(Mutant::RateLimitOffByOne, &["rate-limit-exceeded"]);
}

#[test]
fn an_ack_sent_before_the_commit_is_caught() {
    assert_caught_by(Mutant::AckBeforeCommit, &["acked-not-stored"]);
}

#[test]
fn a_read_cursor_moving_back_is_caught() {
    assert_caught_by(Mutant::CursorMovesBack, &["cursor-moved-back", "receipt-not-forward", "read-answer"]);
}

#[test]
fn a_removed_member_left_in_the_room_is_caught() {
    assert_caught_by(Mutant::RemovedMemberStaysInRoom, &["removed-member-in-room", "event-to-non-member"]);
}

#[test]
fn without_a_mutant_the_same_seeds_pass() {
    let budget = Budget { first_seed: 0, seeds: 40, steps: STEPS, threads: 2, mutant: None, stop_at_first: true };
    let summary = run_seeds(&budget);
    assert!(summary.failures.is_empty(), "{:?}", summary.failures.first().and_then(|f| f.violation.clone()));
}
