//! The long-polling carrier: a GET waits for the session's frames, a POST brings the
//! client's packets; a task per polling session keeps the heartbeat until it upgrades.

use super::packets::Flow;
use super::session::{Carrier, PollAnswer, Session};
use super::{credentials, EngineError, Transport};
use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::future::poll_fn;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

/// `GET ?EIO=4&transport=polling`: a new session; the answer is its open packet.
pub(super) fn handshake(transport: &Arc<Transport>, request: &Request<Body>, query: &str) -> Response {
    let session = transport.open(Carrier::Polling, credentials(request, query));
    tokio::spawn(heartbeat(transport.clone(), session.clone()));
    match session.poll_get(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(PollAnswer::Payload(open)) => text(open),
        // The open packet was queued when the session was made.
        _ => EngineError::BadRequest.into_response(),
    }
}

/// `GET …&sid=`: waits for frames to send (the heartbeat's ping comes at the latest).
pub(super) async fn get(transport: &Transport, sid: &str) -> Response {
    let Some(session) = transport.find(sid) else { return EngineError::UnknownSid.into_response() };
    if session.carrier() != Carrier::Polling {
        return EngineError::BadRequest.into_response();
    }
    if !session.begin_get() {
        // Two GETs at once is a broken client (Engine.IO closes the session too).
        transport.close(&session, "overlapping polling GET");
        return EngineError::BadRequest.into_response();
    }
    /// A GET dropped while it waits (its client went away) is no longer waiting.
    struct Waiting<'a>(&'a Session);
    impl Drop for Waiting<'_> {
        fn drop(&mut self) {
            self.0.end_get();
        }
    }
    let waiting = Waiting(&session);
    let answer = poll_fn(|cx| waiting.0.poll_get(cx)).await;
    drop(waiting);
    match answer {
        PollAnswer::Payload(payload) => {
            if session.is_drained_and_closing() {
                transport.close(&session, "server disconnect");
            }
            text(payload)
        }
        PollAnswer::Close => {
            transport.close(&session, "closed");
            text("1".to_owned())
        }
    }
}

/// `POST …&sid=`: the client's packets, separated by U+001E.
pub(super) async fn post(transport: &Transport, sid: &str, body: Body) -> Response {
    let Some(session) = transport.find(sid) else { return EngineError::UnknownSid.into_response() };
    if session.carrier() != Carrier::Polling {
        return EngineError::BadRequest.into_response();
    }
    let max = transport.settings.max_payload;
    let Ok(bytes) = axum::body::to_bytes(body, max).await else {
        // PROTOCOL.md §10: over HTTP an oversize packet is refused with 413.
        let body = json!({ "error": "PAYLOAD_TOO_LARGE", "message": format!("packets larger than {max} bytes are refused") });
        return (StatusCode::PAYLOAD_TOO_LARGE, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response();
    };
    let Ok(payload) = std::str::from_utf8(&bytes) else {
        transport.close(&session, "polling payload is not UTF-8");
        return EngineError::BadRequest.into_response();
    };
    for packet in chat_sio_codec::split_polling_payload(payload) {
        // `b…`: a binary attachment, base64; attachments are dropped.
        let flow = if packet.starts_with('b') {
            if session.take_binary() { Flow::Continue } else { Flow::Close }
        } else {
            transport.packet(&session, packet)
        };
        if flow == Flow::Close {
            transport.close(&session, "client close");
            break;
        }
    }
    (StatusCode::OK, [(header::CONTENT_TYPE, "text/html")], "ok").into_response()
}

fn text(body: String) -> Response {
    (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain; charset=UTF-8")], body).into_response()
}

/// Pings a polling session every interval and closes it when no pong comes in time;
/// ends when the session closes or moves to WebSocket (whose task pings from then on).
async fn heartbeat(transport: Arc<Transport>, session: Arc<Session>) {
    let settings = transport.settings.clone();
    loop {
        tokio::time::sleep(settings.ping_interval).await;
        if session.is_closed() || session.carrier() != Carrier::Polling {
            return;
        }
        if session.lonely_for() > settings.connect_timeout {
            transport.close(&session, "no socket within the connect timeout");
            return;
        }
        let pong = session.pong.notified();
        let mut pong = std::pin::pin!(pong);
        // Listening before the ping goes out, so that no answer is missed.
        pong.as_mut().enable();
        session.send_control(super::session::Frame::from_static("2"));
        if tokio::time::timeout(settings.ping_timeout, pong).await.is_err() {
            if session.carrier() == Carrier::Polling {
                transport.close(&session, "ping timeout");
            }
            return;
        }
    }
}
