//! Settings of the edge host, read from the Worker's environment (wrangler `[vars]` and
//! secrets) with the same names and defaults as the native host (PROTOCOL.md §10).

use chat_core::config::Limits;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EdgeConfig {
    pub limits: Limits,
    pub secret: Vec<u8>,
    pub namespace: String,
    /// Engine.IO heartbeat, sent by the connection object from an alarm.
    pub ping_interval_ms: u64,
    pub ping_timeout_ms: u64,
    /// Directory shards (admin sockets, metrics); fixed for a deployment.
    pub directory_shards: u32,
}

impl EdgeConfig {
    /// `get` answers the value of a variable, if set.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        fn num<T: std::str::FromStr>(get: &impl Fn(&str) -> Option<String>, name: &str, default: T) -> Result<T, String> {
            match get(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty()) {
                None => Ok(default),
                Some(value) => value.parse().map_err(|_| format!("{name} must be a number, got {value:?}")),
            }
        }
        let d = Limits::default();
        let limits = Limits {
            max_sockets_per_user: num(&get, "MAX_SOCKETS_PER_USER", d.max_sockets_per_user)?,
            rate_limit_messages: num(&get, "RATE_LIMIT_MESSAGES", d.rate_limit_messages)?,
            rate_limit_window_ms: num(&get, "RATE_LIMIT_WINDOW_MS", d.rate_limit_window_ms)?,
            typing_timeout_ms: num(&get, "TYPING_TIMEOUT_MS", d.typing_timeout_ms)?,
            presence_throttle_ms: num(&get, "PRESENCE_THROTTLE_MS", d.presence_throttle_ms)?,
            max_payload_bytes: num(&get, "MAX_PAYLOAD_BYTES", d.max_payload_bytes)?,
            max_group_members: num(&get, "MAX_GROUP_MEMBERS", d.max_group_members)?,
            event_burst: num(&get, "EVENT_BURST", d.event_burst)?,
            event_rate_per_sec: num(&get, "EVENT_RATE_PER_SEC", d.event_rate_per_sec)?,
            ..d
        };
        let secret = get("JWT_SECRET").filter(|s| !s.is_empty()).ok_or("JWT_SECRET is not set (wrangler secret put JWT_SECRET)")?;
        let namespace = get("CHAT_NAMESPACE").map(|n| n.trim().to_string()).filter(|n| !n.is_empty()).unwrap_or_else(|| "/".into());
        let namespace = if namespace.starts_with('/') { namespace } else { format!("/{namespace}") };
        Ok(Self {
            limits,
            secret: secret.into_bytes(),
            namespace,
            ping_interval_ms: num(&get, "PING_INTERVAL_MS", 25_000)?,
            ping_timeout_ms: num(&get, "PING_TIMEOUT_MS", 20_000)?,
            directory_shards: num(&get, "DIRECTORY_SHARDS", crate::directory::DEFAULT_SHARDS)?.max(1),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn reads_limits_with_native_defaults() {
        let vars: HashMap<&str, &str> = [("JWT_SECRET", "s"), ("RATE_LIMIT_WINDOW_MS", "1500"), ("CHAT_NAMESPACE", "api")].into();
        let config = EdgeConfig::from_lookup(|name| vars.get(name).map(|v| v.to_string())).unwrap();
        assert_eq!(config.limits.rate_limit_window_ms, 1500);
        assert_eq!(config.limits.rate_limit_messages, 10);
        assert_eq!(config.namespace, "/api");
        assert_eq!(config.secret, b"s");
    }

    #[test]
    fn refuses_a_missing_secret_and_bad_numbers() {
        assert!(EdgeConfig::from_lookup(|_| None).is_err());
        let bad = |name: &str| match name {
            "JWT_SECRET" => Some("s".to_string()),
            "MAX_SOCKETS_PER_USER" => Some("many".to_string()),
            _ => None,
        };
        assert!(EdgeConfig::from_lookup(bad).is_err());
    }
}
