//! The one task that owns the core's [`Engine`]: it feeds the world's inputs in and carries
//! the engine's effects out (socket rooms, emits, acks, storage, HTTP answers, logs).

use crate::metrics::Metrics;
use crate::pending_acks::PendingAcks;
use crate::send_buffer;
use crate::store::Store;
use chat_core::auth::Handshake;
use chat_core::command::HttpRequest;
use chat_core::config::Limits;
use chat_core::effect::{connect_error_json, LogLevel, Room, ServerEvent, Target};
use chat_core::ids::{IdSource, Millis, OpId, RequestId, SocketId};
use chat_core::storage::{StorageOp, StorageResult};
use chat_core::{Effect, Engine, Input};
use serde_json::{json, Value};
use socketioxide::extract::{AckSender, SocketRef};
use socketioxide::SocketIo;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, oneshot};

/// An HTTP answer: status and JSON body.
pub type HttpAnswer = (u16, Value);

/// What the world tells the driver.
pub enum HostInput {
    /// A handshake reached the namespace; `done` gets `Ok` to let it in or the refusal.
    Connect { socket: SocketRef, handshake: Handshake, done: oneshot::Sender<Result<(), ConnectRefusal>> },
    /// The socket is now connected (its CONNECT packet went out).
    Connected { socket: SocketId },
    Disconnect { socket: SocketId },
    Event { socket: SocketId, event: String, payload: Value, ack: AckSender },
    Http { authorization: Option<String>, call: HttpRequest, respond: oneshot::Sender<HttpAnswer> },
    /// An HTTP call the host could not read; the core answers it.
    HttpRejected { error: chat_core::error::ChatError, respond: oneshot::Sender<HttpAnswer> },
    /// `GET /api/v1/admin/sockets`.
    AdminSockets { authorization: Option<String>, respond: oneshot::Sender<HttpAnswer> },
    /// A storage operation finished.
    StorageDone { op: OpId, result: StorageResult, started: Instant, commit: bool },
    /// Stop taking work, finish what is in flight, then answer.
    Drain { done: oneshot::Sender<()> },
}

/// A refused handshake: the client sees `code` as `err.message`.
#[derive(Debug)]
pub struct ConnectRefusal {
    pub code: &'static str,
}

impl std::fmt::Display for ConnectRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code)
    }
}

/// Handle to send inputs to the driver.
#[derive(Clone)]
pub struct DriverHandle {
    tx: mpsc::UnboundedSender<HostInput>,
}

impl DriverHandle {
    pub fn send(&self, input: HostInput) {
        // The driver outlives every handle but during shutdown; then there is nobody to tell.
        let _ = self.tx.send(input);
    }
}

/// Randomness for ids, from the operating system.
struct OsRandom;

impl IdSource for OsRandom {
    fn random_u128(&mut self) -> u128 {
        let mut bytes = [0u8; 16];
        if getrandom::fill(&mut bytes).is_err() {
            // No OS randomness is a broken machine; ids would collide, so stop loudly.
            panic!("the operating system's random source failed");
        }
        u128::from_le_bytes(bytes)
    }
}

pub fn now() -> Millis {
    Millis(SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0))
}

/// A socket as the driver knows it.
struct Conn {
    socket: SocketRef,
    /// Effects for the socket held back until its CONNECT packet is out.
    held: Option<Vec<Effect>>,
    user: Option<String>,
    /// When the core let the socket in.
    accepted_at: Option<Instant>,
}

/// How long a socket that was let in may take to show up as connected. A client that
/// leaves in the middle of its handshake never does, and socketioxide tells nobody.
const CONNECT_GRACE: Duration = Duration::from_secs(10);

pub struct Driver {
    engine: Engine,
    store: Store,
    io: SocketIo,
    namespace: String,
    metrics: Arc<Metrics>,
    tx: mpsc::UnboundedSender<HostInput>,
    rx: mpsc::UnboundedReceiver<HostInput>,
    conns: HashMap<SocketId, Conn>,
    connecting: HashMap<SocketId, oneshot::Sender<Result<(), ConnectRefusal>>>,
    acks: PendingAcks,
    http: HashMap<RequestId, oneshot::Sender<HttpAnswer>>,
    next_request: u64,
    /// Which sockets are in which room, mirrored from the effects (for admin sockets).
    rooms: BTreeMap<String, BTreeSet<SocketId>>,
    storage_in_flight: usize,
    draining: Option<oneshot::Sender<()>>,
}

impl Driver {
    pub fn new(limits: Limits, secret: Vec<u8>, store: Store, io: SocketIo, namespace: String, metrics: Arc<Metrics>) -> (Self, DriverHandle) {
        let (tx, rx) = mpsc::unbounded_channel();
        let driver = Self {
            engine: Engine::new(limits, secret, Box::new(OsRandom)),
            store,
            io,
            namespace,
            metrics,
            tx: tx.clone(),
            rx,
            conns: HashMap::new(),
            connecting: HashMap::new(),
            acks: PendingAcks::default(),
            http: HashMap::new(),
            next_request: 0,
            rooms: BTreeMap::new(),
            storage_in_flight: 0,
            draining: None,
        };
        (driver, DriverHandle { tx })
    }

