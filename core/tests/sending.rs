//! PROTOCOL.md §5: sending, sequence numbers, idempotency, order of effects, rate limit.
mod common;

use chat_core::config::Limits;
use chat_core::effect::{Effect, Room, ServerEvent, Target};
use chat_core::ids::{is_uuid, ChatId};
use common::*;
use serde_json::{json, Value};

fn stored(w: &World, chat: &str) -> Vec<chat_core::model::Message> {
    w.store.messages(&ChatId::from(chat)).to_vec()
}

/// Alice and bob in a group, both connected, bob in the room.
fn pair() -> (World, chat_core::ids::SocketId, chat_core::ids::SocketId, String) {
    let mut w = World::new();
    let alice = w.connect("alice");
    let chat = w.group(&alice, &["bob"]);
    let bob = w.connect("bob");
    w.join(&bob, &chat);
    (w, alice, bob, chat)
}

// --- the ack and the message ---------------------------------------------------------

#[test]
fn the_ack_carries_client_id_server_id_seq_and_created_at() {
    let (mut w, alice, _, chat) = pair();
    w.advance(1234);
    let ack = data(&w.send(&alice, &chat, "hi", 1));
    let fields: Vec<&str> = ack.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(fields, vec!["clientId", "createdAt", "seq", "serverId"]);
    assert_eq!(ack["clientId"], uuid(1));
    assert_eq!(ack["seq"], 1);
    assert_eq!(ack["createdAt"], at(1234));
    let server_id = ack["serverId"].as_str().unwrap();
    assert!(is_uuid(server_id) && &server_id[14..15] == "7", "not a UUIDv7: {server_id}");
}

#[test]
fn message_new_carries_the_whole_message() {
    let (mut w, alice, bob, chat) = pair();
    let ack = data(&w.send(&alice, &chat, "hi", 1));
    let news = w.received(&bob, ServerEvent::MessageNew);
    assert_eq!(
        news,
        vec![json!({
            "id": ack["serverId"], "chatId": chat, "seq": 1, "senderId": "alice", "body": "hi",
            "kind": "text", "clientId": uuid(1), "createdAt": ack["createdAt"],
        })]
    );
}

#[test]
fn the_body_is_stored_exactly_as_sent() {
    let (mut w, alice, bob, chat) = pair();
    let body = "  spaced\tout \u{1F600} ünïcödé\n";
    data(&w.send(&alice, &chat, body, 1));
    assert_eq!(stored(&w, &chat)[0].body, body);
    assert_eq!(w.received(&bob, ServerEvent::MessageNew)[0]["body"], body);
}

#[test]
fn a_body_of_8000_characters_is_accepted_and_8001_is_not() {
    let (mut w, alice, _, chat) = pair();
    let longest = "é".repeat(8000);
    data(&w.send(&alice, &chat, &longest, 1));
    let ack = w.send(&alice, &chat, &"é".repeat(8001), 2);
    assert_eq!(code(&ack), "VALIDATION_ERROR");
}

#[test]
fn a_body_of_only_unicode_white_space_is_a_validation_error() {
    let (mut w, alice, _, chat) = pair();
    for (n, body) in [" ", "\n\t\r", "\u{3000}", "\u{00A0}\u{2028}", "\u{85}"].into_iter().enumerate() {
        let ack = w.send(&alice, &chat, body, n as u32 + 1);
        assert_eq!(code(&ack), "VALIDATION_ERROR", "{body:?}");
    }
    assert!(stored(&w, &chat).is_empty());
}

#[test]
fn kind_defaults_to_text() {
    let (mut w, alice, _, chat) = pair();
    data(&w.send(&alice, &chat, "hi", 1));
    assert_eq!(stored(&w, &chat)[0].kind, chat_core::model::MessageKind::Text);
}

#[test]
fn an_image_message_carries_a_url() {
    let (mut w, alice, bob, chat) = pair();
    let ack = w.call(&alice, "message:send", json!({ "chatId": chat, "body": "https://example.com/cat.png", "clientId": uuid(1), "kind": "image" }));
    data(&ack);
    assert_eq!(w.received(&bob, ServerEvent::MessageNew)[0]["kind"], "image");
}

