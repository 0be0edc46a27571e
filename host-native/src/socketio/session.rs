//! One Engine.IO session: its queue of frames to send, which transport carries them, and
//! the one Socket.IO socket it may hold (the chat namespace's).
//!
//! The driver queues frames from its task; the session's writer (the WebSocket task, or a
//! waiting polling GET) takes them all at once. One lock, one queue and one waker per
//! session: no channel, no task of its own.

use chat_core::ids::SocketId;
use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::Utf8Bytes;

/// One text frame: an Engine.IO packet, shared by every socket a broadcast goes to.
pub type Frame = Utf8Bytes;

/// Frames one session may have waiting to be written (see [`crate::send_buffer`]).
pub use crate::send_buffer::MAX_BUFFERED_PACKETS as MAX_QUEUED_FRAMES;

/// The outcome of queueing a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    Queued,
    /// The queue is full: the frame was dropped.
    Full,
    /// The session is closing or closed: the frame was dropped.
    Closed,
}

/// What a writer is to do next.
#[derive(Debug, PartialEq, Eq)]
pub enum Take {
    /// Write these frames (moved into the writer's batch).
    Frames,
    /// Nothing is left to write and the session is closing: close the transport.
    Close,
}

/// What a polling GET answers.
#[derive(Debug, PartialEq, Eq)]
pub enum PollAnswer {
    /// These frames, joined with the record separator.
    Payload(String),
    /// The session is closed (or is closing with nothing left): Engine.IO's close packet.
    Close,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Carrier {
    /// Long-polling (the WebSocket may be probing, see `upgrading`).
    Polling,
    WebSocket,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Open,
    /// Write what is queued, then close (a server-side disconnect).
    Closing,
    Closed,
}

/// The Socket.IO socket of the session.
#[derive(Debug, Clone, PartialEq, Eq)]
enum SocketState {
    None,
    /// The CONNECT packet is with the driver, waiting for the core's answer.
    Connecting(SocketId),
    Connected(SocketId),
}

/// What the request that opened the session carried for the Socket.IO handshake (PROTOCOL.md
/// §1: a token may come in the header or the query); dropped once the socket is in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    pub authorization: Option<String>,
    pub query_token: Option<String>,
}

struct State {
    queue: VecDeque<Frame>,
    /// The writer waiting for frames (the WebSocket task or a polling GET).
    writer: Option<Waker>,
    phase: Phase,
    carrier: Carrier,
    /// A WebSocket probe succeeded: a waiting GET is released with a noop.
    upgrading: bool,
    /// A polling GET is waiting.
    get_waiting: bool,
    socket: SocketState,
    /// Binary frames still to come for the last binary packet; they are dropped.
    skip_binary: u64,
    credentials: Option<Box<Credentials>>,
    /// Since when the session has had no socket (see [`Session::lonely_for`]).
    lonely_since: Option<Instant>,
}

pub struct Session {
    sid: Box<str>,
    state: Mutex<State>,
    /// A pong arrived (the polling heartbeat waits for it).
    pub(crate) pong: Notify,
}

impl Session {
    pub fn new(sid: String, carrier: Carrier, credentials: Credentials, open: Frame) -> Self {
        let credentials = (credentials != Credentials::default()).then(|| Box::new(credentials));
        let state = State {
            queue: VecDeque::from([open]),
            writer: None,
            phase: Phase::Open,
            carrier,
            upgrading: false,
            get_waiting: false,
            socket: SocketState::None,
            skip_binary: 0,
            credentials,
            lonely_since: Some(Instant::now()),
        };
        Self { sid: sid.into_boxed_str(), state: Mutex::new(state), pong: Notify::new() }
    }

