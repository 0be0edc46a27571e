//! The core's edge: untrusted JSON in, typed commands or `VALIDATION_ERROR` out.
//!
//! Shapes are checked here, before anything is looked up (PROTOCOL.md §2): a malformed
//! payload is `VALIDATION_ERROR` even for a chat that does not exist. Ids of chats and
//! messages are only checked for being sensible strings, never for being UUIDs, so an
//! unknown one reaches the lookup and becomes `NOT_FOUND`. Unknown fields are ignored.
//! Every failure is [`ChatError::Validation`] with a message naming the field; no input
//! makes these functions panic.

use crate::command::{ClientCommand, CreateChat, HistoryQuery, HttpCommand, HttpRequest, SendCommand};
use crate::config::bounds;
use crate::error::ChatError;
use crate::ids::{is_uuid, ChatId, ClientId, MessageId, Seq, UserId};
use crate::model::MessageKind;
use serde_json::{Map, Value};
use std::collections::HashSet;

/// Most entries a `memberIds` array may have (before duplicates are removed).
pub const MAX_MEMBER_IDS: usize = 1000;

/// Longest event name quoted back in an "unknown event" message.
const MAX_QUOTED_EVENT_CHARS: usize = 64;

type Object = Map<String, Value>;

/// Validates one socket event's payload into a command. Unknown events are errors too.
///
/// `payload` is the event's first argument; the host passes `Value::Null` when there is
/// none. Only `presence:ping` accepts that (or an object); every other event needs an
/// object.
pub fn parse_event(event: &str, payload: &Value) -> Result<ClientCommand, ChatError> {
    match event {
        "room:join" => Ok(ClientCommand::JoinRoom { chat: chat_id(object(event, payload)?)? }),
        "room:leave" => Ok(ClientCommand::LeaveRoom { chat: chat_id(object(event, payload)?)? }),
        "message:send" => parse_send(object(event, payload)?).map(ClientCommand::Send),
        "typing:start" => Ok(ClientCommand::Typing { chat: chat_id(object(event, payload)?)?, typing: true }),
        "typing:stop" => Ok(ClientCommand::Typing { chat: chat_id(object(event, payload)?)?, typing: false }),
        "receipt:read" => {
            let fields = object(event, payload)?;
            let chat = chat_id(fields)?;
            let message = MessageId::new(id_string(fields, "messageId", bounds::MAX_ID_CHARS)?);
            Ok(ClientCommand::Read { chat, message })
        }
        "presence:ping" => match payload {
            Value::Null | Value::Object(_) => Ok(ClientCommand::Ping),
            _ => Err(ChatError::validation("presence:ping payload must be an object")),
        },
        "chat:create" => parse_create_chat(object(event, payload)?).map(ClientCommand::CreateChat),
        "messages:sync" => {
            let fields = object(event, payload)?;
            let chat = chat_id(fields)?;
            let after = match present(fields, "afterSeq") {
                None => return Err(ChatError::validation("afterSeq is required")),
                Some(value) => value.as_u64().ok_or_else(|| ChatError::validation("afterSeq must be an integer >= 0"))?,
            };
            let limit = match present(fields, "limit") {
                None => bounds::DEFAULT_PAGE,
                Some(value) => page_limit(value.as_u64())?,
            };
            Ok(ClientCommand::Sync { chat, after: Seq(after), limit })
        }
        other => Err(ChatError::validation(format!("unknown event \"{}\"", quote_prefix(other)))),
    }
}

/// Validates one HTTP call's parameters and body into a command.
pub fn parse_http(request: &HttpRequest) -> Result<HttpCommand, ChatError> {
    match request {
        HttpRequest::ListChats => Ok(HttpCommand::ListChats),
        HttpRequest::CreateChat { body } => parse_create_chat(body_object(body)?).map(HttpCommand::CreateChat),
        HttpRequest::History { chat_id, after_seq, before_seq, limit } => {
            let chat = ChatId::new(check_id(Some(chat_id), "chatId", bounds::MAX_ID_CHARS)?);
            let query = match (after_seq, before_seq) {
                (Some(_), Some(_)) => return Err(ChatError::validation("afterSeq and beforeSeq cannot be combined")),
                (Some(after), None) => HistoryQuery::After(Seq(query_integer(after, "afterSeq")?)),
                (None, Some(before)) => HistoryQuery::Before(Some(Seq(query_integer(before, "beforeSeq")?))),
                (None, None) => HistoryQuery::Before(None),
            };
            let limit = match limit {
                None => bounds::DEFAULT_PAGE,
                Some(text) => page_limit(parse_decimal(text))?,
            };
            Ok(HttpCommand::History { chat, query, limit })
        }
        HttpRequest::RenameChat { chat_id, body } => {
            let chat = ChatId::new(check_id(Some(chat_id), "chatId", bounds::MAX_ID_CHARS)?);
            let title = title(body_object(body)?)?;
            Ok(HttpCommand::RenameChat { chat, title })
        }
        HttpRequest::AddMember { chat_id, body } => {
            let chat = ChatId::new(check_id(Some(chat_id), "chatId", bounds::MAX_ID_CHARS)?);
            let user = UserId::new(id_string(body_object(body)?, "userId", bounds::MAX_USER_ID_CHARS)?);
            Ok(HttpCommand::AddMember { chat, user })
        }
        HttpRequest::RemoveMember { chat_id, user_id } => {
            let chat = ChatId::new(check_id(Some(chat_id), "chatId", bounds::MAX_ID_CHARS)?);
            let user = UserId::new(check_id(Some(user_id), "userId", bounds::MAX_USER_ID_CHARS)?);
            Ok(HttpCommand::RemoveMember { chat, user })
        }
    }
}

