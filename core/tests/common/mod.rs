//! A small world for contract tests: one engine, the reference storage answering every
//! storage effect at once, a manual clock, and everything else the engine did, kept.
#![allow(dead_code)]

use chat_core::auth::{sign_token, Handshake};
use chat_core::config::Limits;
use chat_core::effect::{Effect, Room, ServerEvent, Target};
use chat_core::ids::{AckId, IdSource, Millis, SocketId, UserId};
use chat_core::memory::MemoryStore;
use chat_core::{Engine, Input};
use serde_json::{json, Value};

pub const SECRET: &[u8] = b"test-secret";
pub const T0: Millis = Millis(1_700_000_000_000);

struct Lcg(u128);
impl IdSource for Lcg {
    fn random_u128(&mut self) -> u128 {
        self.0 = self.0.wrapping_mul(0x2360_ED05_1FC6_5DA4_4385_DF64_9FCC_F645).wrapping_add(0x5851_F42D_4C95_7F2D_1405_7B7E_F767_814F);
        self.0
    }
}

pub struct World {
    pub engine: Engine,
    pub store: MemoryStore,
    pub now: Millis,
    /// Every effect except storage, in order.
    pub log: Vec<Effect>,
    next_ack: u64,
    next_socket: u64,
}

impl World {
    pub fn new() -> Self {
        Self::with_limits(Limits::default())
    }

    pub fn with_limits(limits: Limits) -> Self {
        Self {
            engine: Engine::new(limits, SECRET.to_vec(), Box::new(Lcg(42))),
            store: MemoryStore::new(),
            now: T0,
            log: Vec::new(),
            next_ack: 0,
            next_socket: 0,
        }
    }

    pub fn token(&self, user: &str) -> String {
        sign_token(SECRET, &UserId::from(user), false, self.now.plus(3_600_000))
    }

    /// Feeds an input and runs storage to completion.
    pub fn input(&mut self, input: Input) {
        self.engine.handle(self.now, input);
        self.settle();
    }

    fn settle(&mut self) {
        while let Some(effect) = self.engine.poll_effect() {
            match effect {
                Effect::Storage { op, request } => {
                    let result = self.store.apply(&request);
                    self.engine.handle(self.now, Input::Storage { op, result });
                }
                other => self.log.push(other),
            }
        }
    }

    /// Moves the clock and fires due timers.
    pub fn advance(&mut self, ms: u64) {
        let target = self.now.plus(ms);
        while let Some(at) = self.engine.poll_timeout() {
            if at > target {
                break;
            }
            self.now = self.now.max(at);
            self.engine.handle_timeout(self.now);
            self.settle();
        }
        self.now = target;
    }

    /// Connects a socket for `user` with `auth`; returns it and whether it was accepted.
    pub fn connect_with(&mut self, user: &str, auth: Value) -> (SocketId, bool) {
        self.next_socket += 1;
        let socket = SocketId::new(format!("{user}#{}", self.next_socket));
        let mut auth = auth;
        auth["token"] = json!(self.token(user));
        self.input(Input::Connect { socket: socket.clone(), handshake: Handshake { auth: Some(auth), ..Default::default() } });
        let accepted = self.log.iter().any(|e| matches!(e, Effect::AcceptConnection { socket: s, .. } if *s == socket));
        (socket, accepted)
    }

    pub fn connect(&mut self, user: &str) -> SocketId {
        let (socket, accepted) = self.connect_with(user, json!({}));
        assert!(accepted, "{user} could not connect");
        socket
    }

    pub fn disconnect(&mut self, socket: &SocketId) {
        self.input(Input::Disconnect { socket: socket.clone() });
    }

    /// Sends an event with a callback and returns its ack.
    pub fn call(&mut self, socket: &SocketId, event: &str, payload: Value) -> Value {
        self.next_ack += 1;
        let ack = AckId(self.next_ack);
        self.input(Input::Event { socket: socket.clone(), event: event.into(), payload, ack: Some(ack) });
        self.ack_of(socket, ack).unwrap_or_else(|| panic!("no ack for {event}"))
    }

    /// Sends an event without waiting for an answer.
    pub fn send_event(&mut self, socket: &SocketId, event: &str, payload: Value) {
        self.input(Input::Event { socket: socket.clone(), event: event.into(), payload, ack: None });
    }

    pub fn ack_of(&self, socket: &SocketId, ack: AckId) -> Option<Value> {
        self.log.iter().find_map(|e| match e {
            Effect::Ack { socket: s, ack: a, reply } if s == socket && *a == ack => Some(reply.clone()),
            _ => None,
        })
    }

    /// Creates a group of `creator` and `others`, returning its id.
    pub fn group(&mut self, creator: &SocketId, others: &[&str]) -> String {
        let ack = self.call(creator, "chat:create", json!({ "kind": "group", "memberIds": others, "title": "team" }));
        assert_eq!(ack["ok"], true, "{ack}");
        ack["data"]["chat"]["id"].as_str().unwrap().to_string()
    }

    /// Emits so far of `event` to a room or socket, as payloads.
    pub fn emits(&self, event: ServerEvent) -> Vec<(Target, Option<UserId>, Value)> {
        self.log
            .iter()
            .filter_map(|e| match e {
                Effect::Emit { to, except_user, event: ev, payload } if *ev == event => Some((to.clone(), except_user.clone(), payload.clone())),
                _ => None,
            })
            .collect()
    }

    pub fn emits_to_room(&self, event: ServerEvent, room: &Room) -> Vec<Value> {
        self.emits(event).into_iter().filter(|(to, _, _)| *to == Target::Room(room.clone())).map(|(_, _, p)| p).collect()
    }

    pub fn clear(&mut self) {
        self.log.clear();
    }
}

pub fn uuid(n: u32) -> String {
    format!("00000000-0000-4000-8000-{n:012}")
}
