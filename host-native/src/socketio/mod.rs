//! The Socket.IO server of PROTOCOL.md §1: Engine.IO v4 (WebSocket, and long-polling with
//! upgrade) carrying Socket.IO v5, one namespace (the chat's), one socket per session.
//!
//! Why our own instead of socketioxide: a connection there cost ~15 KB of tasks and
//! channels before any chat state (three tasks and a 32-slot packet channel per socket,
//! see bench/README.md), and each emit went through a channel of its own. Here a
//! WebSocket connection is one task; the driver puts frames straight into the session's
//! queue ([`session::Session`]), and a broadcast writes its frame once for every socket.
//! Packets are read and written by the project's codec (`chat-sio-codec`), the same as the
//! edge host's.

pub mod ids;
mod packets;
mod polling;
pub mod session;
mod websocket;

use crate::cluster::wire::Naming;
use crate::driver::{DriverHandle, HostInput};
use crate::query::query_param;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use chat_core::ids::SocketId;
use session::{Carrier, Credentials, Frame, Session};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// Where the server answers (socket.io-client's default `path`).
pub const PATH: &str = "/socket.io";

/// The transport's settings.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The chat namespace (`/` or `/api/v1/sockets`, …).
    pub namespace: String,
    pub ping_interval: Duration,
    pub ping_timeout: Duration,
    /// How long a session may stay without a socket (Socket.IO's `connectTimeout`): a
    /// client refused, or gone from the namespace, must not hold a session by answering
    /// pings alone. Checked at each heartbeat.
    pub connect_timeout: Duration,
    /// Largest packet (WebSocket message or polling body) accepted, in bytes.
    pub max_payload: usize,
}

/// What the driver holds for a socket: its id and the session that carries its frames.
#[derive(Clone)]
pub struct SocketHandle {
    pub id: SocketId,
    pub session: Arc<Session>,
}

/// Every live session, by sid (polling requests and upgrades find theirs here).
pub struct Transport {
    settings: Settings,
    driver: DriverHandle,
    naming: Naming,
    sessions: Mutex<HashMap<Box<str>, Arc<Session>>>,
}

impl Transport {
    pub fn new(settings: Settings, driver: DriverHandle, naming: Naming) -> Arc<Self> {
        Arc::new(Self { settings, driver, naming, sessions: Mutex::new(HashMap::new()) })
    }

    fn sessions(&self) -> MutexGuard<'_, HashMap<Box<str>, Arc<Session>>> {
        // Plain map operations cannot leave it half-changed.
        self.sessions.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A new session, registered, with its Engine.IO open packet queued first.
    fn open(&self, carrier: Carrier, credentials: Credentials) -> Arc<Session> {
        let sid = ids::session_id();
        let upgrades = match carrier {
            Carrier::Polling => vec!["websocket".to_owned()],
            Carrier::WebSocket => Vec::new(),
        };
        let open = chat_sio_codec::Handshake {
            sid: sid.clone(),
            upgrades,
            ping_interval_ms: self.settings.ping_interval.as_millis() as u64,
            ping_timeout_ms: self.settings.ping_timeout.as_millis() as u64,
            max_payload: self.settings.max_payload as u64,
        };
        let session = Arc::new(Session::new(sid.clone(), carrier, credentials, Frame::from(open.encode())));
        self.sessions().insert(sid.into_boxed_str(), session.clone());
        session
    }

    fn find(&self, sid: &str) -> Option<Arc<Session>> {
        self.sessions().get(sid).cloned()
    }

    /// Ends a session for good; the driver hears that its socket is gone.
    fn close(&self, session: &Session, why: &'static str) {
        self.sessions().remove(session.sid());
        if let Some(socket) = session.close() {
            tracing::debug!(%socket, why, "socket closed");
            self.driver.send(HostInput::Disconnect { socket });
        }
    }

    /// Shutdown: every socket gets its DISCONNECT packet; waits up to `grace` for them to go out.
    pub async fn close_all(&self, disconnect: &Frame, grace: Duration) {
        let sessions: Vec<Arc<Session>> = self.sessions().values().cloned().collect();
        for session in &sessions {
            if let Some(socket) = session.leave() {
                session.disconnect(&socket, disconnect.clone());
            } else {
                self.close(session, "shutdown");
            }
        }
        let deadline = tokio::time::Instant::now() + grace;
        while !self.sessions().is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn socket_id(&self) -> SocketId {
        self.naming.socket(&ids::socket_id())
    }
}

/// Engine.IO's error answers (`{ code, message }`, HTTP 400).
#[derive(Debug, Clone, Copy)]
enum EngineError {
    UnknownTransport,
    UnknownSid,
    BadHandshakeMethod,
    BadRequest,
    UnsupportedVersion,
}

impl IntoResponse for EngineError {
    fn into_response(self) -> Response {
        let (code, message) = match self {
            EngineError::UnknownTransport => (0, "Transport unknown"),
            EngineError::UnknownSid => (1, "Session ID unknown"),
            EngineError::BadHandshakeMethod => (2, "Bad handshake method"),
            EngineError::BadRequest => (3, "Bad request"),
            EngineError::UnsupportedVersion => (5, "Unsupported protocol version"),
        };
        let body = serde_json::json!({ "code": code, "message": message }).to_string();
        (StatusCode::BAD_REQUEST, [(header::CONTENT_TYPE, "application/json")], body).into_response()
    }
}

/// Every request under [`PATH`]: handshakes, polling GETs and POSTs, WebSocket upgrades.
pub async fn entry(State(transport): State<Arc<Transport>>, request: Request<Body>) -> Response {
    let query = request.uri().query().unwrap_or("").to_owned();
    if query_param(&query, "EIO").as_deref() != Some(chat_sio_codec::EIO_VERSION) {
        return EngineError::UnsupportedVersion.into_response();
    }
    let sid = query_param(&query, "sid");
    match query_param(&query, "transport").as_deref() {
        Some("websocket") => websocket::upgrade(transport, request, sid.as_deref(), &query),
        Some("polling") => match (sid, request.method().clone()) {
            (None, Method::GET) => polling::handshake(&transport, &request, &query),
            (None, _) => EngineError::BadHandshakeMethod.into_response(),
            (Some(sid), Method::GET) => polling::get(&transport, &sid).await,
            (Some(sid), Method::POST) => polling::post(&transport, &sid, request.into_body()).await,
            (Some(_), _) => EngineError::BadRequest.into_response(),
        },
        _ => EngineError::UnknownTransport.into_response(),
    }
}

/// What the opening request carries for the Socket.IO handshake.
fn credentials(request: &Request<Body>, query: &str) -> Credentials {
    Credentials { authorization: crate::http::authorization(request.headers()), query_token: query_param(query, "token") }
}
