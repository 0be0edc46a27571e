//! PROTOCOL.md §3 `room:join` and `room:leave`.
mod common;

use chat_core::effect::{Effect, ServerEvent};
use common::*;
use serde_json::json;

#[test]
fn a_member_joins_the_chat_room() {
    let mut w = World::new();
    let alice = w.connect("alice");
    let chat = w.group(&alice, &["bob"]);
    let bob = w.connect("bob");
    w.join(&bob, &chat);
    assert!(w.log.iter().any(|e| matches!(e, Effect::JoinRoom { socket, room } if *socket == bob && *room == chat_room(&chat))));
    assert!(w.in_room(&chat_room(&chat)).contains(&bob));
}

#[test]
fn the_join_ack_carries_chat_id_last_seq_and_member_ids() {
    let mut w = World::new();
    let alice = w.connect("alice");
    let chat = w.group(&alice, &["bob", "carol"]);
    data(&w.send(&alice, &chat, "one", 1));
    data(&w.send(&alice, &chat, "two", 2));
    let bob = w.connect("bob");
    let ack = w.call(&bob, "room:join", json!({ "chatId": chat }));
    assert_eq!(data(&ack), json!({ "chatId": chat, "lastSeq": 2, "memberIds": ["alice", "bob", "carol"] }));
}

#[test]
fn joining_an_empty_chat_acks_last_seq_zero() {
    let mut w = World::new();
    let alice = w.connect("alice");
    let chat = w.group(&alice, &[]);
    let ack = w.call(&alice, "room:join", json!({ "chatId": chat }));
    assert_eq!(data(&ack)["lastSeq"], 0);
}

#[test]
fn a_non_member_cannot_join_forbidden() {
    let mut w = World::new();
    let alice = w.connect("alice");
    let chat = w.group(&alice, &["bob"]);
    let mallory = w.connect("mallory");
    let ack = w.call(&mallory, "room:join", json!({ "chatId": chat }));
    assert_eq!(code(&ack), "FORBIDDEN");
    assert!(!w.in_room(&chat_room(&chat)).contains(&mallory));
}

#[test]
fn a_refused_join_receives_nothing_of_the_chat() {
    let mut w = World::new();
    let alice = w.connect("alice");
    let chat = w.group(&alice, &["bob"]);
    let mallory = w.connect("mallory");
    w.call(&mallory, "room:join", json!({ "chatId": chat }));
    data(&w.send(&alice, &chat, "secret", 1));
    assert!(w.received(&mallory, ServerEvent::MessageNew).is_empty());
}

#[test]
fn joining_an_unknown_chat_is_not_found() {
    let mut w = World::new();
    let alice = w.connect("alice");
    let ack = w.call(&alice, "room:join", json!({ "chatId": "0190a000-0000-7000-8000-000000000000" }));
    assert_eq!(code(&ack), "NOT_FOUND");
    assert!(w.log.iter().all(|e| !matches!(e, Effect::JoinRoom { room, .. } if *room != user_room("alice"))));
}

#[test]
fn a_joined_socket_receives_the_chats_messages() {
    let mut w = World::new();
    let alice = w.connect("alice");
    let chat = w.group(&alice, &["bob"]);
    let bob = w.connect("bob");
    w.join(&bob, &chat);
    data(&w.send(&alice, &chat, "hello", 1));
    assert_eq!(w.received(&bob, ServerEvent::MessageNew).len(), 1);
}

#[test]
fn joining_twice_is_harmless() {
    let mut w = World::new();
    let alice = w.connect("alice");
    let chat = w.group(&alice, &["bob"]);
    let bob = w.connect("bob");
    w.join(&bob, &chat);
    w.join(&bob, &chat);
    data(&w.send(&alice, &chat, "hello", 1));
    assert_eq!(w.received(&bob, ServerEvent::MessageNew).len(), 1);
}

