//! Deterministic simulation of the chat core.
