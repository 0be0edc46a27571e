//! One Socket.IO client connection over WebSocket: connect (optionally from a given
//! source address), Engine.IO open, Socket.IO CONNECT with the token, then a task that
//! answers heartbeats, counts deliveries and routes acks. Frames are read and written with
//! the project's codec (`chat-sio-codec`); the hot path (events) only reads the event name
//! and the body's time marker, never the whole JSON.

use crate::arrival::StampedStream;
use crate::stats::Stats;
use chat_sio_codec::{decode_engine, event_head, EnginePacket, Handshake, SocketPacket};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::time::Duration;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

type Ws = WebSocketStream<StampedStream>;

/// Where and how to connect.
#[derive(Clone)]
pub struct Target {
    pub addr: SocketAddr,
    pub nsp: String,
    pub secret: Vec<u8>,
}

enum Pending {
    /// A setup request (`chat:create`, `room:join`): the caller awaits the ack's data.
    Reply(oneshot::Sender<Value>),
    /// A `message:send` under measurement, sent at this many µs since the stats' epoch:
    /// its ack latency goes to the stats.
    Send(u64),
}

#[derive(Default)]
struct Shared {
    pending: RefCell<HashMap<u64, Pending>>,
    next_id: Cell<u64>,
    open: Cell<bool>,
}

/// A connected, authenticated socket. Dropping it closes the connection.
pub struct Conn {
    pub user: String,
    tx: mpsc::UnboundedSender<String>,
    shared: Rc<Shared>,
    stats: Rc<Stats>,
}

/// Small per-connection buffers: tungstenite reserves the whole read buffer up front
/// (128 KiB by default), which would be 12 GiB at 100k sockets.
fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default().read_buffer_size(4096).write_buffer_size(0).max_message_size(Some(1 << 20))
}

fn packet_prefix(nsp: &str) -> String {
    if nsp == "/" || nsp.is_empty() { String::new() } else { format!("{nsp},") }
}

async fn next_text(ws: &mut Ws) -> Result<String, String> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => return Ok(t.as_str().to_string()),
            Some(Ok(Message::Close(_))) | None => return Err("closed during handshake".into()),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(format!("websocket: {e}")),
        }
    }
}

