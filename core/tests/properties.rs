//! Property tests (proptest) of core rules: validation accepts exactly the valid shapes and
//! never panics (PROTOCOL.md §2, §3, §5), and `seq` order holds for any interleaving of
//! senders and retries (§5), with sync pages that follow it (§3). The fuzz targets
//! (fuzz/) throw arbitrary bytes at the same functions; these say what the answer must be.
mod common;

use chat_core::command::ClientCommand;
use chat_core::error::ChatError;
use chat_core::validate::parse_event;
use common::*;
use proptest::prelude::*;
use serde_json::{json, Map, Value};

/// A field of a generated payload: absent, or a value from a pool that mixes valid and
/// invalid ones. `valid` is the contract's verdict on that field alone.
#[derive(Clone, Debug)]
struct Field {
    value: Option<Value>,
    valid: bool,
}

fn field(value: Option<Value>, valid: bool) -> Field {
    Field { value, valid }
}

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z]{1,8}", inner, 0..4).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// `chatId` (and any id): 1..=128 characters, not only whitespace.
fn id_field() -> impl Strategy<Value = Field> {
    prop_oneof![
        "[a-z0-9-]{1,40}".prop_map(|s| field(Some(json!(s)), true)),
        Just(field(Some(json!("é".repeat(128))), true)),
        Just(field(Some(json!(" x ")), true)),
        Just(field(None, false)),
        Just(field(Some(Value::Null), false)),
        Just(field(Some(json!("")), false)),
        "[ \t\n\u{3000}]{1,5}".prop_map(|s| field(Some(json!(s)), false)),
        Just(field(Some(json!("a".repeat(129))), false)),
        any::<i64>().prop_map(|n| field(Some(json!(n)), false)),
        Just(field(Some(json!(["chat"])), false)),
    ]
}

/// `body` with its text: 1..=8000 characters, not only whitespace. The bool is "is an
/// http(s) URL" (needed for `kind: "image"`).
fn body_field() -> impl Strategy<Value = (Field, bool)> {
    prop_oneof![
        ".{1,30}".prop_filter("not blank", |s: &String| !s.chars().all(char::is_whitespace)).prop_map(|s| (field(Some(json!(s)), true), false)),
        Just((field(Some(json!("https://example.com/cat.png")), true), true)),
        Just((field(Some(json!("HTTP://h")), true), true)),
        Just((field(Some(json!("x".repeat(8000))), true), false)),
        Just((field(Some(json!("😀".repeat(8000))), true), false)),
        Just((field(Some(json!("x".repeat(8001))), false), false)),
        Just((field(Some(json!("")), false), false)),
        "[ \t\n\u{a0}\u{2003}]{1,6}".prop_map(|s| (field(Some(json!(s)), false), false)),
        Just((field(None, false), false)),
        Just((field(Some(Value::Null), false), false)),
        any::<i64>().prop_map(|n| (field(Some(json!(n)), false), false)),
    ]
}

fn client_id_field() -> impl Strategy<Value = Field> {
    prop_oneof![
        "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}".prop_map(|s| field(Some(json!(s)), true)),
        "[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}".prop_map(|s| field(Some(json!(s)), true)),
        Just(field(Some(json!("not-a-uuid")), false)),
        Just(field(Some(json!("00000000000000000000000000000000")), false)),
        "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{11}".prop_map(|s| field(Some(json!(s)), false)),
        Just(field(None, false)),
        Just(field(Some(json!(7)), false)),
    ]
}

/// `kind` of a message, with whether it asks for an image.
fn kind_field() -> impl Strategy<Value = (Field, bool)> {
    prop_oneof![
        Just((field(None, true), false)),
        Just((field(Some(Value::Null), true), false)),
        Just((field(Some(json!("text")), true), false)),
        Just((field(Some(json!("image")), true), true)),
        Just((field(Some(json!("video")), false), false)),
        Just((field(Some(json!("TEXT")), false), false)),
        Just((field(Some(json!(1)), false), false)),
    ]
}

/// A non-negative integer, as `afterSeq` needs.
fn after_seq_field() -> impl Strategy<Value = Field> {
    prop_oneof![
        any::<u64>().prop_map(|n| field(Some(json!(n)), true)),
        Just(field(None, false)),
        Just(field(Some(Value::Null), false)),
        (i64::MIN..0).prop_map(|n| field(Some(json!(n)), false)),
        Just(field(Some(json!(1.5)), false)),
        Just(field(Some(json!("3")), false)),
    ]
}

/// `limit`: absent (default) or an integer 1..=200.
fn limit_field() -> impl Strategy<Value = Field> {
    prop_oneof![
        Just(field(None, true)),
        Just(field(Some(Value::Null), true)),
        (1u64..=200).prop_map(|n| field(Some(json!(n)), true)),
        (201u64..).prop_map(|n| field(Some(json!(n)), false)),
        Just(field(Some(json!(0)), false)),
        Just(field(Some(json!(-1)), false)),
        Just(field(Some(json!(10.5)), false)),
        Just(field(Some(json!("10")), false)),
    ]
}

fn object(fields: &[(&str, &Field)], extra: Option<(String, Value)>) -> Value {
    let mut map = Map::new();
    if let Some((name, value)) = extra {
        map.insert(name, value);
    }
    for (name, field) in fields {
        if let Some(value) = &field.value {
            map.insert((*name).to_string(), value.clone());
        }
    }
    Value::Object(map)
}

/// An unknown field, ignored by the contract (names that are not the event's own).
fn extra_field() -> impl Strategy<Value = Option<(String, Value)>> {
    proptest::option::of(("x[a-z]{0,6}", any_json()))
}

