//! The operator's side of `chat-server`: help texts, `check`, and the start-up log line.

mod running_server;

use running_server::SETTINGS;
use std::process::{Command, Output};


/// `chat-server args…` with none of the settings inherited, then `env` set.
fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_chat-server"));
    command.args(args);
    for name in SETTINGS {
        command.env_remove(name);
    }
    command.env("RUST_LOG", "info");
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("chat-server runs")
}

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

#[test]
fn help_lists_every_setting_with_its_environment_variable() {
    for args in [&["--help"][..], &["serve", "--help"], &["check", "--help"]] {
        let output = run(args, &[]);
        assert!(output.status.success(), "{args:?}");
        let help = text(&output);
        for name in SETTINGS {
            assert!(help.contains(&format!("[env: {name}")), "{args:?} does not show {name}:\n{help}");
        }
        assert!(help.contains("RUST_LOG"), "{args:?} does not mention RUST_LOG");
        assert!(help.contains("[default: 127.0.0.1:3000]") && help.contains("[default: 5]"), "{args:?} shows no defaults:\n{help}");
    }
}

#[test]
fn check_passes_on_a_fresh_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(&["check"], &[("CHAT_DATA_DIR", dir.path().to_str().unwrap()), ("BIND", "127.0.0.1:0")]);
    let out = text(&output);
    assert!(output.status.success(), "{out}");
    assert!(out.lines().all(|line| line.starts_with("ok: ") || line.starts_with("warning: ")), "{out}");
    assert!(out.contains("ok: storage sqlite://"), "{out}");
}

#[test]
fn check_says_what_is_wrong_one_line_each_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(
        &["check"],
        &[
            ("CHAT_DATA_DIR", dir.path().to_str().unwrap()),
            ("BIND", "127.0.0.1:0"),
            ("MAX_SOCKETS_PER_USER", "0"),
            ("DATABASE_URL", "postgres://chat:hunter2@127.0.0.1:1/chat"),
            ("JWT_SECRET", "short"),
        ],
    );
    let out = text(&output);
    assert!(!output.status.success(), "{out}");
    let problems: Vec<&str> = out.lines().filter(|line| line.starts_with("problem: ")).collect();
    assert_eq!(problems.len(), 2, "{out}");
    assert!(problems[0].contains("MAX_SOCKETS_PER_USER"), "{out}");
    assert!(problems[1].contains("postgres://chat:***@127.0.0.1:1/chat"), "{out}");
    assert!(out.lines().any(|line| line.starts_with("warning: JWT_SECRET is 5 bytes")), "{out}");
    assert!(out.contains("2 problems"), "{out}");
    assert!(!out.contains("hunter2"), "the database password leaked:\n{out}");
}

#[test]
fn check_refuses_demo_mode_on_a_public_address() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(&["check", "--demo"], &[("CHAT_DATA_DIR", dir.path().to_str().unwrap()), ("BIND", "0.0.0.0:0")]);
    let out = text(&output);
    assert!(!output.status.success(), "{out}");
    assert!(out.lines().any(|line| line.starts_with("problem: CHAT_DEMO is on")), "{out}");
}

#[test]
fn the_start_up_line_summarises_the_configuration_without_secrets() {
    let dir = tempfile::tempdir().unwrap();
    // The database does not answer, so serve stops right after logging its configuration.
    let output = run(
        &["serve"],
        &[
            ("CHAT_DATA_DIR", dir.path().to_str().unwrap()),
            ("BIND", "127.0.0.1:0"),
            ("DATABASE_URL", "postgres://chat:hunter2@127.0.0.1:1/chat?password=hunter2"),
            ("JWT_SECRET", "jwt-secret-that-must-not-be-logged"),
            ("RATE_LIMIT_MESSAGES", "7"),
        ],
    );
    let out = text(&output);
    assert!(!output.status.success(), "{out}");
    let line = out.lines().find(|line| line.contains("starting chat-server")).unwrap_or_else(|| panic!("no start-up line:\n{out}"));
    assert!(line.contains("postgres://chat:***@127.0.0.1:1/chat?password=***"), "{line}");
    assert!(line.contains("rate_limit_messages: 7"), "{line}");
    assert!(line.contains("jwt_secret"), "{line}");
    assert!(!out.contains("hunter2") && !out.contains("jwt-secret-that-must-not-be-logged"), "a secret leaked:\n{out}");
}