// --- shapes --------------------------------------------------------------------------

fn object<'a>(event: &str, payload: &'a Value) -> Result<&'a Object, ChatError> {
    payload.as_object().ok_or_else(|| ChatError::validation(format!("{event} payload must be an object")))
}

fn body_object(body: &Value) -> Result<&Object, ChatError> {
    body.as_object().ok_or_else(|| ChatError::validation("request body must be a JSON object"))
}

/// A field that is there and not `null`.
fn present<'a>(fields: &'a Object, name: &str) -> Option<&'a Value> {
    fields.get(name).filter(|value| !value.is_null())
}

/// Counts characters up to `max + 1`, so a huge string costs no more than a short one.
fn char_count_capped(text: &str, max: usize) -> usize {
    text.chars().take(max.saturating_add(1)).count()
}

fn is_blank(text: &str) -> bool {
    text.chars().all(char::is_whitespace)
}

fn quote_prefix(text: &str) -> String {
    let mut quoted: String = text.chars().take(MAX_QUOTED_EVENT_CHARS).collect();
    if quoted.len() < text.len() {
        quoted.push('…');
    }
    quoted.escape_debug().to_string().replace("\\'", "'")
}

// --- fields --------------------------------------------------------------------------

/// An id: a string of 1..=`max` characters, not only whitespace.
fn check_id<'a>(value: Option<&'a String>, name: &str, max: usize) -> Result<&'a str, ChatError> {
    let Some(text) = value else {
        return Err(ChatError::validation(format!("{name} is required")));
    };
    if text.is_empty() || is_blank(text) {
        return Err(ChatError::validation(format!("{name} must be a non-empty string")));
    }
    if char_count_capped(text, max) > max {
        return Err(ChatError::validation(format!("{name} must be at most {max} characters")));
    }
    Ok(text)
}

/// The id in field `name`.
fn id_string<'a>(fields: &'a Object, name: &str, max: usize) -> Result<&'a str, ChatError> {
    match present(fields, name) {
        None => check_id(None, name, max),
        Some(Value::String(text)) => check_id(Some(text), name, max),
        Some(_) => Err(ChatError::validation(format!("{name} must be a non-empty string"))),
    }
}

fn chat_id(fields: &Object) -> Result<ChatId, ChatError> {
    id_string(fields, "chatId", bounds::MAX_ID_CHARS).map(ChatId::new)
}

fn parse_send(fields: &Object) -> Result<SendCommand, ChatError> {
    let chat = chat_id(fields)?;
    let body = match present(fields, "body") {
        None => return Err(ChatError::validation("body is required")),
        Some(Value::String(body)) => body,
        Some(_) => return Err(ChatError::validation("body must be a string")),
    };
    if body.is_empty() {
        return Err(ChatError::validation("body must not be empty"));
    }
    if char_count_capped(body, bounds::MAX_BODY_CHARS) > bounds::MAX_BODY_CHARS {
        return Err(ChatError::validation(format!("body must be at most {} characters", bounds::MAX_BODY_CHARS)));
    }
    if is_blank(body) {
        return Err(ChatError::validation("body must not be only whitespace"));
    }
    let client_id = match present(fields, "clientId") {
        None => return Err(ChatError::validation("clientId is required")),
        Some(Value::String(id)) if is_uuid(id) => ClientId::new(id.to_ascii_lowercase()),
        Some(_) => return Err(ChatError::validation("clientId must be a UUID string")),
    };
    let kind = match present(fields, "kind") {
        None => MessageKind::Text,
        Some(Value::String(kind)) if kind == "text" => MessageKind::Text,
        Some(Value::String(kind)) if kind == "image" => MessageKind::Image,
        Some(_) => return Err(ChatError::validation("kind must be \"text\" or \"image\"")),
    };
    if kind == MessageKind::Image && !is_http_url(body) {
        return Err(ChatError::validation("body of an image message must be an http(s) URL"));
    }
    Ok(SendCommand { chat, body: body.clone(), client_id, kind })
}

/// `http://` or `https://` (scheme case-insensitive), a non-empty host, and no
/// whitespace or control characters anywhere.
pub fn is_http_url(text: &str) -> bool {
    if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return false;
    }
    let rest = match text.split_once("://") {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https") => rest,
        _ => return false,
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    let host = if let Some(bracketed) = host_port.strip_prefix('[') {
        // An IPv6 literal: `[...]`, optionally followed by `:port`.
        match bracketed.split_once(']') {
            Some((inner, after)) if after.is_empty() || after.starts_with(':') => inner,
            _ => return false,
        }
    } else {
        host_port.split(':').next().unwrap_or("")
    };
    !host.is_empty()
}

