//! The WebSocket carrier: one task per connection reads the client's frames, writes the
//! session's queue in batches (one flush per batch) and keeps the heartbeat.

use super::packets::Flow;
use super::session::{Carrier, Frame, Session, Take};
use super::{credentials, EngineError, Transport};
use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use hyper_util::rt::TokioIo;
use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::{sleep, Instant};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// How long a polling session's WebSocket may take from probe to upgrade (Engine.IO's
/// default `upgradeTimeout`).
const UPGRADE_TIMEOUT: Duration = Duration::from_secs(10);

type Socket = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

/// Answers a WebSocket request (a new session, or the upgrade of polling session `sid`)
/// and runs the connection once the protocol has switched.
pub(super) fn upgrade(transport: Arc<Transport>, mut request: Request<Body>, sid: Option<&str>, query: &str) -> Response {
    let Some(accept) = accept_key(request.headers()) else {
        return EngineError::BadRequest.into_response();
    };
    let (session, upgrading) = match sid {
        None => (transport.open(Carrier::WebSocket, credentials(&request, query)), false),
        Some(sid) => match transport.find(sid) {
            Some(session) if session.carrier() == Carrier::Polling => (session, true),
            Some(_) => return EngineError::BadRequest.into_response(),
            None => return EngineError::UnknownSid.into_response(),
        },
    };
    let on_upgrade = hyper::upgrade::on(&mut request);
    drop(request);
    tokio::spawn(async move {
        let io = match on_upgrade.await {
            Ok(upgraded) => TokioIo::new(upgraded),
            Err(error) => {
                tracing::debug!(%error, "WebSocket upgrade failed");
                if !upgrading {
                    transport.close(&session, "upgrade failed");
                }
                return;
            }
        };
        let max = transport.settings.max_payload;
        let config = WebSocketConfig::default()
            .read_buffer_size(crate::ws_buffers::WS_READ_BUFFER_BYTES)
            .max_message_size(Some(max))
            .max_frame_size(Some(max));
        let mut socket = WebSocketStream::from_raw_socket(io, Role::Server, Some(config)).await;
        if upgrading && !probe(&session, &mut socket).await {
            session.abandon_upgrade();
            let _ = socket.close(None).await;
            return;
        }
        let why = run(&transport, &session, &mut socket).await;
        transport.close(&session, why);
        let _ = socket.close(None).await;
    });
    let mut response = StatusCode::SWITCHING_PROTOCOLS.into_response();
    let headers = response.headers_mut();
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    response
}

/// `Sec-WebSocket-Accept` for a valid WebSocket handshake (RFC 6455 §4.2.1).
fn accept_key(headers: &HeaderMap) -> Option<HeaderValue> {
    let has_token = |name: header::HeaderName, token: &str| {
        headers.get_all(name).iter().filter_map(|value| value.to_str().ok()).flat_map(|value| value.split(',')).any(|t| t.trim().eq_ignore_ascii_case(token))
    };
    if !has_token(header::CONNECTION, "upgrade") || !has_token(header::UPGRADE, "websocket") {
        return None;
    }
    if headers.get(header::SEC_WEBSOCKET_VERSION).map(HeaderValue::as_bytes) != Some(b"13") {
        return None;
    }
    let key = headers.get(header::SEC_WEBSOCKET_KEY)?;
    HeaderValue::from_str(&derive_accept_key(key.as_bytes())).ok()
}

/// The upgrade of a polling session: `2probe` → `3probe`, then `5`. False when it failed.
async fn probe(session: &Session, socket: &mut Socket) -> bool {
    let deadline = Instant::now() + UPGRADE_TIMEOUT;
    let mut probed = false;
    loop {
        let message = match tokio::time::timeout_at(deadline, socket.next()).await {
            Ok(Some(Ok(message))) => message,
            _ => return false,
        };
        let Message::Text(text) = message else { continue };
        match text.as_str() {
            "2probe" if !probed => {
                if socket.send(Message::text("3probe")).await.is_err() || !session.start_upgrade() {
                    return false;
                }
                probed = true;
            }
            "5" if probed => return session.finish_upgrade(),
            // Anything else during an upgrade is an error (as Engine.IO's server has it).
            other => {
                tracing::debug!(sid = session.sid(), packet = other, "unexpected packet during an upgrade");
                return false;
            }
        }
    }
}

/// What woke the connection task.
enum Wake {
    Read(Option<Result<Message, tokio_tungstenite::tungstenite::Error>>),
    Heartbeat,
    /// The session is closing and everything queued is written.
    Close,
    WriteFailed,
}

