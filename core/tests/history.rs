//! PROTOCOL.md §3 `messages:sync` and §9 `GET /api/v1/chats/:chatId/messages`.
mod common;

use chat_core::command::HttpRequest;
use chat_core::ids::SocketId;
use common::*;
use serde_json::{json, Value};

/// Alice's group with bob holding `n` messages "m1".."mn".
fn chat_with(n: u32) -> (World, SocketId, String) {
    let mut w = World::unlimited();
    let alice = w.connect("alice");
    let chat = w.group(&alice, &["bob"]);
    for i in 1..=n {
        data(&w.send(&alice, &chat, &format!("m{i}"), i));
    }
    (w, alice, chat)
}

fn sync(w: &mut World, socket: &SocketId, chat: &str, after: u64, limit: Option<u64>) -> Value {
    let mut payload = json!({ "chatId": chat, "afterSeq": after });
    if let Some(limit) = limit {
        payload["limit"] = json!(limit);
    }
    w.call(socket, "messages:sync", payload)
}

fn seqs(page: &Value) -> Vec<u64> {
    page["messages"].as_array().unwrap().iter().map(|m| m["seq"].as_u64().unwrap()).collect()
}

fn history(w: &mut World, user: &str, chat: &str, after: Option<&str>, before: Option<&str>, limit: Option<&str>) -> (u16, Value) {
    w.http(
        user,
        HttpRequest::History {
            chat_id: chat.into(),
            after_seq: after.map(String::from),
            before_seq: before.map(String::from),
            limit: limit.map(String::from),
        },
    )
}

// --- messages:sync -------------------------------------------------------------------

#[test]
fn sync_returns_the_messages_after_after_seq_ascending() {
    let (mut w, alice, chat) = chat_with(5);
    let page = data(&sync(&mut w, &alice, &chat, 2, None));
    assert_eq!(seqs(&page), vec![3, 4, 5]);
    assert_eq!(page["hasMore"], false);
}

#[test]
fn sync_from_zero_returns_everything() {
    let (mut w, alice, chat) = chat_with(3);
    let page = data(&sync(&mut w, &alice, &chat, 0, None));
    assert_eq!(seqs(&page), vec![1, 2, 3]);
    let bodies: Vec<&str> = page["messages"].as_array().unwrap().iter().map(|m| m["body"].as_str().unwrap()).collect();
    assert_eq!(bodies, vec!["m1", "m2", "m3"]);
}

#[test]
fn sync_messages_have_the_message_shape() {
    let (mut w, alice, chat) = chat_with(0);
    let ack = data(&w.send(&alice, &chat, "hello", 77));
    let page = data(&sync(&mut w, &alice, &chat, 0, None));
    assert_eq!(
        page["messages"][0],
        json!({
            "id": ack["serverId"], "chatId": chat, "seq": 1, "senderId": "alice", "body": "hello",
            "kind": "text", "clientId": uuid(77), "createdAt": ack["createdAt"],
        })
    );
}

#[test]
fn sync_at_the_last_seq_is_empty_without_more() {
    let (mut w, alice, chat) = chat_with(3);
    assert_eq!(data(&sync(&mut w, &alice, &chat, 3, None)), json!({ "messages": [], "hasMore": false }));
    assert_eq!(data(&sync(&mut w, &alice, &chat, 100, None)), json!({ "messages": [], "hasMore": false }));
}

#[test]
fn sync_of_an_empty_chat_is_empty() {
    let (mut w, alice, chat) = chat_with(0);
    assert_eq!(data(&sync(&mut w, &alice, &chat, 0, None)), json!({ "messages": [], "hasMore": false }));
}

#[test]
fn sync_returns_the_oldest_limit_messages_with_has_more_when_newer_remain() {
    let (mut w, alice, chat) = chat_with(10);
    let page = data(&sync(&mut w, &alice, &chat, 0, Some(3)));
    assert_eq!(seqs(&page), vec![1, 2, 3]);
    assert_eq!(page["hasMore"], true);
    let page = data(&sync(&mut w, &alice, &chat, 6, Some(3)));
    assert_eq!(seqs(&page), vec![7, 8, 9]);
    assert_eq!(page["hasMore"], true);
}

