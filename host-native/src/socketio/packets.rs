//! What the client sends, whatever carries it: Engine.IO packets, and the Socket.IO
//! packets inside them, become driver inputs.

use super::session::{Frame, Session};
use super::{SocketHandle, Transport};
use crate::driver::HostInput;
use chat_core::auth::Handshake;
use chat_sio_codec::{decode_engine, EnginePacket, SocketPacket};
use serde_json::{json, Value};
use std::sync::Arc;

/// What the carrier does after a packet.
#[derive(Debug, PartialEq, Eq)]
pub enum Flow {
    Continue,
    /// The client answered the heartbeat.
    Pong,
    /// The client closed the session, or sent what cannot be read: close it.
    Close,
}

impl Transport {
    /// One Engine.IO text packet from the client.
    pub(super) fn packet(&self, session: &Arc<Session>, text: &str) -> Flow {
        match decode_engine(text) {
            Ok(EnginePacket::Message(body)) => self.socket_packet(session, body),
            Ok(EnginePacket::Pong(_)) => {
                session.pong.notify_waiters();
                Flow::Pong
            }
            // Engine.IO v4 clients do not ping, but an answer costs nothing.
            Ok(EnginePacket::Ping(data)) => {
                session.send_control(Frame::from(format!("3{data}")));
                Flow::Continue
            }
            Ok(EnginePacket::Close) => Flow::Close,
            Ok(EnginePacket::Noop | EnginePacket::Upgrade | EnginePacket::Open(_)) => Flow::Continue,
            Err(error) => {
                tracing::info!(sid = session.sid(), %error, "closing a session on an unreadable Engine.IO packet");
                Flow::Close
            }
        }
    }

    fn socket_packet(&self, session: &Arc<Session>, body: &str) -> Flow {
        let attachments = chat_sio_codec::attachments(body);
        if attachments > 0 {
            session.expect_binary(attachments);
        }
        let packet = match SocketPacket::decode(body) {
            Ok(packet) => packet,
            // An event whose arguments do not parse is still an event: the core answers it.
            Err(error) => match chat_sio_codec::event_head(body) {
                Some((nsp, id, event)) => SocketPacket::Event { nsp, id, event, args: Vec::new() },
                None => {
                    tracing::info!(sid = session.sid(), %error, "closing a session on an unreadable Socket.IO packet");
                    return Flow::Close;
                }
            },
        };
        let namespace = &self.settings.namespace;
        if packet.nsp() != namespace {
            if let SocketPacket::Connect { nsp, .. } = packet {
                let refused = SocketPacket::ConnectError { nsp, data: json!({ "message": "Invalid namespace" }) };
                session.send_control(Frame::from(refused.to_frame()));
            }
            return Flow::Continue;
        }
        match packet {
            SocketPacket::Connect { data, .. } => {
                let socket = self.socket_id();
                let Some(credentials) = session.begin_connect(&socket) else { return Flow::Continue };
                let handshake = Handshake {
                    auth: data.filter(|auth| !auth.is_null()),
                    authorization_header: credentials.authorization,
                    query_token: credentials.query_token,
                };
                self.driver.send(HostInput::Connect { socket: SocketHandle { id: socket, session: session.clone() }, handshake });
            }
            SocketPacket::Event { id, event, args, .. } => {
                if let Some(socket) = session.connected_socket() {
                    let payload = args.into_iter().next().unwrap_or(Value::Null);
                    self.driver.send(HostInput::Event { socket, event, payload, ack: id });
                }
            }
            SocketPacket::Disconnect { .. } => {
                if let Some(socket) = session.leave() {
                    self.driver.send(HostInput::Disconnect { socket });
                }
            }
            // Answers to server emits (the server asks for none) and client-sent errors.
            SocketPacket::Ack { .. } | SocketPacket::ConnectError { .. } => {}
        }
        Flow::Continue
    }
}
