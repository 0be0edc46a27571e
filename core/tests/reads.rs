//! PROTOCOL.md §7: read cursors, receipts and unread counts.
mod common;

use chat_core::command::HttpRequest;
use chat_core::effect::ServerEvent;
use chat_core::ids::{ChatId, SocketId, UserId};
use common::*;
use serde_json::{json, Value};

/// Alice and bob in a group, both connected; bob's socket is in the room. Alice sent `n`
/// messages; their acks are returned.
fn chat_with(n: u32) -> (World, SocketId, SocketId, String, Vec<Value>) {
    let mut w = World::new();
    let alice = w.connect("alice");
    let chat = w.group(&alice, &["bob"]);
    let bob = w.connect("bob");
    w.join(&bob, &chat);
    let acks = (1..=n).map(|i| data(&w.send(&alice, &chat, &format!("m{i}"), i))).collect();
    (w, alice, bob, chat, acks)
}

fn read(w: &mut World, socket: &SocketId, chat: &str, message: &Value) -> Value {
    w.call(socket, "receipt:read", json!({ "chatId": chat, "messageId": message }))
}

/// The user's unread count of `chat` as `GET /api/v1/chats` tells it.
fn unread(w: &mut World, user: &str, chat: &str) -> Value {
    let (status, body) = w.http(user, HttpRequest::ListChats);
    assert_eq!(status, 200, "{body}");
    body["chats"].as_array().unwrap().iter().find(|row| row["chat"]["id"] == chat).expect("chat listed")["unreadCount"].clone()
}

#[test]
fn a_read_acks_read_at_message_id_and_seq() {
    let (mut w, _, bob, chat, acks) = chat_with(2);
    w.advance(700);
    let ack = read(&mut w, &bob, &chat, &acks[1]["serverId"]);
    assert_eq!(data(&ack), json!({ "readAt": at(700), "messageId": acks[1]["serverId"], "seq": 2 }));
}

#[test]
fn a_read_moves_the_cursor_and_is_stored() {
    let (mut w, _, bob, chat, acks) = chat_with(3);
    data(&read(&mut w, &bob, &chat, &acks[1]["serverId"]));
    let cursor = w.store.cursor(&ChatId::from(chat.as_str()), &UserId::from("bob")).expect("stored");
    assert_eq!(cursor.seq.0, 2);
}

#[test]
fn a_read_sends_receipt_update_to_the_room() {
    let (mut w, alice, bob, chat, acks) = chat_with(2);
    w.join(&alice, &chat);
    w.advance(50);
    data(&read(&mut w, &bob, &chat, &acks[0]["serverId"]));
    let expected = json!({ "chatId": chat, "userId": "bob", "messageId": acks[0]["serverId"], "seq": 1, "readAt": at(50) });
    assert_eq!(w.emits_to_room(ServerEvent::ReceiptUpdate, &chat_room(&chat)), vec![expected.clone()]);
    assert_eq!(w.received(&alice, ServerEvent::ReceiptUpdate), vec![expected.clone()]);
    // The reader's own sockets in the room are told too.
    assert_eq!(w.received(&bob, ServerEvent::ReceiptUpdate), vec![expected]);
}

#[test]
fn the_cursor_moves_forward_only() {
    let (mut w, _, bob, chat, acks) = chat_with(3);
    data(&read(&mut w, &bob, &chat, &acks[2]["serverId"]));
    let back = data(&read(&mut w, &bob, &chat, &acks[0]["serverId"]));
    assert_eq!(back["seq"], 3);
    assert_eq!(w.store.cursor(&ChatId::from(chat.as_str()), &UserId::from("bob")).unwrap().seq.0, 3);
}

#[test]
fn reading_an_older_message_acks_the_current_cursor_and_broadcasts_nothing() {
    let (mut w, _, bob, chat, acks) = chat_with(3);
    w.advance(10);
    let current = data(&read(&mut w, &bob, &chat, &acks[1]["serverId"]));
    w.advance(10);
    let mark = w.mark();
    let older = data(&read(&mut w, &bob, &chat, &acks[0]["serverId"]));
    assert_eq!(older, current);
    assert_eq!(older, json!({ "readAt": at(10), "messageId": acks[1]["serverId"], "seq": 2 }));
    assert!(w.emits_since(mark).is_empty());
}

#[test]
fn reading_the_same_message_again_acks_the_current_cursor_and_broadcasts_nothing() {
    let (mut w, _, bob, chat, acks) = chat_with(2);
    let first = data(&read(&mut w, &bob, &chat, &acks[1]["serverId"]));
    w.advance(1_000);
    let mark = w.mark();
    assert_eq!(data(&read(&mut w, &bob, &chat, &acks[1]["serverId"])), first);
    assert!(w.emits_since(mark).is_empty());
}

