//! What crosses partitions: messages between chat and user partitions, where answers go,
//! and the context a partition works in while it handles one input.

use crate::command::{ClientCommand, HistoryQuery, HttpCommand, SendCommand};
use crate::auth::{authenticate_handshake, Handshake};
use crate::validate::parse_event;
use crate::config::Limits;
use crate::effect::{http_error_json, AckReply, Effect, LogLevel};
use crate::error::ChatError;
use crate::ids::{AckId, ChatId, ClientId, CorrelationId, IdMaker, MessageId, Millis, OpId, RequestId, SocketId, UserId};
use crate::model::{Chat, Message};
use crate::storage::StorageOp;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Where the answer to a command goes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reply {
    /// A socket event; `ack` is `None` when the client gave no callback.
    Socket { socket: SocketId, ack: Option<AckId>, event: String },
    /// An HTTP request.
    Http { request: RequestId },
    /// Nobody waits; failures are only logged.
    Silent,
    /// An `autoJoin` of a connecting socket: the user partition hears back either way
    /// ([`UserMsg::AutoJoined`]) and lets the socket in once every chat has answered.
    AutoJoin { socket: SocketId, user: UserId, chat: ChatId },
}

/// A message for the chat partition that owns `ChatId`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ChatMsg {
    /// Put a socket in the chat room (`room:join`, or `autoJoin` with [`Reply::AutoJoin`]).
    Join { socket: SocketId, user: UserId, reply: Reply },
    /// Take a socket out of the chat room (`room:leave`).
    Leave { socket: SocketId, user: UserId, reply: Reply },
    /// The socket disconnected.
    SocketGone { socket: SocketId, user: UserId },
    /// Store and deliver a message. The user partition has checked idempotency and holds a
    /// rate-limit permit; it expects [`UserMsg::SendDone`] back.
    Send { user: UserId, command: SendCommand, reply: Reply },
    Typing { user: UserId, typing: bool },
    Read { user: UserId, message: MessageId, reply: Reply },
    History { user: UserId, query: HistoryQuery, limit: u32, reply: Reply },
    /// Store this new chat (its id is this partition's).
    Create { chat: Chat, dm_key: Option<String>, reply: Reply },
    Rename { user: UserId, title: String, reply: Reply },
    AddMember { actor: UserId, member: UserId, reply: Reply },
    RemoveMember { actor: UserId, member: UserId, reply: Reply },
    /// A socket that stayed in the room while this partition moved to another process
    /// (cluster hosts): put it back in the partition's view of the room; nothing is emitted.
    Restore { socket: SocketId, user: UserId },
}

/// A message for the user partition that owns `UserId`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum UserMsg {
    /// A socket of this user passed authentication.
    Connect { socket: SocketId, auto_join: bool },
    Disconnect { socket: SocketId },
    /// A validated socket event.
    Command { socket: SocketId, command: ClientCommand, reply: Reply },
    /// A validated HTTP call made by this user.
    Http { command: HttpCommand, reply: Reply },
    /// The outcome of a [`ChatMsg::Send`]: the stored message, or why nothing was stored.
    SendDone { client_id: ClientId, outcome: Result<Message, ChatError> },
    /// The socket is not (or no longer) in that chat's room.
    Left { socket: SocketId, chat: ChatId },
    /// A chat answered an `autoJoin` of a connecting socket (joined or not).
    AutoJoined { socket: SocketId, chat: ChatId },
    /// The chat's members now; a user missing from them is no longer a member.
    ChatMembers { chat: ChatId, members: Vec<UserId> },
    /// Another user asks whether this one is online.
    PresenceAsk { asker: UserId, token: u64 },
    /// The answer to a [`UserMsg::PresenceAsk`].
    PresenceTell { token: u64, user: UserId, online: bool },
    /// A socket that stayed connected on another process while this partition moved
    /// (cluster hosts), with the chats whose room it is in; nothing is emitted.
    Restore { socket: SocketId, chats: Vec<ChatId> },
    /// The process holding the socket died. Like [`UserMsg::Disconnect`], but also for a
    /// socket this partition never heard of (it moved here after the process died): the
    /// user's contacts were told the user was online through it.
    Lost { socket: SocketId },
}

impl UserMsg {
    /// Messages that only refresh what a loaded partition caches: a partition that is not
    /// in memory has nothing to refresh (it will read storage when it loads).
    pub fn only_refreshes_cache(&self) -> bool {
        matches!(self, UserMsg::ChatMembers { .. } | UserMsg::Left { .. })
    }
}

/// A message on its way to another partition.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Envelope {
    ToChat(ChatId, ChatMsg),
    ToUser(UserId, UserMsg),
}

