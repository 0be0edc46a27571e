//! The one task that owns the core's [`Engine`]: it feeds the world's inputs in and carries
//! the engine's effects out (socket rooms, emits, acks, storage, HTTP answers, logs).

use crate::cluster::wire::{node_of_request, node_of_socket, AdminView, BusMsg, Naming};
use crate::cluster::{Channel, ClusterLink, Outgoing};
use crate::metrics::Metrics;
use crate::pending_acks::PendingAcks;
use crate::room_mirror::RoomMirror;
use crate::socketio::session::{Frame, Sent};
use crate::socketio::SocketHandle;
use crate::store::Store;
use chat_core::auth::Handshake;
use chat_core::command::HttpRequest;
use chat_core::config::Limits;
use chat_core::effect::{connect_error_json, LogLevel, Room, ServerEvent, Target};
use chat_core::engine::HeldSocket;
use chat_core::intake::{Intake, IntakeLimits, Queued, Turn};
use chat_core::ids::{AckId, IdSource, Millis, OpId, RequestId, SocketId, UserId};
use chat_core::placement::{NodeId, Placement};
use chat_core::route::{Envelope, UserMsg};
use chat_core::storage::{StorageOp, StorageResult};
use chat_core::{Effect, Engine, Input};
use serde_json::Value;
use chat_sio_codec::SocketPacket;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, oneshot};

/// An HTTP answer: status and JSON body.
pub type HttpAnswer = (u16, Value);

/// What the world tells the driver.
pub enum HostInput {
    /// A CONNECT packet reached the namespace; the core's answer goes out through `socket`.
    Connect { socket: SocketHandle, handshake: Handshake },
    Disconnect { socket: SocketId },
    /// A client event; `ack` is the client's acknowledgement id, when it asked for one.
    Event { socket: SocketId, event: String, payload: Value, ack: Option<u64> },
    Http { authorization: Option<String>, call: HttpRequest, respond: oneshot::Sender<HttpAnswer> },
    /// An HTTP call the host could not read; the core answers it.
    HttpRejected { error: chat_core::error::ChatError, respond: oneshot::Sender<HttpAnswer> },
    /// `GET /api/v1/admin/sockets`.
    AdminSockets { authorization: Option<String>, respond: oneshot::Sender<HttpAnswer> },
    /// A storage operation finished.
    StorageDone { op: OpId, result: StorageResult, started: Instant, commit: bool },
    /// Stop taking work, finish what is in flight, then answer.
    Drain { done: oneshot::Sender<()> },
    /// Cluster mode: a message from another process.
    Bus(BusMsg),
    /// Cluster mode: the live processes now.
    View { live: Vec<NodeId> },
    /// Cluster mode: a process died holding these sockets.
    NodeDied { node: NodeId, sockets: Vec<(SocketId, UserId)> },
    /// Cluster mode: stop waiting for other processes' answers to an admin sockets call.
    AdminTimeout { token: u64 },
}

/// A client event waiting its turn (see [`chat_core::intake`]).
struct QueuedEvent {
    socket: SocketId,
    event: String,
    payload: Value,
    ack: Option<u64>,
}

/// Inputs taken from the channel in one go, so that timers still get their turn.
const MAX_INPUTS_AT_ONCE: usize = 4096;

/// How long admin sockets waits for the other processes of a cluster.
const ADMIN_WAIT: Duration = Duration::from_secs(1);

/// An admin sockets call waiting for the other processes' views.
struct AdminQuery {
    respond: oneshot::Sender<HttpAnswer>,
    waiting: BTreeSet<NodeId>,
    view: AdminView,
}

/// Where an effect is carried out.
enum Home {
    Here,
    Node(NodeId),
    /// Room emits: every process delivers to the room members it holds.
    Everywhere,
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
    handle: SocketHandle,
    /// Frames for the socket held back until the core lets it in (its CONNECT packet
    /// goes first); `None` once it is in.
    held: Option<Vec<Frame>>,
    user: Option<UserId>,
    /// When its handshake reached the driver.
    arrived_at: Instant,
}

/// How often the driver looks for handshakes left unanswered.
const SWEEP_EVERY: Duration = Duration::from_secs(5);