#[test]
fn sync_has_no_more_when_the_page_ends_at_the_last_message() {
    let (mut w, alice, chat) = chat_with(10);
    let page = data(&sync(&mut w, &alice, &chat, 7, Some(3)));
    assert_eq!(seqs(&page), vec![8, 9, 10]);
    assert_eq!(page["hasMore"], false);
}

#[test]
fn sync_limit_defaults_to_50() {
    let (mut w, alice, chat) = chat_with(60);
    let page = data(&sync(&mut w, &alice, &chat, 0, None));
    assert_eq!(seqs(&page), (1..=50).collect::<Vec<_>>());
    assert_eq!(page["hasMore"], true);
    let rest = data(&sync(&mut w, &alice, &chat, 50, None));
    assert_eq!(seqs(&rest), (51..=60).collect::<Vec<_>>());
    assert_eq!(rest["hasMore"], false);
}

#[test]
fn sync_limit_may_be_1_to_200() {
    let (mut w, alice, chat) = chat_with(205);
    let one = data(&sync(&mut w, &alice, &chat, 0, Some(1)));
    assert_eq!(seqs(&one), vec![1]);
    let most = data(&sync(&mut w, &alice, &chat, 0, Some(200)));
    assert_eq!(seqs(&most), (1..=200).collect::<Vec<_>>());
    assert_eq!(most["hasMore"], true);
}

#[test]
fn sync_limit_outside_1_to_200_is_a_validation_error() {
    let (mut w, alice, chat) = chat_with(1);
    assert_eq!(code(&sync(&mut w, &alice, &chat, 0, Some(0))), "VALIDATION_ERROR");
    assert_eq!(code(&sync(&mut w, &alice, &chat, 0, Some(201))), "VALIDATION_ERROR");
}

#[test]
fn sync_without_after_seq_is_a_validation_error() {
    let (mut w, alice, chat) = chat_with(1);
    assert_eq!(code(&w.call(&alice, "messages:sync", json!({ "chatId": chat }))), "VALIDATION_ERROR");
}

#[test]
fn sync_is_for_members_only() {
    let (mut w, _, chat) = chat_with(2);
    let mallory = w.connect("mallory");
    assert_eq!(code(&sync(&mut w, &mallory, &chat, 0, None)), "FORBIDDEN");
}

#[test]
fn sync_of_an_unknown_chat_is_not_found() {
    let (mut w, alice, _) = chat_with(0);
    assert_eq!(code(&sync(&mut w, &alice, "no-such-chat", 0, None)), "NOT_FOUND");
}

#[test]
fn sync_needs_no_room_join() {
    let (mut w, _, chat) = chat_with(2);
    let bob = w.connect("bob");
    assert_eq!(seqs(&data(&sync(&mut w, &bob, &chat, 0, None))), vec![1, 2]);
}

#[test]
fn a_removed_member_can_no_longer_sync() {
    let (mut w, _, chat) = chat_with(2);
    let (status, _) = w.http("alice", HttpRequest::RemoveMember { chat_id: chat.clone(), user_id: "bob".into() });
    assert_eq!(status, 200);
    let bob = w.connect("bob");
    assert_eq!(code(&sync(&mut w, &bob, &chat, 0, None)), "FORBIDDEN");
}

#[test]
fn sync_works_after_a_restart() {
    let (mut w, _, chat) = chat_with(4);
    w.restart();
    let bob = w.connect("bob");
    assert_eq!(seqs(&data(&sync(&mut w, &bob, &chat, 1, None))), vec![2, 3, 4]);
}

// --- HTTP history --------------------------------------------------------------------

#[test]
fn http_history_after_seq_returns_the_oldest_page_after_it() {
    let (mut w, _, chat) = chat_with(10);
    let (status, page) = history(&mut w, "bob", &chat, Some("2"), None, Some("3"));
    assert_eq!(status, 200);
    assert_eq!(seqs(&page), vec![3, 4, 5]);
    assert_eq!(page["hasMore"], true);
    let (_, last) = history(&mut w, "bob", &chat, Some("7"), None, Some("3"));
    assert_eq!(seqs(&last), vec![8, 9, 10]);
    assert_eq!(last["hasMore"], false);
}