/// Where a client event goes once validated: a command for the user's partition, or the
/// error to answer with (`typing:*` never answers, whatever the client asked, §2).
/// Hosts that run partitions apart (the edge) call this where the socket terminates.
pub fn event_envelope(user: UserId, socket: SocketId, event: String, payload: &Value, ack: Option<AckId>) -> Result<Envelope, (Reply, ChatError)> {
    let reply = event_reply(socket.clone(), event.clone(), ack);
    match parse_event(&event, payload) {
        Ok(command) => Ok(Envelope::ToUser(user, UserMsg::Command { socket, command, reply })),
        Err(error) => Err((reply, error)),
    }
}

/// Whether a client event is never answered, whatever the client asked (§2: `typing:*`).
pub fn never_answered(event: &str) -> bool {
    matches!(event, "typing:start" | "typing:stop")
}

/// Where the answer to a client event goes.
pub fn event_reply(socket: SocketId, event: String, ack: Option<AckId>) -> Reply {
    let ack = if never_answered(&event) { None } else { ack };
    Reply::Socket { socket, ack, event }
}

/// A socket's handshake: on success the user's partition hears of the socket (the
/// envelope, with whose socket it is); on refusal `ctx` gets the log line and the
/// [`Effect::RejectConnection`], both with one correlation id.
pub fn connect_envelope(ctx: &mut Ctx, socket: SocketId, handshake: &Handshake, secret: &[u8]) -> Option<(UserId, Envelope)> {
    match authenticate_handshake(handshake, secret, ctx.now, ctx.limits.jwt_leeway_secs) {
        Ok(principal) => {
            let auto_join = handshake.auto_join();
            let user = principal.user;
            Some((user.clone(), Envelope::ToUser(user, UserMsg::Connect { socket, auto_join })))
        }
        Err(error) => {
            let correlation_id = ctx.ids.correlation_id();
            ctx.log(
                LogLevel::Warn,
                Some(correlation_id.clone()),
                format!("handshake of socket {socket} refused: {} ({})", error.code(), error.message()),
            );
            ctx.effect(Effect::RejectConnection { socket, error, correlation_id });
            None
        }
    }
}

/// Where a validated HTTP call of `user` goes: chat calls straight to the chat's partition,
/// the others to the caller's.
pub fn http_envelope(user: UserId, command: HttpCommand, reply: Reply) -> Envelope {
    match command {
        HttpCommand::History { chat, query, limit } => Envelope::ToChat(chat, ChatMsg::History { user, query, limit, reply }),
        HttpCommand::RenameChat { chat, title } => Envelope::ToChat(chat, ChatMsg::Rename { user, title, reply }),
        HttpCommand::AddMember { chat, user: member } => Envelope::ToChat(chat, ChatMsg::AddMember { actor: user, member, reply }),
        HttpCommand::RemoveMember { chat, user: member } => {
            Envelope::ToChat(chat, ChatMsg::RemoveMember { actor: user, member, reply })
        }
        command @ (HttpCommand::ListChats | HttpCommand::CreateChat(_)) => Envelope::ToUser(user, UserMsg::Http { command, reply }),
    }
}

/// What a host does with a message for a chat whose partition is not in memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChatArrival {
    /// Nothing to do (nothing is joined to a chat that is not in memory).
    Drop,
    /// Make the partition with [`crate::chat::ChatPartition::create`] from this message.
    Create,
    /// Make it with [`crate::chat::ChatPartition::load`], then hand it the message.
    Load,
}

pub fn chat_arrival(msg: &ChatMsg) -> ChatArrival {
    match msg {
        ChatMsg::SocketGone { .. } => ChatArrival::Drop,
        ChatMsg::Restore { .. } => ChatArrival::Load,
        ChatMsg::Create { .. } => ChatArrival::Create,
        _ => ChatArrival::Load,
    }
}

/// What a host does with a message for a user whose partition is not in memory.
#[derive(Clone, Debug, PartialEq)]
pub enum UserArrival {
    /// Nothing to do.
    Drop,
    /// Answer on the partition's behalf (a user with no partition has no socket: offline).
    Answer(Envelope),
    /// Make a fresh [`crate::user::UserPartition::new`] and hand it the message.
    New,
}

pub fn user_arrival(user: &UserId, msg: &UserMsg) -> UserArrival {
    match msg {
        UserMsg::PresenceAsk { asker, token } => {
            UserArrival::Answer(Envelope::ToUser(asker.clone(), UserMsg::PresenceTell { token: *token, user: user.clone(), online: false }))
        }
        msg if msg.only_refreshes_cache() => UserArrival::Drop,
        UserMsg::PresenceTell { .. } | UserMsg::SendDone { .. } | UserMsg::AutoJoined { .. } => UserArrival::Drop,
        _ => UserArrival::New,
    }
}

