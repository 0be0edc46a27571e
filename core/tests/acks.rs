//! PROTOCOL.md §2: acknowledgements, error shape, correlation ids, events without callbacks.
mod common;

use chat_core::effect::{Effect, ServerEvent};
use chat_core::ids::{is_uuid, AckId, ChatId};
use chat_core::Input;
use common::*;
use serde_json::{json, Value};

/// Every client event that takes an acknowledgement.
const ACKED_EVENTS: [&str; 7] =
    ["room:join", "room:leave", "message:send", "receipt:read", "presence:ping", "chat:create", "messages:sync"];

#[test]
fn a_failure_ack_has_exactly_ok_error_message_and_correlation_id() {
    let mut w = World::new();
    let alice = w.connect("alice");
    let ack = w.call(&alice, "room:join", json!({ "chatId": "no-such-chat" }));
    let fields: Vec<&str> = ack.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(fields, vec!["correlationId", "error", "message", "ok"], "{ack}");
    assert_eq!(ack["ok"], false);
    assert_eq!(ack["error"], "NOT_FOUND");
    assert!(!ack["message"].as_str().unwrap().is_empty());
    assert!(is_uuid(ack["correlationId"].as_str().unwrap()), "{ack}");
}

#[test]
fn the_correlation_id_of_a_failure_appears_in_the_servers_log() {
    let mut w = World::new();
    let alice = w.connect("alice");
    let ack = w.call(&alice, "room:join", json!({ "chatId": "no-such-chat" }));
    assert!(w.logged(ack["correlationId"].as_str().unwrap()));
}

#[test]
fn the_correlation_id_of_a_validation_error_appears_in_the_servers_log() {
    let mut w = World::new();
    let alice = w.connect("alice");
    let ack = w.call(&alice, "message:send", json!({ "chatId": "c", "body": "", "clientId": uuid(1) }));
    assert_eq!(code(&ack), "VALIDATION_ERROR");
    assert!(w.logged(ack["correlationId"].as_str().unwrap()));
}

#[test]
fn every_failure_has_its_own_correlation_id() {
    let mut w = World::new();
    let alice = w.connect("alice");
    let first = w.call(&alice, "room:join", json!({ "chatId": "nope" }));
    let second = w.call(&alice, "room:join", json!({ "chatId": "nope" }));
    assert_ne!(first["correlationId"], second["correlationId"]);
}

#[test]
fn a_success_ack_is_ok_true_with_data() {
    let mut w = World::new();
    let alice = w.connect("alice");
    let ack = w.call(&alice, "presence:ping", json!({}));
    assert_eq!(ack, json!({ "ok": true, "data": { "serverTime": at(0) } }));
}

#[test]
fn a_success_without_data_is_ok_true_alone() {
    let mut w = World::new();
    let alice = w.connect("alice");
    let chat = w.group(&alice, &[]);
    let ack = w.call(&alice, "room:leave", json!({ "chatId": chat }));
    assert_eq!(ack, json!({ "ok": true }));
}

#[test]
fn an_event_without_callback_is_still_processed() {
    let mut w = World::new();
    let alice = w.connect("alice");
    let chat = w.group(&alice, &["bob"]);
    w.join(&alice, &chat);
    w.send_event(&alice, "message:send", json!({ "chatId": chat, "body": "no callback", "clientId": uuid(1) }));
    assert_eq!(w.store.messages(&ChatId::from(chat.as_str())).len(), 1);
    assert_eq!(w.received(&alice, ServerEvent::MessageNew)[0]["body"], "no callback");
}

#[test]
fn a_room_join_without_callback_still_joins() {
    let mut w = World::new();
    let alice = w.connect("alice");
    let chat = w.group(&alice, &[]);
    w.send_event(&alice, "room:join", json!({ "chatId": chat }));
    assert!(w.in_room(&chat_room(&chat)).contains(&alice));
}

