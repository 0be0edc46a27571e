//! Access control paths not covered elsewhere (PROTOCOL.md §3, §7, §9): what a non-member,
//! a removed member, or another user can never see or do. The paths already tested next
//! to their feature are listed in docs/reliability.md; these complete the set.
mod common;

use chat_core::command::HttpRequest;
use chat_core::effect::ServerEvent;
use chat_core::ids::SocketId;
use common::*;
use serde_json::{json, Value};

/// Alice's group with bob, both connected and in the room, with `n` messages from alice.
fn group_with(n: u32) -> (World, SocketId, SocketId, String, Vec<Value>) {
    let mut w = World::new();
    let alice = w.connect("alice");
    let chat = w.group(&alice, &["bob"]);
    let bob = w.connect("bob");
    w.join(&alice, &chat);
    w.join(&bob, &chat);
    let acks = (1..=n).map(|i| data(&w.send(&alice, &chat, &format!("m{i}"), i))).collect();
    (w, alice, bob, chat, acks)
}

fn remove_bob(w: &mut World, chat: &str) {
    let (status, body) = w.http("alice", HttpRequest::RemoveMember { chat_id: chat.into(), user_id: "bob".into() });
    assert_eq!(status, 200, "{body}");
}

fn history(w: &mut World, user: &str, chat: &str) -> (u16, Value) {
    w.http(user, HttpRequest::History { chat_id: chat.into(), after_seq: None, before_seq: None, limit: None })
}

fn read(w: &mut World, socket: &SocketId, chat: &str, message: &Value) -> Value {
    w.call(socket, "receipt:read", json!({ "chatId": chat, "messageId": message }))
}

fn unread(w: &mut World, user: &str, chat: &str) -> Value {
    let (status, body) = w.http(user, HttpRequest::ListChats);
    assert_eq!(status, 200, "{body}");
    body["chats"].as_array().unwrap().iter().find(|row| row["chat"]["id"] == chat).expect("chat listed")["unreadCount"].clone()
}

#[test]
fn a_non_member_receives_nothing_of_a_chats_activity() {
    let (mut w, alice, bob, chat, acks) = group_with(1);
    let mallory = w.connect("mallory");
    let on_connect = w.received_all(&mallory).len(); // her own (empty) presence snapshot
    assert_eq!(code(&w.call(&mallory, "room:join", json!({ "chatId": chat }))), "FORBIDDEN");
    data(&w.send(&alice, &chat, "secret", 2));
    w.send_event(&alice, "typing:start", json!({ "chatId": chat }));
    data(&read(&mut w, &bob, &chat, &acks[0]["serverId"]));
    let (status, _) = w.http("alice", HttpRequest::RenameChat { chat_id: chat.clone(), body: json!({ "title": "renamed" }) });
    assert_eq!(status, 200);
    let (status, _) = w.http("alice", HttpRequest::AddMember { chat_id: chat.clone(), body: json!({ "userId": "carol" }) });
    assert_eq!(status, 200);
    assert_eq!(w.received_all(&mallory)[on_connect..], [], "mallory saw something of a chat she is not in");
}

#[test]
fn a_removed_member_cannot_read_history_over_http() {
    let (mut w, _, _, chat, _) = group_with(2);
    remove_bob(&mut w, &chat);
    let (status, body) = history(&mut w, "bob", &chat);
    assert_eq!((status, body["error"].clone()), (403, json!("FORBIDDEN")));
}

#[test]
fn a_removed_member_cannot_mark_messages_read() {
    let (mut w, _, bob, chat, acks) = group_with(1);
    remove_bob(&mut w, &chat);
    assert_eq!(code(&read(&mut w, &bob, &chat, &acks[0]["serverId"])), "FORBIDDEN");
}

#[test]
fn a_removed_members_typing_is_ignored_silently() {
    let (mut w, alice, bob, chat, _) = group_with(0);
    remove_bob(&mut w, &chat);
    let mark = w.mark();
    w.send_event(&bob, "typing:start", json!({ "chatId": chat }));
    assert!(w.emits_since(mark).is_empty());
    assert!(w.received(&alice, ServerEvent::TypingUpdate).is_empty());
}

#[test]
fn a_removed_member_receives_no_receipts_typing_or_chat_messages_afterwards() {
    let (mut w, alice, bob, chat, acks) = group_with(1);
    w.connect("carol");
    let (status, _) = w.http("alice", HttpRequest::AddMember { chat_id: chat.clone(), body: json!({ "userId": "carol" }) });
    assert_eq!(status, 200);
    let carol = w.connect("carol");
    w.join(&carol, &chat);
    remove_bob(&mut w, &chat);
    let mark = w.received_all(&bob).len();
    data(&w.send(&alice, &chat, "after", 2));
    w.send_event(&alice, "typing:start", json!({ "chatId": chat }));
    data(&read(&mut w, &carol, &chat, &acks[0]["serverId"]));
    assert_eq!(w.received_all(&bob)[mark..], [], "bob still hears the chat after his removal");
}

#[test]
fn a_read_naming_another_user_moves_only_the_callers_cursor() {
    let (mut w, _, bob, chat, acks) = group_with(2);
    w.connect("carol");
    let (status, _) = w.http("alice", HttpRequest::AddMember { chat_id: chat.clone(), body: json!({ "userId": "carol" }) });
    assert_eq!(status, 200);
    let ack = w.call(&bob, "receipt:read", json!({ "chatId": chat, "messageId": acks[1]["serverId"], "userId": "carol" }));
    assert_eq!(data(&ack)["seq"], 2);
    assert_eq!(unread(&mut w, "bob", &chat), 0);
    assert_eq!(unread(&mut w, "carol", &chat), 2);
    let receipts = w.received(&bob, ServerEvent::ReceiptUpdate);
    assert_eq!(receipts.last().map(|r| r["userId"].clone()), Some(json!("bob")));
}

#[test]
fn listing_chats_shows_the_callers_own_unread_counts_never_another_users() {
    let (mut w, _, bob, chat, acks) = group_with(3);
    data(&read(&mut w, &bob, &chat, &acks[2]["serverId"]));
    let (_, body) = w.http("mallory", HttpRequest::ListChats);
    assert_eq!(body, json!({ "chats": [] }));
    assert_eq!(unread(&mut w, "bob", &chat), 0);
    assert_eq!(unread(&mut w, "alice", &chat), 0, "alice's own messages are never unread to her");
}

#[test]
fn inbox_updates_of_a_chat_go_only_to_its_members_user_rooms() {
    let (mut w, alice, _, chat, _) = group_with(0);
    let mallory = w.connect("mallory");
    data(&w.send(&alice, &chat, "hi", 1));
    assert!(w.received(&mallory, ServerEvent::InboxUpdate).is_empty());
    let rooms: Vec<_> = w.emits(ServerEvent::InboxUpdate).into_iter().map(|(target, _, _)| format!("{target:?}")).collect();
    assert_eq!(rooms.len(), 2, "{rooms:?}");
    assert!(rooms.iter().all(|room| !room.contains("mallory")), "{rooms:?}");
}
