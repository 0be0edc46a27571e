//! The limits of PROTOCOL.md, each settable by the host from its environment variable.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// `MAX_SOCKETS_PER_USER`
    pub max_sockets_per_user: usize,
    /// `RATE_LIMIT_MESSAGES`
    pub rate_limit_messages: usize,
    /// `RATE_LIMIT_WINDOW_MS`
    pub rate_limit_window_ms: u64,
    /// `TYPING_TIMEOUT_MS`
    pub typing_timeout_ms: u64,
    /// `PRESENCE_THROTTLE_MS`
    pub presence_throttle_ms: u64,
    /// `MAX_PAYLOAD_BYTES` (enforced by the host's transport; the core checks HTTP bodies it is told the size of)
    pub max_payload_bytes: usize,
    /// `MAX_GROUP_MEMBERS`: a group's largest member list.
    pub max_group_members: usize,
    /// `JWT_LEEWAY_SECS`: clock leeway for `exp` and `nbf`, capped at 30 by the contract.
    pub jwt_leeway_secs: u64,
    /// How many messages one storage commit may carry (group commit).
    pub max_commit_batch: usize,
    /// `EVENT_BURST`: client events of one user (all devices) served at once; past it,
    /// `EVENT_RATE_PER_SEC`. Beyond the contract, which limits only new messages: a flood
    /// of any event is refused, then disconnected (see [`crate::intake`]).
    pub event_burst: u64,
    /// `EVENT_RATE_PER_SEC`
    pub event_rate_per_sec: u64,
    /// How long a user partition waits for a chat's answer to a send before it lets
    /// retries of that clientId through. Cluster hosts set it: there the answer is lost
    /// when the chat's process dies or the partition moves. Alone, an answer always comes
    /// (storage answers every operation), so `None` waits for it.
    pub send_answer_timeout_ms: Option<u64>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_sockets_per_user: 5,
            rate_limit_messages: 10,
            rate_limit_window_ms: 10_000,
            typing_timeout_ms: 5_000,
            presence_throttle_ms: 2_000,
            max_payload_bytes: 64 * 1024,
            max_group_members: 1_000,
            jwt_leeway_secs: 30,
            max_commit_batch: 256,
            // A reconnect's syncs and joins for a few hundred chats; a person never
            // sustains 100 events a second.
            event_burst: 300,
            event_rate_per_sec: 100,
            send_answer_timeout_ms: None,
        }
    }
}

/// Contract bounds that are not configurable.
pub mod bounds {
    /// Longest message body, in Unicode scalar values.
    pub const MAX_BODY_CHARS: usize = 8000;
    /// Longest user id.
    pub const MAX_USER_ID_CHARS: usize = 128;
    /// Longest group title.
    pub const MAX_TITLE_CHARS: usize = 200;
    /// Longest id string (chat, message) accepted before lookup.
    pub const MAX_ID_CHARS: usize = 128;
    /// `limit` of history reads.
    pub const MAX_PAGE: u32 = 200;
    pub const DEFAULT_PAGE: u32 = 50;
    /// The contract's cap on JWT leeway.
    pub const MAX_LEEWAY_SECS: u64 = 30;
}
