//! Fair service of client events (`chat_core::intake`).

use chat_core::ids::{AckId, Millis};
use chat_core::intake::{Intake, IntakeLimits};

fn limits(max_in_flight: usize, max_waiting: usize) -> IntakeLimits {
    IntakeLimits { max_in_flight, max_waiting, answer_wait_ms: 1_000 }
}

fn serve_all(intake: &mut Intake<&'static str, u32>) -> Vec<(&'static str, u32)> {
    std::iter::from_fn(|| intake.next()).collect()
}

#[test]
fn events_of_one_sender_are_served_in_the_order_they_came() {
    let mut intake = Intake::new(limits(8, 100));
    for n in 0..5 {
        intake.push("flood", n).unwrap();
    }
    assert_eq!(serve_all(&mut intake), vec![("flood", 0), ("flood", 1), ("flood", 2), ("flood", 3), ("flood", 4)]);
}

#[test]
fn a_quiet_sender_is_served_right_after_the_flooding_sender_in_turn() {
    let mut intake = Intake::new(limits(8, 100));
    for n in 0..50 {
        intake.push("flood", n).unwrap();
    }
    intake.push("quiet", 1000).unwrap();
    let served = serve_all(&mut intake);
    assert_eq!(served[0], ("flood", 0));
    assert_eq!(served[1], ("quiet", 1000), "one event of each sender per turn");
    assert_eq!(served.len(), 51);
}

#[test]
fn a_sender_with_the_most_events_in_flight_waits_for_an_answer() {
    let mut intake = Intake::new(limits(2, 100));
    for n in 0..4 {
        intake.push("a", n).unwrap();
    }
    for ack in [1, 2] {
        let (sender, _) = intake.next().unwrap();
        intake.started(sender, AckId(ack), Millis(0));
    }
    assert!(intake.next().is_none(), "two in flight is the most");
    assert!(!intake.has_turn());
    intake.answered(AckId(1));
    assert_eq!(intake.next(), Some(("a", 2)));
}

#[test]
fn other_senders_are_served_while_one_waits_for_answers() {
    let mut intake = Intake::new(limits(1, 100));
    intake.push("a", 0).unwrap();
    intake.push("a", 1).unwrap();
    let (sender, _) = intake.next().unwrap();
    intake.started(sender, AckId(1), Millis(0));
    intake.push("b", 7).unwrap();
    assert_eq!(intake.next(), Some(("b", 7)));
    assert_eq!(intake.next(), None);
}

#[test]
fn a_sender_with_the_most_events_waiting_has_the_next_refused() {
    let mut intake = Intake::new(limits(8, 3));
    for n in 0..3 {
        intake.push("a", n).unwrap();
    }
    assert_eq!(intake.push("a", 3), Err(3));
    assert_eq!(intake.push("b", 4), Ok(()), "the limit is per sender");
}

#[test]
fn an_answer_that_never_comes_is_given_up_after_the_wait() {
    let mut intake = Intake::new(limits(1, 100));
    intake.push("a", 0).unwrap();
    intake.push("a", 1).unwrap();
    let (sender, _) = intake.next().unwrap();
    intake.started(sender, AckId(9), Millis(5_000));
    intake.expire(Millis(5_999));
    assert_eq!(intake.next(), None);
    intake.expire(Millis(6_000));
    assert_eq!(intake.next(), Some(("a", 1)));
}

#[test]
fn an_answer_for_an_unknown_or_repeated_ack_changes_nothing() {
    let mut intake = Intake::new(limits(1, 100));
    intake.push("a", 0).unwrap();
    intake.push("a", 1).unwrap();
    let (sender, _) = intake.next().unwrap();
    intake.started(sender, AckId(1), Millis(0));
    intake.answered(AckId(77));
    assert_eq!(intake.next(), None);
    intake.answered(AckId(1));
    intake.answered(AckId(1));
    assert_eq!(intake.next(), Some(("a", 1)));
    assert_eq!(intake.next(), None);
}

#[test]
fn taking_a_senders_selected_events_keeps_the_others_in_order() {
    let mut intake = Intake::new(limits(8, 100));
    for n in 0..6 {
        intake.push("a", n).unwrap();
    }
    assert_eq!(intake.take_where(&"a", |n| n % 2 == 0), vec![0, 2, 4]);
    assert_eq!(serve_all(&mut intake), vec![("a", 1), ("a", 3), ("a", 5)]);
}

#[test]
fn nothing_is_kept_once_every_event_is_served_and_answered() {
    let mut intake = Intake::new(limits(8, 100));
    intake.push("a", 0).unwrap();
    let (sender, _) = intake.next().unwrap();
    intake.started(sender, AckId(1), Millis(0));
    assert!(intake.is_empty());
    intake.answered(AckId(1));
    assert!(intake.is_empty());
    assert_eq!(intake.waiting(), 0);
    assert!(!intake.has_turn());
}