#[test]
fn leaving_takes_the_socket_out_of_the_room() {
    let mut w = World::new();
    let alice = w.connect("alice");
    let chat = w.group(&alice, &["bob"]);
    let bob = w.connect("bob");
    w.join(&bob, &chat);
    let ack = w.call(&bob, "room:leave", json!({ "chatId": chat }));
    assert_eq!(ack, json!({ "ok": true }));
    assert!(w.log.iter().any(|e| matches!(e, Effect::LeaveRoom { socket, room } if *socket == bob && *room == chat_room(&chat))));
    data(&w.send(&alice, &chat, "hello", 1));
    assert!(w.received(&bob, ServerEvent::MessageNew).is_empty());
}

#[test]
fn leaving_leaves_the_room_not_the_chat() {
    let mut w = World::new();
    let alice = w.connect("alice");
    let chat = w.group(&alice, &["bob"]);
    let bob = w.connect("bob");
    w.join(&bob, &chat);
    w.call(&bob, "room:leave", json!({ "chatId": chat }));
    let stored = w.store.chat(&chat_core::ids::ChatId::from(chat.as_str())).unwrap();
    assert!(stored.is_member(&"bob".into()));
    // Bob still gets his inbox, and may join again.
    data(&w.send(&alice, &chat, "hello", 1));
    assert_eq!(w.received(&bob, ServerEvent::InboxUpdate).len(), 1);
    w.join(&bob, &chat);
}

#[test]
fn leaving_a_room_never_joined_is_ok() {
    let mut w = World::new();
    let alice = w.connect("alice");
    let chat = w.group(&alice, &[]);
    assert_eq!(w.call(&alice, "room:leave", json!({ "chatId": chat })), json!({ "ok": true }));
}

#[test]
fn leaving_twice_is_ok() {
    let mut w = World::new();
    let alice = w.connect("alice");
    let chat = w.group(&alice, &[]);
    w.join(&alice, &chat);
    assert_eq!(w.call(&alice, "room:leave", json!({ "chatId": chat })), json!({ "ok": true }));
    assert_eq!(w.call(&alice, "room:leave", json!({ "chatId": chat })), json!({ "ok": true }));
}

#[test]
fn leaving_an_unknown_chat_is_ok() {
    let mut w = World::new();
    let alice = w.connect("alice");
    assert_eq!(w.call(&alice, "room:leave", json!({ "chatId": "no-such-chat" })), json!({ "ok": true }));
}

#[test]
fn leaving_a_chat_one_is_not_a_member_of_is_ok() {
    let mut w = World::new();
    let alice = w.connect("alice");
    let chat = w.group(&alice, &[]);
    let mallory = w.connect("mallory");
    assert_eq!(w.call(&mallory, "room:leave", json!({ "chatId": chat })), json!({ "ok": true }));
}

#[test]
fn leaving_with_one_socket_keeps_the_users_other_sockets_in_the_room() {
    let mut w = World::new();
    let alice = w.connect("alice");
    let chat = w.group(&alice, &["bob"]);
    let phone = w.connect("bob");
    let laptop = w.connect("bob");
    w.join(&phone, &chat);
    w.join(&laptop, &chat);
    w.call(&phone, "room:leave", json!({ "chatId": chat }));
    data(&w.send(&alice, &chat, "hello", 1));
    assert!(w.received(&phone, ServerEvent::MessageNew).is_empty());
    assert_eq!(w.received(&laptop, ServerEvent::MessageNew).len(), 1);
}

#[test]
fn a_socket_can_join_again_after_leaving() {
    let mut w = World::new();
    let alice = w.connect("alice");
    let chat = w.group(&alice, &["bob"]);
    let bob = w.connect("bob");
    w.join(&bob, &chat);
    w.call(&bob, "room:leave", json!({ "chatId": chat }));
    w.join(&bob, &chat);
    data(&w.send(&alice, &chat, "hello", 1));
    assert_eq!(w.received(&bob, ServerEvent::MessageNew).len(), 1);
}
