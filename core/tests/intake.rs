//! Fair service of client events (`chat_core::intake`).

use chat_core::ids::{AckId, Millis};
use chat_core::intake::{EventPace, Intake, IntakeLimits, Queued, Turn};

fn limits(max_in_flight: usize, max_waiting: usize) -> IntakeLimits {
    IntakeLimits { max_in_flight, max_waiting, max_refusals: 4, answer_wait_ms: 1_000, pace: EventPace::UNLIMITED }
}

/// Pushes an event that must be queued to be served.
fn push(intake: &mut Intake<&'static str, u32>, sender: &'static str, event: u32) {
    assert_eq!(intake.push(sender, event, Millis(0)), Queued::Waiting);
}

/// The next event to serve (none to refuse is expected).
fn next_served(intake: &mut Intake<&'static str, u32>) -> Option<(&'static str, u32)> {
    intake.next_turn().map(|(sender, turn)| match turn {
        Turn::Serve(event) => (sender, event),
        Turn::Refuse(event) => panic!("{sender}'s {event} refused"),
    })
}

fn serve_all(intake: &mut Intake<&'static str, u32>) -> Vec<(&'static str, u32)> {
    std::iter::from_fn(|| next_served(intake)).collect()
}

#[test]
fn events_of_one_sender_are_served_in_the_order_they_came() {
    let mut intake = Intake::new(limits(8, 100));
    for n in 0..5 {
        push(&mut intake, "flood", n);
    }
    assert_eq!(serve_all(&mut intake), vec![("flood", 0), ("flood", 1), ("flood", 2), ("flood", 3), ("flood", 4)]);
}

#[test]
fn a_quiet_sender_is_served_right_after_the_flooding_sender_in_turn() {
    let mut intake = Intake::new(limits(8, 100));
    for n in 0..50 {
        push(&mut intake, "flood", n);
    }
    push(&mut intake, "quiet", 1000);
    let served = serve_all(&mut intake);
    assert_eq!(served[0], ("flood", 0));
    assert_eq!(served[1], ("quiet", 1000), "one event of each sender per turn");
    assert_eq!(served.len(), 51);
}

#[test]
fn a_sender_with_the_most_events_in_flight_waits_for_an_answer() {
    let mut intake = Intake::new(limits(2, 100));
    for n in 0..4 {
        push(&mut intake, "a", n);
    }
    for ack in [1, 2] {
        let (sender, _) = next_served(&mut intake).unwrap();
        intake.started(sender, AckId(ack), Millis(0));
    }
    assert!(intake.next_turn().is_none(), "two in flight is the most");
    assert!(!intake.has_turn());
    intake.answered(AckId(1));
    assert_eq!(next_served(&mut intake), Some(("a", 2)));
}

#[test]
fn other_senders_are_served_while_one_waits_for_answers() {
    let mut intake = Intake::new(limits(1, 100));
    push(&mut intake, "a", 0);
    push(&mut intake, "a", 1);
    let (sender, _) = next_served(&mut intake).unwrap();
    intake.started(sender, AckId(1), Millis(0));
    push(&mut intake, "b", 7);
    assert_eq!(next_served(&mut intake), Some(("b", 7)));
    assert_eq!(next_served(&mut intake), None);
}

#[test]
fn a_sender_with_the_most_events_waiting_has_the_next_refused_in_its_turn() {
    let mut intake = Intake::new(limits(8, 3));
    for n in 0..3 {
        push(&mut intake, "a", n);
    }
    assert_eq!(intake.push("a", 3, Millis(0)), Queued::ToRefuse);
    assert_eq!(intake.push("b", 4, Millis(0)), Queued::Waiting, "the limit is per sender");
    assert_eq!(intake.next_turn(), Some(("a", Turn::Refuse(3))), "a refusal is due before the next event");
    assert_eq!(intake.next_turn(), Some(("b", Turn::Serve(4))));
    assert_eq!(intake.next_turn(), Some(("a", Turn::Serve(0))));
}

