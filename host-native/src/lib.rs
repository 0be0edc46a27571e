//! Native host: serves the chat contract through `chat-core` on tokio, axum (HTTP and
//! our own Socket.IO server, `socketio`) and sqlx. It translates; every chat rule lives in
//! the core.

pub mod check;
pub mod cluster;
pub mod config;
pub mod demo;
pub mod driver;
pub mod http;
pub mod metrics;
pub mod pending_acks;
pub mod query;
pub mod room_mirror;
pub mod secret;
pub mod send_buffer;
pub mod server;
pub mod socketio;
pub mod write_stall;
pub mod ws_buffers;
pub mod store;