#[test]
fn an_image_message_whose_body_is_not_a_url_is_a_validation_error() {
    let (mut w, alice, _, chat) = pair();
    let ack = w.call(&alice, "message:send", json!({ "chatId": chat, "body": "a cat", "clientId": uuid(1), "kind": "image" }));
    assert_eq!(code(&ack), "VALIDATION_ERROR");
}

// --- seq -----------------------------------------------------------------------------

#[test]
fn seq_starts_at_1_and_has_no_gaps() {
    let (mut w, alice, bob, chat) = pair();
    let mut seqs = Vec::new();
    for n in 1..=6 {
        let sender = if n % 2 == 0 { &bob } else { &alice };
        seqs.push(data(&w.send(sender, &chat, "m", n))["seq"].as_u64().unwrap());
    }
    assert_eq!(seqs, vec![1, 2, 3, 4, 5, 6]);
    let stored: Vec<u64> = stored(&w, &chat).iter().map(|m| m.seq.0).collect();
    assert_eq!(stored, vec![1, 2, 3, 4, 5, 6]);
}

#[test]
fn seq_is_per_chat() {
    let (mut w, alice, _, chat) = pair();
    let other = w.group(&alice, &["carol"]);
    assert_eq!(data(&w.send(&alice, &chat, "a", 1))["seq"], 1);
    assert_eq!(data(&w.send(&alice, &other, "b", 2))["seq"], 1);
    assert_eq!(data(&w.send(&alice, &chat, "c", 3))["seq"], 2);
    assert_eq!(data(&w.send(&alice, &other, "d", 4))["seq"], 2);
}

#[test]
fn refused_sends_leave_no_gap_in_seq() {
    let (mut w, alice, _, chat) = pair();
    data(&w.send(&alice, &chat, "one", 1));
    let mallory = w.connect("mallory");
    code(&w.send(&mallory, &chat, "intruder", 2));
    code(&w.send(&alice, &chat, " ", 3));
    assert_eq!(data(&w.send(&alice, &chat, "two", 4))["seq"], 2);
}

#[test]
fn seq_continues_after_a_restart() {
    let (mut w, alice, _, chat) = pair();
    data(&w.send(&alice, &chat, "one", 1));
    data(&w.send(&alice, &chat, "two", 2));
    w.restart();
    let alice = w.connect("alice");
    assert_eq!(data(&w.send(&alice, &chat, "three", 3))["seq"], 3);
}

// --- who may send --------------------------------------------------------------------

#[test]
fn the_sender_need_not_join_the_room() {
    let (mut w, alice, _, chat) = pair();
    assert!(!w.in_room(&chat_room(&chat)).contains(&alice));
    assert_eq!(data(&w.send(&alice, &chat, "hi", 1))["seq"], 1);
}

#[test]
fn a_non_member_cannot_send_forbidden() {
    let (mut w, _, bob, chat) = pair();
    let mallory = w.connect("mallory");
    let ack = w.send(&mallory, &chat, "hi", 1);
    assert_eq!(code(&ack), "FORBIDDEN");
    assert!(stored(&w, &chat).is_empty());
    assert!(w.received(&bob, ServerEvent::MessageNew).is_empty());
}

#[test]
fn sending_to_an_unknown_chat_is_not_found() {
    let mut w = World::new();
    let alice = w.connect("alice");
    assert_eq!(code(&w.send(&alice, "no-such-chat", "hi", 1)), "NOT_FOUND");
}

#[test]
fn the_senders_sockets_in_the_room_receive_their_own_message() {
    let (mut w, alice, _, chat) = pair();
    let laptop = w.connect("alice");
    w.join(&alice, &chat);
    w.join(&laptop, &chat);
    data(&w.send(&alice, &chat, "hi", 1));
    assert_eq!(w.received(&alice, ServerEvent::MessageNew).len(), 1);
    assert_eq!(w.received(&laptop, ServerEvent::MessageNew).len(), 1);
}