/// How long a handshake may wait for the core's answer. Alone the answer always comes; in
/// a cluster it is lost when the user's owner process dies or the partition moves, and the
/// client (whose library does not time the namespace handshake out) would wait forever.
const ANSWER_GRACE: Duration = Duration::from_secs(10);

pub struct Driver {
    engine: Engine,
    store: Store,
    namespace: String,
    /// This namespace's DISCONNECT frame.
    disconnect_frame: Frame,
    metrics: Arc<Metrics>,
    tx: mpsc::UnboundedSender<HostInput>,
    rx: mpsc::UnboundedReceiver<HostInput>,
    conns: HashMap<SocketId, Conn>,
    acks: PendingAcks,
    /// Client events by user, served in turn so that one user's flood delays nobody else.
    intake: Intake<UserId, QueuedEvent>,
    http: HashMap<RequestId, oneshot::Sender<HttpAnswer>>,
    next_request: u64,
    /// Which sockets are in which room, mirrored from the effects (for emits to a user's
    /// room, admin sockets and cluster restores).
    rooms: RoomMirror,
    storage_in_flight: usize,
    draining: Option<oneshot::Sender<()>>,
    naming: Naming,
    cluster: Option<ClusterLink>,
    /// Effects for one other process (or everyone) waiting to go out as one bus message.
    outbox: Option<(Channel, Vec<Effect>)>,
    admin_queries: HashMap<u64, AdminQuery>,
    next_admin_token: u64,
}

impl Driver {
    pub fn new(
        limits: Limits,
        secret: Vec<u8>,
        store: Store,
        namespace: String,
        metrics: Arc<Metrics>,
        naming: Naming,
    ) -> (Self, DriverHandle) {
        let (tx, rx) = mpsc::unbounded_channel();
        let intake = Intake::new(IntakeLimits::from_limits(&limits));
        let driver = Self {
            engine: Engine::new(limits, secret, Box::new(OsRandom)),
            store,
            disconnect_frame: Frame::from(SocketPacket::Disconnect { nsp: namespace.clone() }.to_frame()),
            namespace,
            metrics,
            tx: tx.clone(),
            rx,
            conns: HashMap::new(),
            acks: PendingAcks::default(),
            intake,
            http: HashMap::new(),
            next_request: 0,
            rooms: RoomMirror::default(),
            storage_in_flight: 0,
            draining: None,
            naming,
            cluster: None,
            outbox: None,
            admin_queries: HashMap::new(),
            next_admin_token: 0,
        };
        (driver, DriverHandle { tx })
    }

    /// Cluster mode: this process is `link.me` among `live`.
    pub fn join_cluster(&mut self, link: ClusterLink, live: Vec<NodeId>) {
        self.engine.set_placement(Placement::new(link.me, live));
        self.cluster = Some(link);
    }

