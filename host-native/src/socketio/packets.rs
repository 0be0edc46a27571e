//! What the client sends, whatever carries it: Engine.IO packets, and the Socket.IO
//! packets inside them (read by the codec's `read_client_packet`, as the edge host reads
//! them), become driver inputs.

use super::session::{Frame, Session};
use super::{SocketHandle, Transport};
use crate::driver::HostInput;
use chat_core::auth::Handshake;
use chat_sio_codec::{read_client_packet, ClientAsks};
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
        let (asks, attachments) = read_client_packet(text, &self.settings.namespace);
        if attachments > 0 {
            session.expect_binary(attachments);
        }
        match asks {
            ClientAsks::Pong => {
                session.pong.notify_waiters();
                return Flow::Pong;
            }
            ClientAsks::Ping(data) => session.send_control(Frame::from(format!("3{data}"))),
            ClientAsks::Close => return Flow::Close,
            ClientAsks::Nothing => {}
            ClientAsks::Refuse(frame) => session.send_control(Frame::from(frame)),
            ClientAsks::Unreadable(error) => {
                tracing::info!(sid = session.sid(), %error, "closing a session on an unreadable packet");
                return Flow::Close;
            }
            ClientAsks::Connect { auth } => {
                let socket = self.socket_id();
                if let Some(credentials) = session.begin_connect(&socket) {
                    let handshake = Handshake { auth, authorization_header: credentials.authorization, query_token: credentials.query_token };
                    self.driver.send(HostInput::Connect { socket: SocketHandle { id: socket, session: session.clone() }, handshake });
                }
            }
            ClientAsks::Event { id, event, payload } => {
                if let Some(socket) = session.connected_socket() {
                    self.driver.send(HostInput::Event { socket, event, payload, ack: id });
                }
            }
            ClientAsks::Disconnect => {
                if let Some(socket) = session.leave() {
                    self.driver.send(HostInput::Disconnect { socket });
                }
            }
        }
        Flow::Continue
    }
}
