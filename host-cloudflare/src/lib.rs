//! # chat-edge
//!
//! The chat contract on Cloudflare Workers and Durable Objects (workers-rs), with the same
//! sans-IO core (`chat-core`) as the native host. See `NOTES.md` and the README's edge
//! section for the design; in short:
//!
//! - a **connection object** per WebSocket (named by its Engine.IO `sid`) speaks
//!   Engine.IO/Socket.IO ([`chat_sio_codec`]) with the client through the Hibernation API,
//!   authenticates the handshake and validates events with the core's functions;
//! - a **user object** per user hosts the core's `UserPartition` and is the one ordered
//!   path to that user's sockets;
//! - a **chat object** per chat hosts the core's `ChatPartition` and its SQLite storage;
//! - a few **directory shards** hear of sockets let in and of room changes, for admin
//!   sockets and `/metrics` ([`directory`]).
//!
//! The modules outside `edge` are plain Rust (tested natively); `edge` is the wasm32 glue.

pub mod addr;
pub mod config;
pub mod directory;
pub mod glue;
pub mod wire;

#[cfg(target_arch = "wasm32")]
mod edge;

#[cfg(target_arch = "wasm32")]
pub use edge::{ChatObject, ConnObject, DirectoryObject, UserObject};

pub use chat_core;