fn title(fields: &Object) -> Result<String, ChatError> {
    let title = match present(fields, "title") {
        None => return Err(ChatError::validation("title is required")),
        Some(Value::String(title)) => title,
        Some(_) => return Err(ChatError::validation("title must be a string")),
    };
    if title.is_empty() || is_blank(title) {
        return Err(ChatError::validation("title must be a non-empty string"));
    }
    if char_count_capped(title, bounds::MAX_TITLE_CHARS) > bounds::MAX_TITLE_CHARS {
        return Err(ChatError::validation(format!("title must be at most {} characters", bounds::MAX_TITLE_CHARS)));
    }
    Ok(title.clone())
}

/// `memberIds`: an array of 0..=[`MAX_MEMBER_IDS`] user ids, deduplicated in order.
fn member_ids(fields: &Object) -> Result<Vec<UserId>, ChatError> {
    let entries = match present(fields, "memberIds") {
        None => return Err(ChatError::validation("memberIds is required")),
        Some(Value::Array(entries)) => entries,
        Some(_) => return Err(ChatError::validation("memberIds must be an array of user ids")),
    };
    if entries.len() > MAX_MEMBER_IDS {
        return Err(ChatError::validation(format!("memberIds must have at most {MAX_MEMBER_IDS} entries")));
    }
    let mut seen = HashSet::with_capacity(entries.len());
    let mut members = Vec::with_capacity(entries.len());
    for (index, entry) in entries.iter().enumerate() {
        let name = format!("memberIds[{index}]");
        let id = match entry {
            Value::String(text) => check_id(Some(text), &name, bounds::MAX_USER_ID_CHARS)?,
            _ => return Err(ChatError::validation(format!("{name} must be a non-empty string"))),
        };
        if seen.insert(id) {
            members.push(UserId::new(id));
        }
    }
    Ok(members)
}

/// `{ kind: "dm", memberIds: [otherId] }` or `{ kind: "group", memberIds, title }`.
fn parse_create_chat(fields: &Object) -> Result<CreateChat, ChatError> {
    match present(fields, "kind") {
        Some(Value::String(kind)) if kind == "dm" => {
            if present(fields, "title").is_some() {
                return Err(ChatError::validation("a dm has no title"));
            }
            let mut members = member_ids(fields)?;
            match (members.pop(), members.is_empty()) {
                (Some(other), true) => Ok(CreateChat::Dm { other }),
                _ => Err(ChatError::validation("memberIds of a dm must name exactly one other user")),
            }
        }
        Some(Value::String(kind)) if kind == "group" => {
            let members = member_ids(fields)?;
            let title = title(fields)?;
            Ok(CreateChat::Group { members, title })
        }
        None => Err(ChatError::validation("kind is required")),
        Some(_) => Err(ChatError::validation("kind must be \"dm\" or \"group\"")),
    }
}

/// `limit`: 1..=200; `None` stands for a value that is not a non-negative integer.
fn page_limit(value: Option<u64>) -> Result<u32, ChatError> {
    match value {
        Some(n) if (1..=u64::from(bounds::MAX_PAGE)).contains(&n) => Ok(n as u32),
        _ => Err(ChatError::validation(format!("limit must be an integer from 1 to {}", bounds::MAX_PAGE))),
    }
}