// --- idempotency ---------------------------------------------------------------------

#[test]
fn a_retry_acks_the_same_server_id_and_seq() {
    let (mut w, alice, _, chat) = pair();
    let first = data(&w.send(&alice, &chat, "hi", 1));
    let retry = data(&w.send(&alice, &chat, "hi", 1));
    assert_eq!(retry, first);
}

#[test]
fn a_retry_broadcasts_nothing() {
    let (mut w, alice, _, chat) = pair();
    data(&w.send(&alice, &chat, "hi", 1));
    let mark = w.mark();
    data(&w.send(&alice, &chat, "hi", 1));
    assert!(w.emits_since(mark).is_empty(), "{:?}", w.emits_since(mark));
    assert_eq!(stored(&w, &chat).len(), 1);
}

#[test]
fn a_retry_does_not_take_a_seq() {
    let (mut w, alice, _, chat) = pair();
    data(&w.send(&alice, &chat, "hi", 1));
    data(&w.send(&alice, &chat, "hi", 1));
    assert_eq!(data(&w.send(&alice, &chat, "next", 2))["seq"], 2);
}

#[test]
fn a_retry_from_another_device_acks_the_same_server_id() {
    let (mut w, alice, _, chat) = pair();
    let first = data(&w.send(&alice, &chat, "hi", 1));
    let phone = w.connect("alice");
    let mark = w.mark();
    assert_eq!(data(&w.send(&phone, &chat, "hi", 1)), first);
    assert!(w.emits_since(mark).is_empty());
}

#[test]
fn a_retry_after_a_reconnect_acks_the_same_server_id() {
    let (mut w, alice, _, chat) = pair();
    let first = data(&w.send(&alice, &chat, "hi", 1));
    w.disconnect(&alice);
    w.advance(60_000);
    let alice = w.connect("alice");
    let mark = w.mark();
    assert_eq!(data(&w.send(&alice, &chat, "hi", 1)), first);
    assert!(w.emits_since(mark).iter().all(|e| !matches!(e, Effect::Emit { event: ServerEvent::MessageNew | ServerEvent::InboxUpdate, .. })));
}

#[test]
fn a_retry_after_a_restart_acks_the_same_server_id() {
    let (mut w, alice, _, chat) = pair();
    let first = data(&w.send(&alice, &chat, "hi", 1));
    w.restart();
    w.advance(5_000);
    let alice = w.connect("alice");
    let bob = w.connect("bob");
    w.join(&bob, &chat);
    let mark = w.mark();
    assert_eq!(data(&w.send(&alice, &chat, "hi", 1)), first);
    assert!(w.emits_since(mark).is_empty(), "{:?}", w.emits_since(mark));
    assert_eq!(stored(&w, &chat).len(), 1);
}

#[test]
fn a_retry_after_the_sender_left_the_chat_acks_the_same_server_id() {
    let (mut w, alice, bob, chat) = pair();
    let first = data(&w.send(&bob, &chat, "bye", 1));
    let (status, _) = w.http("bob", chat_core::command::HttpRequest::RemoveMember { chat_id: chat.clone(), user_id: "bob".into() });
    assert_eq!(status, 200);
    let mark = w.mark();
    assert_eq!(data(&w.send(&bob, &chat, "bye", 1)), first);
    assert!(w.emits_since(mark).is_empty());
    let _ = alice;
}

#[test]
fn a_retry_after_the_sender_left_and_a_restart_acks_the_same_server_id() {
    let (mut w, _, bob, chat) = pair();
    let first = data(&w.send(&bob, &chat, "bye", 1));
    let (status, _) = w.http("bob", chat_core::command::HttpRequest::RemoveMember { chat_id: chat.clone(), user_id: "bob".into() });
    assert_eq!(status, 200);
    let _ = bob;
    w.restart();
    let bob = w.connect("bob");
    assert_eq!(data(&w.send(&bob, &chat, "bye", 1)), first);
}

