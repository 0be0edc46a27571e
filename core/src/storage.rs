//! The storage operations the core asks of its host, and their results.
//!
//! Storage is the source of truth: partition memory is only a cache of it and is rebuilt
//! from these reads after a crash. Every operation may fail; [`StorageResult::Failed`]
//! answers any of them.

use crate::command::HistoryQuery;
use crate::ids::{ChatId, ClientId, MessageId, Millis, Seq, UserId};
use crate::model::{Chat, Message};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum StorageOp {
    /// → [`StorageResult::Chat`]: the chat with its read state, or `None` if unknown.
    LoadChat { chat: ChatId },
    /// → [`StorageResult::User`]: the user's chats and their messages created after `sends_since`.
    LoadUser { user: UserId, sends_since: Millis },
    /// → [`StorageResult::Message`]: the message `sender` stored under `client_id`, in any chat.
    FindMessage { sender: UserId, client_id: ClientId },
    /// → [`StorageResult::Created`]. Stores a new chat; when `dm_key` is set and a chat with
    /// that key exists, stores nothing and answers the existing chat instead.
    CreateChat { chat: Chat, dm_key: Option<String> },
    /// → [`StorageResult::Committed`]. Applies every write in one transaction, all or none.
    /// Messages must keep `(chat, seq)` and `(sender, clientId)` unique.
    Commit { chat: ChatId, writes: Vec<Write> },
    /// → [`StorageResult::Messages`], ascending by `seq`: for `After(s)` the oldest `limit`
    /// messages with `seq > s`; for `Before(b)` the newest `limit` with `seq < b` (all when `None`).
    LoadMessages { chat: ChatId, query: HistoryQuery, limit: u32 },
    /// → [`StorageResult::ReadTarget`]: the message's `seq` if it is in `chat`, with how
    /// many messages `reader` sent there up to and including that `seq`.
    ResolveRead { chat: ChatId, message: MessageId, reader: UserId },
    /// → [`StorageResult::Inbox`]: every chat `user` is a member of, with its read state.
    ListInbox { user: UserId },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Write {
    /// Insert a new message.
    Message(Message),
    /// Set (insert or replace) a member's read cursor.
    Cursor { user: UserId, cursor: ReadCursor },
    /// Replace the chat's record: title, members, `updatedAt`.
    Chat(Chat),
}

/// A member's read position in one chat.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadCursor {
    /// `seq` of the newest message read; 0 before any read.
    pub seq: Seq,
    /// That message's id.
    pub message_id: Option<MessageId>,
    pub read_at: Millis,
    /// How many of the member's own messages have `seq <= self.seq` (for unread counts).
    pub own_upto: u64,
}

impl ReadCursor {
    /// The member's unread count (§7): messages above the cursor that someone else sent,
    /// given the chat's last `seq` and how many messages the member sent in it.
    pub fn unread(&self, last_seq: Seq, sent: u64) -> u64 {
        let above = last_seq.0.saturating_sub(self.seq.0);
        let own_above = sent.saturating_sub(self.own_upto);
        above.saturating_sub(own_above)
    }
}

/// A member's read state as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberRead {
    pub user: UserId,
    /// `None` when the member never read anything.
    pub cursor: Option<ReadCursor>,
    /// How many messages the member has sent in the chat.
    pub sent: u64,
}

/// Everything a chat partition needs to rebuild itself.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChatRecord {
    pub chat: Chat,
    /// Highest `seq` stored (0 for an empty chat).
    pub last_seq: Seq,
    /// Read state of every user with a cursor or a message in the chat (members or not).
    pub reads: Vec<MemberRead>,
}

/// Everything a user partition needs to rebuild itself.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct UserRecord {
    /// Every chat the user is a member of, with its current members.
    pub chats: Vec<(ChatId, Vec<UserId>)>,
    /// `createdAt` of the user's messages created after `sends_since`.
    pub recent_sends: Vec<Millis>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadTarget {
    pub seq: Seq,
    pub own_upto: u64,
}

/// One chat of a user's inbox, as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InboxRow {
    pub chat: Chat,
    pub last_message: Option<Message>,
    pub read: MemberRead,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum StorageResult {
    Chat(Option<ChatRecord>),
    User(UserRecord),
    Message(Option<Message>),
    /// `existing` is the DM that was already there; `None` when `chat` was stored.
    Created { existing: Option<Chat> },
    Committed,
    Messages(Vec<Message>),
    ReadTarget(Option<ReadTarget>),
    Inbox(Vec<InboxRow>),
    /// The operation failed, or its outcome is unknown (it may have been applied).
    Failed(String),
}
