//! Core throughput on one core: commands per second for a realistic mix in one busy
//! group (100 members, all connected and joined to the chat room): 60 % `message:send`,
//! 25 % `typing:start`, 15 % `receipt:read`, with the reference `MemoryStore` answering
//! every storage request at once. Prints one line of JSON.
//!
//! `cargo bench -p chat-harness` (`BENCH_COMMANDS` sets how many commands to time).

use chat_core::auth::{sign_token, Handshake};
use chat_core::config::Limits;
use chat_core::effect::Effect;
use chat_core::ids::{AckId, ChatId, Millis, SocketId, UserId};
use chat_core::memory::MemoryStore;
use chat_core::model::{Chat, ChatKind};
use chat_core::storage::{StorageOp, Write};
use chat_core::{Engine, Input};
use chat_harness::rng::{uuid_v4, Rng, SeededIds};
use serde_json::json;
use std::time::{Duration, Instant};

const MEMBERS: usize = 100;
const SECRET: &[u8] = b"bench-secret";
const T0: Millis = Millis(1_700_000_000_000);

struct Host {
    engine: Engine,
    store: MemoryStore,
    now: Millis,
    effects: u64,
    store_time: Duration,
    last_message: Option<String>,
}

impl Host {
    fn input(&mut self, input: Input) {
        self.engine.handle(self.now, input);
        self.drain();
    }

    /// Carries out every effect; storage answers at once.
    fn drain(&mut self) {
        while let Some(effect) = self.engine.poll_effect() {
            self.effects += 1;
            if let Effect::Storage { op, request } = effect {
                // The newest stored message, for receipts to point at.
                if let StorageOp::Commit { writes, .. } = &request {
                    for write in writes {
                        if let Write::Message(message) = write {
                            self.last_message = Some(message.id.to_string());
                        }
                    }
                }
                let started = Instant::now();
                let result = self.store.apply(&request);
                self.store_time += started.elapsed();
                self.engine.handle(self.now, Input::Storage { op, result });
            }
        }
    }

    fn tick(&mut self, ms: u64) {
        self.now = self.now.plus(ms);
        while self.engine.poll_timeout().is_some_and(|at| at <= self.now) {
            self.engine.handle_timeout(self.now);
            self.drain();
        }
    }
}

fn main() {
    let commands: u64 = std::env::var("BENCH_COMMANDS").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000);
    // The window is wide open: this measures the core, not the rate limiter's refusals.
    let limits = Limits { rate_limit_messages: usize::MAX / 2, ..Limits::default() };
    let users: Vec<UserId> = (0..MEMBERS).map(|i| UserId::new(format!("member{i}"))).collect();
    let chat = ChatId::new("00000000-0000-7000-8000-000000000001");
    let mut store = MemoryStore::new();
    store.apply(&StorageOp::CreateChat {
        chat: Chat {
            id: chat.clone(),
            kind: ChatKind::Group,
            title: Some("everyone".into()),
            member_ids: users.clone(),
            created_by: users[0].clone(),
            created_at: T0,
            updated_at: T0,
        },
        dm_key: None,
    });
    let mut host = Host {
        engine: Engine::new(limits, SECRET.to_vec(), Box::new(SeededIds(Rng::new(1)))),
        store,
        now: T0,
        effects: 0,
        store_time: Duration::ZERO,
        last_message: None,
    };
    let sockets: Vec<SocketId> = (0..MEMBERS).map(|i| SocketId::new(format!("socket{i}"))).collect();
    for (user, socket) in users.iter().zip(&sockets) {
        let token = sign_token(SECRET, user, false, T0.plus(86_400_000));
        let handshake = Handshake { auth: Some(json!({ "token": token, "autoJoin": true })), ..Handshake::default() };
        host.input(Input::Connect { socket: socket.clone(), handshake });
    }

    let mut rng = Rng::new(42);
    let (mut sends, mut typings, mut reads) = (0u64, 0u64, 0u64);
    let effects_before = host.effects;
    host.store_time = Duration::ZERO;
    let started = Instant::now();
    for n in 0..commands {
        let who = rng.index(MEMBERS);
        let socket = sockets[who].clone();
        let roll = rng.below(100);
        let (event, payload) = if roll < 60 || host.last_message.is_none() {
            sends += 1;
            let body = format!("message {n} from {who}");
            ("message:send", json!({ "chatId": chat.as_str(), "body": body, "clientId": uuid_v4(rng.next_u128()) }))
        } else if roll < 85 {
            typings += 1;
            ("typing:start", json!({ "chatId": chat.as_str() }))
        } else {
            reads += 1;
            ("receipt:read", json!({ "chatId": chat.as_str(), "messageId": host.last_message.clone() }))
        };
        host.input(Input::Event { socket, event: event.into(), payload, ack: Some(AckId(n)) });
        host.tick(1);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let effects = host.effects - effects_before;
    let core_seconds = elapsed - host.store_time.as_secs_f64();
    println!(
        "{}",
        json!({
            "bench": "core_throughput",
            "members_joined": MEMBERS,
            "commands": commands,
            "mix": { "message:send": sends, "typing:start": typings, "receipt:read": reads },
            "seconds": elapsed,
            "commands_per_sec": (commands as f64 / elapsed).round(),
            "effects_per_sec": (effects as f64 / elapsed).round(),
            "effects_per_command": effects as f64 / commands as f64,
            "store_seconds": host.store_time.as_secs_f64(),
            "core_only_commands_per_sec": (commands as f64 / core_seconds).round(),
        })
    );
}