#[test]
fn the_cursor_survives_a_restart() {
    let (mut w, _, bob, chat, acks) = chat_with(3);
    let current = data(&read(&mut w, &bob, &chat, &acks[2]["serverId"]));
    let _ = bob;
    w.restart();
    let bob = w.connect("bob");
    let mark = w.mark();
    assert_eq!(data(&read(&mut w, &bob, &chat, &acks[0]["serverId"])), current);
    assert!(w.emits_since(mark).iter().all(|e| !matches!(e, chat_core::effect::Effect::Emit { event: ServerEvent::ReceiptUpdate, .. })));
}

#[test]
fn each_member_has_their_own_cursor() {
    let mut w = World::new();
    let alice = w.connect("alice");
    let chat = w.group(&alice, &["bob", "carol"]);
    let acks: Vec<Value> = (1..=3).map(|i| data(&w.send(&alice, &chat, "m", i))).collect();
    let bob = w.connect("bob");
    let carol = w.connect("carol");
    data(&read(&mut w, &bob, &chat, &acks[2]["serverId"]));
    let carols = data(&read(&mut w, &carol, &chat, &acks[0]["serverId"]));
    assert_eq!(carols["seq"], 1);
}

#[test]
fn reading_an_unknown_message_is_not_found() {
    let (mut w, _, bob, chat, _) = chat_with(1);
    let ack = read(&mut w, &bob, &chat, &json!("0190a000-0000-7000-8000-000000000000"));
    assert_eq!(code(&ack), "NOT_FOUND");
}

#[test]
fn reading_a_message_of_another_chat_is_not_found() {
    let (mut w, alice, bob, chat, _) = chat_with(1);
    let other = w.group(&alice, &["bob"]);
    let elsewhere = data(&w.send(&alice, &other, "elsewhere", 99));
    let mark = w.mark();
    let ack = read(&mut w, &bob, &chat, &elsewhere["serverId"]);
    assert_eq!(code(&ack), "NOT_FOUND");
    assert!(w.emits_since(mark).is_empty());
    assert!(w.store.cursor(&ChatId::from(chat.as_str()), &UserId::from("bob")).is_none());
}

#[test]
fn reading_in_an_unknown_chat_is_not_found() {
    let (mut w, _, bob, _, acks) = chat_with(1);
    assert_eq!(code(&read(&mut w, &bob, "no-such-chat", &acks[0]["serverId"])), "NOT_FOUND");
}

#[test]
fn a_non_member_cannot_read_forbidden() {
    let (mut w, _, _, chat, acks) = chat_with(1);
    let mallory = w.connect("mallory");
    assert_eq!(code(&read(&mut w, &mallory, &chat, &acks[0]["serverId"])), "FORBIDDEN");
}

#[test]
fn the_unread_count_is_the_messages_above_the_cursor() {
    let (mut w, _, bob, chat, acks) = chat_with(5);
    assert_eq!(unread(&mut w, "bob", &chat), 5);
    data(&read(&mut w, &bob, &chat, &acks[1]["serverId"]));
    assert_eq!(unread(&mut w, "bob", &chat), 3);
    data(&read(&mut w, &bob, &chat, &acks[4]["serverId"]));
    assert_eq!(unread(&mut w, "bob", &chat), 0);
}

#[test]
fn the_unread_count_excludes_the_members_own_messages() {
    let (mut w, alice, bob, chat, _) = chat_with(2);
    data(&w.send(&bob, &chat, "mine", 10));
    data(&w.send(&alice, &chat, "m3", 3));
    data(&w.send(&bob, &chat, "mine too", 11));
    // bob: alice's m1, m2, m3; alice: bob's two.
    assert_eq!(unread(&mut w, "bob", &chat), 3);
    assert_eq!(unread(&mut w, "alice", &chat), 2);
}

#[test]
fn the_unread_count_excludes_own_messages_above_the_cursor_only() {
    let (mut w, alice, bob, chat, acks) = chat_with(1);
    let mine = data(&w.send(&bob, &chat, "mine", 10));
    data(&w.send(&alice, &chat, "m2", 2));
    data(&w.send(&bob, &chat, "mine too", 11));
    data(&w.send(&alice, &chat, "m3", 3));
    // Cursor at seq 2 (bob's own): above it alice's m2 and m3, and bob's "mine too".
    data(&read(&mut w, &bob, &chat, &mine["serverId"]));
    assert_eq!(unread(&mut w, "bob", &chat), 2);
    let _ = acks;
}

#[test]
fn inbox_update_counts_follow_the_cursor() {
    let (mut w, alice, bob, chat, acks) = chat_with(3);
    data(&read(&mut w, &bob, &chat, &acks[1]["serverId"]));
    data(&w.send(&alice, &chat, "m4", 4));
    let last = w.received(&bob, ServerEvent::InboxUpdate).pop().unwrap();
    assert_eq!(last["unreadCount"], 2);
    assert_eq!(last["lastMessage"]["seq"], 4);
}

#[test]
fn sending_does_not_move_the_senders_cursor() {
    let (mut w, alice, _, chat, acks) = chat_with(2);
    assert!(w.store.cursor(&ChatId::from(chat.as_str()), &UserId::from("alice")).is_none());
    // Reading her own first message still moves alice's cursor from 0 to 1.
    let mark = w.mark();
    let ack = data(&read(&mut w, &alice, &chat, &acks[0]["serverId"]));
    assert_eq!(ack["seq"], 1);
    assert_eq!(w.emits_to_room(ServerEvent::ReceiptUpdate, &chat_room(&chat)).len(), 1);
    assert!(!w.emits_since(mark).is_empty());
}