#[test]
fn a_flood_of_refusals_takes_one_turn_at_a_time_like_any_event() {
    let mut intake = Intake::new(limits(8, 1));
    push(&mut intake, "flood", 0);
    for n in 1..4 {
        assert_eq!(intake.push("flood", n, Millis(0)), Queued::ToRefuse);
    }
    push(&mut intake, "quiet", 100);
    let order: Vec<_> = std::iter::from_fn(|| intake.next_turn()).collect();
    assert_eq!(
        order,
        vec![
            ("flood", Turn::Refuse(1)),
            ("quiet", Turn::Serve(100)),
            ("flood", Turn::Refuse(2)),
            ("flood", Turn::Refuse(3)),
            ("flood", Turn::Serve(0)),
        ]
    );
}

#[test]
fn a_sender_with_the_most_refusals_unanswered_overflows() {
    let mut intake = Intake::new(limits(8, 1));
    push(&mut intake, "a", 0);
    for n in 1..=4 {
        assert_eq!(intake.push("a", n, Millis(0)), Queued::ToRefuse);
    }
    assert_eq!(intake.push("a", 5, Millis(0)), Queued::Overflow(5));
}

#[test]
fn refusals_are_answered_even_while_the_sender_is_full_in_flight() {
    let mut intake = Intake::new(limits(1, 1));
    push(&mut intake, "a", 0);
    let (sender, _) = next_served(&mut intake).unwrap();
    intake.started(sender, AckId(1), Millis(0));
    push(&mut intake, "a", 1);
    assert_eq!(intake.push("a", 2, Millis(0)), Queued::ToRefuse);
    assert_eq!(intake.next_turn(), Some(("a", Turn::Refuse(2))));
    assert_eq!(intake.next_turn(), None, "1 waits for an answer");
}

#[test]
fn a_leaving_sockets_refusals_are_dropped_and_its_waiting_events_taken() {
    let mut intake = Intake::new(limits(8, 1));
    push(&mut intake, "a", 0);
    assert_eq!(intake.push("a", 1, Millis(0)), Queued::ToRefuse);
    assert_eq!(intake.take_where(&"a", |_| true), vec![0]);
    assert!(intake.is_empty());
    assert_eq!(intake.next_turn(), None);
}

#[test]
fn an_answer_that_never_comes_is_given_up_after_the_wait() {
    let mut intake = Intake::new(limits(1, 100));
    push(&mut intake, "a", 0);
    push(&mut intake, "a", 1);
    let (sender, _) = next_served(&mut intake).unwrap();
    intake.started(sender, AckId(9), Millis(5_000));
    intake.expire(Millis(5_999));
    assert_eq!(next_served(&mut intake), None);
    intake.expire(Millis(6_000));
    assert_eq!(next_served(&mut intake), Some(("a", 1)));
}

#[test]
fn an_answer_for_an_unknown_or_repeated_ack_changes_nothing() {
    let mut intake = Intake::new(limits(1, 100));
    push(&mut intake, "a", 0);
    push(&mut intake, "a", 1);
    let (sender, _) = next_served(&mut intake).unwrap();
    intake.started(sender, AckId(1), Millis(0));
    intake.answered(AckId(77));
    assert_eq!(next_served(&mut intake), None);
    intake.answered(AckId(1));
    intake.answered(AckId(1));
    assert_eq!(next_served(&mut intake), Some(("a", 1)));
    assert_eq!(next_served(&mut intake), None);
}

#[test]
fn taking_a_senders_selected_events_keeps_the_others_in_order() {
    let mut intake = Intake::new(limits(8, 100));
    for n in 0..6 {
        push(&mut intake, "a", n);
    }
    assert_eq!(intake.take_where(&"a", |n| n % 2 == 0), vec![0, 2, 4]);
    assert_eq!(serve_all(&mut intake), vec![("a", 1), ("a", 3), ("a", 5)]);
}

