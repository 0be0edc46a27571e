//! What happens in one step of the world. Actions name users, devices, chats and
//! messages by small indices resolved against the world at the time they run, so a run
//! can be replayed from its action list, and still runs (skipping what no longer applies)
//! once the shrinker has cut actions out of it.

use std::fmt;

/// One step: an action, and the salt of the randomness it uses while it runs (which
/// storage results of the step arrive at once, which fail), so removing other steps does
/// not change this step's own choices.
#[derive(Clone, PartialEq, Eq)]
pub struct Step {
    pub action: Action,
    pub salt: u64,
}

impl fmt::Debug for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} ~{:x}", self.action, self.salt & 0xFFFF)
    }
}

impl Step {
    /// This step as Rust (`step(Action::…, salt)`), to paste into a regression test.
    pub fn to_rust(&self) -> String {
        let action = format!("{:?}", self.action);
        let action = ["None", "Fail", "LostCommit"].iter().fold(action, |text, fault| {
            text.replace(&format!("fault: {fault} "), &format!("fault: Fault::{fault} "))
        });
        format!("step({action}, {:#x})", self.salt)
    }
}

/// How a storage result is delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Applied, and the result handed back.
    None,
    /// Not applied; the result is `Failed`.
    Fail,
    /// A write is applied, then the host crashes before the result arrives.
    LostCommit,
}

/// What a malformed payload looks like.
pub const MALFORMED_VARIANTS: u8 = 16;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// A device opens a socket (a new one if it had one).
    Connect { user: u8, device: u8, auto_join: bool },
    Disconnect { user: u8, device: u8 },
    /// A new message with a fresh client id; `chat` indexes the user's chats.
    Send { user: u8, device: u8, chat: u8, body: u32, image: bool, client_id: u128, ack: bool },
    /// A send again of one the user made before (unanswered, failed or acked), same id and body.
    Retry { user: u8, device: u8, pick: u16 },
    /// An earlier client id of the user with another body (must be refused if it was stored).
    Reuse { user: u8, device: u8, pick: u16, body: u32 },
    /// `room:join`; with `any`, `chat` indexes every chat, member or not.
    Join { user: u8, device: u8, chat: u8, any: bool },
    Leave { user: u8, device: u8, chat: u8 },
    Typing { user: u8, device: u8, chat: u8, start: bool, ack: bool },
    /// `receipt:read` of the `pick`-th stored message of the chat.
    Read { user: u8, device: u8, chat: u8, pick: u16 },
    Sync { user: u8, device: u8, chat: u8, after: u16, limit: u8 },
    Ping { user: u8, device: u8 },
    /// `chat:create` of a group with the users whose bits are set.
    CreateGroup { user: u8, device: u8, members: u32 },
    CreateDm { user: u8, device: u8, other: u8 },
    /// HTTP `POST /chats/:id/members`; `chat` indexes every chat.
    AddMember { actor: u8, chat: u8, member: u8 },
    /// HTTP `DELETE /chats/:id/members/:userId`.
    RemoveMember { actor: u8, chat: u8, member: u8 },
    Rename { actor: u8, chat: u8, title: u32 },
    ListChats { user: u8 },
    History { user: u8, chat: u8, before: bool, at: u16, limit: u8 },
    /// A handshake with a bad token (must be refused `UNAUTHORIZED`).
    BadConnect { user: u8, device: u8, variant: u8 },
    /// An HTTP call with a bad token or a malformed body.
    BadHttp { user: u8, variant: u8, chat: u8 },
    /// A payload of the wrong shape (must be `VALIDATION_ERROR`, and break nothing).
    Malformed { user: u8, device: u8, variant: u8, chat: u8 },
    /// The `pick`-th held-back storage result arrives.
    Deliver { pick: u32, fault: Fault },
    /// The clock moves on, firing due timers.
    Advance { ms: u64 },
    /// The host crashes and restarts with empty memory.
    Crash,
}