    /// Runs until drained.
    pub async fn run(mut self) {
        let mut sweep = tokio::time::interval(SWEEP_EVERY);
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
                    Some(input) => {
                        self.input(input).await;
                        // Everything that has arrived goes in before the next event is
                        // served: a flood's events must not stand in the channel in front
                        // of everyone else's (queueing one costs next to nothing).
                        for _ in 0..MAX_INPUTS_AT_ONCE {
                            let Ok(input) = self.rx.try_recv() else { break };
                            self.input(input).await;
                        }
                    }
                    None => return,
                },
                () = sleep => {
                    self.engine.handle_timeout(now());
                    self.carry_out().await;
                }
                _ = sweep.tick() => {
                    self.intake.expire(now());
                    self.sweep_unanswered().await;
                }
                () = std::future::ready(()), if self.intake.has_turn() => self.serve_next_event().await,
            }
            if self.draining.is_some() && self.storage_in_flight == 0 && self.intake.is_empty() {
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
            HostInput::Connect { socket, handshake } => {
                if self.draining.is_some() {
                    socket.session.refuse(&socket.id, self.connect_error("INTERNAL", None));
                    return;
                }
                let id = socket.id.clone();
                self.conns.insert(id.clone(), Conn { handle: socket, held: Some(Vec::new()), user: None, arrived_at: Instant::now() });
                self.engine.handle(now, Input::Connect { socket: id, handshake });
            }
            HostInput::Disconnect { socket } => {
                // What the socket sent before it left is handled before its departure.
                if let Some(user) = self.engine.user_of(&socket).cloned() {
                    for queued in self.intake.take_where(&user, |queued| queued.socket == socket) {
                        self.hand_to_engine(now, queued);
                    }
                }
                self.conns.remove(&socket);
                for ack in self.acks.forget_socket(&socket) {
                    self.intake.answered(ack);
                }
                self.rooms.forget(&socket);
                self.metrics.set_connections(self.conns.len());
                if let Some(cluster) = &self.cluster {
                    cluster.send(Outgoing::Unregister { socket: socket.clone() });
                }
                self.engine.handle(now, Input::Disconnect { socket });
            }
            HostInput::Event { socket, event, payload, ack } => {
                let queued = QueuedEvent { socket, event, payload, ack };
                let Some(user) = self.engine.user_of(&queued.socket).cloned() else {
                    // Not a socket the core knows (yet): it decides what to do with it.
                    self.hand_to_engine(now, queued);
                    self.carry_out().await;
                    return;
                };
                if let Queued::Overflow(queued) = self.intake.push(user.clone(), queued, now) {
                    // Past its pace and refusal budget, or not waiting for answers at all:
                    // answering would only feed the flood.
                    tracing::warn!(socket = %queued.socket, user = %user, "the client floods events past its pace: disconnecting it");
                    self.disconnect(&queued.socket);
                }
                return;
            }
            HostInput::Http { authorization, call, respond } => {
                let request = self.new_request();
                self.http.insert(request, respond);
                self.engine.handle(now, Input::Http { request, authorization, call });
            }
            HostInput::HttpRejected { error, respond } => {
                let request = self.new_request();
                self.http.insert(request, respond);
                self.engine.handle(now, Input::HttpRejected { request, error });
            }
            HostInput::AdminSockets { authorization, respond } => {
                match self.engine.authorize_admin(authorization.as_deref(), now) {
                    Ok(_) => self.ask_admin_views(respond),
                    Err((error, body)) => {
                        let _ = respond.send((error.http_status(), body));
                    }
                }
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
            HostInput::Bus(msg) => self.bus(now, msg).await,
            HostInput::View { live } => self.view_changed(now, live),
            HostInput::NodeDied { sockets, .. } => {
                for (socket, user) in sockets {
                    let envelope = Envelope::ToUser(user, UserMsg::Lost { socket });
                    self.engine.handle(now, Input::Mail { envelope, forwarded: false });
                }
            }
            HostInput::AdminTimeout { token } => {
                if let Some(query) = self.admin_queries.remove(&token) {
                    tracing::warn!(missing = query.waiting.len(), "admin sockets: some cluster processes did not answer in time");
                    let _ = query.respond.send((200, query.view.to_json()));
                }
                return;
            }
        }
        self.carry_out().await;
    }

    /// Serves (or refuses) the client event whose turn it is.
    async fn serve_next_event(&mut self) {
        let Some((user, turn)) = self.intake.next_turn() else { return };
        let now = now();
        match turn {
            Turn::Serve(queued) => {
                if let Some(ack) = self.hand_to_engine(now, queued) {
                    self.intake.started(user, ack, now);
                }
            }
            Turn::Refuse(QueuedEvent { socket, event, ack, .. }) => {
                let ack = self.acks.register(&socket, &event, ack);
                self.engine.handle(now, Input::Overloaded { socket, event, ack });
            }
        }
        self.carry_out().await;
    }

    /// Gives a client event to the core; the id its answer will carry, if one is due.
    fn hand_to_engine(&mut self, now: Millis, queued: QueuedEvent) -> Option<AckId> {
        let QueuedEvent { socket, event, payload, ack } = queued;
        let ack = self.acks.register(&socket, &event, ack);
        self.engine.handle(now, Input::Event { socket, event, payload, ack });
        ack
    }

    fn new_request(&mut self) -> RequestId {
        self.next_request += 1;
        self.naming.request(self.next_request as u32)
    }

    /// A message from another process of the cluster.
    async fn bus(&mut self, now: Millis, msg: BusMsg) {
        tracing::debug!(?msg, "bus in");
        match msg {
            BusMsg::Mail { envelope, forwarded } => self.engine.handle(now, Input::Mail { envelope, forwarded }),
            BusMsg::Effects(effects) => {
                for effect in effects {
                    self.apply(effect).await;
                }
            }
            BusMsg::Broadcast { from, effects } => {
                if Some(from) != self.naming.node() {
                    for effect in effects {
                        self.apply(effect).await;
                    }
                }
            }
            BusMsg::AdminAsk { from, token } => {
                let Some(me) = self.naming.node() else { return };
                if from != me {
                    let view = self.admin_view();
                    self.publish(Channel::Node(from), BusMsg::AdminTell { from: me, token, view });
                }
            }
            BusMsg::AdminTell { from, token, view } => {
                let Some(query) = self.admin_queries.get_mut(&token) else { return };
                if !query.waiting.remove(&from) {
                    return;
                }
                query.view.merge(view);
                if query.waiting.is_empty() {
                    if let Some(query) = self.admin_queries.remove(&token) {
                        let _ = query.respond.send((200, query.view.to_json()));
                    }
                }
            }
        }
    }

    /// The live processes changed: partitions move, and the new owners hear which of
    /// this process's sockets are theirs (the core decides who is told what).
    fn view_changed(&mut self, now: Millis, live: Vec<NodeId>) {
        let Some(me) = self.naming.node() else { return };
        tracing::debug!(?live, "view");
        let after = Placement::new(me, live);
        if *self.engine.placement() == after {
            return;
        }
        let held: Vec<HeldSocket> = self
            .conns
            .iter()
            .filter_map(|(socket, conn)| {
                let user = conn.user.clone()?;
                Some(HeldSocket { socket: socket.clone(), user, chats: self.rooms.chats_of(socket) })
            })
            .collect();
        self.engine.change_placement(now, after, held, node_of_socket);
    }

    /// Admin sockets: this process's view, and in a cluster every other live process's.
    fn ask_admin_views(&mut self, respond: oneshot::Sender<HttpAnswer>) {
        let view = self.admin_view();
        let Some(me) = self.naming.node() else {
            let _ = respond.send((200, view.to_json()));
            return;
        };
        let waiting: BTreeSet<NodeId> = self.engine.placement().nodes().iter().filter(|node| **node != me).copied().collect();
        if waiting.is_empty() {
            let _ = respond.send((200, view.to_json()));
            return;
        }
        self.next_admin_token += 1;
        let token = self.next_admin_token;
        self.admin_queries.insert(token, AdminQuery { respond, waiting, view });
        self.publish(Channel::All, BusMsg::AdminAsk { from: me, token });
        let driver = DriverHandle { tx: self.tx.clone() };
        tokio::spawn(async move {
            tokio::time::sleep(ADMIN_WAIT).await;
            driver.send(HostInput::AdminTimeout { token });
        });
    }

    /// Handshakes with no answer from the core in time are refused (see [`ANSWER_GRACE`]).
    async fn sweep_unanswered(&mut self) {
        let unanswered: Vec<SocketId> = self
            .conns
            .iter()
            .filter(|(_, conn)| conn.user.is_none() && conn.arrived_at.elapsed() > ANSWER_GRACE)
            .map(|(socket, _)| socket.clone())
            .collect();
        for socket in unanswered {
            tracing::warn!(%socket, "no answer to a handshake (a cluster process died or a partition moved); refusing it with INTERNAL");
            if let Some(conn) = self.conns.get(&socket) {
                conn.handle.session.refuse(&socket, self.connect_error("INTERNAL", None));
            }
            self.input(HostInput::Disconnect { socket }).await;
        }
    }

    /// A CONNECT_ERROR frame: the client sees `code` as `err.message`, and `data` as `err.data`.
    fn connect_error(&self, code: &str, data: Option<Value>) -> Frame {
        let mut body = serde_json::json!({ "message": code });
        if let Some(data) = data {
            body["data"] = data;
        }
        Frame::from(SocketPacket::ConnectError { nsp: self.namespace.clone(), data: body }.to_frame())
    }

    /// Puts a frame in a socket's queue (held while the socket waits to be let in). A
    /// socket whose queue is full has missed a packet it needed: it is cut off
    /// (`send_buffer`).
    fn send_to(&mut self, socket: &SocketId, frame: Frame) {
        let Some(conn) = self.conns.get_mut(socket) else { return };
        if let Some(held) = conn.held.as_mut() {
            held.push(frame);
            return;
        }
        match conn.handle.session.send(frame) {
            Sent::Queued => {}
            Sent::Closed => tracing::debug!(%socket, "packet for a closing socket"),
            Sent::Full => {
                tracing::warn!(%socket, max_buffered_packets = crate::send_buffer::MAX_BUFFERED_PACKETS, "the client does not read its packets: disconnecting it");
                self.rooms.forget(socket);
                self.disconnect(socket);
            }
        }
    }

    /// The server disconnects a socket: its DISCONNECT packet goes out after what is
    /// queued, and the socket is gone for the core at once.
    fn disconnect(&mut self, socket: &SocketId) {
        let Some(conn) = self.conns.get(socket) else { return };
        if conn.handle.session.disconnect(socket, self.disconnect_frame.clone()) {
            let _ = self.tx.send(HostInput::Disconnect { socket: socket.clone() });
        }
    }

    /// Carries out the engine's effects, then sends its mail for other processes: an
    /// effect never depends on mail sent after it.
    async fn carry_out(&mut self) {
        while let Some(effect) = self.engine.poll_effect() {
            self.route(effect).await;
        }
        while let Some(remote) = self.engine.poll_remote() {
            tracing::debug!(to = %remote.to, ?remote.envelope, "bus out");
            self.publish(Channel::Node(remote.to), BusMsg::Mail { envelope: remote.envelope, forwarded: remote.forwarded });
        }
        self.flush_outbox();
    }

    /// Which process carries an effect out: the one holding its socket or HTTP call.
    fn home_of(&self, effect: &Effect) -> Home {
        let Some(me) = self.naming.node() else { return Home::Here };
        let node = match effect {
            Effect::AcceptConnection { socket, .. }
            | Effect::RejectConnection { socket, .. }
            | Effect::Ack { socket, .. }
            | Effect::Emit { to: Target::Socket(socket), .. }
            | Effect::JoinRoom { socket, .. }
            | Effect::LeaveRoom { socket, .. } => node_of_socket(socket),
            Effect::Emit { to: Target::Room(_), .. } => return Home::Everywhere,
            Effect::HttpRespond { request, .. } => Some(node_of_request(*request)),
            Effect::Storage { .. } | Effect::Log { .. } => None,
        };
        match node {
            Some(node) if node != me => Home::Node(node),
            _ => Home::Here,
        }
    }

    async fn route(&mut self, effect: Effect) {
        if let Effect::Emit { event: ServerEvent::MessageNew, .. } = &effect {
            self.metrics.message_sent();
        }
        match self.home_of(&effect) {
            Home::Here => self.apply(effect).await,
            Home::Node(node) => self.queue(Channel::Node(node), effect),
            Home::Everywhere => {
                self.queue(Channel::All, effect.clone());
                self.apply(effect).await;
            }
        }
    }

    /// Adds an effect to the bus message being built; a different destination sends the
    /// one before, so effects leave in the order they were made.
    fn queue(&mut self, channel: Channel, effect: Effect) {
        match &mut self.outbox {
            Some((pending, effects)) if *pending == channel => effects.push(effect),
            _ => {
                self.flush_outbox();
                self.outbox = Some((channel, vec![effect]));
            }
        }
    }

    fn flush_outbox(&mut self) {
        let Some((channel, effects)) = self.outbox.take() else { return };
        let msg = match (channel, self.naming.node()) {
            (Channel::All, Some(from)) => BusMsg::Broadcast { from, effects },
            (Channel::All, None) => return,
            (Channel::Node(_), _) => BusMsg::Effects(effects),
        };
        if let Some(cluster) = &self.cluster {
            cluster.send(Outgoing::Publish(channel, msg));
        }
    }

    fn publish(&mut self, channel: Channel, msg: BusMsg) {
        self.flush_outbox();
        if let Some(cluster) = &self.cluster {
            cluster.send(Outgoing::Publish(channel, msg));
        }
    }

    /// Carries out an effect for this process's sockets and calls.
    async fn apply(&mut self, effect: Effect) {
        match effect {
            Effect::AcceptConnection { socket, user } => {
                let Some(conn) = self.conns.get_mut(&socket) else { return };
                conn.user = Some(user.clone());
                let connect = SocketPacket::Connect { nsp: self.namespace.clone(), data: Some(serde_json::json!({ "sid": socket.as_str() })) };
                if !conn.handle.session.accept(&socket, Frame::from(connect.to_frame())) {
                    // Its client left while the core decided; its Disconnect is on the way.
                    return;
                }
                if let Some(cluster) = &self.cluster {
                    cluster.send(Outgoing::Register { socket: socket.clone(), user });
                }
                // What was held for it goes out after its CONNECT packet, in order.
                for frame in conn.held.take().unwrap_or_default() {
                    self.send_to(&socket, frame);
                }
                self.metrics.set_connections(self.conns.len());
            }
            Effect::RejectConnection { socket, error, correlation_id } => {
                let data = connect_error_json(&error, &correlation_id);
                tracing::warn!(correlation_id = %correlation_id, data = %data, "connection refused");
                self.engine.forget_socket(&socket);
                // Rooms are mirrored only for sockets that have a connection here.
                self.rooms.forget(&socket);
                if let Some(conn) = self.conns.remove(&socket) {
                    conn.handle.session.refuse(&socket, self.connect_error(error.code(), Some(data)));
                }
            }
            Effect::Ack { socket, ack, reply } => {
                self.intake.answered(ack);
                self.metrics.ack(reply.code());
                if let Some(id) = self.acks.take(ack) {
                    let frame = chat_sio_codec::ack_frame(&self.namespace, id, reply.json.as_str());
                    self.send_to(&socket, Frame::from(frame));
                }
            }
            Effect::Emit { to, except_user, event, payload } => {
                let frame = Frame::from(chat_sio_codec::event_frame(&self.namespace, event.name(), payload.as_str()));
                match to {
                    Target::Socket(socket) => self.send_to(&socket, frame),
                    Target::Room(room) => self.broadcast(&room, except_user.as_ref(), frame),
                }
            }
            Effect::JoinRoom { socket, room } => {
                if self.conns.contains_key(&socket) {
                    self.rooms.join(socket, room);
                }
            }
            Effect::LeaveRoom { socket, room } => self.rooms.leave(&socket, &room),
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

    /// A frame to every socket of a room here (but `except`'s), written once for all. A
    /// socket whose queue is full is skipped: its client notices the gap in `seq` and
    /// syncs (`send_buffer`).
    fn broadcast(&mut self, room: &Room, except: Option<&UserId>, frame: Frame) {
        let mut skipped = 0;
        for socket in self.rooms.members(room) {
            let Some(conn) = self.conns.get_mut(socket) else { continue };
            if except.is_some() && conn.user.as_ref() == except {
                continue;
            }
            if let Some(held) = conn.held.as_mut() {
                held.push(frame.clone());
                continue;
            }
            match conn.handle.session.send(frame.clone()) {
                Sent::Queued => {}
                Sent::Full => skipped += 1,
                Sent::Closed => tracing::debug!(%socket, "packet for a closing socket"),
            }
        }
        if skipped > 0 {
            self.metrics.packets_skipped(skipped);
        }
    }

    fn storage(&mut self, op: OpId, request: StorageOp) {
        self.storage_in_flight += 1;
        if let Some(result) = self.store.answer_at_once(&request) {
            // Through the channel like any answer: the core hears it after this effect's turn.
            let _ = self.tx.send(HostInput::StorageDone { op, result, started: Instant::now(), commit: false });
            return;
        }
        let store = self.store.clone();
        let tx = self.tx.clone();
        let commit = matches!(request, StorageOp::Commit { .. });
        tokio::spawn(async move {
            let started = Instant::now();
            let result = store.apply(&request).await;
            let _ = tx.send(HostInput::StorageDone { op, result, started, commit });
        });
    }

    /// This process's sockets and rooms.
    fn admin_view(&self) -> AdminView {
        let users: BTreeSet<String> = self.conns.values().filter_map(|conn| conn.user.as_ref().map(UserId::to_string)).collect();
        let rooms = self
            .rooms
            .rooms()
            .map(|(room, sockets)| {
                let user_ids: BTreeSet<String> =
                    sockets.iter().filter_map(|socket| self.conns.get(socket)).filter_map(|conn| conn.user.as_ref().map(UserId::to_string)).collect();
                (room.to_string(), (sockets.len(), user_ids))
            })
            .collect();
        let connections = self.conns.values().filter(|conn| conn.user.is_some()).count();
        AdminView { connections, users, rooms }
    }
}
