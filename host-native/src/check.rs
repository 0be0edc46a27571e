//! `chat-server check`: validates the configuration and that storage answers, one line per
//! finding (`ok:`, `warning:`, `problem:`); any problem makes the exit status non-zero.
//! It reads what `serve` would read and opens the database as `serve` would (creating the
//! SQLite file and its directory when missing), but applies no migration and listens on
//! nothing.

use crate::config::{DemoMode, ServeArgs};
use crate::server::normalise_namespace;
use crate::store::Store;
use std::fmt::Display;
use std::path::Path;
use std::time::Duration;

const STORAGE_TIMEOUT: Duration = Duration::from_secs(10);
/// Shortest JWT secret not warned about, in bytes (HS256 uses a 256-bit key).
const STRONG_SECRET_BYTES: usize = 32;

#[derive(Default)]
pub struct Report {
    lines: Vec<String>,
    problems: usize,
}

impl Report {
    fn ok(&mut self, line: impl Display) {
        self.lines.push(format!("ok: {line}"));
    }
    fn warning(&mut self, line: impl Display) {
        self.lines.push(format!("warning: {line}"));
    }
    fn problem(&mut self, line: impl Display) {
        self.problems += 1;
        self.lines.push(format!("problem: {line}"));
    }
    pub fn lines(&self) -> &[String] {
        &self.lines
    }
    pub fn problems(&self) -> usize {
        self.problems
    }
}

/// Prints the findings; `Err` (one line) when there is any problem.
pub async fn run(args: ServeArgs) -> Result<(), String> {
    let report = check(&args).await;
    for line in report.lines() {
        println!("{line}");
    }
    match report.problems() {
        0 => Ok(()),
        1 => Err("1 problem in the configuration".to_string()),
        n => Err(format!("{n} problems in the configuration")),
    }
}

pub async fn check(args: &ServeArgs) -> Report {
    let mut report = Report::default();
    check_bind(args, &mut report).await;
    check_namespace(&args.namespace, &mut report);
    check_limits(args, &mut report);
    check_secret(args.jwt_secret.as_deref(), &args.storage.data_dir, &mut report);
    check_storage(args, &mut report).await;
    check_demo(args, &mut report);
    report
}

async fn check_bind(args: &ServeArgs, report: &mut Report) {
    match tokio::net::TcpListener::bind(args.bind).await {
        Ok(_) => report.ok(format_args!("BIND {} can be listened on", args.bind)),
        Err(error) if error.kind() == std::io::ErrorKind::AddrInUse => {
            report.warning(format_args!("BIND {} is in use now (is chat-server already running?)", args.bind))
        }
        Err(error) => report.problem(format_args!("BIND {} cannot be listened on: {error}", args.bind)),
    }
}

fn check_namespace(namespace: &str, report: &mut Report) {
    let normalised = normalise_namespace(namespace);
    if normalised.chars().any(|c| c.is_whitespace() || c.is_control() || matches!(c, '?' | '#')) {
        report.problem(format_args!("CHAT_NAMESPACE {namespace:?} must be a path like / or /api/v1/sockets (no spaces, '?' or '#')"));
    } else {
        report.ok(format_args!("CHAT_NAMESPACE is {normalised}"));
    }
}

fn check_limits(args: &ServeArgs, report: &mut Report) {
    let limits = &args.limits;
    let at_least: [(&str, u64, u64); 6] = [
        ("MAX_SOCKETS_PER_USER", limits.max_sockets_per_user as u64, 1),
        ("RATE_LIMIT_MESSAGES", limits.rate_limit_messages as u64, 1),
        ("RATE_LIMIT_WINDOW_MS", limits.rate_limit_window_ms, 1),
        ("TYPING_TIMEOUT_MS", limits.typing_timeout_ms, 1),
        ("MAX_PAYLOAD_BYTES", limits.max_payload_bytes as u64, 1024),
        ("MAX_GROUP_MEMBERS", limits.max_group_members as u64, 2),
    ];
    let mut fine = true;
    for (name, value, minimum) in at_least {
        if value < minimum {
            fine = false;
            report.problem(format_args!("{name} is {value}; it must be at least {minimum}"));
        }
    }
    if fine {
        report.ok("limits are in range");
    }
}

fn check_secret(configured: Option<&str>, data_dir: &Path, report: &mut Report) {
    if let Some(secret) = configured.filter(|s| !s.is_empty()) {
        if secret.len() < STRONG_SECRET_BYTES {
            report.warning(format_args!(
                "JWT_SECRET is {} bytes; use at least {STRONG_SECRET_BYTES} random bytes (e.g. `openssl rand -hex 32`)",
                secret.len()
            ));
        } else {
            report.ok("JWT_SECRET is set");
        }
        return;
    }
    let path = data_dir.join("jwt-secret");
    match std::fs::read_to_string(&path) {
        Ok(text) if text.trim().is_empty() => report.problem(format_args!("{} is empty: delete it or set JWT_SECRET", path.display())),
        Ok(_) => {
            report.ok(format_args!("JWT secret is read from {}", path.display()));
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                if let Ok(meta) = std::fs::metadata(&path) {
                    if meta.permissions().mode() & 0o077 != 0 {
                        report.warning(format_args!("{} is readable by other users: chmod 600 it", path.display()));
                    }
                }
            }
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            report.ok(format_args!("JWT_SECRET is not set: serve generates one once and keeps it in {}", path.display()))
        }
        Err(error) => report.problem(format_args!("cannot read {}: {error}", path.display())),
    }
}

async fn check_storage(args: &ServeArgs, report: &mut Report) {
    let shown = args.storage.redacted_database_url();
    if args.storage.database_url.is_none() {
        if let Err(error) = std::fs::create_dir_all(&args.storage.data_dir) {
            report.problem(format_args!("CHAT_DATA_DIR {} cannot be created: {error}", args.storage.data_dir.display()));
            return;
        }
    }
    let store = match tokio::time::timeout(STORAGE_TIMEOUT, Store::connect(&args.storage.database_url())).await {
        Ok(Ok(store)) => store,
        Ok(Err(error)) => {
            let error = crate::config::redact_url(&one_line(&error.to_string()));
            report.problem(format_args!("storage {shown} cannot be opened: {error}"));
            return;
        }
        Err(_) => {
            report.problem(format_args!("storage {shown} did not answer within {} s", STORAGE_TIMEOUT.as_secs()));
            return;
        }
    };
    if store.healthy().await {
        report.ok(format_args!("storage {shown} ({}) answers", store.backend()));
    } else {
        report.problem(format_args!("storage {shown} ({}) is open but does not answer a query", store.backend()));
    }
    store.close().await;
}

fn check_demo(args: &ServeArgs, report: &mut Report) {
    match args.demo_mode() {
        DemoMode::Off => report.ok("demo web client is off"),
        DemoMode::Page => report.ok("demo web client at / (tokens from `chat-server token`)"),
        DemoMode::Open if !args.bind.ip().is_loopback() => report.problem(format_args!(
            "CHAT_DEMO is on and BIND {} is not a loopback address: anyone who reaches it can act as any user",
            args.bind
        )),
        DemoMode::Open => report.warning("CHAT_DEMO is on: POST /api/demo/token signs tokens for any name, with no real authentication"),
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
