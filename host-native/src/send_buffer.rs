//! Per-socket send buffers: a client that stops reading must not make the server hold ever
//! more for it.
//!
//! socketioxide queues at most [`MAX_BUFFERED_PACKETS`] packets per connection (behind
//! them only the WebSocket writer's buffer and the kernel's); once they are full an emit
//! fails instead of growing the queue. Such a client has already missed a packet, so it
//! is cut off: it leaves every room (nothing more is queued for it) and is disconnected.
//! A packet can no longer reach it, so socketioxide's `disconnect` cannot send the
//! DISCONNECT packet and leaves the transport open; [`crate::write_stall`] closes the
//! connection once its writes have made no progress for `WRITE_STALL_LIMIT`.
//! Broadcasts skip a full socket without naming it; the same write-stall limit closes it.

use socketioxide::extract::SocketRef;
use socketioxide::{SendError, SocketError};

/// Packets one connection may have waiting to be written (socketioxide's default).
pub const MAX_BUFFERED_PACKETS: usize = 128;

/// True when the send failed because the socket's buffer is full.
pub fn is_full(error: &SendError) -> bool {
    matches!(error, SendError::Socket(SocketError::InternalChannelFull))
}

/// What to do after a packet for `socket` could not be queued.
pub fn send_failed(socket: &SocketRef, error: &SendError) {
    if is_full(error) {
        cut_off(socket);
    }
}

/// Stops queueing for a socket that does not read, and disconnects it.
pub fn cut_off(socket: &SocketRef) {
    tracing::warn!(socket = %socket.id, max_buffered_packets = MAX_BUFFERED_PACKETS, "the client does not read its packets: disconnecting it");
    socket.leave_all();
    // Fails while the buffer is full; the write-stall limit closes the connection then.
    let _ = socket.clone().disconnect();
}