#[test]
fn concurrent_retries_without_callback_store_one_message() {
    let (mut w, alice, bob, chat) = pair();
    let payload = json!({ "chatId": chat, "body": "hi", "clientId": uuid(1) });
    w.send_event(&alice, "message:send", payload.clone());
    w.send_event(&alice, "message:send", payload.clone());
    let ack = data(&w.call(&alice, "message:send", payload));
    assert_eq!(ack["seq"], 1);
    assert_eq!(stored(&w, &chat).len(), 1);
    assert_eq!(w.received(&bob, ServerEvent::MessageNew).len(), 1);
}

#[test]
fn the_client_id_is_matched_case_insensitively() {
    let (mut w, alice, _, chat) = pair();
    let upper = "ABCDEF00-0000-4000-8000-0000000000AA";
    let first = data(&w.call(&alice, "message:send", json!({ "chatId": chat, "body": "hi", "clientId": upper })));
    let again = data(&w.call(&alice, "message:send", json!({ "chatId": chat, "body": "hi", "clientId": upper.to_lowercase() })));
    assert_eq!(again["serverId"], first["serverId"]);
    assert_eq!(stored(&w, &chat).len(), 1);
}

#[test]
fn the_same_client_id_with_a_different_body_is_a_validation_error() {
    let (mut w, alice, _, chat) = pair();
    data(&w.send(&alice, &chat, "hi", 1));
    let mark = w.mark();
    assert_eq!(code(&w.send(&alice, &chat, "hello", 1)), "VALIDATION_ERROR");
    assert!(w.emits_since(mark).is_empty());
    assert_eq!(stored(&w, &chat).len(), 1);
}

#[test]
fn the_same_client_id_in_a_different_chat_is_a_validation_error() {
    let (mut w, alice, _, chat) = pair();
    let other = w.group(&alice, &["carol"]);
    data(&w.send(&alice, &chat, "hi", 1));
    assert_eq!(code(&w.send(&alice, &other, "hi", 1)), "VALIDATION_ERROR");
    assert!(stored(&w, &other).is_empty());
}

#[test]
fn the_same_client_id_with_a_different_body_after_a_restart_is_a_validation_error() {
    let (mut w, alice, _, chat) = pair();
    data(&w.send(&alice, &chat, "hi", 1));
    let _ = alice;
    w.restart();
    let alice = w.connect("alice");
    assert_eq!(code(&w.send(&alice, &chat, "hello", 1)), "VALIDATION_ERROR");
}

#[test]
fn the_same_client_id_from_another_user_is_another_message() {
    let (mut w, alice, bob, chat) = pair();
    let first = data(&w.send(&alice, &chat, "hi", 1));
    let second = data(&w.send(&bob, &chat, "hi", 1));
    assert_ne!(second["serverId"], first["serverId"]);
    assert_eq!(second["seq"], 2);
}

// --- order of effects ----------------------------------------------------------------

fn position(effects: &[Effect], what: impl Fn(&Effect) -> bool) -> usize {
    effects.iter().position(what).expect("effect missing")
}

#[test]
fn message_new_comes_before_inbox_updates_which_come_before_the_ack() {
    let (mut w, alice, _, chat) = pair();
    let mark = w.mark();
    data(&w.send(&alice, &chat, "hi", 1));
    let effects = w.since(mark).to_vec();
    let news = position(&effects, |e| matches!(e, Effect::Emit { event: ServerEvent::MessageNew, .. }));
    let inboxes: Vec<usize> = effects
        .iter()
        .enumerate()
        .filter(|(_, e)| matches!(e, Effect::Emit { event: ServerEvent::InboxUpdate, .. }))
        .map(|(i, _)| i)
        .collect();
    let ack = position(&effects, |e| matches!(e, Effect::Ack { socket, .. } if *socket == alice));
    assert_eq!(inboxes.len(), 2);
    assert!(inboxes.iter().all(|i| news < *i && *i < ack), "news {news}, inboxes {inboxes:?}, ack {ack}");
}

