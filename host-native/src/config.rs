//! Settings, each from its environment variable (PROTOCOL.md §10) or a flag.

use chat_core::config::Limits;
use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Where data lives and which database holds it.
#[derive(Args, Clone, Debug)]
pub struct StorageArgs {
    /// Database URL: `postgres://…` or `sqlite://…`; unset means an embedded SQLite file
    /// in the data directory.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,
    /// Directory for the embedded database and the generated JWT secret.
    #[arg(long, env = "CHAT_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
}

impl StorageArgs {
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", self.data_dir.join("chat.db").display()),
        }
    }
}

/// Everything `serve` needs.
#[derive(Args, Clone, Debug)]
pub struct ServeArgs {
    #[command(flatten)]
    pub storage: StorageArgs,
    /// Address to listen on.
    #[arg(long, env = "BIND", default_value = "127.0.0.1:3000")]
    pub bind: SocketAddr,
    /// HS256 secret for tokens; unset means one generated once and kept in the data directory.
    #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// Socket.IO namespace of the chat.
    #[arg(long, env = "CHAT_NAMESPACE", default_value = "/")]
    pub namespace: String,
    #[command(flatten)]
    pub limits: LimitArgs,
}

#[derive(Args, Clone, Debug)]
pub struct LimitArgs {
    /// Sockets one user may hold at once.
    #[arg(long, env = "MAX_SOCKETS_PER_USER", default_value_t = 5)]
    pub max_sockets_per_user: usize,
    /// New messages per user per window.
    #[arg(long, env = "RATE_LIMIT_MESSAGES", default_value_t = 10)]
    pub rate_limit_messages: usize,
    /// The rate limit's sliding window.
    #[arg(long, env = "RATE_LIMIT_WINDOW_MS", default_value_t = 10_000)]
    pub rate_limit_window_ms: u64,
    /// Silence after which typing stops by itself.
    #[arg(long, env = "TYPING_TIMEOUT_MS", default_value_t = 5_000)]
    pub typing_timeout_ms: u64,
    /// Shortest interval between two presence updates of one user.
    #[arg(long, env = "PRESENCE_THROTTLE_MS", default_value_t = 2_000)]
    pub presence_throttle_ms: u64,
    /// Largest accepted packet or HTTP body.
    #[arg(long, env = "MAX_PAYLOAD_BYTES", default_value_t = 64 * 1024)]
    pub max_payload_bytes: usize,
    /// Largest group.
    #[arg(long, env = "MAX_GROUP_MEMBERS", default_value_t = 1_000)]
    pub max_group_members: usize,
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
            ..Limits::default()
        }
    }
}
