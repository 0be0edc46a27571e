//! What each action does: the client's side of the world (sockets connecting and
//! closing, events with their payloads and callbacks, HTTP calls), plus the storage,
//! clock and crash actions, resolved against the world as it is when the step runs.

use super::{OpenSocket, World, SECRET, T0};
use crate::action::{Action, MALFORMED_VARIANTS};
use crate::client::{Call, CallKind, Conn, HttpCall, HttpKind, Known, SendSpec};
use crate::rng::uuid_v4;
use chat_core::auth::{sign_token, Handshake};
use chat_core::command::{HistoryQuery, HttpRequest};
use chat_core::effect::Room;
use chat_core::ids::{AckId, ChatId, Millis, RequestId, Seq, SocketId};
use chat_core::Input;
use serde_json::{json, Value};

impl World {
    pub(super) fn act(&mut self, action: &Action) {
        match *action {
            Action::Connect { user, device, auto_join } => self.connect(user, device, auto_join),
            Action::Disconnect { user, device } => {
                let (u, d) = self.device_of(user, device);
                if let Some(socket) = self.users[u].devices[d].socket().cloned() {
                    self.close(&socket);
                    self.feed(Input::Disconnect { socket });
                }
            }
            Action::Send { user, device, chat, body, image, client_id, ack } => {
                let u = self.user_of(user);
                let Some(chat) = self.chat_of(u, chat) else { return };
                let body = if image { format!("https://img.example/{body}.png") } else { body_text(body) };
                let spec = SendSpec { chat, body, image, client_id: uuid_v4(client_id) };
                self.send(user, device, spec, ack);
            }
            Action::Retry { user, device, pick } => {
                let u = self.user_of(user);
                if let Some(spec) = self.users[u].retryable(pick as usize).cloned() {
                    self.stats.retries += 1;
                    self.send(user, device, spec, true);
                }
            }
            Action::Reuse { user, device, pick, body } => {
                let u = self.user_of(user);
                if let Some(spec) = self.users[u].retryable(pick as usize).cloned() {
                    let spec = SendSpec { body: format!("{} (edited {body})", spec.body), image: false, ..spec };
                    self.send(user, device, spec, true);
                }
            }
            Action::Join { user, device, chat, any } => {
                let u = self.user_of(user);
                let chat = if any { self.any_chat(chat) } else { self.chat_of(u, chat) };
                let Some(chat) = chat else { return };
                self.event(user, device, "room:join", json!({ "chatId": chat.as_str() }), Some(CallKind::Join { chat }));
            }
            Action::Leave { user, device, chat } => {
                let Some(chat) = self.any_chat(chat) else { return };
                self.event(user, device, "room:leave", json!({ "chatId": chat.as_str() }), Some(CallKind::Leave { chat }));
            }
            Action::Typing { user, device, chat, start, ack } => {
                let u = self.user_of(user);
                let Some(chat) = self.chat_of(u, chat) else { return };
                let event = if start { "typing:start" } else { "typing:stop" };
                if self.event(user, device, event, json!({ "chatId": chat.as_str() }), ack.then_some(CallKind::Typing)) && start {
                    let id = self.users[u].id.clone();
                    self.checker.typing_sent(&chat, &id, self.now);
                }
            }
            Action::Read { user, device, chat, pick } => {
                let u = self.user_of(user);
                let Some(chat) = self.chat_of(u, chat) else { return };
                let stored = self.storage.store.messages(&chat);
                let (message, seq) = match stored.get(pick as usize % stored.len().max(1)) {
                    Some(m) if pick != u16::MAX => (m.id.to_string(), Some(m.seq.0)),
                    _ => (format!("no-such-message-{pick}"), None),
                };
                let payload = json!({ "chatId": chat.as_str(), "messageId": message });
                self.event(user, device, "receipt:read", payload, Some(CallKind::Read { chat, seq }));
            }
            Action::Sync { user, device, chat, after, limit } => {
                let u = self.user_of(user);
                let Some(chat) = self.chat_of(u, chat) else { return };
                let after = u64::from(after) % (self.storage.store.messages(&chat).len() as u64 + 2);
                let mut payload = json!({ "chatId": chat.as_str(), "afterSeq": after });
                let limit = if limit == 0 {
                    50
                } else {
                    payload["limit"] = json!(limit);
                    u32::from(limit)
                };
                self.event(user, device, "messages:sync", payload, Some(CallKind::Sync { chat, after, limit }));
            }
            Action::Ping { user, device } => {
                self.event(user, device, "presence:ping", json!({}), Some(CallKind::Ping));
            }
            Action::CreateGroup { user, device, members } => {
                let ids: Vec<&str> =
                    self.users.iter().enumerate().filter(|(i, _)| members & (1 << i) != 0).map(|(_, u)| u.id.as_str()).collect();
                let payload = json!({ "kind": "group", "memberIds": ids, "title": format!("g{members}") });
                self.event(user, device, "chat:create", payload, Some(CallKind::Create { dm_with: None }));
            }
            Action::CreateDm { user, device, other } => {
                let other = self.users[self.user_of(other)].id.clone();
                let payload = json!({ "kind": "dm", "memberIds": [other.as_str()] });
                self.event(user, device, "chat:create", payload, Some(CallKind::Create { dm_with: Some(other) }));
            }
            Action::AddMember { actor, chat, member } => {
                let Some(chat) = self.any_chat(chat) else { return };
                let member = self.users[self.user_of(member)].id.clone();
                let call = HttpRequest::AddMember { chat_id: chat.to_string(), body: json!({ "userId": member.as_str() }) };
                self.http(actor, call, HttpKind::Add { chat, member });
            }
            Action::RemoveMember { actor, chat, member } => {
                let Some(chat) = self.any_chat(chat) else { return };
                let member = self.users[self.user_of(member)].id.clone();
                let call = HttpRequest::RemoveMember { chat_id: chat.to_string(), user_id: member.to_string() };
                self.http(actor, call, HttpKind::Remove { chat, member });
            }
            Action::Rename { actor, chat, title } => {
                let Some(chat) = self.any_chat(chat) else { return };
                let call = HttpRequest::RenameChat { chat_id: chat.to_string(), body: json!({ "title": format!("t{title}") }) };
                self.http(actor, call, HttpKind::Rename);
            }
            Action::ListChats { user } => self.http(user, HttpRequest::ListChats, HttpKind::List),
            Action::History { user, chat, before, at, limit } => {
                let u = self.user_of(user);
                let Some(chat) = self.chat_of(u, chat) else { return };
                let at = u64::from(at) % (self.storage.store.messages(&chat).len() as u64 + 2);
                let (query, after_seq, before_seq) = match (before, at) {
                    (true, 0) => (HistoryQuery::Before(None), None, None),
                    (true, at) => (HistoryQuery::Before(Some(Seq(at))), None, Some(at.to_string())),
                    (false, at) => (HistoryQuery::After(Seq(at)), Some(at.to_string()), None),
                };
                let (limit_text, limit) = if limit == 0 { (None, 50) } else { (Some(limit.to_string()), u32::from(limit)) };
                let call = HttpRequest::History { chat_id: chat.to_string(), after_seq, before_seq, limit: limit_text };
                self.http(user, call, HttpKind::History { chat, query, limit });
            }
            Action::Malformed { user, device, variant, chat } => {
                let chat = self.any_chat(chat).map_or_else(|| "no-such-chat".to_string(), |c| c.to_string());
                let (event, payload) = malformed(variant, &chat);
                let kind = if event.starts_with("typing:") { CallKind::Typing } else { CallKind::Malformed };
                if self.event(user, device, event, payload, Some(kind)) {
                    self.stats.malformed += 1;
                }
            }
            Action::BadConnect { user, device, variant } => {
                let (u, d) = self.device_of(user, device);
                if let Some(old) = self.users[u].devices[d].socket().cloned() {
                    self.close(&old);
                    self.feed(Input::Disconnect { socket: old });
                }
                self.next_socket += 1;
                let socket = SocketId::new(format!("u{u}d{d}s{}", self.next_socket));
                let others_at_connect = self.open_sockets(u);
        self.open.insert(socket.clone(), OpenSocket { user: u, device: d, accepted: false, refusal: Some("UNAUTHORIZED"), others_at_connect });
                self.users[u].devices[d].conn = Conn::Connecting(socket.clone());
                let id = self.users[u].id.clone();
                let handshake = match variant % 4 {
                    0 => Handshake { auth: Some(json!({ "token": sign_token(b"another-secret", &id, false, T0.plus(86_400_000)) })), ..Handshake::default() },
                    1 => Handshake { auth: Some(json!({ "token": sign_token(SECRET, &id, false, Millis(self.now.0 - 120_000)) })), ..Handshake::default() },
                    2 => Handshake { auth: Some(json!({ "token": 42 })), ..Handshake::default() },
                    _ => Handshake::default(),
                };
                self.feed(Input::Connect { socket, handshake });
            }
            Action::BadHttp { user, variant, chat } => {
                let u = self.user_of(user);
                let chat = self.any_chat(chat).map_or_else(|| "no-such-chat".to_string(), |c| c.to_string());
                let (authorization, call, refusal) = match variant % 6 {
                    0 => (None, HttpRequest::ListChats, "UNAUTHORIZED"),
                    1 => (Some("Bearer not.a.jwt".to_string()), HttpRequest::ListChats, "UNAUTHORIZED"),
                    2 => (Some(self.users[u].bearer()), HttpRequest::AddMember { chat_id: chat, body: json!([1]) }, "VALIDATION_ERROR"),
                    3 => (
                        Some(self.users[u].bearer()),
                        HttpRequest::History { chat_id: chat, after_seq: Some("1".into()), before_seq: Some("2".into()), limit: None },
                        "VALIDATION_ERROR",
                    ),
                    4 => (
                        Some(self.users[u].bearer()),
                        HttpRequest::History { chat_id: chat, after_seq: Some("x".into()), before_seq: None, limit: None },
                        "VALIDATION_ERROR",
                    ),
                    _ => (Some(self.users[u].bearer()), HttpRequest::CreateChat { body: json!({ "kind": "dm", "memberIds": [] }) }, "VALIDATION_ERROR"),
                };
                self.next_request += 1;
                self.requests.insert(self.next_request, HttpCall { user: u, kind: HttpKind::Refused { refusal } });
                self.feed(Input::Http { request: RequestId(self.next_request), authorization, call });
            }
            Action::Deliver { pick, fault } => {
                if self.storage.pending.is_empty() {
                    return;
                }
                let index = pick as usize % self.storage.pending.len();
                if index != 0 {
                    self.stats.out_of_order += 1;
                }
                self.stats.deferred += 1;
                let op = self.storage.take(index);
                self.deliver(op, fault);
            }
            Action::Advance { ms } => self.advance(ms),
            Action::Crash => self.crash(),
        }
    }