#[test]
fn the_senders_unread_count_ignores_their_own_new_message() {
    let (mut w, alice, bob, chat, _) = chat_with(0);
    data(&w.send(&bob, &chat, "from bob", 10));
    data(&w.send(&alice, &chat, "from alice", 1));
    let alices = w.received(&alice, ServerEvent::InboxUpdate);
    let last = alices.last().unwrap();
    assert_eq!(last["lastMessage"]["senderId"], "alice");
    assert_eq!(last["unreadCount"], 1);
    assert_eq!(unread(&mut w, "alice", &chat), 1);
}

#[test]
fn reads_in_flight_together_never_move_the_cursor_back() {
    let (mut w, _, bob, chat, acks) = chat_with(3);
    let phone = w.connect("bob");
    w.hold_storage();
    let newer = w.start(&bob, "receipt:read", json!({ "chatId": chat, "messageId": acks[2]["serverId"] }));
    let older = w.start(&phone, "receipt:read", json!({ "chatId": chat, "messageId": acks[0]["serverId"] }));
    w.release_storage();
    assert_eq!(data(&w.ack_of(&bob, newer).unwrap())["seq"], 3);
    assert_eq!(data(&w.ack_of(&phone, older).unwrap())["seq"], 3);
    assert_eq!(w.store.cursor(&ChatId::from(chat.as_str()), &UserId::from("bob")).unwrap().seq.0, 3);
    assert_eq!(w.emits_to_room(ServerEvent::ReceiptUpdate, &chat_room(&chat)).len(), 1);
}

#[test]
fn reads_in_flight_together_in_order_both_move_the_cursor() {
    let (mut w, _, bob, chat, acks) = chat_with(3);
    w.hold_storage();
    let first = w.start(&bob, "receipt:read", json!({ "chatId": chat, "messageId": acks[0]["serverId"] }));
    let second = w.start(&bob, "receipt:read", json!({ "chatId": chat, "messageId": acks[1]["serverId"] }));
    w.release_storage();
    assert_eq!(data(&w.ack_of(&bob, first).unwrap())["seq"], 1);
    assert_eq!(data(&w.ack_of(&bob, second).unwrap())["seq"], 2);
    let seqs: Vec<Value> = w.emits_to_room(ServerEvent::ReceiptUpdate, &chat_room(&chat)).iter().map(|p| p["seq"].clone()).collect();
    assert_eq!(seqs, vec![json!(1), json!(2)]);
}

/// Two reads by bob resolved while a send holds the committer: the newer one (m3) and an
/// older one (m1), which then share the next commit.
fn older_read_behind_newer_in_one_commit() -> (World, SocketId, chat_core::ids::AckId) {
    use chat_core::storage::StorageOp;
    let (mut w, alice, bob, chat, acks) = chat_with(3);
    w.hold_storage();
    w.start(&alice, "message:send", json!({ "chatId": chat, "body": "m4", "clientId": uuid(4) }));
    w.step_storage_where(|op| matches!(op, StorageOp::FindMessage { .. })).expect("idempotency lookup");
    w.start(&bob, "receipt:read", json!({ "chatId": chat, "messageId": acks[2]["serverId"] }));
    let older = w.start(&bob, "receipt:read", json!({ "chatId": chat, "messageId": acks[0]["serverId"] }));
    w.step_storage_where(|op| matches!(op, StorageOp::ResolveRead { .. })).expect("newer read resolves");
    w.step_storage_where(|op| matches!(op, StorageOp::ResolveRead { .. })).expect("older read resolves");
    w.step_storage_where(|op| matches!(op, StorageOp::Commit { .. })).expect("the send commits");
    assert!(w.held().any(|op| matches!(op, StorageOp::Commit { .. })), "the reads' commit waits");
    assert_eq!(w.ack_of(&bob, older), None, "answered with a cursor storage does not have yet");
    (w, bob, older)
}

#[test]
fn an_older_read_answers_with_a_cursor_set_in_the_same_commit_once_it_is_durable() {
    use chat_core::storage::StorageOp;
    let (mut w, bob, older) = older_read_behind_newer_in_one_commit();
    w.step_storage_where(|op| matches!(op, StorageOp::Commit { .. }));
    let ack = w.ack_of(&bob, older).expect("answered after the commit");
    assert_eq!(data(&ack)["seq"], 3, "{ack}");
}

#[test]
fn an_older_read_is_internal_when_the_commit_setting_its_answer_fails() {
    use chat_core::storage::StorageOp;
    let (mut w, bob, older) = older_read_behind_newer_in_one_commit();
    w.fail_storage_where(|op| matches!(op, StorageOp::Commit { .. }));
    let ack = w.ack_of(&bob, older).expect("answered after the commit failed");
    assert_eq!(code(&ack), "INTERNAL", "{ack}");
}