    pub fn sid(&self) -> &str {
        &self.sid
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // The lock guards plain data and nothing panics while holding it; a poisoned lock
        // still holds a consistent queue, so carry on with it.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues a frame for the client, unless the queue is full or the session is ending.
    pub fn send(&self, frame: Frame) -> Sent {
        let mut state = self.state();
        if state.phase != Phase::Open {
            return Sent::Closed;
        }
        if state.queue.len() >= MAX_QUEUED_FRAMES {
            return Sent::Full;
        }
        state.push(frame);
        Sent::Queued
    }

    /// Queues a frame of the protocol itself (heartbeat, handshake answers) past the bound:
    /// there is at most one of each at a time.
    pub fn send_control(&self, frame: Frame) {
        let mut state = self.state();
        if state.phase == Phase::Open {
            state.push(frame);
        }
    }

    /// The core let the socket in: its CONNECT packet goes out, before anything else for it.
    /// False when the socket is no longer waiting (its client left).
    pub fn accept(&self, socket: &SocketId, connect: Frame) -> bool {
        let mut state = self.state();
        if state.phase != Phase::Open || state.socket != SocketState::Connecting(socket.clone()) {
            return false;
        }
        state.socket = SocketState::Connected(socket.clone());
        state.credentials = None;
        state.push(connect);
        true
    }

    /// The core refused the socket: its CONNECT_ERROR goes out; the client may try again.
    pub fn refuse(&self, socket: &SocketId, connect_error: Frame) {
        let mut state = self.state();
        if state.socket == SocketState::Connecting(socket.clone()) {
            state.socket = SocketState::None;
            state.lonely_since = Some(Instant::now());
            if state.phase == Phase::Open {
                state.push(connect_error);
            }
        }
    }

    /// The server disconnects the socket: its DISCONNECT packet goes out after what is
    /// queued (past the bound), then the session closes. True when the socket was there.
    pub fn disconnect(&self, socket: &SocketId, disconnect: Frame) -> bool {
        let mut state = self.state();
        let was_there = state.socket_id() == Some(socket);
        if was_there {
            state.socket = SocketState::None;
        }
        if state.phase == Phase::Open {
            state.push(disconnect);
            state.phase = Phase::Closing;
        }
        was_there
    }

    /// Marks a CONNECT packet as handed to the driver under `socket`; the credentials of the
    /// opening request, or `None` when a socket is there already (the packet is ignored).
    pub fn begin_connect(&self, socket: &SocketId) -> Option<Credentials> {
        let mut state = self.state();
        if state.phase != Phase::Open || state.socket != SocketState::None {
            return None;
        }
        state.socket = SocketState::Connecting(socket.clone());
        state.lonely_since = None;
        Some(state.credentials.as_deref().cloned().unwrap_or_default())
    }

    /// The connected socket, for an event to be handed on.
    pub fn connected_socket(&self) -> Option<SocketId> {
        match &self.state().socket {
            SocketState::Connected(socket) => Some(socket.clone()),
            _ => None,
        }
    }

    /// The client left the namespace: the socket that was there (connected or connecting).
    pub fn leave(&self) -> Option<SocketId> {
        let mut state = self.state();
        state.lonely_since.get_or_insert_with(Instant::now);
        state.take_socket()
    }

    /// Closes the session: writers stop; the socket that was there (to report as gone).
    /// `None` also when it was closed already.
    pub fn close(&self) -> Option<SocketId> {
        let mut state = self.state();
        if state.phase == Phase::Closed {
            return None;
        }
        state.phase = Phase::Closed;
        state.queue = VecDeque::new();
        state.wake_writer();
        state.take_socket()
    }

    /// How long the session has been without a socket (zero while it has one).
    pub fn lonely_for(&self) -> Duration {
        self.state().lonely_since.map_or(Duration::ZERO, |since| since.elapsed())
    }

    pub fn is_closed(&self) -> bool {
        self.state().phase == Phase::Closed
    }

    pub fn carrier(&self) -> Carrier {
        self.state().carrier
    }

    /// Binary frames of the packet just read will follow; they are to be dropped.
    pub fn expect_binary(&self, count: u64) {
        let mut state = self.state();
        state.skip_binary = state.skip_binary.saturating_add(count);
    }

    /// A binary frame arrived: true when it was an expected attachment (dropped).
    pub fn take_binary(&self) -> bool {
        let mut state = self.state();
        if state.skip_binary == 0 {
            return false;
        }
        state.skip_binary -= 1;
        true
    }

    /// The WebSocket probe of a polling session answered: a waiting GET is let go.
    pub fn start_upgrade(&self) -> bool {
        let mut state = self.state();
        if state.phase == Phase::Closed || state.carrier != Carrier::Polling {
            return false;
        }
        state.upgrading = true;
        state.wake_writer();
        true
    }

    /// The upgrade is complete: the WebSocket carries everything from now on.
    pub fn finish_upgrade(&self) -> bool {
        let mut state = self.state();
        if state.phase == Phase::Closed || !state.upgrading {
            return false;
        }
        state.carrier = Carrier::WebSocket;
        state.upgrading = false;
        // A GET still waiting is answered (with a noop) and the WebSocket writer takes over.
        state.wake_writer();
        true
    }

    /// The probe failed or timed out: polling goes on.
    pub fn abandon_upgrade(&self) {
        self.state().upgrading = false;
    }

    /// For the WebSocket writer: frames to write, moved into `batch` (which must be empty).
    pub fn poll_take(&self, cx: &mut Context<'_>, batch: &mut VecDeque<Frame>) -> Poll<Take> {
        let mut state = self.state();
        if state.carrier == Carrier::WebSocket && !state.queue.is_empty() {
            std::mem::swap(&mut state.queue, batch);
            return Poll::Ready(Take::Frames);
        }
        if state.phase != Phase::Open {
            return Poll::Ready(Take::Close);
        }
        state.park(cx);
        Poll::Pending
    }

    /// Registers a polling GET; false when one is waiting already (a protocol error).
    pub fn begin_get(&self) -> bool {
        let mut state = self.state();
        if state.get_waiting {
            return false;
        }
        state.get_waiting = true;
        true
    }

    pub fn end_get(&self) {
        self.state().get_waiting = false;
    }

    /// For a polling GET: what to answer, once there is something.
    pub fn poll_get(&self, cx: &mut Context<'_>) -> Poll<PollAnswer> {
        let mut state = self.state();
        if !state.queue.is_empty() && state.carrier == Carrier::Polling {
            let mut payload = String::new();
            for (i, frame) in state.queue.drain(..).enumerate() {
                if i > 0 {
                    payload.push('\u{1e}');
                }
                payload.push_str(frame.as_str());
            }
            return Poll::Ready(PollAnswer::Payload(payload));
        }
        if state.phase != Phase::Open {
            return Poll::Ready(PollAnswer::Close);
        }
        if state.upgrading || state.carrier == Carrier::WebSocket {
            return Poll::Ready(PollAnswer::Payload("6".to_owned()));
        }
        state.park(cx);
        Poll::Pending
    }

    /// Whether the session is closing and everything queued is gone: time to close it.
    pub fn is_drained_and_closing(&self) -> bool {
        let state = self.state();
        state.phase == Phase::Closing && state.queue.is_empty()
    }
}

impl State {
    fn push(&mut self, frame: Frame) {
        self.queue.push_back(frame);
        self.wake_writer();
    }

