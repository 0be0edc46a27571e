//! One object per WebSocket: Engine.IO/Socket.IO framing, the handshake, event
//! validation, heartbeats. Uses the Hibernation API: between packets the object may be
//! evicted while the socket stays open; what it must remember lives in the socket's
//! attachment.

use super::courier::Courier;
use super::{config, ids, log, now};
use crate::addr::socket_id;
use crate::config::EdgeConfig;
use crate::glue::{Core, Dest};
use crate::wire::{Batch, Item, SocketOut};
use chat_core::auth::Handshake;
use chat_core::effect::connect_error_json;
use chat_core::ids::{AckId, SocketId, UserId};
use chat_core::error::ChatError;
use chat_core::intake::{overload_error, EventPace, SenderPace, Verdict};
use chat_core::route::{connect_envelope, event_envelope, event_reply, Envelope, Outbox, Reply, UserMsg};
use chat_core::Effect;
use chat_sio_codec::{ack_frame, event_frame, read_client_packet, ClientAsks, EnginePacket, SocketPacket};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::cell::RefCell;
use worker::*;

/// What the connection object remembers across hibernation (the socket's attachment).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct ConnState {
    sid: String,
    authorization: Option<String>,
    query_token: Option<String>,
    /// Set once the handshake's token passed.
    user: Option<String>,
    /// Waiting for the user object to let the socket in.
    pending: bool,
    connected: bool,
    last_pong: u64,
    ping_at: Option<u64>,
    /// Binary frames still to skip (attachments of a binary packet, never used by the chat).
    #[serde(default)]
    skip_binary: u64,
    /// Acks answered here (validation errors), not yet reported: they go to the user object
    /// with the socket's next event or its disconnect, for `/metrics`.
    #[serde(default)]
    counts: crate::directory::Counts,
    /// This connection's event pace (the native host keeps one per user, over all devices).
    #[serde(default)]
    pace: Option<SenderPace>,
}

#[durable_object]
pub struct ConnObject {
    state: State,
    env: Env,
    courier: Courier,
    /// Packets for a socket still waiting for its CONNECT answer.
    held: RefCell<Vec<String>>,
}

impl ConnObject {
    fn socket(&self) -> Option<WebSocket> {
        self.state.get_websockets().into_iter().next()
    }

    fn load(ws: &WebSocket) -> ConnState {
        ws.deserialize_attachment::<ConnState>().ok().flatten().unwrap_or_default()
    }

    fn save(ws: &WebSocket, state: &ConnState) {
        if let Err(error) = ws.serialize_attachment(state) {
            log(chat_core::effect::LogLevel::Error, None, &format!("cannot keep the socket's state: {error}"));
        }
    }

    fn the_socket_id(state: &ConnState) -> Option<SocketId> {
        state.user.as_deref().map(|user| socket_id(&state.sid, &UserId::new(user)))
    }

    async fn open(&self, req: Request) -> Result<Response> {
        let cfg = config(&self.env)?;
        let sid = req.headers().get("x-chat-sid")?.unwrap_or_default();
        let url = req.url()?;
        let query_token = url.query_pairs().find(|(k, _)| k == "token").map(|(_, v)| v.into_owned());
        let pair = WebSocketPair::new()?;
        self.state.accept_web_socket(&pair.server);
        let now = now().0;
        let state = ConnState {
            sid: sid.clone(),
            authorization: req.headers().get("authorization")?,
            query_token,
            last_pong: now,
            ..ConnState::default()
        };
        Self::save(&pair.server, &state);
        let open = chat_sio_codec::Handshake {
            sid,
            upgrades: vec![],
            ping_interval_ms: cfg.ping_interval_ms,
            ping_timeout_ms: cfg.ping_timeout_ms,
            max_payload: cfg.limits.max_payload_bytes as u64,
        };
        pair.server.send_with_str(open.encode())?;
        self.state.storage().set_alarm(ScheduledTime::from(cfg.ping_interval_ms as i64)).await?;
        Response::from_websocket(pair.client)
    }

    /// Packets from the user object.
    async fn deliver(&self, batch: Batch) -> Result<()> {
        let Some(ws) = self.socket() else { return Ok(()) };
        let cfg = config(&self.env)?;
        let mut state = Self::load(&ws);
        for item in batch.items {
            let Item::Socket { socket, out } = item else { continue };
            if Self::the_socket_id(&state).as_ref() != Some(&socket) {
                continue;
            }
            match out {
                SocketOut::Accept => {
                    if !state.pending {
                        continue;
                    }
                    state.pending = false;
                    state.connected = true;
                    Self::save(&ws, &state);
                    let connect = SocketPacket::Connect { nsp: cfg.namespace.clone(), data: Some(json!({ "sid": state.sid })) };
                    ws.send_with_str(connect.to_frame())?;
                    for frame in self.held.borrow_mut().drain(..) {
                        ws.send_with_str(frame)?;
                    }
                }
                SocketOut::Reject { code, data } => {
                    state.pending = false;
                    state.user = None;
                    Self::save(&ws, &state);
                    self.held.borrow_mut().clear();
                    let refused = SocketPacket::ConnectError { nsp: cfg.namespace.clone(), data: json!({ "message": code, "data": data }) };
                    ws.send_with_str(refused.to_frame())?;
                }
                SocketOut::Ack { ack, reply } => {
                    let frame = ack_frame(&cfg.namespace, ack.0, reply.json.as_str());
                    self.send_or_hold(&ws, &state, frame)?;
                }
                SocketOut::Event { event, payload } => {
                    let frame = event_frame(&cfg.namespace, &event, payload.as_str());
                    self.send_or_hold(&ws, &state, frame)?;
                }
            }
        }
        Ok(())
    }

