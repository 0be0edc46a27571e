//! PROTOCOL.md §6: typing indicators.
mod common;

use chat_core::config::Limits;
use chat_core::effect::{ServerEvent, Target};
use chat_core::ids::{SocketId, UserId};
use common::*;
use serde_json::{json, Value};

/// Alice and bob in a group; bob's socket is in the room.
fn pair() -> (World, SocketId, SocketId, String) {
    let mut w = World::new();
    let alice = w.connect("alice");
    let chat = w.group(&alice, &["bob"]);
    let bob = w.connect("bob");
    w.join(&bob, &chat);
    (w, alice, bob, chat)
}

fn typing(w: &mut World, socket: &SocketId, chat: &str, start: bool) {
    let event = if start { "typing:start" } else { "typing:stop" };
    w.send_event(socket, event, json!({ "chatId": chat }));
}

fn update(chat: &str, user: &str, state: &str) -> Value {
    json!({ "chatId": chat, "userId": user, "state": state })
}

#[test]
fn typing_start_reaches_the_room() {
    let (mut w, alice, bob, chat) = pair();
    typing(&mut w, &alice, &chat, true);
    assert_eq!(w.received(&bob, ServerEvent::TypingUpdate), vec![update(&chat, "alice", "start")]);
}

#[test]
fn typing_goes_to_the_room_except_the_typing_users_sockets() {
    let (mut w, alice, _, chat) = pair();
    typing(&mut w, &alice, &chat, true);
    let emits = w.emits(ServerEvent::TypingUpdate);
    assert_eq!(emits.len(), 1);
    assert_eq!(emits[0].0, Target::Room(chat_room(&chat)));
    assert_eq!(emits[0].1, Some(UserId::from("alice")));
}

#[test]
fn the_typing_users_own_sockets_in_the_room_receive_nothing() {
    let (mut w, alice, bob, chat) = pair();
    let laptop = w.connect("alice");
    w.join(&alice, &chat);
    w.join(&laptop, &chat);
    typing(&mut w, &alice, &chat, true);
    typing(&mut w, &alice, &chat, false);
    assert!(w.received(&alice, ServerEvent::TypingUpdate).is_empty());
    assert!(w.received(&laptop, ServerEvent::TypingUpdate).is_empty());
    assert_eq!(w.received(&bob, ServerEvent::TypingUpdate).len(), 2);
}

#[test]
fn typing_stop_reaches_the_room() {
    let (mut w, alice, bob, chat) = pair();
    typing(&mut w, &alice, &chat, true);
    typing(&mut w, &alice, &chat, false);
    assert_eq!(
        w.received(&bob, ServerEvent::TypingUpdate),
        vec![update(&chat, "alice", "start"), update(&chat, "alice", "stop")]
    );
}

#[test]
fn typing_stop_without_typing_sends_nothing() {
    let (mut w, alice, _, chat) = pair();
    typing(&mut w, &alice, &chat, false);
    assert!(w.emits(ServerEvent::TypingUpdate).is_empty());
}

#[test]
fn a_repeated_typing_start_sends_nothing_new() {
    let (mut w, alice, bob, chat) = pair();
    typing(&mut w, &alice, &chat, true);
    w.advance(1_000);
    typing(&mut w, &alice, &chat, true);
    typing(&mut w, &alice, &chat, true);
    assert_eq!(w.received(&bob, ServerEvent::TypingUpdate), vec![update(&chat, "alice", "start")]);
}

#[test]
fn typing_stops_by_itself_after_the_typing_timeout() {
    let (mut w, alice, bob, chat) = pair();
    typing(&mut w, &alice, &chat, true);
    w.advance(4_999);
    assert_eq!(w.received(&bob, ServerEvent::TypingUpdate).len(), 1);
    w.advance(1);
    assert_eq!(
        w.received(&bob, ServerEvent::TypingUpdate),
        vec![update(&chat, "alice", "start"), update(&chat, "alice", "stop")]
    );
}

#[test]
fn the_timeout_stop_also_skips_the_typing_users_sockets() {
    let (mut w, alice, _, chat) = pair();
    w.join(&alice, &chat);
    typing(&mut w, &alice, &chat, true);
    w.advance(5_000);
    let stops: Vec<_> = w.emits(ServerEvent::TypingUpdate).into_iter().filter(|(_, _, p)| p["state"] == "stop").collect();
    assert_eq!(stops.len(), 1);
    assert_eq!(stops[0].1, Some(UserId::from("alice")));
    assert!(w.received(&alice, ServerEvent::TypingUpdate).is_empty());
}

