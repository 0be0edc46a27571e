//! Deliberate bugs for proving the simulation catches them (feature `mutants` only).
//!
//! A test switches one on for its own thread with [`set`]; the core consults [`active`]
//! at a few marked places (`#[cfg(feature = "mutants")]`). With the feature off this
//! module does not exist and the core has no trace of it.

use std::cell::Cell;

/// One deliberate bug.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mutant {
    /// The rate limiter lets one more message through (`>` for `>=` in the window check).
    RateLimitOffByOne,
    /// `message:send` is acked when the message is staged, before storage committed it.
    AckBeforeCommit,
    /// `receipt:read` of an older message moves the cursor back.
    CursorMovesBack,
    /// A removed member's sockets stay in the chat room.
    RemovedMemberStaysInRoom,
}

impl Mutant {
    pub const ALL: [Mutant; 4] =
        [Mutant::RateLimitOffByOne, Mutant::AckBeforeCommit, Mutant::CursorMovesBack, Mutant::RemovedMemberStaysInRoom];
}

thread_local! {
    static ACTIVE: Cell<Option<Mutant>> = const { Cell::new(None) };
}

/// Switches `mutant` on (or all off) for the calling thread.
pub fn set(mutant: Option<Mutant>) {
    ACTIVE.with(|active| active.set(mutant));
}

/// True when `mutant` is on for the calling thread.
pub fn active(mutant: Mutant) -> bool {
    ACTIVE.with(|active| active.get() == Some(mutant))
}
