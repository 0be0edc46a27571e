//! Per-socket send buffers: a client that stops reading must not make the server hold ever
//! more for it.
//!
//! socketioxide queues at most [`MAX_BUFFERED_PACKETS`] packets per connection (behind
//! them only the WebSocket writer's buffer and the kernel's); once they are full an emit
//! fails instead of growing the queue. Such a client has already missed a packet, so it
//! is cut off: it leaves every room (nothing more is queued for it) and is disconnected.
//! A packet can no longer reach it, so socketioxide's `disconnect` cannot queue the
//! DISCONNECT packet and leaves the socket connected: the driver retries it until it goes
//! out (a client that reads again gets it within seconds), and [`crate::write_stall`]
//! closes a connection whose writes have made no progress for `WRITE_STALL_LIMIT`.
//! Broadcasts, and emits to a user's room, skip a full socket instead (counted in
//! `chat_packets_skipped_total`): its client notices the gap in `seq` and syncs; the same
//! write-stall limit closes it if it stops reading altogether.

use socketioxide::extract::SocketRef;
use socketioxide::{BroadcastError, SendError, SocketError};

/// Packets one connection may have waiting to be written. socketioxide's default, 128,
/// was outrun by the server's own bursts: on a saturated core one commit's batch emits
/// dozens of packets to every member before any writer task runs, and at ~2,900 sends/s
/// in a 100-member group the senders' sockets (acks on top) were cut off though they read
/// everything. 512 held 3,844 sends/s; the price is the bound for a client that never
/// reads: up to 512 packets (~7 MB at the largest messages) until the write-stall limit.
pub const MAX_BUFFERED_PACKETS: usize = 512;

/// True when the send failed because the socket's buffer is full.
pub fn is_full(error: &SendError) -> bool {
    matches!(error, SendError::Socket(SocketError::InternalChannelFull))
}

/// True when the send failed because the socket is closing (its client has gone).
pub fn is_closed(error: &SendError) -> bool {
    matches!(error, SendError::Socket(SocketError::Closed))
}

/// How many sockets a broadcast skipped for full buffers, when that is all that went
/// wrong: skipping them is the policy, and a warning per broadcast would flood the log
/// just when the server is busiest (they are counted instead). `None` for other failures.
pub fn skipped_only(error: &BroadcastError) -> Option<usize> {
    match error {
        BroadcastError::Socket(errors) if errors.iter().all(|error| matches!(error, SocketError::InternalChannelFull)) => Some(errors.len()),
        _ => None,
    }
}

/// Whether a socket asked to disconnect is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "a socket whose disconnect did not go out must be disconnected again later"]
pub enum Disconnect {
    /// The DISCONNECT packet is queued, or the socket was closed already.
    Done,
    /// Its buffer is full: nothing was sent and the socket is still connected.
    Retry,
}

/// What to do after a packet for `socket` could not be queued. `None`: nothing to do.
pub fn send_failed(socket: &SocketRef, error: &SendError) -> Option<Disconnect> {
    is_full(error).then(|| cut_off(socket))
}

/// Stops queueing for a socket that does not read, and disconnects it.
pub fn cut_off(socket: &SocketRef) -> Disconnect {
    tracing::warn!(socket = %socket.id, max_buffered_packets = MAX_BUFFERED_PACKETS, "the client does not read its packets: disconnecting it");
    socket.leave_all();
    disconnect(socket)
}

/// Disconnects `socket`; a full buffer means it must be tried again.
pub fn disconnect(socket: &SocketRef) -> Disconnect {
    match socket.clone().disconnect() {
        Err(SocketError::InternalChannelFull) => Disconnect::Retry,
        // socketioxide reports nothing else: the socket is closed.
        _ => Disconnect::Done,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broadcast_that_only_met_full_buffers_counts_them() {
        let error = BroadcastError::Socket(vec![SocketError::InternalChannelFull, SocketError::InternalChannelFull]);
        assert_eq!(skipped_only(&error), Some(2));
    }

    #[test]
    fn a_broadcast_that_met_a_closed_socket_is_not_only_skips() {
        let error = BroadcastError::Socket(vec![SocketError::InternalChannelFull, SocketError::Closed]);
        assert_eq!(skipped_only(&error), None);
    }
}