fn assert_verdict(event: &str, payload: &Value, valid: bool) -> Result<(), TestCaseError> {
    match parse_event(event, payload) {
        Ok(command) => prop_assert!(valid, "{event} accepted {payload} as {command:?}"),
        Err(ChatError::Validation(message)) => prop_assert!(!valid, "{event} refused {payload}: {message}"),
        Err(other) => prop_assert!(false, "{event} refused {payload} with a non-validation error {other:?}"),
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn message_send_is_accepted_exactly_when_every_field_is_valid(
        chat in id_field(), (body, body_is_url) in body_field(), client in client_id_field(),
        (kind, is_image) in kind_field(), extra in extra_field(),
    ) {
        let payload = object(&[("chatId", &chat), ("body", &body), ("clientId", &client), ("kind", &kind)], extra);
        let valid = chat.valid && body.valid && client.valid && kind.valid && (!is_image || body_is_url);
        assert_verdict("message:send", &payload, valid)?;
    }

    #[test]
    fn messages_sync_is_accepted_exactly_when_every_field_is_valid(
        chat in id_field(), after in after_seq_field(), limit in limit_field(), extra in extra_field(),
    ) {
        let payload = object(&[("chatId", &chat), ("afterSeq", &after), ("limit", &limit)], extra);
        assert_verdict("messages:sync", &payload, chat.valid && after.valid && limit.valid)?;
    }

    #[test]
    fn events_naming_a_chat_are_accepted_exactly_when_the_chat_id_is_valid(chat in id_field(), extra in extra_field()) {
        let payload = object(&[("chatId", &chat)], extra);
        for event in ["room:join", "room:leave", "typing:start", "typing:stop"] {
            assert_verdict(event, &payload, chat.valid)?;
        }
    }

    #[test]
    fn receipt_read_needs_a_valid_chat_id_and_message_id(chat in id_field(), message in id_field(), extra in extra_field()) {
        let payload = object(&[("chatId", &chat), ("messageId", &message)], extra);
        assert_verdict("receipt:read", &payload, chat.valid && message.valid)?;
    }

    #[test]
    fn any_json_payload_gets_a_verdict_and_a_non_object_is_refused(payload in any_json()) {
        for event in ["room:join", "room:leave", "message:send", "typing:start", "typing:stop",
                      "receipt:read", "presence:ping", "chat:create", "messages:sync"] {
            let verdict = parse_event(event, &payload);
            prop_assert!(matches!(verdict, Ok(_) | Err(ChatError::Validation(_))), "{event} {payload}: {verdict:?}");
            let allowed_non_object = event == "presence:ping" && payload.is_null();
            if !payload.is_object() && !allowed_non_object {
                prop_assert!(verdict.is_err(), "{event} accepted the non-object {payload}");
            }
        }
        prop_assert_eq!(parse_event("presence:ping", &json!({})), Ok(ClientCommand::Ping));
    }

    #[test]
    fn an_accepted_client_id_is_stored_lowercase(client in "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}") {
        let payload = json!({ "chatId": "c", "body": "hi", "clientId": client });
        let Ok(ClientCommand::Send(send)) = parse_event("message:send", &payload) else {
            return Err(TestCaseError::fail("a valid send was refused"));
        };
        prop_assert_eq!(send.client_id.as_str(), client.to_ascii_lowercase());
    }
}

/// One step of a conversation: who sends, and which `clientId` (a small pool, so retries
/// of earlier messages happen often).
#[derive(Clone, Debug)]
struct Step {
    sender: usize,
    client: u32,
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec((0usize..3, 1u32..25).prop_map(|(sender, client)| Step { sender, client }), 1..40)
}

fn seqs(page: &Value) -> Vec<u64> {
    page["messages"].as_array().unwrap().iter().map(|m| m["seq"].as_u64().unwrap()).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// §5: seq starts at 1, no gaps, no repeats; a retry (same sender and clientId) gets
    /// its first ack again; sync pages are the seqs above `afterSeq`, ascending, with
    /// `hasMore` exactly when newer ones remain.
    #[test]
    fn seqs_are_dense_retries_are_stable_and_sync_pages_follow_them(
        steps in steps(), after in 0u64..45, limit in 1u64..12,
    ) {
        let mut w = World::unlimited();
        let users = ["alice", "bob", "carol"];
        let sockets: Vec<_> = users.iter().map(|u| w.connect(u)).collect();
        let chat = w.group(&sockets[0], &["bob", "carol"]);
        let mut first_ack: std::collections::HashMap<(usize, u32), Value> = Default::default();
        let mut next_seq = 1;
        for step in &steps {
            // The body follows the clientId, so a retry is the same message (§5).
            let ack = data(&w.send(&sockets[step.sender], &chat, &format!("m{}", step.client), step.client));
            match first_ack.get(&(step.sender, step.client)) {
                Some(earlier) => prop_assert_eq!(&ack, earlier, "a retry got another ack"),
                None => {
                    prop_assert_eq!(ack["seq"].as_u64(), Some(next_seq), "seqs must be 1, 2, 3… in commit order");
                    next_seq += 1;
                    first_ack.insert((step.sender, step.client), ack);
                }
            }
        }
        let stored = next_seq - 1;
        let page = data(&w.call(&sockets[1], "messages:sync", json!({ "chatId": chat, "afterSeq": after, "limit": limit })));
        let expected: Vec<u64> = (after + 1..=stored).take(limit as usize).collect();
        prop_assert_eq!(seqs(&page), expected);
        prop_assert_eq!(page["hasMore"].as_bool(), Some(after + limit < stored));
    }
}