    // --- resolving indices ----------------------------------------------------------------

    fn user_of(&self, user: u8) -> usize {
        user as usize % self.users.len()
    }

    fn device_of(&self, user: u8, device: u8) -> (usize, usize) {
        let u = self.user_of(user);
        (u, device as usize % self.users[u].devices.len())
    }

    /// The `pick`-th chat `u` is a member of (as stored), or of all chats when `pick` ≥ 200.
    fn chat_of(&self, u: usize, pick: u8) -> Option<ChatId> {
        if pick >= 200 {
            return self.any_chat(pick);
        }
        let id = &self.users[u].id;
        let mine: Vec<&ChatId> =
            self.chats.iter().filter(|c| self.storage.store.chat(c).is_some_and(|chat| chat.is_member(id))).collect();
        if mine.is_empty() {
            return None;
        }
        Some(mine[pick as usize % mine.len()].clone())
    }

    fn any_chat(&self, pick: u8) -> Option<ChatId> {
        if self.chats.is_empty() {
            return None;
        }
        Some(self.chats[pick as usize % self.chats.len()].clone())
    }

    /// Users whose devices are online, with those devices.
    pub fn online_devices(&self) -> Vec<(usize, usize)> {
        let mut all = Vec::new();
        for (u, user) in self.users.iter().enumerate() {
            for (d, device) in user.devices.iter().enumerate() {
                if device.online().is_some() {
                    all.push((u, d));
                }
            }
        }
        all
    }