    /// Runs until drained.
    pub async fn run(mut self) {
        let mut sweep = tokio::time::interval(CONNECT_GRACE / 2);
        loop {
            let deadline = self.engine.poll_timeout();
            let sleep = async {
                match deadline {
                    Some(at) => tokio::time::sleep(Duration::from_millis(at.since(now()))).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                input = self.rx.recv() => match input {
                    Some(input) => self.input(input).await,
                    None => return,
                },
                () = sleep => {
                    self.engine.handle_timeout(now());
                    self.carry_out().await;
                }
                _ = sweep.tick() => self.sweep_abandoned().await,
            }
            if self.draining.is_some() && self.storage_in_flight == 0 {
                if let Some(done) = self.draining.take() {
                    let _ = done.send(());
                }
                return;
            }
        }
    }

    async fn input(&mut self, input: HostInput) {
        let now = now();
        match input {
            HostInput::Connect { socket, handshake, done } => {
                if self.draining.is_some() {
                    let _ = done.send(Err(ConnectRefusal { code: "INTERNAL" }));
                    return;
                }
                let id = SocketId::new(socket.id.to_string());
                self.conns.insert(id.clone(), Conn { socket, held: Some(Vec::new()), user: None, accepted_at: None });
                self.connecting.insert(id.clone(), done);
                self.engine.handle(now, Input::Connect { socket: id, handshake });
            }
            HostInput::Connected { socket } => {
                let held = self.conns.get_mut(&socket).and_then(|conn| conn.held.take()).unwrap_or_default();
                for effect in held {
                    self.effect(effect).await;
                }
                self.metrics.set_connections(self.conns.len());
                return;
            }
            HostInput::Disconnect { socket } => {
                self.conns.remove(&socket);
                self.connecting.remove(&socket);
                self.acks.forget_socket(&socket);
                for members in self.rooms.values_mut() {
                    members.remove(&socket);
                }
                self.rooms.retain(|_, members| !members.is_empty());
                self.metrics.set_connections(self.conns.len());
                self.engine.handle(now, Input::Disconnect { socket });
            }
            HostInput::Event { socket, event, payload, ack } => {
                let ack = self.acks.register(&socket, &event, ack);
                self.engine.handle(now, Input::Event { socket, event, payload, ack });
            }
            HostInput::Http { authorization, call, respond } => {
                self.next_request += 1;
                let request = RequestId(self.next_request);
                self.http.insert(request, respond);
                self.engine.handle(now, Input::Http { request, authorization, call });
            }
            HostInput::HttpRejected { error, respond } => {
                self.next_request += 1;
                let request = RequestId(self.next_request);
                self.http.insert(request, respond);
                self.engine.handle(now, Input::HttpRejected { request, error });
            }
            HostInput::AdminSockets { authorization, respond } => {
                let answer = match self.engine.authorize_admin(authorization.as_deref(), now) {
                    Ok(_) => (200, self.admin_view()),
                    Err((error, body)) => (error.http_status(), body),
                };
                let _ = respond.send(answer);
                self.carry_out().await;
                return;
            }
            HostInput::StorageDone { op, result, started, commit } => {
                self.storage_in_flight -= 1;
                if commit {
                    self.metrics.commit(started.elapsed());
                }
                self.engine.handle(now, Input::Storage { op, result });
            }
            HostInput::Drain { done } => {
                self.draining = Some(done);
                return;
            }
        }
        self.carry_out().await;
    }

    /// Sockets let in whose connection never completed are gone: tell the core.
    async fn sweep_abandoned(&mut self) {
        let abandoned: Vec<SocketId> = self
            .conns
            .iter()
            .filter(|(_, conn)| conn.held.is_some() && conn.accepted_at.is_some_and(|at| at.elapsed() > CONNECT_GRACE))
            .map(|(socket, _)| socket.clone())
            .collect();
        for socket in abandoned {
            tracing::info!(%socket, "handshake abandoned after it was accepted; treating the socket as disconnected");
            self.input(HostInput::Disconnect { socket }).await;
        }
    }

    async fn carry_out(&mut self) {
        while let Some(effect) = self.engine.poll_effect() {
            self.effect(effect).await;
        }
    }

    /// The socket a packet is for, when the effect sends one to one socket only.
    fn packet_for(effect: &Effect) -> Option<&SocketId> {
        match effect {
            Effect::Ack { socket, .. } | Effect::Emit { to: Target::Socket(socket), .. } => Some(socket),
            _ => None,
        }
    }

    async fn effect(&mut self, effect: Effect) {
        // Packets for a socket still connecting wait until its CONNECT packet is out; room
        // changes do not, so that the client is in its rooms when it hears `connect`.
        if let Some(socket) = Self::packet_for(&effect) {
            if let Some(held) = self.conns.get_mut(socket).and_then(|conn| conn.held.as_mut()) {
                held.push(effect);
                return;
            }
        }
        match effect {
            Effect::AcceptConnection { socket, user } => {
                if let Some(conn) = self.conns.get_mut(&socket) {
                    conn.user = Some(user.to_string());
                    conn.accepted_at = Some(Instant::now());
                }
                if let Some(done) = self.connecting.remove(&socket) {
                    let _ = done.send(Ok(()));
                }
            }
            Effect::RejectConnection { socket, error, correlation_id } => {
                tracing::warn!(correlation_id = %correlation_id, data = %connect_error_json(&error, &correlation_id), "connection refused");
                self.conns.remove(&socket);
                if let Some(done) = self.connecting.remove(&socket) {
                    let _ = done.send(Err(ConnectRefusal { code: error.code() }));
                }
            }
            Effect::Ack { socket, ack, reply } => {
                let code = if reply["ok"] == true { "ok" } else { reply["error"].as_str().unwrap_or("INTERNAL") };
                self.metrics.ack(code);
                if let Some(sender) = self.acks.take(ack) {
                    if let (Err(error), Some(conn)) = (sender.send(&reply), self.conns.get(&socket)) {
                        send_buffer::send_failed(&conn.socket, &error);
                    }
                }
            }
            Effect::Emit { to, except_user, event, payload } => {
                if event == ServerEvent::MessageNew {
                    self.metrics.message_sent();
                }
                match to {
                    Target::Socket(socket) => {
                        if let Some(conn) = self.conns.get(&socket) {
                            if let Err(error) = conn.socket.emit(event.name(), &payload) {
                                send_buffer::send_failed(&conn.socket, &error);
                            }
                        }
                    }
                    Target::Room(room) => {
                        if let Some(ns) = self.io.of(&self.namespace) {
                            let mut op = ns.to(room.to_string());
                            if let Some(user) = except_user {
                                op = op.except(Room::User(user).to_string());
                            }
                            if let Err(error) = op.emit(event.name(), &payload).await {
                                tracing::warn!(%error, event = event.name(), "broadcast failed");
                            }
                        }
                    }
                }
            }
            Effect::JoinRoom { socket, room } => {
                if let Some(conn) = self.conns.get(&socket) {
                    conn.socket.join(room.to_string());
                    self.rooms.entry(room.to_string()).or_default().insert(socket);
                }
            }
            Effect::LeaveRoom { socket, room } => {
                if let Some(conn) = self.conns.get(&socket) {
                    conn.socket.leave(room.to_string());
                }
                let name = room.to_string();
                if let Some(members) = self.rooms.get_mut(&name) {
                    members.remove(&socket);
                    if members.is_empty() {
                        self.rooms.remove(&name);
                    }
                }
            }
            Effect::Storage { op, request } => self.storage(op, request),
            Effect::HttpRespond { request, status, body } => {
                if let Some(respond) = self.http.remove(&request) {
                    let _ = respond.send((status, body));
                }
            }
            Effect::Log { level, correlation_id, message } => {
                let correlation_id = correlation_id.map(|id| id.to_string()).unwrap_or_default();
                match level {
                    LogLevel::Info => tracing::info!(correlation_id, "{message}"),
                    LogLevel::Warn => tracing::warn!(correlation_id, "{message}"),
                    LogLevel::Error => tracing::error!(correlation_id, "{message}"),
                }
            }
        }
    }

    fn storage(&mut self, op: OpId, request: StorageOp) {
        self.storage_in_flight += 1;
        let store = self.store.clone();
        let tx = self.tx.clone();
        let commit = matches!(request, StorageOp::Commit { .. });
        tokio::spawn(async move {
            let started = Instant::now();
            let result = store.apply(&request).await;
            let _ = tx.send(HostInput::StorageDone { op, result, started, commit });
        });
    }

    fn admin_view(&self) -> Value {
        let users: BTreeSet<&str> = self.conns.values().filter_map(|conn| conn.user.as_deref()).collect();
        let rooms: Vec<Value> = self
            .rooms
            .iter()
            .map(|(room, sockets)| {
                let user_ids: BTreeSet<&str> =
                    sockets.iter().filter_map(|socket| self.conns.get(socket)).filter_map(|conn| conn.user.as_deref()).collect();
                json!({ "room": room, "sockets": sockets.len(), "userIds": user_ids })
            })
            .collect();
        let connections = self.conns.values().filter(|conn| conn.user.is_some()).count();
        json!({ "connections": connections, "users": users.len(), "rooms": rooms })
    }
}
