//! # chat-core
//!
//! Every rule of the chat wire contract (`shared/PROTOCOL.md`) as pure state transitions.
//! Inputs carry the time; outputs are [`Effect`]s the host carries out. No IO, no clock,
//! no randomness (ids come from an injected [`IdSource`]), no async runtime.
//!
//! State is split into partitions, one per chat ([`chat::ChatPartition`]) and one per
//! user ([`user::UserPartition`]), which talk only through explicit messages
//! ([`route::Envelope`]). [`Engine`] hosts any number of both in one process and routes
//! those messages in memory; an edge host may instead put each partition in its own
//! Durable Object and carry the envelopes between them.
#![forbid(unsafe_code)]

pub mod auth;
pub mod command;
pub mod config;
pub mod error;
pub mod ids;
pub mod model;
#[cfg(feature = "mutants")]
pub mod mutants;
pub mod time;
pub mod validate;
pub mod engine;
pub mod intake;
pub mod memory;
pub mod pace;
pub mod placement;
pub mod sorted;
pub mod chat;
pub mod effect;
pub mod route;
pub mod storage;
pub mod user;

pub use engine::{Engine, Input};
pub use effect::Effect;
pub use ids::IdSource;