#[test]
fn message_new_goes_to_the_chat_room() {
    let (mut w, alice, _, chat) = pair();
    data(&w.send(&alice, &chat, "hi", 1));
    let targets: Vec<(Target, Option<chat_core::ids::UserId>)> =
        w.emits(ServerEvent::MessageNew).into_iter().map(|(to, except, _)| (to, except)).collect();
    assert_eq!(targets, vec![(Target::Room(chat_room(&chat)), None)]);
}

#[test]
fn inbox_update_goes_to_the_user_room_of_every_member() {
    let mut w = World::new();
    let alice = w.connect("alice");
    let chat = w.group(&alice, &["bob", "carol"]);
    data(&w.send(&alice, &chat, "hi", 1));
    let mut rooms: Vec<Room> = w
        .emits(ServerEvent::InboxUpdate)
        .into_iter()
        .map(|(to, _, _)| match to {
            Target::Room(room) => room,
            other => panic!("{other:?}"),
        })
        .collect();
    rooms.sort();
    assert_eq!(rooms, vec![user_room("alice"), user_room("bob"), user_room("carol")]);
}

#[test]
fn inbox_update_carries_the_message_and_each_members_own_unread_count() {
    let mut w = World::new();
    let alice = w.connect("alice");
    let chat = w.group(&alice, &["bob", "carol"]);
    let first = data(&w.send(&alice, &chat, "one", 1));
    let bob = w.connect("bob");
    data(&w.call(&bob, "receipt:read", json!({ "chatId": chat, "messageId": first["serverId"] })));
    data(&w.send(&alice, &chat, "two", 2));
    let carol_sends = w.connect("carol");
    let mark = w.mark();
    data(&w.send(&carol_sends, &chat, "three", 3));
    let counts: Vec<(Room, Value)> = w
        .since(mark)
        .iter()
        .filter_map(|e| match e {
            Effect::Emit { to: Target::Room(room), event: ServerEvent::InboxUpdate, payload, .. } => Some((room.clone(), payload.to_value())),
            _ => None,
        })
        .collect();
    let count_of = |user: &str| counts.iter().find(|(room, _)| *room == user_room(user)).map(|(_, p)| p["unreadCount"].clone()).unwrap();
    // alice: carol's "three"; bob read "one": "two" and "three"; carol: alice's "one" and "two".
    assert_eq!(count_of("alice"), 1);
    assert_eq!(count_of("bob"), 2);
    assert_eq!(count_of("carol"), 2);
    let (_, payload) = &counts[0];
    assert_eq!(payload["chatId"], chat);
    assert_eq!(payload["lastMessage"]["body"], "three");
    assert_eq!(payload["lastMessage"]["seq"], 3);
}

// --- rate limit ----------------------------------------------------------------------

#[test]
fn the_eleventh_message_inside_ten_seconds_is_rate_limited() {
    let (mut w, alice, _, chat) = pair();
    for n in 1..=10 {
        data(&w.send(&alice, &chat, "m", n));
        w.advance(100);
    }
    assert_eq!(code(&w.send(&alice, &chat, "m", 11)), "RATE_LIMITED");
    assert_eq!(stored(&w, &chat).len(), 10);
}

#[test]
fn a_rate_limited_send_broadcasts_nothing() {
    let (mut w, alice, _, chat) = pair();
    for n in 1..=10 {
        data(&w.send(&alice, &chat, "m", n));
    }
    let mark = w.mark();
    code(&w.send(&alice, &chat, "m", 11));
    assert!(w.emits_since(mark).is_empty());
}

#[test]
fn the_rate_limit_counts_across_devices() {
    let (mut w, alice, _, chat) = pair();
    let phone = w.connect("alice");
    for n in 1..=10 {
        let socket = if n % 2 == 0 { &phone } else { &alice };
        data(&w.send(socket, &chat, "m", n));
    }
    assert_eq!(code(&w.send(&phone, &chat, "m", 11)), "RATE_LIMITED");
    assert_eq!(code(&w.send(&alice, &chat, "m", 12)), "RATE_LIMITED");
}