#[test]
fn a_failure_without_callback_is_only_logged() {
    let mut w = World::new();
    let alice = w.connect("alice");
    let mark = w.mark();
    w.send_event(&alice, "room:join", json!({ "chatId": "no-such-chat" }));
    let effects = w.since(mark);
    assert!(effects.iter().all(|e| !matches!(e, Effect::Ack { .. })), "{effects:?}");
    assert!(effects
        .iter()
        .any(|e| matches!(e, Effect::Log { correlation_id: Some(_), message, .. } if message.contains("NOT_FOUND"))));
}

#[test]
fn an_invalid_event_without_callback_is_only_logged() {
    let mut w = World::new();
    let alice = w.connect("alice");
    let mark = w.mark();
    w.send_event(&alice, "message:send", json!({ "chatId": 1 }));
    let effects = w.since(mark);
    assert!(effects.iter().all(|e| !matches!(e, Effect::Ack { .. })), "{effects:?}");
    assert!(effects
        .iter()
        .any(|e| matches!(e, Effect::Log { correlation_id: Some(_), message, .. } if message.contains("VALIDATION_ERROR"))));
}

#[test]
fn typing_never_answers_even_with_a_callback() {
    let mut w = World::new();
    let alice = w.connect("alice");
    let chat = w.group(&alice, &["bob"]);
    assert_eq!(w.try_call(&alice, "typing:start", json!({ "chatId": chat })), None);
    assert_eq!(w.try_call(&alice, "typing:stop", json!({ "chatId": chat })), None);
    // ... and still does what it says.
    assert_eq!(w.emits_to_room(ServerEvent::TypingUpdate, &chat_room(&chat)).len(), 2);
}

#[test]
fn malformed_typing_never_answers_even_with_a_callback() {
    let mut w = World::new();
    let alice = w.connect("alice");
    for payload in [json!({}), json!({ "chatId": 7 }), json!("x"), Value::Null] {
        assert_eq!(w.try_call(&alice, "typing:start", payload.clone()), None);
        assert_eq!(w.try_call(&alice, "typing:stop", payload), None);
    }
}

#[test]
fn typing_for_an_unknown_chat_never_answers() {
    let mut w = World::new();
    let alice = w.connect("alice");
    assert_eq!(w.try_call(&alice, "typing:start", json!({ "chatId": "no-such-chat" })), None);
}

#[test]
fn malformed_payloads_are_validation_errors_even_for_unknown_chats() {
    let mut w = World::new();
    let alice = w.connect("alice");
    let cases = [
        ("room:join", json!({})),
        ("room:join", json!({ "chatId": 42 })),
        ("room:join", json!({ "chatId": "" })),
        ("room:leave", json!({ "chatId": null })),
        ("room:leave", json!({ "chatId": ["x"] })),
        ("message:send", json!({ "chatId": "nope", "body": "", "clientId": uuid(1) })),
        ("message:send", json!({ "chatId": "nope", "body": "   \n\t", "clientId": uuid(1) })),
        ("message:send", json!({ "chatId": "nope", "body": "x".repeat(8001), "clientId": uuid(1) })),
        ("message:send", json!({ "chatId": "nope", "body": 5, "clientId": uuid(1) })),
        ("message:send", json!({ "chatId": "nope", "body": "hi" })),
        ("message:send", json!({ "chatId": "nope", "body": "hi", "clientId": "not-a-uuid" })),
        ("message:send", json!({ "chatId": "nope", "body": "hi", "clientId": uuid(1), "kind": "video" })),
        ("message:send", json!({ "body": "hi", "clientId": uuid(1) })),
        ("receipt:read", json!({ "chatId": "nope" })),
        ("receipt:read", json!({ "chatId": "nope", "messageId": 3 })),
        ("presence:ping", json!("now")),
        ("presence:ping", json!([1])),
        ("chat:create", json!({ "kind": "channel", "memberIds": ["bob"] })),
        ("chat:create", json!({ "kind": "dm", "memberIds": ["bob", "carol"] })),
        ("chat:create", json!({ "kind": "group", "memberIds": ["bob"] })),
        ("chat:create", json!({ "kind": "group", "memberIds": "bob", "title": "t" })),
        ("messages:sync", json!({ "chatId": "nope" })),
        ("messages:sync", json!({ "chatId": "nope", "afterSeq": -1 })),
        ("messages:sync", json!({ "chatId": "nope", "afterSeq": 1.5 })),
        ("messages:sync", json!({ "chatId": "nope", "afterSeq": "0" })),
        ("messages:sync", json!({ "chatId": "nope", "afterSeq": 0, "limit": 0 })),
        ("messages:sync", json!({ "chatId": "nope", "afterSeq": 0, "limit": 201 })),
    ];
    for (event, payload) in cases {
        let ack = w.call(&alice, event, payload.clone());
        assert_eq!(ack["error"], "VALIDATION_ERROR", "{event} {payload}: {ack}");
    }
}

