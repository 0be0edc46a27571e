//! The contract's error codes, one enum variant each (PROTOCOL.md §2).

use serde::{Deserialize, Serialize};

/// A failure the contract names. Each variant is exactly one wire code.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum ChatError {
    #[error("{0}")]
    Validation(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    RateLimited(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    Internal(String),
    #[error("{0}")]
    TooManyConnections(String),
}

impl ChatError {
    /// The code as it appears on the wire.
    pub fn code(&self) -> &'static str {
        match self {
            ChatError::Validation(_) => "VALIDATION_ERROR",
            ChatError::Unauthorized(_) => "UNAUTHORIZED",
            ChatError::Forbidden(_) => "FORBIDDEN",
            ChatError::NotFound(_) => "NOT_FOUND",
            ChatError::RateLimited(_) => "RATE_LIMITED",
            ChatError::PayloadTooLarge(_) => "PAYLOAD_TOO_LARGE",
            ChatError::Internal(_) => "INTERNAL",
            ChatError::TooManyConnections(_) => "TOO_MANY_CONNECTIONS",
        }
    }

    /// The HTTP status that goes with the code (PROTOCOL.md §9).
    pub fn http_status(&self) -> u16 {
        match self {
            ChatError::Validation(_) => 400,
            ChatError::Unauthorized(_) => 401,
            ChatError::Forbidden(_) => 403,
            ChatError::NotFound(_) => 404,
            ChatError::PayloadTooLarge(_) => 413,
            ChatError::RateLimited(_) | ChatError::TooManyConnections(_) => 429,
            ChatError::Internal(_) => 500,
        }
    }

    pub fn message(&self) -> String {
        self.to_string()
    }

    pub fn validation(message: impl Into<String>) -> Self {
        ChatError::Validation(message.into())
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        ChatError::Forbidden(message.into())
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        ChatError::NotFound(message.into())
    }
    pub fn internal(message: impl Into<String>) -> Self {
        ChatError::Internal(message.into())
    }
    pub fn unauthorized(message: impl Into<String>) -> Self {
        ChatError::Unauthorized(message.into())
    }

    pub fn not_a_member() -> Self {
        ChatError::forbidden("not a member of this chat")
    }
    pub fn chat_not_found() -> Self {
        ChatError::not_found("chat not found")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_maps_to_its_wire_code_and_status() {
        let cases = [
            (ChatError::validation("x"), "VALIDATION_ERROR", 400),
            (ChatError::unauthorized("x"), "UNAUTHORIZED", 401),
            (ChatError::forbidden("x"), "FORBIDDEN", 403),
            (ChatError::not_found("x"), "NOT_FOUND", 404),
            (ChatError::RateLimited("x".into()), "RATE_LIMITED", 429),
            (ChatError::PayloadTooLarge("x".into()), "PAYLOAD_TOO_LARGE", 413),
            (ChatError::internal("x"), "INTERNAL", 500),
            (ChatError::TooManyConnections("x".into()), "TOO_MANY_CONNECTIONS", 429),
        ];
        for (error, code, status) in cases {
            assert_eq!(error.code(), code);
            assert_eq!(error.http_status(), status);
        }
    }
}