#[test]
fn the_rate_limit_counts_across_chats() {
    let (mut w, alice, _, chat) = pair();
    let other = w.group(&alice, &["carol"]);
    for n in 1..=10 {
        let target = if n % 2 == 0 { &other } else { &chat };
        data(&w.send(&alice, target, "m", n));
    }
    assert_eq!(code(&w.send(&alice, &chat, "m", 11)), "RATE_LIMITED");
}

#[test]
fn the_rate_limit_is_per_user() {
    let (mut w, alice, bob, chat) = pair();
    for n in 1..=10 {
        data(&w.send(&alice, &chat, "m", n));
    }
    assert_eq!(data(&w.send(&bob, &chat, "m", 1))["seq"], 11);
}

#[test]
fn the_rate_window_slides() {
    let (mut w, alice, _, chat) = pair();
    // Five at 0 s, five at 5 s.
    for n in 1..=5 {
        data(&w.send(&alice, &chat, "m", n));
    }
    w.advance_to(5_000);
    for n in 6..=10 {
        data(&w.send(&alice, &chat, "m", n));
    }
    w.advance_to(9_999);
    assert_eq!(code(&w.send(&alice, &chat, "m", 11)), "RATE_LIMITED");
    // At 10 s the first five are out of the window: five more fit, not six.
    w.advance_to(10_000);
    for n in 12..=16 {
        data(&w.send(&alice, &chat, "m", n));
    }
    assert_eq!(code(&w.send(&alice, &chat, "m", 17)), "RATE_LIMITED");
    w.advance_to(14_999);
    assert_eq!(code(&w.send(&alice, &chat, "m", 18)), "RATE_LIMITED");
    w.advance_to(15_000);
    data(&w.send(&alice, &chat, "m", 19));
}

#[test]
fn the_rate_limit_is_configurable() {
    let mut w = World::with_limits(Limits { rate_limit_messages: 3, rate_limit_window_ms: 1_000, ..Limits::default() });
    let alice = w.connect("alice");
    let chat = w.group(&alice, &[]);
    for n in 1..=3 {
        data(&w.send(&alice, &chat, "m", n));
    }
    assert_eq!(code(&w.send(&alice, &chat, "m", 4)), "RATE_LIMITED");
    w.advance(1_000);
    data(&w.send(&alice, &chat, "m", 5));
}

#[test]
fn refused_sends_do_not_count_toward_the_rate_limit() {
    let (mut w, alice, _, chat) = pair();
    let foreign = {
        let bob = w.connect("bob");
        w.group(&bob, &["carol"])
    };
    for n in 1..=20 {
        assert_eq!(code(&w.send(&alice, &foreign, "m", 100 + n)), "FORBIDDEN");
        assert_eq!(code(&w.send(&alice, "no-such-chat", "m", 200 + n)), "NOT_FOUND");
    }
    for n in 1..=10 {
        data(&w.send(&alice, &chat, "m", n));
    }
}

#[test]
fn invalid_sends_do_not_count_toward_the_rate_limit() {
    let (mut w, alice, _, chat) = pair();
    for n in 1..=20 {
        code(&w.send(&alice, &chat, "   ", 100 + n));
    }
    for n in 1..=10 {
        data(&w.send(&alice, &chat, "m", n));
    }
}

#[test]
fn rate_limited_attempts_do_not_count_toward_the_rate_limit() {
    let (mut w, alice, _, chat) = pair();
    for n in 1..=10 {
        data(&w.send(&alice, &chat, "m", n));
    }
    w.advance_to(5_000);
    for n in 11..=30 {
        assert_eq!(code(&w.send(&alice, &chat, "m", n)), "RATE_LIMITED");
    }
    // The ten stored at 0 s leave the window at 10 s; the refused ones never were in it.
    w.advance_to(10_000);
    for n in 31..=40 {
        data(&w.send(&alice, &chat, "m", n));
    }
}

