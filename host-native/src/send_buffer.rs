//! Per-socket send buffers: a client that stops reading must not make the server hold ever
//! more for it.
//!
//! A session queues at most [`MAX_BUFFERED_PACKETS`] frames (behind them only the
//! WebSocket writer's buffer and the kernel's); once they are full a packet is refused
//! instead of growing the queue. A socket whose ack or direct emit is refused has missed a
//! packet it needed, so it is cut off: it leaves every room (nothing more is queued for
//! it) and is disconnected; its DISCONNECT packet goes after what is queued (past the
//! bound), so a client that reads again gets it, and [`crate::write_stall`] closes a
//! connection whose writes have made no progress for `WRITE_STALL_LIMIT`. Broadcasts, and
//! emits to a user's room, skip a full socket instead (counted in
//! `chat_packets_skipped_total`): its client notices the gap in `seq` and syncs; the same
//! write-stall limit closes it if it stops reading altogether.

/// Frames one connection may have waiting to be written. 128 (socketioxide's default,
/// used before our own transport) was outrun by the server's own bursts: on a saturated
/// core one commit's batch emits dozens of packets to every member before any writer task
/// runs, and at ~2,900 sends/s in a 100-member group the senders' sockets (acks on top)
/// were cut off though they read everything. 512 held 3,844 sends/s; the price is the
/// bound for a client that never reads: up to 512 packets (~7 MB at the largest messages)
/// until the write-stall limit.
pub const MAX_BUFFERED_PACKETS: usize = 512;
