//! Handshake authentication: HS256 JWTs found in the contract's three places (§1).
//! (Being written; signatures are final.)

use crate::command::Principal;
use crate::error::ChatError;
use crate::ids::{Millis, UserId};
use serde_json::Value;

/// What the host saw of a Socket.IO handshake, untouched.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Handshake {
    /// The CONNECT packet's `auth` object, if any.
    pub auth: Option<Value>,
    /// The handshake request's `Authorization` header, if any.
    pub authorization_header: Option<String>,
    /// The handshake request's `token` query parameter, if any.
    pub query_token: Option<String>,
}

impl Handshake {
    /// `auth.autoJoin === true`.
    pub fn auto_join(&self) -> bool {
        self.auth.as_ref().and_then(|a| a.get("autoJoin")).and_then(Value::as_bool) == Some(true)
    }
}

/// Checks a socket handshake's token, taken from the first place that has one.
pub fn authenticate_handshake(handshake: &Handshake, secret: &[u8], now: Millis, leeway_secs: u64) -> Result<Principal, ChatError> {
    let _ = (handshake, secret, now, leeway_secs);
    Err(ChatError::unauthorized("not yet implemented"))
}

/// Checks an HTTP request's `Authorization: Bearer` header.
pub fn authenticate_bearer(header: Option<&str>, secret: &[u8], now: Millis, leeway_secs: u64) -> Result<Principal, ChatError> {
    let _ = (header, secret, now, leeway_secs);
    Err(ChatError::unauthorized("not yet implemented"))
}

/// Signs an HS256 token for `user`, valid until `expires_at` (for `chat-server token` and tests).
pub fn sign_token(secret: &[u8], user: &UserId, admin: bool, expires_at: Millis) -> String {
    let _ = (secret, user, admin, expires_at);
    String::new()
}