#[test]
fn a_retry_of_a_stored_client_id_is_never_rate_limited() {
    let (mut w, alice, _, chat) = pair();
    let first = data(&w.send(&alice, &chat, "m", 1));
    for n in 2..=10 {
        data(&w.send(&alice, &chat, "m", n));
    }
    assert_eq!(code(&w.send(&alice, &chat, "m", 11)), "RATE_LIMITED");
    assert_eq!(data(&w.send(&alice, &chat, "m", 1)), first);
}

#[test]
fn a_retry_of_a_stored_client_id_is_never_rate_limited_after_a_restart() {
    let (mut w, alice, _, chat) = pair();
    let first = data(&w.send(&alice, &chat, "m", 1));
    for n in 2..=10 {
        data(&w.send(&alice, &chat, "m", n));
    }
    let _ = alice;
    w.restart();
    let alice = w.connect("alice");
    assert_eq!(code(&w.send(&alice, &chat, "m", 11)), "RATE_LIMITED");
    assert_eq!(data(&w.send(&alice, &chat, "m", 1)), first);
}

#[test]
fn the_rate_window_survives_a_restart() {
    let (mut w, alice, _, chat) = pair();
    for n in 1..=10 {
        data(&w.send(&alice, &chat, "m", n));
    }
    let _ = alice;
    w.restart();
    w.advance(1_000);
    let alice = w.connect("alice");
    assert_eq!(code(&w.send(&alice, &chat, "m", 11)), "RATE_LIMITED");
    w.advance_to(10_000);
    data(&w.send(&alice, &chat, "m", 12));
}

#[test]
fn the_rate_window_survives_a_reconnect() {
    let (mut w, alice, _, chat) = pair();
    for n in 1..=10 {
        data(&w.send(&alice, &chat, "m", n));
    }
    w.disconnect(&alice);
    w.advance(3_000);
    let alice = w.connect("alice");
    assert_eq!(code(&w.send(&alice, &chat, "m", 11)), "RATE_LIMITED");
}

// --- with storage slow: several sends in flight at once -------------------------------

fn start_send(w: &mut World, socket: &chat_core::ids::SocketId, chat: &str, body: &str, n: u32) -> chat_core::ids::AckId {
    w.start(socket, "message:send", json!({ "chatId": chat, "body": body, "clientId": uuid(n) }))
}

#[test]
fn the_ack_comes_only_after_the_message_is_committed() {
    let (mut w, alice, _, chat) = pair();
    w.hold_storage();
    let ack = start_send(&mut w, &alice, &chat, "durable", 1);
    while !matches!(w.held().next(), Some(chat_core::storage::StorageOp::Commit { .. })) {
        assert!(w.step_storage().is_some(), "the send never reached a commit");
        assert_eq!(w.ack_of(&alice, ack), None, "acked before the commit");
    }
    assert_eq!(w.ack_of(&alice, ack), None, "acked before the commit");
    assert!(w.emits(ServerEvent::MessageNew).is_empty(), "broadcast before the commit");
    w.step_storage();
    let acked = data(&w.ack_of(&alice, ack).expect("acked once committed"));
    assert_eq!(acked["seq"], 1);
    assert_eq!(stored(&w, &chat).len(), 1);
}

#[test]
fn sends_in_flight_together_get_consecutive_seqs() {
    let (mut w, alice, bob, chat) = pair();
    let phone = w.connect("alice");
    w.hold_storage();
    let acks = [
        (alice.clone(), start_send(&mut w, &alice, &chat, "a1", 1)),
        (bob.clone(), start_send(&mut w, &bob, &chat, "b1", 1)),
        (phone.clone(), start_send(&mut w, &phone, &chat, "a2", 2)),
        (bob.clone(), start_send(&mut w, &bob, &chat, "b2", 2)),
        (alice.clone(), start_send(&mut w, &alice, &chat, "a3", 3)),
    ];
    w.release_storage();
    let mut seqs: Vec<u64> = acks.iter().map(|(s, a)| data(&w.ack_of(s, *a).expect("acked"))["seq"].as_u64().unwrap()).collect();
    seqs.sort();
    assert_eq!(seqs, vec![1, 2, 3, 4, 5]);
    let stored: Vec<u64> = stored(&w, &chat).iter().map(|m| m.seq.0).collect();
    assert_eq!(stored, vec![1, 2, 3, 4, 5]);
    let news: Vec<u64> = w.received(&bob, ServerEvent::MessageNew).iter().map(|m| m["seq"].as_u64().unwrap()).collect();
    assert_eq!(news, vec![1, 2, 3, 4, 5]);
}

