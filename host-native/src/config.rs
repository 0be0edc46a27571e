//! Settings, each from its environment variable (PROTOCOL.md §10) or a flag.

use chat_core::config::Limits;
use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Where data lives and which database holds it.
#[derive(Args, Clone, Debug)]
pub struct StorageArgs {
    /// Database URL: `postgres://user:password@host/db` or `sqlite://path`
    /// [default: unset, an embedded SQLite file `chat.db` in the data directory]
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, value_name = "URL")]
    pub database_url: Option<String>,
    /// Directory for the embedded database and the generated JWT secret.
    #[arg(long, env = "CHAT_DATA_DIR", default_value = "./data", value_name = "DIR")]
    pub data_dir: PathBuf,
}

impl StorageArgs {
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", self.data_dir.join("chat.db").display()),
        }
    }

    /// The database URL with any password replaced by `***`, fit for logs.
    pub fn redacted_database_url(&self) -> String {
        redact_url(&self.database_url())
    }
}

/// `scheme://user:secret@host/db?password=secret` → `scheme://user:***@host/db?password=***`.
/// When in doubt it hides more, never less.
pub fn redact_url(url: &str) -> String {
    let (before_query, query) = match url.find(['?', '#']) {
        Some(at) => url.split_at(at),
        None => (url, ""),
    };
    let mut out = String::with_capacity(url.len());
    match (before_query.find("://"), before_query.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end + 3 => {
            let userinfo_start = scheme_end + 3;
            let userinfo = &before_query[userinfo_start..at];
            out.push_str(&before_query[..userinfo_start]);
            match userinfo.find(':') {
                Some(colon) => {
                    out.push_str(&userinfo[..colon]);
                    out.push_str(":***");
                }
                None => out.push_str(userinfo),
            }
            out.push_str(&before_query[at..]);
        }
        _ => out.push_str(before_query),
    }
    if let Some(rest) = query.strip_prefix('?') {
        out.push('?');
        let pairs: Vec<String> = rest
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, _)) if key.to_ascii_lowercase().contains("password") => format!("{key}=***"),
                _ => pair.to_string(),
            })
            .collect();
        out.push_str(&pairs.join("&"));
    } else {
        out.push_str(query);
    }
    out
}

/// Everything `serve` needs.
#[derive(Args, Clone, Debug)]
pub struct ServeArgs {
    #[command(flatten)]
    pub storage: StorageArgs,
    /// Address to listen on (Socket.IO and HTTP on one port).
    #[arg(long, env = "BIND", default_value = "127.0.0.1:3000", value_name = "ADDR")]
    pub bind: SocketAddr,
    /// HS256 secret of the tokens
    /// [default: unset, one generated once and kept in `<data dir>/jwt-secret`]
    #[arg(long, env = "JWT_SECRET", hide_env_values = true, value_name = "SECRET")]
    pub jwt_secret: Option<String>,
    /// Socket.IO namespace of the chat.
    #[arg(long, env = "CHAT_NAMESPACE", default_value = "/", value_name = "NAMESPACE")]
    pub namespace: String,
    /// Engine.IO heartbeat: a ping every this many milliseconds...
    #[arg(long, env = "PING_INTERVAL_MS", default_value_t = 25_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub ping_interval_ms: u64,
    /// ...and a connection whose pong takes longer than this is closed.
    #[arg(long, env = "PING_TIMEOUT_MS", default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub ping_timeout_ms: u64,
    /// A session that has no socket for this many milliseconds (never connected to the
    /// namespace, refused, or left it) is closed at its next heartbeat.
    #[arg(long, env = "CONNECT_TIMEOUT_MS", default_value_t = 45_000)]
    pub connect_timeout_ms: u64,
    /// Demo mode: `--demo` (or `true`) also serves POST /api/demo/token, which signs a
    /// token for ANY user name: NO REAL AUTHENTICATION, local trials only. `false` turns
    /// off the demo web page at `/` as well
    /// [default: unset, the page at `/` asks for a token from `chat-server token`]
    #[arg(long = "demo", env = "CHAT_DEMO", num_args = 0..=1, require_equals = true, default_missing_value = "true",
          value_parser = clap::builder::BoolishValueParser::new(), value_name = "BOOL")]
    pub demo: Option<bool>,
    #[command(flatten)]
    pub limits: LimitArgs,
    #[command(flatten)]
    pub cluster: crate::cluster::ClusterArgs,
}