    pub fn pending_storage(&self) -> usize {
        self.storage.pending.len()
    }

    // --- client actions -------------------------------------------------------------------

    fn connect(&mut self, user: u8, device: u8, auto_join: bool) {
        let (u, d) = self.device_of(user, device);
        if let Some(old) = self.users[u].devices[d].socket().cloned() {
            self.close(&old);
            self.feed(Input::Disconnect { socket: old });
        }
        self.next_socket += 1;
        let socket = SocketId::new(format!("u{u}d{d}s{}", self.next_socket));
        let others_at_connect = self.open_sockets(u);
        self.open.insert(socket.clone(), OpenSocket { user: u, device: d, accepted: false, refusal: None, others_at_connect });
        self.users[u].devices[d].conn = Conn::Connecting(socket.clone());
        let mut auth = json!({ "token": self.users[u].token });
        if auto_join {
            auth["autoJoin"] = json!(true);
        }
        self.stats.connects += 1;
        self.feed(Input::Connect { socket, handshake: Handshake { auth: Some(auth), ..Handshake::default() } });
    }

    fn send(&mut self, user: u8, device: u8, spec: SendSpec, ack: bool) {
        let u = self.user_of(user);
        let known = self.checker.stored_pair(&self.users[u].id, &spec.client_id).map(|(id, chat, seq)| {
            let same = *chat == spec.chat
                && self.storage.store.messages(chat).get(*seq as usize - 1).is_some_and(|m| m.body == spec.body);
            Known { server_id: id.clone(), seq: *seq, same }
        });
        let mut payload = json!({ "chatId": spec.chat.as_str(), "body": spec.body, "clientId": spec.client_id });
        if spec.image {
            payload["kind"] = json!("image");
        }
        let kind = CallKind::Send { spec: spec.clone(), known };
        if self.event(user, device, "message:send", payload, ack.then_some(kind)) {
            self.stats.sends += 1;
            if !ack {
                // No callback: the client cannot know; it may retry later.
                self.ackless.insert((u, spec.client_id.clone()));
                self.users[u].unsure(spec);
            }
        }
    }