/// Opens the TCP connection, from `source` when given (bind before connect).
async fn tcp(addr: SocketAddr, source: Option<IpAddr>) -> Result<TcpStream, String> {
    let socket = if addr.is_ipv4() { TcpSocket::new_v4() } else { TcpSocket::new_v6() }.map_err(|e| format!("socket: {e}"))?;
    if let Some(ip) = source {
        socket.bind(SocketAddr::new(ip, 0)).map_err(|e| format!("bind {ip}: {e}"))?;
    }
    let stream = socket.connect(addr).await.map_err(|e| format!("connect: {e}"))?;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// Connects and authenticates `user`; resolves when the server answered the Socket.IO
/// CONNECT. The connection's task then runs on the current `LocalSet`.
pub async fn connect(target: &Target, user: &str, source: Option<IpAddr>, auto_join: bool, stats: Rc<Stats>) -> Result<Conn, String> {
    let stream = tcp(target.addr, source).await?;
    let url = format!("ws://{}/socket.io/?EIO=4&transport=websocket", target.addr);
    let (mut ws, _) = tokio_tungstenite::client_async_with_config(url, StampedStream::new(stream), Some(ws_config()))
        .await
        .map_err(|e| format!("websocket handshake: {e}"))?;
    let open = next_text(&mut ws).await?;
    match decode_engine(&open) {
        Ok(EnginePacket::Open(data)) => {
            Handshake::decode(data).map_err(|e| format!("open packet: {e}"))?;
        }
        _ => return Err(format!("expected an Engine.IO open packet, got {open:.60}")),
    }
    let token = crate::token::mint(&target.secret, user);
    let auth = json!({ "token": token, "autoJoin": auto_join });
    let frame = format!("40{}{}", packet_prefix(&target.nsp), auth);
    ws.send(Message::text(frame)).await.map_err(|e| format!("send CONNECT: {e}"))?;
    loop {
        let text = next_text(&mut ws).await?;
        match decode_engine(&text) {
            Ok(EnginePacket::Ping(data)) => {
                ws.send(Message::text(format!("3{data}"))).await.map_err(|e| format!("pong: {e}"))?;
            }
            Ok(EnginePacket::Message(sio)) => match SocketPacket::decode(sio) {
                Ok(SocketPacket::Connect { .. }) => break,
                Ok(SocketPacket::ConnectError { data, .. }) => {
                    return Err(format!("connect_error {}", data.get("message").and_then(Value::as_str).unwrap_or("?")))
                }
                _ => continue,
            },
            _ => continue,
        }
    }
    let (tx, rx) = mpsc::unbounded_channel();
    let shared = Rc::new(Shared::default());
    shared.open.set(true);
    tokio::task::spawn_local(drive(ws, rx, shared.clone(), stats.clone()));
    Ok(Conn { user: user.to_string(), tx, shared, stats })
}

/// The connection's task: writes what the handle queues, reads until the server closes.
async fn drive(mut ws: Ws, mut rx: mpsc::UnboundedReceiver<String>, shared: Rc<Shared>, stats: Rc<Stats>) {
    loop {
        tokio::select! {
            out = rx.recv() => match out {
                Some(frame) => {
                    if ws.feed(Message::text(frame)).await.is_err() { break; }
                    while let Ok(frame) = rx.try_recv() {
                        if ws.feed(Message::text(frame)).await.is_err() { break; }
                    }
                    if ws.flush().await.is_err() { break; }
                }
                None => {
                    // The handle was dropped: a deliberate close, not an error.
                    shared.open.set(false);
                    let _ = ws.close(None).await;
                    return;
                }
            },
            incoming = ws.next() => match incoming {
                Some(Ok(Message::Text(text))) => {
                    let arrival = ws.get_ref().last_arrival_us();
                    if let Some(reply) = on_text(text.as_str(), arrival, &shared, &stats) {
                        if ws.send(Message::text(reply)).await.is_err() { break; }
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
        }
    }
    shared.open.set(false);
    stats.disconnected();
    // Whoever waits for an ack on this socket will not get one.
    for (_, pending) in shared.pending.borrow_mut().drain() {
        if let Pending::Send(_) = pending {
            stats.ack(Err("DISCONNECTED".into()), 0, None);
        }
    }
}

/// Handles one server frame, which reached this machine at `arrival` (µs since the Unix
/// epoch) if the kernel stamped it; returns the frame to answer with, if any.
fn on_text(text: &str, arrival: Option<u64>, shared: &Shared, stats: &Stats) -> Option<String> {
    let bytes = text.as_bytes();
    match bytes.first() {
        // Engine.IO ping → pong (heartbeats keep idle sockets alive).
        Some(b'2') => return Some(format!("3{}", &text[1..])),
        Some(b'4') => {}
        _ => return None,
    }
    let sio = &text[1..];
    match sio.as_bytes().first() {
        Some(b'2') => {
            // Events: only the name is read; the latency comes from the body marker.
            let (_, _, event) = event_head(sio)?;
            match event.as_str() {
                "message:new" => stats.received(text, false, arrival),
                "inbox:update" => stats.received(text, true, arrival),
                _ => {}
            }
        }
        Some(b'3') => match SocketPacket::decode(sio) {
            Ok(SocketPacket::Ack { id, mut args, .. }) => {
                let pending = shared.pending.borrow_mut().remove(&id);
                let data = if args.is_empty() { Value::Null } else { args.swap_remove(0) };
                match pending {
                    Some(Pending::Reply(tx)) => {
                        let _ = tx.send(data);
                    }
                    Some(Pending::Send(sent_us)) => {
                        if data.get("ok") == Some(&Value::Bool(true)) {
                            stats.ack(Ok(()), sent_us, arrival);
                        } else {
                            let code = data.get("error").and_then(Value::as_str).unwrap_or("BAD_ACK").to_string();
                            stats.ack(Err(code), sent_us, arrival);
                        }
                    }
                    None => stats.error("UNEXPECTED_ACK"),
                }
            }
            _ => stats.error("BAD_FRAME"),
        },
        Some(b'1') => stats.error("SERVER_DISCONNECT"),
        _ => {}
    }
    None
}

impl Conn {
    pub fn is_open(&self) -> bool {
        self.shared.open.get()
    }

    fn next_id(&self) -> u64 {
        let id = self.shared.next_id.get();
        self.shared.next_id.set(id + 1);
        id
    }

    fn emit(&self, id: u64, event: &str, arg: &Value, nsp: &str) -> Result<(), String> {
        let frame = format!("42{}{}[{},{}]", packet_prefix(nsp), id, Value::String(event.into()), arg);
        self.tx.send(frame).map_err(|_| "connection closed".to_string())
    }

    /// Emits `event` and waits for its ack's data (`{ ok, data | error }`).
    pub async fn request(&self, nsp: &str, event: &str, arg: Value) -> Result<Value, String> {
        let id = self.next_id();
        let (tx, rx) = oneshot::channel();
        self.shared.pending.borrow_mut().insert(id, Pending::Reply(tx));
        self.emit(id, event, &arg, nsp)?;
        let reply = tokio::time::timeout(Duration::from_secs(30), rx)
            .await
            .map_err(|_| format!("{event}: no ack in 30 s"))?
            .map_err(|_| format!("{event}: connection closed"))?;
        if reply.get("ok") == Some(&Value::Bool(true)) {
            Ok(reply.get("data").cloned().unwrap_or(Value::Null))
        } else {
            Err(format!("{event}: {reply}"))
        }
    }

    /// Emits a `message:send` under measurement; its ack is counted by the task.
    pub fn send_message(&self, nsp: &str, chat_id: &str, body: &str, client_id: &str) {
        let id = self.next_id();
        self.shared.pending.borrow_mut().insert(id, Pending::Send(self.stats.now_us()));
        let arg = json!({ "chatId": chat_id, "body": body, "clientId": client_id });
        if self.emit(id, "message:send", &arg, nsp).is_err() {
            self.shared.pending.borrow_mut().remove(&id);
        }
    }

    /// Sends still waiting for their ack.
    pub fn unacked(&self) -> usize {
        self.shared.pending.borrow().values().filter(|p| matches!(p, Pending::Send(_))).count()
    }
}