/// Serves the session over `socket` until either side ends it; why it ended.
///
/// Writing never stops reading: frames move from the session's queue into the WebSocket
/// as fast as the peer takes them, while its packets (an answer to a ping, an event) are
/// still read. Frames are taken from the queue only once the last batch is flushed, so a
/// peer that reads slowly leaves them in the bounded queue (`send_buffer`), not in an
/// ever-growing write buffer.
async fn run(transport: &Transport, session: &Arc<Session>, socket: &mut Socket) -> &'static str {
    let settings = &transport.settings;
    let mut batch: VecDeque<Frame> = VecDeque::new();
    let mut unflushed = false;
    let mut heartbeat = pin!(sleep(settings.ping_interval));
    let mut awaiting_pong = false;
    loop {
        let wake = poll_fn(|cx| {
            if let Some(wake) = write(cx, session, socket, &mut batch, &mut unflushed) {
                return Poll::Ready(wake);
            }
            if let Poll::Ready(message) = socket.poll_next_unpin(cx) {
                return Poll::Ready(Wake::Read(message));
            }
            heartbeat.as_mut().poll(cx).map(|()| Wake::Heartbeat)
        })
        .await;
        match wake {
            Wake::Read(None | Some(Err(_)) | Some(Ok(Message::Close(_)))) => return "transport close",
            Wake::Read(Some(Ok(Message::Text(text)))) => match transport.packet(session, text.as_str()) {
                Flow::Continue => {}
                Flow::Pong => {
                    awaiting_pong = false;
                    heartbeat.as_mut().reset(Instant::now() + settings.ping_interval);
                }
                Flow::Close => return "client close",
            },
            Wake::Read(Some(Ok(Message::Binary(_)))) => {
                if !session.take_binary() {
                    return "unexpected binary frame";
                }
            }
            // WebSocket pings are answered by tungstenite.
            Wake::Read(Some(Ok(_))) => {}
            Wake::Close => return "server disconnect",
            Wake::WriteFailed => return "write failed",
            Wake::Heartbeat => {
                if awaiting_pong {
                    return "ping timeout";
                }
                if session.lonely_for() > settings.connect_timeout {
                    return "no socket within the connect timeout";
                }
                session.send_control(Frame::from_static("2"));
                awaiting_pong = true;
                heartbeat.as_mut().reset(Instant::now() + settings.ping_timeout);
            }
        }
    }
}

/// Moves frames from the session into the WebSocket and flushes them, as far as the peer
/// takes them now; `Some` when the connection is to end.
fn write(cx: &mut Context<'_>, session: &Session, socket: &mut Socket, batch: &mut VecDeque<Frame>, unflushed: &mut bool) -> Option<Wake> {
    loop {
        if !batch.is_empty() {
            match socket.poll_ready_unpin(cx) {
                Poll::Ready(Ok(())) => {
                    let frame = batch.pop_front()?;
                    if socket.start_send_unpin(Message::Text(frame)).is_err() {
                        return Some(Wake::WriteFailed);
                    }
                    *unflushed = true;
                    continue;
                }
                Poll::Ready(Err(_)) => return Some(Wake::WriteFailed),
                Poll::Pending => return None,
            }
        }
        if *unflushed {
            match socket.poll_flush_unpin(cx) {
                Poll::Ready(Ok(())) => *unflushed = false,
                Poll::Ready(Err(_)) => return Some(Wake::WriteFailed),
                Poll::Pending => return None,
            }
        }
        if batch.capacity() > 4 * super::session::MAX_QUEUED_FRAMES {
            *batch = VecDeque::new();
        }
        return match session.poll_take(cx, batch) {
            Poll::Ready(Take::Frames) => continue,
            Poll::Ready(Take::Close) => Some(Wake::Close),
            Poll::Pending => None,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, HeaderValue::from_static(value));
        }
        headers
    }

    const HANDSHAKE: [(&str, &str); 4] = [
        ("connection", "keep-alive, Upgrade"),
        ("upgrade", "websocket"),
        ("sec-websocket-version", "13"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ];

    #[test]
    fn a_valid_handshake_gets_the_rfc_6455_accept_key() {
        // The example of RFC 6455 §1.3.
        assert_eq!(accept_key(&headers(&HANDSHAKE)).unwrap(), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[test]
    fn a_handshake_missing_any_part_is_refused() {
        for (left_out, (name, _)) in HANDSHAKE.iter().enumerate() {
            let partial: Vec<_> = HANDSHAKE.iter().enumerate().filter(|(i, _)| *i != left_out).map(|(_, pair)| *pair).collect();
            assert!(accept_key(&headers(&partial)).is_none(), "accepted without {name}");
        }
        let mut old_version = HANDSHAKE;
        old_version[2] = ("sec-websocket-version", "8");
        assert!(accept_key(&headers(&old_version)).is_none());
    }
}