#[test]
fn nothing_is_kept_once_every_event_is_served_and_answered() {
    let mut intake = Intake::new(limits(8, 100));
    push(&mut intake, "a", 0);
    let (sender, _) = next_served(&mut intake).unwrap();
    intake.started(sender, AckId(1), Millis(0));
    assert!(intake.is_empty());
    intake.answered(AckId(1));
    assert!(intake.is_empty());
    assert_eq!(intake.waiting(), 0);
    assert!(!intake.has_turn());
}

fn paced(burst: u64, per_second: u64, refusal_burst: u64) -> Intake<&'static str, u32> {
    Intake::new(IntakeLimits { pace: EventPace { burst, per_second, refusal_burst }, ..limits(8, 100) })
}

#[test]
fn events_past_a_senders_burst_are_refused() {
    let mut intake = paced(2, 1, 5);
    assert_eq!(intake.push("a", 0, Millis(0)), Queued::Waiting);
    assert_eq!(intake.push("a", 1, Millis(0)), Queued::Waiting);
    assert_eq!(intake.push("a", 2, Millis(0)), Queued::ToRefuse);
    assert_eq!(intake.push("b", 3, Millis(0)), Queued::Waiting, "the pace is per sender");
}

#[test]
fn a_paced_sender_is_served_again_once_the_rate_allows() {
    let mut intake = paced(1, 2, 5);
    assert_eq!(intake.push("a", 0, Millis(0)), Queued::Waiting);
    assert_eq!(intake.push("a", 1, Millis(499)), Queued::ToRefuse);
    assert_eq!(intake.push("a", 2, Millis(500)), Queued::Waiting);
}

#[test]
fn a_sender_past_its_pace_and_refusal_budget_is_flooding() {
    let mut intake = paced(1, 1, 2);
    assert_eq!(intake.push("a", 0, Millis(0)), Queued::Waiting);
    assert_eq!(intake.push("a", 1, Millis(0)), Queued::ToRefuse);
    assert_eq!(intake.push("a", 2, Millis(0)), Queued::ToRefuse);
    assert_eq!(intake.push("a", 3, Millis(0)), Queued::Overflow(3));
}

#[test]
fn the_pace_outlives_a_senders_queue() {
    let mut intake = paced(1, 1, 1);
    assert_eq!(intake.push("a", 0, Millis(0)), Queued::Waiting);
    assert_eq!(serve_all(&mut intake), vec![("a", 0)]);
    assert!(intake.is_empty());
    assert_eq!(intake.push("a", 1, Millis(10)), Queued::ToRefuse, "a reconnect does not earn a new burst");
}

#[test]
fn a_sender_back_to_a_full_budget_is_forgotten() {
    let mut intake = paced(1, 1, 1);
    assert_eq!(intake.push("a", 0, Millis(0)), Queued::Waiting);
    assert_eq!(intake.push("a", 1, Millis(0)), Queued::ToRefuse);
    let _ = std::iter::from_fn(|| intake.next_turn()).count();
    intake.expire(Millis(999));
    assert_eq!(intake.senders_remembered(), 1, "its budget is not back yet");
    intake.expire(Millis(1_000));
    assert_eq!(intake.senders_remembered(), 0);
    assert_eq!(intake.push("a", 2, Millis(1_000)), Queued::Waiting);
}

#[test]
fn a_flood_from_a_sender_with_nothing_queued_leaves_only_its_pace() {
    let mut intake = paced(1, 1, 0);
    assert_eq!(intake.push("a", 0, Millis(0)), Queued::Waiting);
    assert_eq!(serve_all(&mut intake), vec![("a", 0)]);
    assert_eq!(intake.push("a", 1, Millis(0)), Queued::Overflow(1));
    assert_eq!(intake.senders_remembered(), 1, "the pace, not an empty queue as well");
    intake.expire(Millis(1_000));
    assert_eq!(intake.senders_remembered(), 0);
}