/// A query-string integer: ASCII decimal digits only (no sign, no point, no spaces).
fn parse_decimal(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn query_integer(text: &str, name: &str) -> Result<u64, ChatError> {
    parse_decimal(text).ok_or_else(|| ChatError::validation(format!("{name} must be an integer >= 0")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const CLIENT_ID: &str = "0189c6f0-0000-7000-8000-00000000abcd";

    fn chat(id: &str) -> ChatId {
        ChatId::new(id)
    }

    fn user(id: &str) -> UserId {
        UserId::new(id)
    }

    /// The error message, asserting the error is VALIDATION_ERROR.
    fn invalid(result: Result<impl std::fmt::Debug, ChatError>) -> String {
        match result {
            Err(ChatError::Validation(message)) => {
                assert!(!message.is_empty());
                message
            }
            other => panic!("expected VALIDATION_ERROR, got {other:?}"),
        }
    }

    fn assert_invalid_naming(result: Result<impl std::fmt::Debug, ChatError>, field: &str) {
        let message = invalid(result);
        assert!(message.contains(field), "message {message:?} should name {field}");
    }

    fn send(payload: Value) -> Result<SendCommand, ChatError> {
        match parse_event("message:send", &payload)? {
            ClientCommand::Send(command) => Ok(command),
            other => panic!("unexpected command {other:?}"),
        }
    }

    fn text_send(body: &str) -> Result<SendCommand, ChatError> {
        send(json!({"chatId": "c1", "body": body, "clientId": CLIENT_ID}))
    }

    fn image_send(body: &str) -> Result<SendCommand, ChatError> {
        send(json!({"chatId": "c1", "body": body, "clientId": CLIENT_ID, "kind": "image"}))
    }

    fn history(after: Option<&str>, before: Option<&str>, limit: Option<&str>) -> Result<HttpCommand, ChatError> {
        parse_http(&HttpRequest::History {
            chat_id: "c1".into(),
            after_seq: after.map(str::to_owned),
            before_seq: before.map(str::to_owned),
            limit: limit.map(str::to_owned),
        })
    }

    const EVENTS: [&str; 9] =
        ["room:join", "room:leave", "message:send", "typing:start", "typing:stop", "receipt:read", "presence:ping", "chat:create", "messages:sync"];

    // --- room:join / room:leave ------------------------------------------------------

    #[test]
    fn room_join_happy_path() {
        assert_eq!(parse_event("room:join", &json!({"chatId": "c1"})), Ok(ClientCommand::JoinRoom { chat: chat("c1") }));
    }

    #[test]
    fn room_join_ignores_unknown_fields() {
        assert_eq!(parse_event("room:join", &json!({"chatId": "c1", "extra": [1, 2]})), Ok(ClientCommand::JoinRoom { chat: chat("c1") }));
    }

    #[test]
    fn room_join_accepts_a_non_uuid_chat_id() {
        // Unknown ids must reach the lookup and become NOT_FOUND there.
        assert_eq!(parse_event("room:join", &json!({"chatId": "no-such-chat"})), Ok(ClientCommand::JoinRoom { chat: chat("no-such-chat") }));
    }

    #[test]
    fn room_join_without_chat_id_is_invalid() {
        assert_invalid_naming(parse_event("room:join", &json!({})), "chatId");
        assert_invalid_naming(parse_event("room:join", &json!({"chatId": null})), "chatId");
    }

    #[test]
    fn room_join_with_non_string_chat_id_is_invalid() {
        for bad in [json!(1), json!(true), json!(["c1"]), json!({"id": "c1"})] {
            assert_invalid_naming(parse_event("room:join", &json!({ "chatId": bad })), "chatId");
        }
    }

    #[test]
    fn room_join_with_empty_or_blank_chat_id_is_invalid() {
        let message = invalid(parse_event("room:join", &json!({"chatId": ""})));
        assert_eq!(message, "chatId must be a non-empty string");
        assert_invalid_naming(parse_event("room:join", &json!({"chatId": " \t"})), "chatId");
    }

    #[test]
    fn chat_id_of_128_characters_is_accepted_and_129_is_not() {
        assert!(parse_event("room:join", &json!({"chatId": "字".repeat(128)})).is_ok());
        assert_invalid_naming(parse_event("room:join", &json!({"chatId": "a".repeat(129)})), "chatId");
    }

    #[test]
    fn room_leave_happy_path() {
        assert_eq!(parse_event("room:leave", &json!({"chatId": "c1"})), Ok(ClientCommand::LeaveRoom { chat: chat("c1") }));
    }

    #[test]
    fn room_leave_without_chat_id_is_invalid() {
        assert_invalid_naming(parse_event("room:leave", &json!({"chat": "c1"})), "chatId");
        assert_invalid_naming(parse_event("room:leave", &json!({"chatId": 7})), "chatId");
    }

    // --- message:send ------------------------------------------------------------------

    #[test]
    fn message_send_happy_path() {
        assert_eq!(
            text_send("hello"),
            Ok(SendCommand { chat: chat("c1"), body: "hello".into(), client_id: ClientId::new(CLIENT_ID), kind: MessageKind::Text })
        );
    }

    #[test]
    fn message_send_kind_text_explicit() {
        let command = send(json!({"chatId": "c1", "body": "hi", "clientId": CLIENT_ID, "kind": "text"})).unwrap();
        assert_eq!(command.kind, MessageKind::Text);
    }

    #[test]
    fn message_send_kind_null_is_text() {
        let command = send(json!({"chatId": "c1", "body": "hi", "clientId": CLIENT_ID, "kind": null})).unwrap();
        assert_eq!(command.kind, MessageKind::Text);
    }

    #[test]
    fn message_send_image_with_https_url() {
        let command = image_send("https://cdn.example.com/cat.png?size=large#x").unwrap();
        assert_eq!(command.kind, MessageKind::Image);
        assert_eq!(command.body, "https://cdn.example.com/cat.png?size=large#x");
    }

    #[test]
    fn message_send_image_with_http_url_and_port() {
        assert!(image_send("http://localhost:8080/a.png").is_ok());
        assert!(image_send("HTTP://user@[::1]:8080/a.png").is_ok());
    }

    #[test]
    fn message_send_image_with_non_url_body_is_invalid() {
        for body in [
            "cat.png",
            "ftp://example.com/cat.png",
            "javascript:alert(1)",
            "data:image/png;base64,AAAA",
            "https://",
            "https:///cat.png",
            "https://:80/cat.png",
            "https://user@/cat.png",
            "https://exa mple.com/cat.png",
            "https://example.com/cat.png\n",
            "https://example.com/\u{0}",
            "https://[::1/a.png",
            "//example.com/cat.png",
        ] {
            assert_invalid_naming(image_send(body), "body");
        }
    }

    #[test]
    fn message_send_without_chat_id_is_invalid() {
        assert_invalid_naming(send(json!({"body": "hi", "clientId": CLIENT_ID})), "chatId");
        assert_invalid_naming(send(json!({"chatId": 5, "body": "hi", "clientId": CLIENT_ID})), "chatId");
    }

    #[test]
    fn message_send_without_body_is_invalid() {
        assert_invalid_naming(send(json!({"chatId": "c1", "clientId": CLIENT_ID})), "body");
        assert_invalid_naming(send(json!({"chatId": "c1", "body": null, "clientId": CLIENT_ID})), "body");
    }

    #[test]
    fn message_send_with_non_string_body_is_invalid() {
        for bad in [json!(42), json!(["hi"]), json!({"text": "hi"}), json!(false)] {
            assert_invalid_naming(send(json!({"chatId": "c1", "body": bad, "clientId": CLIENT_ID})), "body");
        }
    }

    #[test]
    fn body_of_8000_four_byte_emoji_is_accepted() {
        let body = "😀".repeat(8000);
        assert_eq!(body.len(), 32_000);
        assert_eq!(text_send(&body).unwrap().body, body);
    }

    #[test]
    fn body_of_8001_characters_is_invalid() {
        assert_invalid_naming(text_send(&"😀".repeat(8001)), "body");
        assert_invalid_naming(text_send(&"a".repeat(8001)), "body");
    }

    #[test]
    fn empty_body_is_invalid() {
        assert_invalid_naming(text_send(""), "body");
    }

    #[test]
    fn whitespace_only_body_is_invalid() {
        assert_invalid_naming(text_send(" \n\t\u{3000}"), "body");
        assert_invalid_naming(text_send("\u{a0}\u{2028}\u{85}"), "body");
    }

    #[test]
    fn body_is_stored_exactly_as_sent() {
        assert_eq!(text_send("  hi  ").unwrap().body, "  hi  ");
        assert_eq!(text_send("\u{200b}").unwrap().body, "\u{200b}"); // zero-width space is not White_Space
    }

    #[test]
    fn client_id_that_is_not_a_uuid_is_invalid() {
        for bad in [json!("abc"), json!("0189c6f0000070008000000000000000"), json!("{0189c6f0-0000-7000-8000-00000000abcd}"), json!(12)] {
            assert_invalid_naming(send(json!({"chatId": "c1", "body": "hi", "clientId": bad})), "clientId");
        }
    }

    #[test]
    fn missing_client_id_is_invalid() {
        assert_invalid_naming(send(json!({"chatId": "c1", "body": "hi"})), "clientId");
    }

    #[test]
    fn client_id_is_stored_lowercased() {
        let upper = send(json!({"chatId": "c1", "body": "hi", "clientId": "0189C6F0-0000-7000-8000-00000000ABCD"})).unwrap();
        assert_eq!(upper.client_id, ClientId::new(CLIENT_ID));
    }

    #[test]
    fn kind_video_is_invalid() {
        assert_invalid_naming(send(json!({"chatId": "c1", "body": "hi", "clientId": CLIENT_ID, "kind": "video"})), "kind");
    }

    #[test]
    fn non_string_or_miscased_kind_is_invalid() {
        for bad in [json!(1), json!(["text"]), json!("Text"), json!("")] {
            assert_invalid_naming(send(json!({"chatId": "c1", "body": "hi", "clientId": CLIENT_ID, "kind": bad})), "kind");
        }
    }

    // --- typing ------------------------------------------------------------------------

    #[test]
    fn typing_start_happy_path() {
        assert_eq!(parse_event("typing:start", &json!({"chatId": "c1"})), Ok(ClientCommand::Typing { chat: chat("c1"), typing: true }));
    }

    #[test]
    fn typing_stop_happy_path() {
        assert_eq!(parse_event("typing:stop", &json!({"chatId": "c1"})), Ok(ClientCommand::Typing { chat: chat("c1"), typing: false }));
    }

    #[test]
    fn typing_without_chat_id_is_invalid() {
        assert_invalid_naming(parse_event("typing:start", &json!({})), "chatId");
        assert_invalid_naming(parse_event("typing:stop", &json!({"chatId": false})), "chatId");
    }

    // --- receipt:read ------------------------------------------------------------------

    #[test]
    fn receipt_read_happy_path() {
        assert_eq!(
            parse_event("receipt:read", &json!({"chatId": "c1", "messageId": "m1"})),
            Ok(ClientCommand::Read { chat: chat("c1"), message: MessageId::new("m1") })
        );
    }

    #[test]
    fn receipt_read_without_message_id_is_invalid() {
        assert_invalid_naming(parse_event("receipt:read", &json!({"chatId": "c1"})), "messageId");
        assert_invalid_naming(parse_event("receipt:read", &json!({"chatId": "c1", "messageId": 3})), "messageId");
        assert_invalid_naming(parse_event("receipt:read", &json!({"chatId": "c1", "messageId": ""})), "messageId");
    }

    #[test]
    fn receipt_read_without_chat_id_is_invalid() {
        assert_invalid_naming(parse_event("receipt:read", &json!({"messageId": "m1"})), "chatId");
    }

    // --- presence:ping -----------------------------------------------------------------

    #[test]
    fn presence_ping_accepts_an_object() {
        assert_eq!(parse_event("presence:ping", &json!({})), Ok(ClientCommand::Ping));
        assert_eq!(parse_event("presence:ping", &json!({"anything": 1})), Ok(ClientCommand::Ping));
    }

    #[test]
    fn presence_ping_accepts_no_payload() {
        assert_eq!(parse_event("presence:ping", &Value::Null), Ok(ClientCommand::Ping));
    }

    // --- chat:create ---------------------------------------------------------------------

    #[test]
    fn chat_create_dm_happy_path() {
        assert_eq!(
            parse_event("chat:create", &json!({"kind": "dm", "memberIds": ["bob"]})),
            Ok(ClientCommand::CreateChat(CreateChat::Dm { other: user("bob") }))
        );
    }

    #[test]
    fn chat_create_dm_with_null_title_is_accepted() {
        assert!(parse_event("chat:create", &json!({"kind": "dm", "memberIds": ["bob"], "title": null})).is_ok());
    }

    #[test]
    fn chat_create_dm_with_title_is_invalid() {
        assert_invalid_naming(parse_event("chat:create", &json!({"kind": "dm", "memberIds": ["bob"], "title": "us"})), "title");
    }

    #[test]
    fn chat_create_dm_needs_exactly_one_member() {
        assert_invalid_naming(parse_event("chat:create", &json!({"kind": "dm", "memberIds": []})), "memberIds");
        assert_invalid_naming(parse_event("chat:create", &json!({"kind": "dm", "memberIds": ["bob", "carol"]})), "memberIds");
        assert_invalid_naming(parse_event("chat:create", &json!({"kind": "dm"})), "memberIds");
    }

    #[test]
    fn chat_create_dm_with_repeated_member_is_one_member() {
        assert_eq!(
            parse_event("chat:create", &json!({"kind": "dm", "memberIds": ["bob", "bob"]})),
            Ok(ClientCommand::CreateChat(CreateChat::Dm { other: user("bob") }))
        );
    }

    #[test]
    fn chat_create_group_happy_path() {
        assert_eq!(
            parse_event("chat:create", &json!({"kind": "group", "memberIds": ["bob", "carol"], "title": "Team"})),
            Ok(ClientCommand::CreateChat(CreateChat::Group { members: vec![user("bob"), user("carol")], title: "Team".into() }))
        );
    }

    #[test]
    fn chat_create_group_dedupes_members_keeping_first_occurrence() {
        let command = parse_event("chat:create", &json!({"kind": "group", "memberIds": ["carol", "bob", "carol", "dave", "bob"], "title": "T"}));
        assert_eq!(
            command,
            Ok(ClientCommand::CreateChat(CreateChat::Group { members: vec![user("carol"), user("bob"), user("dave")], title: "T".into() }))
        );
    }

    #[test]
    fn chat_create_group_with_no_members_is_accepted() {
        assert_eq!(
            parse_event("chat:create", &json!({"kind": "group", "memberIds": [], "title": "Solo"})),
            Ok(ClientCommand::CreateChat(CreateChat::Group { members: vec![], title: "Solo".into() }))
        );
    }

    #[test]
    fn chat_create_group_with_1000_members_is_accepted_and_1001_is_not() {
        let ids: Vec<String> = (0..1001).map(|i| format!("u{i}")).collect();
        assert!(parse_event("chat:create", &json!({"kind": "group", "memberIds": &ids[..1000], "title": "Big"})).is_ok());
        assert_invalid_naming(parse_event("chat:create", &json!({"kind": "group", "memberIds": ids, "title": "Big"})), "memberIds");
    }

    #[test]
    fn chat_create_group_without_title_is_invalid() {
        assert_invalid_naming(parse_event("chat:create", &json!({"kind": "group", "memberIds": ["bob"]})), "title");
        assert_invalid_naming(parse_event("chat:create", &json!({"kind": "group", "memberIds": ["bob"], "title": null})), "title");
    }

    #[test]
    fn chat_create_group_with_bad_title_is_invalid() {
        for bad in [json!(""), json!("   "), json!(5), json!("t".repeat(201))] {
            assert_invalid_naming(parse_event("chat:create", &json!({"kind": "group", "memberIds": ["bob"], "title": bad})), "title");
        }
    }

    #[test]
    fn chat_create_group_title_of_200_characters_is_accepted() {
        assert!(parse_event("chat:create", &json!({"kind": "group", "memberIds": ["bob"], "title": "é".repeat(200)})).is_ok());
    }

    #[test]
    fn chat_create_with_bad_member_ids_is_invalid() {
        for bad in [json!("bob"), json!({"0": "bob"}), json!([1]), json!([""]), json!(["  "]), json!([null]), json!(["a".repeat(129)])] {
            assert_invalid_naming(parse_event("chat:create", &json!({"kind": "group", "memberIds": bad, "title": "T"})), "memberIds");
        }
    }

    #[test]
    fn chat_create_without_members_is_invalid() {
        assert_invalid_naming(parse_event("chat:create", &json!({"kind": "group", "title": "T"})), "memberIds");
    }

    #[test]
    fn chat_create_with_missing_or_unknown_kind_is_invalid() {
        assert_invalid_naming(parse_event("chat:create", &json!({"memberIds": ["bob"]})), "kind");
        assert_invalid_naming(parse_event("chat:create", &json!({"kind": "channel", "memberIds": ["bob"]})), "kind");
        assert_invalid_naming(parse_event("chat:create", &json!({"kind": 1, "memberIds": ["bob"]})), "kind");
    }

    // --- messages:sync -------------------------------------------------------------------

    #[test]
    fn messages_sync_happy_path() {
        assert_eq!(
            parse_event("messages:sync", &json!({"chatId": "c1", "afterSeq": 12, "limit": 20})),
            Ok(ClientCommand::Sync { chat: chat("c1"), after: Seq(12), limit: 20 })
        );
    }

    #[test]
    fn messages_sync_limit_defaults_to_50() {
        assert_eq!(
            parse_event("messages:sync", &json!({"chatId": "c1", "afterSeq": 0})),
            Ok(ClientCommand::Sync { chat: chat("c1"), after: Seq(0), limit: 50 })
        );
        assert_eq!(
            parse_event("messages:sync", &json!({"chatId": "c1", "afterSeq": 0, "limit": null})),
            Ok(ClientCommand::Sync { chat: chat("c1"), after: Seq(0), limit: 50 })
        );
    }

    #[test]
    fn messages_sync_bad_after_seq_is_invalid() {
        for bad in [json!(-1), json!(1.5), json!(1.0), json!("3"), json!(null), json!(true), json!([1])] {
            assert_invalid_naming(parse_event("messages:sync", &json!({"chatId": "c1", "afterSeq": bad})), "afterSeq");
        }
    }

    #[test]
    fn messages_sync_missing_after_seq_is_invalid() {
        assert_invalid_naming(parse_event("messages:sync", &json!({"chatId": "c1"})), "afterSeq");
    }

    #[test]
    fn messages_sync_limit_200_is_accepted() {
        assert_eq!(
            parse_event("messages:sync", &json!({"chatId": "c1", "afterSeq": 0, "limit": 200})),
            Ok(ClientCommand::Sync { chat: chat("c1"), after: Seq(0), limit: 200 })
        );
    }

    #[test]
    fn messages_sync_limit_out_of_bounds_is_invalid() {
        for bad in [json!(0), json!(201), json!(-5), json!(10.5), json!("10"), json!(u64::MAX)] {
            assert_invalid_naming(parse_event("messages:sync", &json!({"chatId": "c1", "afterSeq": 0, "limit": bad})), "limit");
        }
    }

    #[test]
    fn messages_sync_without_chat_id_is_invalid() {
        assert_invalid_naming(parse_event("messages:sync", &json!({"afterSeq": 0})), "chatId");
    }

    // --- any event ---------------------------------------------------------------------

    #[test]
    fn unknown_event_is_invalid() {
        assert_invalid_naming(parse_event("message:delete", &json!({"chatId": "c1"})), "unknown event");
        assert_invalid_naming(parse_event("", &json!({})), "unknown event");
        assert_invalid_naming(parse_event("ROOM:JOIN", &json!({"chatId": "c1"})), "unknown event");
    }

    #[test]
    fn unknown_event_message_quotes_only_a_short_prefix() {
        let message = invalid(parse_event(&"x".repeat(10_000), &json!({})));
        assert!(message.len() < 200, "{message}");
    }

    #[test]
    fn non_object_payloads_are_invalid_for_every_event() {
        for event in EVENTS {
            for payload in [json!("c1"), json!(["c1"]), json!(42), json!(true), json!(-1.5)] {
                let message = invalid(parse_event(event, &payload));
                assert!(message.contains("object"), "{event}: {message}");
            }
        }
    }

    #[test]
    fn missing_payload_is_invalid_for_every_event_but_ping() {
        for event in EVENTS.into_iter().filter(|e| *e != "presence:ping") {
            invalid(parse_event(event, &Value::Null));
        }
    }

    // --- HTTP ----------------------------------------------------------------------------

    #[test]
    fn http_list_chats() {
        assert_eq!(parse_http(&HttpRequest::ListChats), Ok(HttpCommand::ListChats));
    }

    #[test]
    fn http_create_chat_follows_chat_create_rules() {
        let body = json!({"kind": "group", "memberIds": ["bob", "bob"], "title": "T"});
        assert_eq!(
            parse_http(&HttpRequest::CreateChat { body }),
            Ok(HttpCommand::CreateChat(CreateChat::Group { members: vec![user("bob")], title: "T".into() }))
        );
        assert_invalid_naming(parse_http(&HttpRequest::CreateChat { body: json!({"kind": "group", "memberIds": ["bob"]}) }), "title");
    }

    #[test]
    fn http_non_object_body_is_invalid() {
        for body in [Value::Null, json!("x"), json!([]), json!(1)] {
            assert_invalid_naming(parse_http(&HttpRequest::CreateChat { body: body.clone() }), "body");
            assert_invalid_naming(parse_http(&HttpRequest::RenameChat { chat_id: "c1".into(), body: body.clone() }), "body");
            assert_invalid_naming(parse_http(&HttpRequest::AddMember { chat_id: "c1".into(), body }), "body");
        }
    }

    #[test]
    fn http_history_defaults_to_newest_page() {
        assert_eq!(history(None, None, None), Ok(HttpCommand::History { chat: chat("c1"), query: HistoryQuery::Before(None), limit: 50 }));
    }

    #[test]
    fn http_history_after_seq() {
        assert_eq!(
            history(Some("7"), None, Some("200")),
            Ok(HttpCommand::History { chat: chat("c1"), query: HistoryQuery::After(Seq(7)), limit: 200 })
        );
    }

    #[test]
    fn http_history_before_seq() {
        assert_eq!(
            history(None, Some("0"), Some("1")),
            Ok(HttpCommand::History { chat: chat("c1"), query: HistoryQuery::Before(Some(Seq(0))), limit: 1 })
        );
    }

    #[test]
    fn http_history_with_both_after_and_before_is_invalid() {
        assert_eq!(invalid(history(Some("1"), Some("5"), None)), "afterSeq and beforeSeq cannot be combined");
    }

    #[test]
    fn http_history_bad_numeric_strings_are_invalid() {
        for bad in ["", "-1", "1.5", "abc", "+1", " 1", "1 ", "0x10", "1e3", "99999999999999999999999"] {
            assert_invalid_naming(history(Some(bad), None, None), "afterSeq");
            assert_invalid_naming(history(None, Some(bad), None), "beforeSeq");
            assert_invalid_naming(history(None, None, Some(bad)), "limit");
        }
    }

    #[test]
    fn http_history_limit_out_of_bounds_is_invalid() {
        assert_invalid_naming(history(None, None, Some("0")), "limit");
        assert_invalid_naming(history(None, None, Some("201")), "limit");
    }

    #[test]
    fn http_history_bad_chat_id_is_invalid() {
        let request = HttpRequest::History { chat_id: " ".into(), after_seq: None, before_seq: None, limit: None };
        assert_invalid_naming(parse_http(&request), "chatId");
    }

    #[test]
    fn http_rename_chat_happy_path() {
        assert_eq!(
            parse_http(&HttpRequest::RenameChat { chat_id: "c1".into(), body: json!({"title": " New name "}) }),
            Ok(HttpCommand::RenameChat { chat: chat("c1"), title: " New name ".into() })
        );
    }

    #[test]
    fn http_rename_chat_bad_title_is_invalid() {
        for body in [json!({}), json!({"title": null}), json!({"title": ""}), json!({"title": 3}), json!({"title": "x".repeat(201)})] {
            assert_invalid_naming(parse_http(&HttpRequest::RenameChat { chat_id: "c1".into(), body }), "title");
        }
    }

    #[test]
    fn http_add_member_happy_path() {
        assert_eq!(
            parse_http(&HttpRequest::AddMember { chat_id: "c1".into(), body: json!({"userId": "dave"}) }),
            Ok(HttpCommand::AddMember { chat: chat("c1"), user: user("dave") })
        );
    }

    #[test]
    fn http_add_member_bad_user_id_is_invalid() {
        for body in [json!({}), json!({"userId": 4}), json!({"userId": ""}), json!({"userId": "u".repeat(129)})] {
            assert_invalid_naming(parse_http(&HttpRequest::AddMember { chat_id: "c1".into(), body }), "userId");
        }
    }

    #[test]
    fn http_remove_member_happy_path() {
        assert_eq!(
            parse_http(&HttpRequest::RemoveMember { chat_id: "c1".into(), user_id: "dave".into() }),
            Ok(HttpCommand::RemoveMember { chat: chat("c1"), user: user("dave") })
        );
    }

    #[test]
    fn http_remove_member_bad_user_id_is_invalid() {
        assert_invalid_naming(parse_http(&HttpRequest::RemoveMember { chat_id: "c1".into(), user_id: "".into() }), "userId");
        assert_invalid_naming(parse_http(&HttpRequest::RemoveMember { chat_id: "c1".into(), user_id: "u".repeat(129) }), "userId");
    }

    #[test]
    fn http_bad_chat_id_in_path_is_invalid() {
        assert_invalid_naming(parse_http(&HttpRequest::RenameChat { chat_id: "".into(), body: json!({"title": "T"}) }), "chatId");
        assert_invalid_naming(parse_http(&HttpRequest::AddMember { chat_id: "".into(), body: json!({"userId": "u"}) }), "chatId");
        assert_invalid_naming(parse_http(&HttpRequest::RemoveMember { chat_id: "".into(), user_id: "u".into() }), "chatId");
    }
}