    /// Sends an event from an online device; false when the device is not online.
    fn event(&mut self, user: u8, device: u8, event: &str, payload: Value, call: Option<CallKind>) -> bool {
        let (u, d) = self.device_of(user, device);
        let Some(socket) = self.users[u].devices[d].online().cloned() else { return false };
        let ack = call.map(|kind| {
            self.next_ack += 1;
            self.calls.insert(self.next_ack, Call { socket: socket.clone(), user: u, device: d, kind });
            AckId(self.next_ack)
        });
        self.feed(Input::Event { socket, event: event.to_string(), payload, ack });
        true
    }

    fn http(&mut self, user: u8, call: HttpRequest, kind: HttpKind) {
        let u = self.user_of(user);
        self.next_request += 1;
        self.requests.insert(self.next_request, HttpCall { user: u, kind });
        let authorization = Some(self.users[u].bearer());
        self.feed(Input::Http { request: RequestId(self.next_request), authorization, call });
    }

    /// The host closes a socket: it leaves every room; the client forgets its callbacks.
    pub(super) fn close(&mut self, socket: &SocketId) {
        let Some(open) = self.open.remove(socket) else { return };
        self.snapshots.remove(socket);
        for room in self.socket_rooms.remove(socket).unwrap_or_default() {
            if let Some(members) = self.rooms.get_mut(&room) {
                members.remove(socket);
            }
            if let Room::Chat(chat) = room {
                self.left_room(chat, self.users[open.user].id.clone());
            }
        }
        self.checker.socket_closed(socket);
        let user = &mut self.users[open.user];
        if user.devices[open.device].socket() == Some(socket) {
            user.devices[open.device].conn = Conn::Offline;
        }
        // Sends that were never answered: the client does not know what became of them.
        let lost: Vec<SendSpec> = self
            .calls
            .values()
            .filter(|call| call.socket == *socket)
            .filter_map(|call| match &call.kind {
                CallKind::Send { spec, .. } => Some(spec.clone()),
                _ => None,
            })
            .collect();
        for spec in lost {
            user.unsure(spec);
        }
    }
}

/// A message body: mostly short text, sometimes Unicode, rarely the longest allowed.
fn body_text(n: u32) -> String {
    match n % 50 {
        0 => "é".repeat(8000),
        1 => format!("  spaced {n}  "),
        2 => format!("emoji 😀 {n} ✓"),
        _ => format!("message {n}"),
    }
}

/// A payload of the wrong shape for its event (`variant` < [`MALFORMED_VARIANTS`]).
fn malformed(variant: u8, chat: &str) -> (&'static str, Value) {
    let uuid = "00000000-0000-4000-8000-000000000001";
    match variant % MALFORMED_VARIANTS {
        0 => ("room:join", json!(42)),
        1 => ("room:join", json!({ "chatId": 7 })),
        2 => ("message:send", json!({ "chatId": chat, "clientId": uuid })),
        3 => ("message:send", json!({ "chatId": chat, "body": " \n\t ", "clientId": uuid })),
        4 => ("message:send", json!({ "chatId": chat, "body": "hi", "clientId": "not-a-uuid" })),
        5 => ("message:send", json!({ "chatId": chat, "body": "hi", "clientId": uuid, "kind": "video" })),
        6 => ("message:send", json!({ "chatId": chat, "body": "x".repeat(8001), "clientId": uuid })),
        7 => ("message:send", json!({ "chatId": chat, "body": "not a url", "clientId": uuid, "kind": "image" })),
        8 => ("messages:sync", json!({ "chatId": chat })),
        9 => ("messages:sync", json!({ "chatId": chat, "afterSeq": 0, "limit": 0 })),
        10 => ("messages:sync", json!({ "chatId": chat, "afterSeq": -1 })),
        11 => ("receipt:read", json!({ "chatId": chat, "messageId": 5 })),
        12 => ("chat:create", json!({ "kind": "channel", "memberIds": [] })),
        13 => ("unknown:event", json!({})),
        14 => ("typing:start", json!("nonsense")),
        _ => ("presence:ping", json!([1, 2])),
    }
}