#[test]
fn a_repeated_typing_start_postpones_the_timeout() {
    let (mut w, alice, bob, chat) = pair();
    typing(&mut w, &alice, &chat, true);
    w.advance(3_000);
    typing(&mut w, &alice, &chat, true);
    w.advance(4_999);
    assert_eq!(w.received(&bob, ServerEvent::TypingUpdate).len(), 1, "stopped too early");
    w.advance(1);
    assert_eq!(w.received(&bob, ServerEvent::TypingUpdate).last(), Some(&update(&chat, "alice", "stop")));
}

#[test]
fn the_timeout_sends_stop_once() {
    let (mut w, alice, bob, chat) = pair();
    typing(&mut w, &alice, &chat, true);
    w.advance(60_000);
    assert_eq!(w.received(&bob, ServerEvent::TypingUpdate).len(), 2);
}

#[test]
fn the_typing_timeout_is_configurable() {
    let mut w = World::with_limits(Limits { typing_timeout_ms: 1_000, ..Limits::default() });
    let alice = w.connect("alice");
    let chat = w.group(&alice, &["bob"]);
    let bob = w.connect("bob");
    w.join(&bob, &chat);
    typing(&mut w, &alice, &chat, true);
    w.advance(1_000);
    assert_eq!(w.received(&bob, ServerEvent::TypingUpdate).last(), Some(&update(&chat, "alice", "stop")));
}

#[test]
fn typing_after_a_stop_starts_again() {
    let (mut w, alice, bob, chat) = pair();
    typing(&mut w, &alice, &chat, true);
    typing(&mut w, &alice, &chat, false);
    typing(&mut w, &alice, &chat, true);
    assert_eq!(w.received(&bob, ServerEvent::TypingUpdate).len(), 3);
    assert_eq!(w.received(&bob, ServerEvent::TypingUpdate)[2], update(&chat, "alice", "start"));
}

#[test]
fn a_non_members_typing_is_ignored_silently() {
    let (mut w, _, bob, chat) = pair();
    let mallory = w.connect("mallory");
    let mark = w.mark();
    assert_eq!(w.try_call(&mallory, "typing:start", json!({ "chatId": chat })), None);
    typing(&mut w, &mallory, &chat, false);
    assert!(w.emits_since(mark).is_empty());
    assert!(w.received(&bob, ServerEvent::TypingUpdate).is_empty());
}

#[test]
fn typing_in_an_unknown_chat_is_ignored_silently() {
    let mut w = World::new();
    let alice = w.connect("alice");
    let mark = w.mark();
    typing(&mut w, &alice, "no-such-chat", true);
    assert!(w.emits_since(mark).is_empty());
}

#[test]
fn the_typing_user_need_not_join_the_room() {
    let (mut w, alice, bob, chat) = pair();
    assert!(!w.in_room(&chat_room(&chat)).contains(&alice));
    typing(&mut w, &alice, &chat, true);
    assert_eq!(w.received(&bob, ServerEvent::TypingUpdate).len(), 1);
}

#[test]
fn typing_from_two_users_is_told_separately() {
    let (mut w, alice, bob, chat) = pair();
    w.join(&alice, &chat);
    typing(&mut w, &alice, &chat, true);
    typing(&mut w, &bob, &chat, true);
    assert_eq!(w.received(&alice, ServerEvent::TypingUpdate), vec![update(&chat, "bob", "start")]);
    assert_eq!(w.received(&bob, ServerEvent::TypingUpdate), vec![update(&chat, "alice", "start")]);
}

#[test]
fn a_disconnect_of_the_users_last_socket_in_the_room_stops_typing() {
    let (mut w, alice, bob, chat) = pair();
    w.join(&alice, &chat);
    typing(&mut w, &alice, &chat, true);
    w.disconnect(&alice);
    assert_eq!(
        w.received(&bob, ServerEvent::TypingUpdate),
        vec![update(&chat, "alice", "start"), update(&chat, "alice", "stop")]
    );
}