/// What the demo web client offers (`CHAT_DEMO`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DemoMode {
    /// `CHAT_DEMO=false`: no page, no token endpoint.
    Off,
    /// Unset: the page at `/`; it signs in with a token made by `chat-server token`.
    Page,
    /// `--demo` or `CHAT_DEMO=true`: the page and a token endpoint with no authentication.
    Open,
}

impl std::fmt::Display for DemoMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DemoMode::Off => "off",
            DemoMode::Page => "page only",
            DemoMode::Open => "ON (no real authentication)",
        })
    }
}

impl ServeArgs {
    pub fn demo_mode(&self) -> DemoMode {
        match self.demo {
            None => DemoMode::Page,
            Some(false) => DemoMode::Off,
            Some(true) => DemoMode::Open,
        }
    }
}

#[derive(Args, Clone, Debug)]
pub struct LimitArgs {
    /// Sockets one user may hold at once.
    #[arg(long, env = "MAX_SOCKETS_PER_USER", default_value_t = 5)]
    pub max_sockets_per_user: usize,
    /// New messages per user per sliding window (RATE_LIMIT_WINDOW_MS), across devices.
    #[arg(long, env = "RATE_LIMIT_MESSAGES", default_value_t = 10)]
    pub rate_limit_messages: usize,
    /// The rate limit's sliding window, in milliseconds.
    #[arg(long, env = "RATE_LIMIT_WINDOW_MS", default_value_t = 10_000)]
    pub rate_limit_window_ms: u64,
    /// Silence after which typing stops by itself, in milliseconds.
    #[arg(long, env = "TYPING_TIMEOUT_MS", default_value_t = 5_000)]
    pub typing_timeout_ms: u64,
    /// Shortest interval between two presence updates of one user, in milliseconds.
    #[arg(long, env = "PRESENCE_THROTTLE_MS", default_value_t = 2_000)]
    pub presence_throttle_ms: u64,
    /// Largest accepted packet (over WebSocket a larger one closes the connection) or HTTP body (413).
    #[arg(long, env = "MAX_PAYLOAD_BYTES", default_value_t = 64 * 1024)]
    pub max_payload_bytes: usize,
    /// Largest group, in members.
    #[arg(long, env = "MAX_GROUP_MEMBERS", default_value_t = 1_000)]
    pub max_group_members: usize,
    /// Client events of one user (all devices) served at once, before EVENT_RATE_PER_SEC holds.
    #[arg(long, env = "EVENT_BURST", default_value_t = Limits::default().event_burst)]
    pub event_burst: u64,
    /// Client events per second of one user after the burst; a flood past it is refused, then disconnected.
    #[arg(long, env = "EVENT_RATE_PER_SEC", default_value_t = Limits::default().event_rate_per_sec)]
    pub event_rate_per_sec: u64,
}

impl LimitArgs {
    pub fn to_limits(&self) -> Limits {
        Limits {
            max_sockets_per_user: self.max_sockets_per_user,
            rate_limit_messages: self.rate_limit_messages,
            rate_limit_window_ms: self.rate_limit_window_ms,
            typing_timeout_ms: self.typing_timeout_ms,
            presence_throttle_ms: self.presence_throttle_ms,
            max_payload_bytes: self.max_payload_bytes,
            max_group_members: self.max_group_members,
            event_burst: self.event_burst,
            event_rate_per_sec: self.event_rate_per_sec,
            ..Limits::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_the_log() {
        assert_eq!(redact_url("postgres://chat:hunter2@db:5432/chat"), "postgres://chat:***@db:5432/chat");
        assert_eq!(redact_url("postgres://chat:p@ss/w:rd@db/chat?sslmode=require"), "postgres://chat:***@db/chat?sslmode=require");
        assert_eq!(redact_url("postgres://db/chat?user=chat&password=hunter2"), "postgres://db/chat?user=chat&password=***");
        assert_eq!(redact_url("postgres://db/chat?sslpassword=x&sslmode=verify-full"), "postgres://db/chat?sslpassword=***&sslmode=verify-full");
        assert_eq!(redact_url("postgres://chat@db/chat"), "postgres://chat@db/chat");
        assert_eq!(redact_url("sqlite://./data/chat.db"), "sqlite://./data/chat.db");
        assert_eq!(redact_url("sqlite:chat.db?mode=rwc"), "sqlite:chat.db?mode=rwc");
    }
}
