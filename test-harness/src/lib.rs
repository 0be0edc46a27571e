//! # chat-harness
//!
//! A deterministic simulation of the chat core (`chat-core`): a seeded world of users
//! with several devices each, group chats and DMs, membership changes over HTTP, typing,
//! reads, syncs and a clock that advances and jumps, on top of a storage that fails
//! writes, loses results to host crashes, crashes the host outright, and answers late
//! and out of order. After every step the contract's invariants are checked
//! ([`invariants`]); a failing seed prints the command that replays it, the tail of its
//! trace, and its steps shrunk ([`shrink`]).
//!
//! Same seed, same run: all randomness comes from [`rng::Rng`], there is no clock but
//! the simulated one, and every collection iterated is ordered.

pub mod action;
pub mod client;
pub mod config;
pub mod faults;
pub mod generate;
pub mod invariants;
pub mod rng;
pub mod runner;
pub mod shrink;
pub mod stats;
pub mod trace;
pub mod world;