#[test]
fn http_history_before_seq_returns_the_newest_page_before_it_ascending() {
    let (mut w, _, chat) = chat_with(10);
    let (status, page) = history(&mut w, "bob", &chat, None, Some("8"), Some("3"));
    assert_eq!(status, 200);
    assert_eq!(seqs(&page), vec![5, 6, 7]);
    assert_eq!(page["hasMore"], true);
}

#[test]
fn http_history_before_seq_has_no_more_when_the_page_reaches_the_first_message() {
    let (mut w, _, chat) = chat_with(10);
    let (_, page) = history(&mut w, "bob", &chat, None, Some("4"), Some("3"));
    assert_eq!(seqs(&page), vec![1, 2, 3]);
    assert_eq!(page["hasMore"], false);
    let (_, empty) = history(&mut w, "bob", &chat, None, Some("1"), None);
    assert_eq!(empty, json!({ "messages": [], "hasMore": false }));
}

#[test]
fn http_history_without_a_cursor_returns_the_newest_messages_ascending() {
    let (mut w, _, chat) = chat_with(10);
    let (status, page) = history(&mut w, "bob", &chat, None, None, Some("4"));
    assert_eq!(status, 200);
    assert_eq!(seqs(&page), vec![7, 8, 9, 10]);
    assert_eq!(page["hasMore"], true);
}

#[test]
fn http_history_without_a_cursor_returns_everything_when_it_fits() {
    let (mut w, _, chat) = chat_with(4);
    let (_, page) = history(&mut w, "bob", &chat, None, None, None);
    assert_eq!(seqs(&page), vec![1, 2, 3, 4]);
    assert_eq!(page["hasMore"], false);
}

#[test]
fn http_history_limit_defaults_to_50() {
    let (mut w, _, chat) = chat_with(60);
    let (_, page) = history(&mut w, "bob", &chat, None, None, None);
    assert_eq!(seqs(&page), (11..=60).collect::<Vec<_>>());
    assert_eq!(page["hasMore"], true);
}

#[test]
fn http_history_with_both_after_and_before_is_a_400_validation_error() {
    let (mut w, _, chat) = chat_with(3);
    let (status, body) = history(&mut w, "bob", &chat, Some("1"), Some("3"), None);
    assert_eq!(status, 400);
    assert_eq!(body["error"], "VALIDATION_ERROR");
    assert!(chat_core::ids::is_uuid(body["correlationId"].as_str().unwrap()));
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
}

#[test]
fn http_history_limit_outside_1_to_200_is_a_400() {
    let (mut w, _, chat) = chat_with(1);
    for limit in ["0", "201", "-1", "ten"] {
        let (status, body) = history(&mut w, "bob", &chat, None, None, Some(limit));
        assert_eq!((status, body["error"].clone()), (400, json!("VALIDATION_ERROR")), "limit {limit}");
    }
}

#[test]
fn http_history_with_a_bad_seq_is_a_400() {
    let (mut w, _, chat) = chat_with(1);
    let (status, _) = history(&mut w, "bob", &chat, Some("-1"), None, None);
    assert_eq!(status, 400);
    let (status, _) = history(&mut w, "bob", &chat, None, Some("x"), None);
    assert_eq!(status, 400);
}

#[test]
fn http_history_is_for_members_only() {
    let (mut w, _, chat) = chat_with(1);
    let (status, body) = history(&mut w, "mallory", &chat, None, None, None);
    assert_eq!((status, body["error"].clone()), (403, json!("FORBIDDEN")));
}

#[test]
fn http_history_of_an_unknown_chat_is_a_404() {
    let (mut w, _, _) = chat_with(0);
    let (status, body) = history(&mut w, "bob", "no-such-chat", None, None, None);
    assert_eq!((status, body["error"].clone()), (404, json!("NOT_FOUND")));
}

#[test]
fn http_history_without_a_token_is_a_401() {
    let (mut w, _, chat) = chat_with(1);
    let call = HttpRequest::History { chat_id: chat, after_seq: None, before_seq: None, limit: None };
    let (status, body) = w.http_as(None, call);
    assert_eq!((status, body["error"].clone()), (401, json!("UNAUTHORIZED")));
}
