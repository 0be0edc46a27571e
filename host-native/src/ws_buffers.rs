//! The WebSocket read buffer every connection keeps.
//!
//! tungstenite gives each connection a read buffer of this size for its whole life (and
//! fills it with zeros before its first read, so all of it is resident), and reads at most
//! this much from the socket per call. A frame longer than the buffer makes it grow to the
//! frame's size for that frame, so no message is refused or cut; it only takes more reads.
//! The default of engineioxide (4 KiB) cost 4 KiB per idle socket; 1 KiB holds a pong, a
//! typing event or a typical `message:send` in one read; the longest body (8000
//! characters, PROTOCOL.md §5) takes a few dozen reads instead of a few.

/// Bytes of the per-connection read buffer, and the most one read takes from the socket.
pub const WS_READ_BUFFER_BYTES: usize = 1024;