#[test]
fn a_retry_while_the_first_send_is_in_flight_acks_the_same_server_id() {
    let (mut w, alice, bob, chat) = pair();
    let phone = w.connect("alice");
    w.hold_storage();
    let first = start_send(&mut w, &alice, &chat, "once", 1);
    let retry = start_send(&mut w, &phone, &chat, "once", 1);
    w.release_storage();
    let first = data(&w.ack_of(&alice, first).expect("acked"));
    let retry = data(&w.ack_of(&phone, retry).expect("acked"));
    assert_eq!(retry, first);
    assert_eq!(stored(&w, &chat).len(), 1);
    assert_eq!(w.received(&bob, ServerEvent::MessageNew).len(), 1);
}

#[test]
fn a_different_body_under_a_client_id_in_flight_is_a_validation_error() {
    let (mut w, alice, _, chat) = pair();
    w.hold_storage();
    let first = start_send(&mut w, &alice, &chat, "original", 1);
    let other = start_send(&mut w, &alice, &chat, "changed", 1);
    w.release_storage();
    data(&w.ack_of(&alice, first).expect("acked"));
    assert_eq!(code(&w.ack_of(&alice, other).expect("answered")), "VALIDATION_ERROR");
    assert_eq!(stored(&w, &chat).len(), 1);
}

#[test]
fn sends_in_flight_count_toward_the_rate_limit() {
    let (mut w, alice, _, chat) = pair();
    let phone = w.connect("alice");
    w.hold_storage();
    let acks: Vec<_> = (1..=12)
        .map(|n| {
            let socket = if n % 2 == 0 { phone.clone() } else { alice.clone() };
            let ack = start_send(&mut w, &socket, &chat, "m", n);
            (socket, ack)
        })
        .collect();
    w.release_storage();
    let outcomes: Vec<String> = acks
        .iter()
        .map(|(s, a)| {
            let ack = w.ack_of(s, *a).expect("answered");
            if ack["ok"] == true { "ok".to_string() } else { code(&ack) }
        })
        .collect();
    assert_eq!(outcomes.iter().filter(|o| *o == "ok").count(), 10, "{outcomes:?}");
    assert_eq!(outcomes.iter().filter(|o| *o == "RATE_LIMITED").count(), 2, "{outcomes:?}");
    assert_eq!(stored(&w, &chat).len(), 10);
}

#[test]
fn the_order_of_effects_holds_for_sends_committed_together() {
    let (mut w, alice, bob, chat) = pair();
    w.hold_storage();
    let first = start_send(&mut w, &alice, &chat, "one", 1);
    let second = start_send(&mut w, &bob, &chat, "two", 1);
    let mark = w.mark();
    w.release_storage();
    let effects = w.since(mark).to_vec();
    for (socket, ack, seq) in [(&alice, first, 1), (&bob, second, 2)] {
        let news = position(&effects, |e| matches!(e, Effect::Emit { event: ServerEvent::MessageNew, payload, .. } if payload.to_value()["seq"] == seq));
        let inbox = effects
            .iter()
            .enumerate()
            .filter(|(_, e)| matches!(e, Effect::Emit { event: ServerEvent::InboxUpdate, payload, .. } if payload.to_value()["lastMessage"]["seq"] == seq))
            .map(|(i, _)| i)
            .collect::<Vec<_>>();
        let acked = position(&effects, |e| matches!(e, Effect::Ack { socket: s, ack: a, .. } if s == socket && *a == ack));
        assert_eq!(inbox.len(), 2);
        assert!(inbox.iter().all(|i| news < *i && *i < acked), "seq {seq}: news {news}, inbox {inbox:?}, ack {acked}");
    }
}