#[test]
fn a_disconnect_of_one_of_several_sockets_in_the_room_does_not_stop_typing() {
    let (mut w, alice, bob, chat) = pair();
    let laptop = w.connect("alice");
    w.join(&alice, &chat);
    w.join(&laptop, &chat);
    typing(&mut w, &alice, &chat, true);
    w.disconnect(&alice);
    assert_eq!(w.received(&bob, ServerEvent::TypingUpdate).len(), 1);
    w.disconnect(&laptop);
    assert_eq!(w.received(&bob, ServerEvent::TypingUpdate).last(), Some(&update(&chat, "alice", "stop")));
}

#[test]
fn a_stop_by_disconnect_does_not_send_a_second_stop_at_the_timeout() {
    let (mut w, alice, bob, chat) = pair();
    w.join(&alice, &chat);
    typing(&mut w, &alice, &chat, true);
    w.disconnect(&alice);
    w.advance(10_000);
    assert_eq!(w.received(&bob, ServerEvent::TypingUpdate).len(), 2);
}

#[test]
fn leaving_the_room_with_the_last_socket_stops_typing() {
    let (mut w, alice, bob, chat) = pair();
    w.join(&alice, &chat);
    typing(&mut w, &alice, &chat, true);
    w.call(&alice, "room:leave", json!({ "chatId": chat }));
    assert_eq!(w.received(&bob, ServerEvent::TypingUpdate).last(), Some(&update(&chat, "alice", "stop")));
}

#[test]
fn typing_produces_only_the_update() {
    let (mut w, alice, _, chat) = pair();
    let mark = w.mark();
    typing(&mut w, &alice, &chat, true);
    assert!(w.since(mark).iter().all(|e| matches!(e, chat_core::effect::Effect::Emit { .. })), "{:?}", w.since(mark));
}

/// The typing updates bob has received, as states.
fn states_seen(w: &World, bob: &SocketId) -> Vec<String> {
    w.received(bob, ServerEvent::TypingUpdate).iter().map(|update| update["state"].as_str().unwrap().to_string()).collect()
}

#[test]
fn a_user_flapping_typing_has_the_first_eight_changes_told_at_once() {
    let (mut w, alice, bob, chat) = pair();
    for n in 0..20 {
        typing(&mut w, &alice, &chat, n % 2 == 0);
    }
    assert_eq!(states_seen(&w, &bob), ["start", "stop"].repeat(4));
}

#[test]
fn past_the_burst_the_state_at_the_end_of_the_wait_goes_out() {
    let (mut w, alice, bob, chat) = pair();
    for n in 0..21 {
        typing(&mut w, &alice, &chat, n % 2 == 0); // ends on start
    }
    w.advance(250);
    assert_eq!(states_seen(&w, &bob).len(), 9);
    assert_eq!(states_seen(&w, &bob).last().unwrap(), "start");
}

#[test]
fn past_the_burst_a_flap_ending_where_it_began_tells_nothing_more() {
    let (mut w, alice, bob, chat) = pair();
    for n in 0..20 {
        typing(&mut w, &alice, &chat, n % 2 == 0); // ends on stop, as last told
    }
    w.advance(1_000);
    assert_eq!(states_seen(&w, &bob).len(), 8);
}

#[test]
fn a_paced_user_gets_one_change_per_quarter_second() {
    let (mut w, alice, bob, chat) = pair();
    for n in 0..8 {
        typing(&mut w, &alice, &chat, n % 2 == 0);
    }
    for _ in 0..4 {
        w.advance(250);
        typing(&mut w, &alice, &chat, true);
        typing(&mut w, &alice, &chat, false);
    }
    w.advance(250);
    // One token a quarter second: at most one change told in each, and the states told
    // still alternate (the last state held back is told when a token comes).
    let seen = states_seen(&w, &bob);
    assert_eq!(seen.len(), 8 + 4, "{seen:?}");
    assert!(seen.windows(2).all(|pair| pair[0] != pair[1]), "{seen:?}");
}

#[test]
fn typing_at_a_human_pace_is_never_held_back() {
    let (mut w, alice, bob, chat) = pair();
    for _ in 0..30 {
        typing(&mut w, &alice, &chat, true);
        w.advance(1_000);
        typing(&mut w, &alice, &chat, false);
        w.advance(1_000);
    }
    assert_eq!(states_seen(&w, &bob).len(), 60);
}