#[test]
fn a_payload_that_is_not_an_object_is_a_validation_error_for_every_event() {
    let mut w = World::new();
    let alice = w.connect("alice");
    for event in ACKED_EVENTS {
        for payload in [json!("chat"), json!(42), json!(true), json!([{ "chatId": "x" }])] {
            let ack = w.call(&alice, event, payload.clone());
            assert_eq!(ack["error"], "VALIDATION_ERROR", "{event} {payload}: {ack}");
        }
    }
}

#[test]
fn a_missing_payload_is_a_validation_error_for_every_event_but_ping() {
    let mut w = World::new();
    let alice = w.connect("alice");
    for event in ACKED_EVENTS.into_iter().filter(|e| *e != "presence:ping") {
        let ack = w.call(&alice, event, Value::Null);
        assert_eq!(ack["error"], "VALIDATION_ERROR", "{event}: {ack}");
    }
    assert_eq!(w.call(&alice, "presence:ping", Value::Null)["ok"], true);
}

#[test]
fn a_malformed_payload_is_checked_before_membership() {
    let mut w = World::new();
    let alice = w.connect("alice");
    let chat = w.group(&alice, &[]);
    let outsider = w.connect("mallory");
    let ack = w.call(&outsider, "messages:sync", json!({ "chatId": chat, "afterSeq": -5 }));
    assert_eq!(code(&ack), "VALIDATION_ERROR");
}

#[test]
fn an_unknown_event_is_a_validation_error() {
    let mut w = World::new();
    let alice = w.connect("alice");
    let ack = w.call(&alice, "message:delete", json!({ "chatId": "c" }));
    assert_eq!(code(&ack), "VALIDATION_ERROR");
    assert!(w.logged(ack["correlationId"].as_str().unwrap()));
}

#[test]
fn an_unknown_event_without_callback_answers_nothing() {
    let mut w = World::new();
    let alice = w.connect("alice");
    let mark = w.mark();
    w.send_event(&alice, "whatever", json!({}));
    assert!(w.since(mark).iter().all(|e| matches!(e, Effect::Log { .. })), "{:?}", w.since(mark));
}

#[test]
fn a_socket_keeps_working_after_malformed_payloads() {
    let mut w = World::new();
    let alice = w.connect("alice");
    let chat = w.group(&alice, &[]);
    for event in ACKED_EVENTS {
        w.call(&alice, event, json!(null));
        w.call(&alice, event, json!({ "chatId": { "$ne": null } }));
    }
    w.call(&alice, "no:such:event", json!([]));
    let ack = w.send(&alice, &chat, "still here", 1);
    assert_eq!(data(&ack)["seq"], 1);
}

#[test]
fn malformed_payloads_do_not_disturb_other_connections() {
    let mut w = World::new();
    let alice = w.connect("alice");
    let chat = w.group(&alice, &["bob"]);
    let bob = w.connect("bob");
    w.join(&bob, &chat);
    let mallory = w.connect("mallory");
    for event in ACKED_EVENTS {
        w.call(&mallory, event, json!({ "chatId": chat, "body": {}, "clientId": 1, "afterSeq": "x" }));
    }
    data(&w.send(&alice, &chat, "fine", 1));
    assert_eq!(w.received(&bob, ServerEvent::MessageNew).len(), 1);
    assert!(w.received(&bob, ServerEvent::MessageNew)[0]["body"] == "fine");
}

