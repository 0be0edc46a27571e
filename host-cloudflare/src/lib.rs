//! Edge host: the chat contract on Cloudflare Workers, one Durable Object per chat.
//! Placeholder until the edge host's issue lands; it only proves the core links here.

pub use chat_core;
