//! The core's validation of every client event payload and HTTP call
//! (`chat_core::validate::parse_event`, `parse_http`).
//!
//! Input: the first line names the event (`message:send`, …) or, with an `http:` prefix,
//! the HTTP call (`http:create`, `http:history`, `http:rename`, `http:add`,
//! `http:remove`, `http:list`); the rest is the JSON payload or body. For `http:history`
//! and `http:remove` the next lines are the path and query parameters (an empty line is
//! an absent parameter). Besides "never panics", each accepted command is checked
//! against the contract's bounds, every refusal must be `VALIDATION_ERROR`, and the
//! verdict may depend only on the JSON value (not on its spelling).

#![no_main]

use chat_core::command::{ClientCommand, CreateChat, HttpCommand, HttpRequest};
use chat_core::error::ChatError;
use chat_core::ids::is_uuid;
use chat_core::validate::{parse_event, parse_http};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const EVENTS: [&str; 10] = [
    "room:join",
    "room:leave",
    "message:send",
    "typing:start",
    "typing:stop",
    "receipt:read",
    "presence:ping",
    "chat:create",
    "messages:sync",
    "not:an:event",
];

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (head, rest) = text.split_once('\n').unwrap_or((&text, ""));
    if let Some(call) = head.strip_prefix("http:") {
        check_http(call, rest);
        return;
    }
    // Like the host: a payload that does not parse is `null`.
    let payload: Value = serde_json::from_str(rest).unwrap_or(Value::Null);
    check_event(head, &payload);
    for event in EVENTS {
        check_event(event, &payload);
    }
});

fn check_event(event: &str, payload: &Value) {
    let verdict = parse_event(event, payload);
    // The verdict depends on the value only: re-encoding the payload changes nothing.
    let respelled: Value = serde_json::from_str(&payload.to_string()).expect("serde_json reads what it wrote");
    assert_eq!(parse_event(event, &respelled), verdict, "verdict changed with the spelling");
    match verdict {
        Err(error) => assert_validation(&error),
        Ok(command) => check_command(&command),
    }
}

fn check_command(command: &ClientCommand) {
    match command {
        ClientCommand::Send(send) => {
            let chars = send.body.chars().count();
            assert!((1..=8000).contains(&chars), "accepted a body of {chars} characters");
            assert!(!send.body.chars().all(char::is_whitespace), "accepted a blank body");
            assert!(is_uuid(send.client_id.as_str()), "accepted clientId {:?}", send.client_id);
            assert_eq!(send.client_id.as_str(), send.client_id.as_str().to_ascii_lowercase());
            check_id(send.chat.as_str());
        }
        ClientCommand::JoinRoom { chat } | ClientCommand::LeaveRoom { chat } | ClientCommand::Typing { chat, .. } => {
            check_id(chat.as_str())
        }
        ClientCommand::Read { chat, message } => {
            check_id(chat.as_str());
            check_id(message.as_str());
        }
        ClientCommand::Sync { chat, limit, .. } => {
            check_id(chat.as_str());
            assert!((1..=200).contains(limit), "accepted limit {limit}");
        }
        ClientCommand::CreateChat(create) => check_create(create),
        ClientCommand::Ping => {}
    }
}

fn check_create(create: &CreateChat) {
    match create {
        CreateChat::Dm { other } => check_id(other.as_str()),
        CreateChat::Group { members, title } => {
            let chars = title.chars().count();
            assert!((1..=200).contains(&chars), "accepted a title of {chars} characters");
            for (i, member) in members.iter().enumerate() {
                check_id(member.as_str());
                assert!(!members[..i].contains(member), "duplicate member {member:?} kept");
            }
        }
    }
}

/// An accepted id: 1..=128 characters, not only whitespace.
fn check_id(id: &str) {
    let chars = id.chars().count();
    assert!((1..=128).contains(&chars), "accepted an id of {chars} characters");
    assert!(!id.chars().all(char::is_whitespace), "accepted a blank id");
}

fn assert_validation(error: &ChatError) {
    assert!(matches!(error, ChatError::Validation(_)), "refusal is not VALIDATION_ERROR: {error:?}");
    assert!(!error.message().is_empty());
}

fn check_http(call: &str, rest: &str) {
    let mut lines = rest.splitn(5, '\n');
    let mut param = || lines.next().filter(|line| !line.is_empty()).map(str::to_owned);
    let body = |text: &str| serde_json::from_str::<Value>(text).unwrap_or(Value::Null);
    let request = match call {
        "list" => HttpRequest::ListChats,
        "create" => HttpRequest::CreateChat { body: body(rest) },
        "rename" | "add" => {
            let (chat_id, json) = rest.split_once('\n').unwrap_or((rest, ""));
            let chat_id = chat_id.to_owned();
            if call == "rename" {
                HttpRequest::RenameChat { chat_id, body: body(json) }
            } else {
                HttpRequest::AddMember { chat_id, body: body(json) }
            }
        }
        "remove" => HttpRequest::RemoveMember { chat_id: param().unwrap_or_default(), user_id: param().unwrap_or_default() },
        _ => HttpRequest::History { chat_id: param().unwrap_or_default(), after_seq: param(), before_seq: param(), limit: param() },
    };
    match parse_http(&request) {
        Err(error) => assert_validation(&error),
        Ok(HttpCommand::CreateChat(create)) => check_create(&create),
        Ok(HttpCommand::History { chat, limit, .. }) => {
            check_id(chat.as_str());
            assert!((1..=200).contains(&limit), "accepted limit {limit}");
        }
        Ok(HttpCommand::RenameChat { chat, title }) => {
            check_id(chat.as_str());
            let chars = title.chars().count();
            assert!((1..=200).contains(&chars), "accepted a title of {chars} characters");
        }
        Ok(HttpCommand::AddMember { chat, user }) | Ok(HttpCommand::RemoveMember { chat, user }) => {
            check_id(chat.as_str());
            check_id(user.as_str());
        }
        Ok(HttpCommand::ListChats) => {}
    }
}