    fn wake_writer(&mut self) {
        if let Some(writer) = self.writer.take() {
            writer.wake();
        }
    }

    fn park(&mut self, cx: &mut Context<'_>) {
        match &self.writer {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            _ => self.writer = Some(cx.waker().clone()),
        }
    }

    /// The socket that was there (connected or connecting); none is there afterwards.
    fn take_socket(&mut self) -> Option<SocketId> {
        match std::mem::replace(&mut self.socket, SocketState::None) {
            SocketState::Connecting(socket) | SocketState::Connected(socket) => Some(socket),
            SocketState::None => None,
        }
    }

    fn socket_id(&self) -> Option<&SocketId> {
        match &self.socket {
            SocketState::Connecting(socket) | SocketState::Connected(socket) => Some(socket),
            SocketState::None => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::poll_fn;

    fn frame(text: &str) -> Frame {
        Frame::from(text.to_owned())
    }

    fn session(carrier: Carrier) -> Session {
        Session::new("sid".into(), carrier, Credentials::default(), frame("0{}"))
    }

    async fn take(session: &Session) -> (Take, Vec<String>) {
        let mut batch = VecDeque::new();
        let take = poll_fn(|cx| session.poll_take(cx, &mut batch)).await;
        (take, batch.iter().map(|f| f.as_str().to_owned()).collect())
    }

    #[tokio::test]
    async fn the_open_packet_is_the_first_frame_written() {
        let session = session(Carrier::WebSocket);
        session.send(frame("40"));
        assert_eq!(take(&session).await, (Take::Frames, vec!["0{}".to_owned(), "40".to_owned()]));
    }

    #[test]
    fn a_full_queue_refuses_frames_but_not_the_protocol_s_own() {
        let session = session(Carrier::WebSocket);
        for _ in 1..MAX_QUEUED_FRAMES {
            assert_eq!(session.send(frame("42")), Sent::Queued);
        }
        assert_eq!(session.send(frame("42")), Sent::Full);
        session.send_control(frame("2"));
        assert_eq!(session.state().queue.len(), MAX_QUEUED_FRAMES + 1);
    }

    #[tokio::test]
    async fn a_server_disconnect_writes_what_is_queued_then_closes() {
        let session = session(Carrier::WebSocket);
        let socket = SocketId::new("s1");
        assert!(session.begin_connect(&socket).is_some());
        assert!(session.accept(&socket, frame("40")));
        assert!(session.disconnect(&socket, frame("41")));
        assert_eq!(session.send(frame("42late")), Sent::Closed, "nothing after the disconnect");
        assert_eq!(take(&session).await, (Take::Frames, vec!["0{}".into(), "40".into(), "41".into()]));
        assert_eq!(take(&session).await.0, Take::Close);
        assert_eq!(session.close(), None, "the disconnect already reported the socket");
    }

    #[test]
    fn accepting_a_socket_whose_client_left_sends_nothing() {
        let session = session(Carrier::WebSocket);
        let socket = SocketId::new("s1");
        session.begin_connect(&socket);
        assert_eq!(session.close(), Some(socket.clone()));
        assert!(!session.accept(&socket, frame("40")));
    }

    #[test]
    fn a_second_connect_is_ignored_while_one_is_there() {
        let session = session(Carrier::WebSocket);
        assert!(session.begin_connect(&SocketId::new("s1")).is_some());
        assert!(session.begin_connect(&SocketId::new("s2")).is_none());
    }

    #[test]
    fn a_refused_socket_may_connect_again() {
        let session = session(Carrier::WebSocket);
        let socket = SocketId::new("s1");
        session.begin_connect(&socket);
        session.refuse(&socket, frame("44{}"));
        assert!(session.begin_connect(&SocketId::new("s2")).is_some());
    }

    #[test]
    fn credentials_are_dropped_once_the_socket_is_in() {
        let credentials = Credentials { authorization: Some("Bearer x".into()), query_token: None };
        let session = Session::new("sid".into(), Carrier::Polling, credentials.clone(), frame("0{}"));
        let socket = SocketId::new("s1");
        assert_eq!(session.begin_connect(&socket), Some(credentials));
        session.accept(&socket, frame("40"));
        assert!(session.state().credentials.is_none());
    }

    #[tokio::test]
    async fn a_polling_get_takes_every_queued_frame_joined() {
        let session = session(Carrier::Polling);
        session.send(frame("40"));
        let answer = poll_fn(|cx| session.poll_get(cx)).await;
        assert_eq!(answer, PollAnswer::Payload("0{}\u{1e}40".into()));
    }

    #[tokio::test]
    async fn a_waiting_get_is_released_with_a_noop_when_the_probe_answers() {
        let session = std::sync::Arc::new(session(Carrier::Polling));
        let _ = poll_fn(|cx| session.poll_get(cx)).await;
        let waiting = tokio::spawn({
            let session = session.clone();
            async move { poll_fn(|cx| session.poll_get(cx)).await }
        });
        tokio::task::yield_now().await;
        assert!(session.start_upgrade());
        assert_eq!(waiting.await.unwrap(), PollAnswer::Payload("6".into()));
        assert!(session.finish_upgrade());
        session.send(frame("42"));
        assert_eq!(take(&session).await, (Take::Frames, vec!["42".to_owned()]), "the WebSocket writes from now on");
    }

    #[tokio::test]
    async fn a_closed_session_answers_a_get_with_close() {
        let session = session(Carrier::Polling);
        let _ = poll_fn(|cx| session.poll_get(cx)).await;
        session.close();
        assert_eq!(poll_fn(|cx| session.poll_get(cx)).await, PollAnswer::Close);
    }
}
