//! The core's edge: untrusted JSON in, typed commands or `VALIDATION_ERROR` out.
//! (Being written; signatures are final.)

use crate::command::{ClientCommand, HttpCommand, HttpRequest};
use crate::error::ChatError;
use serde_json::Value;

/// Validates one socket event's payload into a command. Unknown events are errors too.
pub fn parse_event(event: &str, payload: &Value) -> Result<ClientCommand, ChatError> {
    let _ = (event, payload);
    Err(ChatError::validation("not yet implemented"))
}

/// Validates one HTTP call's parameters and body into a command.
pub fn parse_http(request: &HttpRequest) -> Result<HttpCommand, ChatError> {
    let _ = request;
    Err(ChatError::validation("not yet implemented"))
}