#[test]
fn an_event_from_a_socket_that_is_gone_is_ignored() {
    let mut w = World::new();
    let alice = w.connect("alice");
    let chat = w.group(&alice, &[]);
    w.disconnect(&alice);
    let mark = w.mark();
    w.input(Input::Event {
        socket: alice.clone(),
        event: "message:send".into(),
        payload: json!({ "chatId": chat, "body": "ghost", "clientId": uuid(1) }),
        ack: Some(AckId(999)),
    });
    assert!(w.since(mark).iter().all(|e| !matches!(e, Effect::Ack { .. })));
    assert!(w.store.messages(&ChatId::from(chat.as_str())).is_empty());
}

#[test]
fn every_event_with_a_callback_is_answered_exactly_once_whatever_its_payload() {
    let mut w = World::new();
    let alice = w.connect("alice");
    let chat = w.group(&alice, &["bob"]);
    let deep = (0..64).fold(json!("x"), |inner, _| json!({ "chatId": inner }));
    let payloads = [
        json!({}),
        json!({ "chatId": chat }),
        json!({ "chatId": chat, "body": "hi", "clientId": uuid(1) }),
        json!({ "chatId": chat, "messageId": "m" }),
        json!({ "chatId": chat, "afterSeq": u64::MAX, "limit": u64::MAX }),
        json!({ "chatId": chat, "afterSeq": -0.0 }),
        json!({ "chatId": "\u{0}\u{FFFF}💥", "body": "\u{0}" }),
        json!({ "chatId": "c".repeat(100_000) }),
        json!({ "kind": "group", "memberIds": vec!["m"; 5000], "title": "t" }),
        json!({ "kind": "dm", "memberIds": [{ "id": "bob" }] }),
        deep,
        json!(null),
        json!([]),
        json!(""),
    ];
    let mut n = 100;
    for event in ACKED_EVENTS.into_iter().chain(["", "💥", "room:join\u{0}"]) {
        for payload in &payloads {
            n += 1;
            let mut payload = payload.clone();
            if payload.get("clientId").is_some() {
                payload["clientId"] = json!(uuid(n));
            }
            let mark = w.mark();
            w.try_call(&alice, event, payload.clone());
            let acks = w.since(mark).iter().filter(|e| matches!(e, Effect::Ack { socket, .. } if *socket == alice)).count();
            assert_eq!(acks, 1, "{event} {payload}");
        }
    }
    assert_eq!(data(&w.call(&alice, "presence:ping", json!({})))["serverTime"], at(0));
}

#[test]
fn an_event_the_host_would_not_queue_is_answered_rate_limited_with_a_logged_correlation_id() {
    let mut w = World::new();
    let alice = w.connect("alice");
    w.input(Input::Overloaded { socket: alice.clone(), event: "messages:sync".into(), ack: Some(AckId(900)) });
    let ack = w.ack_of(&alice, AckId(900)).expect("an answer");
    assert_eq!(code(&ack), "RATE_LIMITED");
    assert!(w.logged(ack["correlationId"].as_str().unwrap()));
}

#[test]
fn a_typing_event_the_host_would_not_queue_gets_no_answer() {
    let mut w = World::new();
    let alice = w.connect("alice");
    w.input(Input::Overloaded { socket: alice.clone(), event: "typing:start".into(), ack: Some(AckId(901)) });
    assert_eq!(w.ack_of(&alice, AckId(901)), None);
}

#[test]
fn only_typing_events_go_unanswered() {
    use chat_core::route::never_answered;
    assert!(never_answered("typing:start"));
    assert!(never_answered("typing:stop"));
    for event in ACKED_EVENTS.into_iter().chain(["typing:other", "unknown"]) {
        assert!(!never_answered(event), "{event}");
    }
}