    fn send_or_hold(&self, ws: &WebSocket, state: &ConnState, frame: String) -> Result<()> {
        if state.connected {
            ws.send_with_str(frame)
        } else {
            if state.pending {
                self.held.borrow_mut().push(frame);
            }
            Ok(())
        }
    }

    /// The socket is gone (closed, failed, or left the namespace): its user object hears it.
    async fn gone(&self, ws: &WebSocket) -> Result<()> {
        let mut state = Self::load(ws);
        let socket = Self::the_socket_id(&state);
        let was_in = state.connected || state.pending;
        state.connected = false;
        state.pending = false;
        let counts = std::mem::take(&mut state.counts);
        Self::save(ws, &state);
        self.held.borrow_mut().clear();
        if let (Some(socket), true) = (socket, was_in) {
            let user = UserId::new(state.user.clone().unwrap_or_default());
            let mut items = vec![(Dest::User(user.clone()), Item::User(UserMsg::Disconnect { socket }))];
            if !counts.is_empty() {
                items.push((Dest::User(user), Item::DirCounts(counts)));
            }
            self.courier.send(&self.env, None, items).await;
        }
        Ok(())
    }

    /// Answers an event with `error` from here, without the user object (which counts it
    /// with the socket's next event).
    fn answer_here(&self, ws: &WebSocket, state: &mut ConnState, cfg: &EdgeConfig, reply: Reply, error: ChatError) -> Result<()> {
        let mut out = Outbox::default();
        let mut core = Core::new(cfg.limits.clone(), ids());
        core.run(now(), &mut out, |ctx| ctx.reply_err(&reply, error));
        for effect in out.effects {
            match effect {
                Effect::Log { level, correlation_id, message } => log(level, correlation_id.as_ref().map(|c| c.as_str()), &message),
                Effect::Ack { ack, reply, .. } => {
                    state.counts.ack(reply.code());
                    Self::save(ws, state);
                    ws.send_with_str(ack_frame(&cfg.namespace, ack.0, reply.json.as_str()))?
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// A Socket.IO packet for the chat namespace (see `chat_sio_codec::read_client_packet`).
    async fn packet(&self, ws: &WebSocket, asks: ClientAsks, cfg: &EdgeConfig) -> Result<()> {
        let mut state = Self::load(ws);
        match asks {
            ClientAsks::Connect { auth } => {
                if state.connected || state.pending {
                    return Ok(());
                }
                let handshake = Handshake { auth, authorization_header: state.authorization.clone(), query_token: state.query_token.clone() };
                let mut out = Outbox::default();
                let mut core = Core::new(cfg.limits.clone(), ids());
                let provisional = SocketId::new(state.sid.clone());
                let admitted = core.run(now(), &mut out, |ctx| connect_envelope(ctx, provisional, &handshake, &cfg.secret));
                for effect in out.effects {
                    match effect {
                        Effect::Log { level, correlation_id, message } => log(level, correlation_id.as_ref().map(|c| c.as_str()), &message),
                        Effect::RejectConnection { error, correlation_id, .. } => {
                            let data = connect_error_json(&error, &correlation_id);
                            let refused = SocketPacket::ConnectError { nsp: cfg.namespace.clone(), data: json!({ "message": error.code(), "data": data }) };
                            ws.send_with_str(refused.to_frame())?;
                        }
                        _ => {}
                    }
                }
                if let Some((user, Envelope::ToUser(_, UserMsg::Connect { auto_join, .. }))) = admitted {
                    let socket = socket_id(&state.sid, &user);
                    state.user = Some(user.to_string());
                    state.pending = true;
                    Self::save(ws, &state);
                    let connect = UserMsg::Connect { socket, auto_join };
                    self.courier.send(&self.env, None, vec![(Dest::User(user), Item::User(connect))]).await;
                }
            }
            ClientAsks::Event { id, event, payload } => {
                let (true, Some(socket)) = (state.connected, Self::the_socket_id(&state)) else { return Ok(()) };
                let at = now();
                let pace = state.pace.get_or_insert_with(|| SenderPace::new(EventPace::of(&cfg.limits), at));
                let verdict = pace.judge(at, true, true);
                Self::save(ws, &state);
                match verdict {
                    Verdict::Serve => {}
                    Verdict::Refuse => {
                        let reply = event_reply(socket, event, id.map(AckId));
                        return self.answer_here(ws, &mut state, cfg, reply, overload_error());
                    }
                    Verdict::Flood => {
                        log(chat_core::effect::LogLevel::Warn, None, &format!("closing socket {}: events past its pace and refusal budget", state.sid));
                        // As the native host does: a Socket.IO disconnect ("io server disconnect"), then the close.
                        let _ = ws.send_with_str(SocketPacket::Disconnect { nsp: cfg.namespace.clone() }.to_frame());
                        let _ = ws.close(Some(1008), Some("event flood"));
                        return self.gone(ws).await;
                    }
                }
                let user = UserId::new(state.user.clone().unwrap_or_default());
                match event_envelope(user, socket, event, &payload, id.map(AckId)) {
                    Ok(Envelope::ToUser(user, msg)) => {
                        let mut items = vec![(Dest::User(user.clone()), Item::User(msg))];
                        if !state.counts.is_empty() {
                            items.push((Dest::User(user), Item::DirCounts(std::mem::take(&mut state.counts))));
                            Self::save(ws, &state);
                        }
                        self.courier.send(&self.env, None, items).await;
                    }
                    Ok(Envelope::ToChat(..)) => {}
                    Err((reply, error)) => self.answer_here(ws, &mut state, cfg, reply, error)?,
                }
            }
            ClientAsks::Disconnect => self.gone(ws).await?,
            // Everything else is answered where the frame is read (`websocket_message`).
            _ => {}
        }
        Ok(())
    }
}

impl DurableObject for ConnObject {
    fn new(state: State, env: Env) -> Self {
        Self { state, env, courier: Courier::default(), held: RefCell::new(Vec::new()) }
    }

    async fn fetch(&self, req: Request) -> Result<Response> {
        match req.path().as_str() {
            "/connect" => self.open(req).await,
            "/batch" => {
                let mut req = req;
                let batch: Batch = super::read_json(&mut req).await?;
                self.deliver(batch).await?;
                Response::ok("")
            }
            _ => Response::error("not found", 404),
        }
    }

    async fn websocket_message(&self, ws: WebSocket, message: WebSocketIncomingMessage) -> Result<()> {
        let cfg = config(&self.env)?;
        let text = match message {
            WebSocketIncomingMessage::String(text) => text,
            WebSocketIncomingMessage::Binary(_) => {
                let mut state = Self::load(&ws);
                if state.skip_binary > 0 {
                    state.skip_binary -= 1;
                    Self::save(&ws, &state);
                    return Ok(());
                }
                let _ = ws.close(Some(1003), Some("unexpected binary frame"));
                return self.gone(&ws).await;
            }
        };
        if text.len() > cfg.limits.max_payload_bytes {
            // Socket.IO cannot answer an oversize packet: the connection closes (§10).
            let _ = ws.close(Some(1009), Some("message too big"));
            return self.gone(&ws).await;
        }
        let (asks, attachments) = read_client_packet(&text, &cfg.namespace);
        if attachments > 0 {
            let mut state = Self::load(&ws);
            state.skip_binary += attachments;
            Self::save(&ws, &state);
        }
        match asks {
            ClientAsks::Pong => {
                let mut state = Self::load(&ws);
                state.last_pong = now().0;
                Self::save(&ws, &state);
                Ok(())
            }
            ClientAsks::Ping(data) => ws.send_with_str(format!("3{data}")),
            ClientAsks::Close => {
                let _ = ws.close(Some(1000), Some("client closed"));
                self.gone(&ws).await
            }
            ClientAsks::Nothing => Ok(()),
            ClientAsks::Refuse(frame) => ws.send_with_str(frame),
            ClientAsks::Unreadable(error) => {
                log(chat_core::effect::LogLevel::Warn, None, &format!("closing socket on a malformed packet: {error}"));
                let _ = ws.close(Some(1002), Some("parse error"));
                self.gone(&ws).await
            }
            asks @ (ClientAsks::Connect { .. } | ClientAsks::Event { .. } | ClientAsks::Disconnect) => self.packet(&ws, asks, &cfg).await,
        }
    }

    async fn websocket_close(&self, ws: WebSocket, _code: usize, _reason: String, _was_clean: bool) -> Result<()> {
        self.gone(&ws).await
    }

    async fn websocket_error(&self, ws: WebSocket, _error: Error) -> Result<()> {
        self.gone(&ws).await
    }

    /// The Engine.IO heartbeat: a ping per interval; no pong within the timeout closes.
    async fn alarm(&self) -> Result<Response> {
        let Some(ws) = self.socket() else { return Response::ok("") };
        let cfg = config(&self.env)?;
        let now = now().0;
        let mut state = Self::load(&ws);
        if state.ping_at.is_some_and(|at| state.last_pong < at && now >= at + cfg.ping_timeout_ms) {
            let _ = ws.close(Some(1000), Some("ping timeout"));
            self.gone(&ws).await?;
            return Response::ok("");
        }
        ws.send_with_str(chat_sio_codec::encode_engine(&EnginePacket::Ping("")))?;
        state.ping_at = Some(now);
        Self::save(&ws, &state);
        self.state.storage().set_alarm(ScheduledTime::from(cfg.ping_interval_ms as i64)).await?;
        Response::ok("")
    }
}