/// What one partition produced while handling one input.
#[derive(Debug, Default)]
pub struct Outbox {
    pub effects: Vec<Effect>,
    pub mail: Vec<Envelope>,
}

/// The world as one partition sees it while it handles one input.
pub struct Ctx<'a> {
    pub now: Millis,
    pub limits: &'a Limits,
    pub ids: &'a mut IdMaker,
    pub out: &'a mut Outbox,
    pub next_op: &'a mut u64,
}

impl Ctx<'_> {
    pub fn effect(&mut self, effect: Effect) {
        self.out.effects.push(effect);
    }

    pub fn to_chat(&mut self, chat: ChatId, msg: ChatMsg) {
        self.out.mail.push(Envelope::ToChat(chat, msg));
    }

    pub fn to_user(&mut self, user: UserId, msg: UserMsg) {
        self.out.mail.push(Envelope::ToUser(user, msg));
    }

    /// Asks storage for `request`; its result comes back under the returned id.
    pub fn storage(&mut self, request: StorageOp) -> OpId {
        *self.next_op += 1;
        let op = OpId(*self.next_op);
        self.effect(Effect::Storage { op, request });
        op
    }

    pub fn log(&mut self, level: LogLevel, correlation_id: Option<CorrelationId>, message: String) {
        self.effect(Effect::Log { level, correlation_id, message });
    }

    /// Answers success with `data` (HTTP status 200).
    pub fn reply_ok(&mut self, reply: &Reply, data: Option<Value>) {
        self.reply_ok_status(reply, data, 200);
    }

    /// Answers success; `status` matters only to HTTP (201 for a created chat).
    pub fn reply_ok_status(&mut self, reply: &Reply, data: Option<Value>, status: u16) {
        match reply {
            Reply::Socket { socket, ack: Some(ack), .. } => {
                self.effect(Effect::Ack { socket: socket.clone(), ack: *ack, reply: AckReply::ok(data.as_ref()) })
            }
            Reply::Http { request } => self.effect(Effect::HttpRespond {
                request: *request,
                status,
                body: data.unwrap_or_else(|| serde_json::json!({})),
            }),
            Reply::AutoJoin { .. } => self.auto_joined(reply),
            Reply::Socket { ack: None, .. } | Reply::Silent => {}
        }
    }

    /// [`Ctx::reply_ok`] with data that serialises itself: a socket's ack is written from it
    /// directly, with no `Value` tree (the ack of every send).
    pub fn reply_ok_with<T: Serialize>(&mut self, reply: &Reply, data: &T) {
        match reply {
            Reply::Socket { socket, ack: Some(ack), .. } => {
                self.effect(Effect::Ack { socket: socket.clone(), ack: *ack, reply: AckReply::ok(Some(data)) })
            }
            // Data of plain fields always makes a tree.
            _ => self.reply_ok(reply, serde_json::to_value(data).ok()),
        }
    }

    fn auto_joined(&mut self, reply: &Reply) {
        if let Reply::AutoJoin { socket, user, chat } = reply {
            self.to_user(user.clone(), UserMsg::AutoJoined { socket: socket.clone(), chat: chat.clone() });
        }
    }

    /// Answers failure: a fresh correlation id goes into both the log line and the answer.
    pub fn reply_err(&mut self, reply: &Reply, error: ChatError) {
        let correlation_id = self.ids.correlation_id();
        let what = match reply {
            Reply::Socket { socket, event, .. } => format!("event {event} on socket {socket}"),
            Reply::Http { request } => format!("http request {}", request.0),
            Reply::Silent => "automatic action".to_string(),
            Reply::AutoJoin { socket, chat, .. } => format!("autoJoin of socket {socket} to chat {chat}"),
        };
        let level = if matches!(error, ChatError::Internal(_)) { LogLevel::Error } else { LogLevel::Warn };
        self.log(level, Some(correlation_id.clone()), format!("{what} failed: {} ({})", error.code(), error.message()));
        match reply {
            Reply::Socket { socket, ack: Some(ack), .. } => self.effect(Effect::Ack {
                socket: socket.clone(),
                ack: *ack,
                reply: AckReply::error(&error, &correlation_id),
            }),
            Reply::Http { request } => self.effect(Effect::HttpRespond {
                request: *request,
                status: error.http_status(),
                body: http_error_json(&error, &correlation_id),
            }),
            Reply::AutoJoin { .. } => self.auto_joined(reply),
            Reply::Socket { ack: None, .. } | Reply::Silent => {}
        }
    }

    pub fn reply(&mut self, reply: &Reply, result: Result<Option<Value>, ChatError>) {
        match result {
            Ok(data) => self.reply_ok(reply, data),
            Err(error) => self.reply_err(reply, error),
        }
    }
}
