//! Promises about what the engine emits: who receives it (members only), in what order,
//! and with what payload (messages as stored, unread counts as storage has them, typing
//! start and stop in turn, presence only to contacts and at most once per window).

use super::Checker;
use chat_core::effect::{Room, ServerEvent, Target};
use chat_core::ids::{ChatId, MessageId, SocketId, UserId};
use chat_core::memory::MemoryStore;
use chat_core::model::Message;
use serde_json::Value;
use std::collections::BTreeSet;

impl Checker {

    /// An `Emit`, with the sockets it reached (the host's rooms at that moment).
    pub fn emit(
        &mut self,
        to: &Target,
        except_user: Option<&UserId>,
        event: ServerEvent,
        payload: &Value,
        recipients: &[(SocketId, UserId)],
        store: &MemoryStore,
    ) {
        let chat_of = |field: &Value| field.as_str().map(ChatId::from);
        let chat = match event {
            ServerEvent::ChatUpdate => chat_of(&payload["chat"]["id"]),
            ServerEvent::PresenceUpdate | ServerEvent::PresenceSnapshot => None,
            _ => chat_of(&payload["chatId"]),
        };
        // (4) Nobody receives an event of a chat they are not a member of (chat:update
        // also reaches the members the change removed).
        if let Some(chat) = &chat {
            for (socket, user) in recipients {
                let allowed = self.is_member(chat, user)
                    || (event == ServerEvent::ChatUpdate && self.removed.get(chat).is_some_and(|r| r.contains(user)));
                if !allowed {
                    self.fail("event-to-non-member", || format!("{} of {chat} reached {socket} of non-member {user}: {payload}", event.name()));
                    return;
                }
            }
        }
        match event {
            ServerEvent::MessageNew => self.message_new(to, except_user, payload, recipients, store),
            ServerEvent::InboxUpdate => {
                let chat = chat.unwrap_or_else(|| ChatId::from(""));
                let Target::Room(Room::User(member)) = to else {
                    return self.fail("inbox-target", || format!("inbox:update to {to:?}"));
                };
                if !self.is_member(&chat, member) {
                    return self.fail("event-to-non-member", || format!("inbox:update of {chat} to non-member {member}"));
                }
                let last = &payload["lastMessage"];
                let server_id = last["id"].as_str().unwrap_or_default().to_string();
                if !self.call.news.contains_key(&server_id) {
                    return self.fail("send-effect-order", || format!("inbox:update for {server_id} before (or without) its message:new"));
                }
                *self.call.inbox.entry(server_id).or_insert(0) += 1;
                // (6) The unread count is the member's own, as storage has it.
                let upto = last["seq"].as_u64().unwrap_or(0);
                let expected = self.unread(&chat, member, upto);
                if payload["unreadCount"].as_u64() != Some(expected) {
                    self.fail("unread-count", || format!("inbox:update to {member} in {chat} up to seq {upto}: unreadCount {} but storage says {expected}", payload["unreadCount"]));
                }
            }
            ServerEvent::TypingUpdate => {
                let chat = chat.unwrap_or_else(|| ChatId::from(""));
                let user = UserId::from(payload["userId"].as_str().unwrap_or_default());
                if *to != Target::Room(Room::Chat(chat.clone())) || except_user != Some(&user) {
                    return self.fail("typing-target", || format!("typing:update of {user} to {to:?} except {except_user:?}"));
                }
                let key = (chat.clone(), user.clone());
                match payload["state"].as_str() {
                    Some("start") => {
                        if self.typing.insert(key, self.now).is_some() {
                            self.fail("typing-start-repeated", || format!("{user} in {chat}: start while typing"));
                        }
                    }
                    Some("stop") => {
                        if self.typing.remove(&key).is_none() {
                            self.fail("typing-stop-without-start", || format!("{user} in {chat}: stop while not typing"));
                        }
                    }
                    other => self.fail("typing-shape", || format!("typing:update state {other:?}")),
                }
            }
            ServerEvent::PresenceUpdate => {
                let user = UserId::from(payload["userId"].as_str().unwrap_or_default());
                let online = match payload["status"].as_str() {
                    Some("online") => true,
                    Some("offline") => false,
                    other => return self.fail("presence-shape", || format!("presence:update status {other:?}")),
                };
                let Target::Room(Room::User(contact)) = to else {
                    return self.fail("presence-target", || format!("presence:update to {to:?}"));
                };
                if !self.contacts.get(&user).is_some_and(|c| c.contains(contact)) {
                    return self.fail("presence-to-stranger", || format!("presence of {user} to {contact}, who shares no chat"));
                }
                if self.call.announced.insert(user.clone(), online).is_some_and(|before| before != online) {
                    self.fail("presence-throttle", || format!("{user}: online and offline in one step"));
                }
            }
            ServerEvent::ReceiptUpdate => {
                let chat = chat.unwrap_or_else(|| ChatId::from(""));
                let user = UserId::from(payload["userId"].as_str().unwrap_or_default());
                let stored = self.cursors.get(&(chat.clone(), user.clone())).copied().unwrap_or(0);
                let seq = payload["seq"].as_u64().unwrap_or(u64::MAX);
                if seq > stored || seq == 0 {
                    return self.fail("receipt-not-stored", || format!("receipt:update of {user} in {chat} at {seq}, cursor stored at {stored}"));
                }
                // §7: a read that does not move the cursor broadcasts nothing.
                let before = self.receipts.insert((chat.clone(), user.clone()), seq).unwrap_or(0);
                if seq <= before {
                    self.fail("receipt-not-forward", || format!("receipt:update of {user} in {chat} at {seq} after {before}"));
                }
            }
            ServerEvent::ChatUpdate => {
                if let (Some(chat), Target::Room(Room::User(user))) = (chat, to) {
                    *self.call.chat_updates.entry((chat, user.clone())).or_insert(0) += 1;
                }
            }
            ServerEvent::PresenceSnapshot => {}
        }
    }

    fn message_new(&mut self, to: &Target, except_user: Option<&UserId>, payload: &Value, recipients: &[(SocketId, UserId)], store: &MemoryStore) {
        let chat = ChatId::from(payload["chatId"].as_str().unwrap_or_default());
        let seq = payload["seq"].as_u64().unwrap_or(0);
        let server_id = payload["id"].as_str().unwrap_or_default().to_string();
        if *to != Target::Room(Room::Chat(chat.clone())) || except_user.is_some() {
            return self.fail("message-new-target", || format!("message:new of {chat} to {to:?} except {except_user:?}"));
        }
        // Broadcast once, right when its commit is known durable, exactly as stored.
        let stored = store.messages(&chat).get((seq as usize).wrapping_sub(1));
        if stored.map(Message::to_json).as_ref() != Some(payload) {
            return self.fail("message-new-not-stored", || format!("message:new {payload} but storage has {stored:?}"));
        }
        if !self.call.fresh.contains(&MessageId::from(server_id.as_str())) {
            return self.fail("broadcast-not-at-commit", || format!("message:new {server_id} (seq {seq}) outside the step its commit completed"));
        }
        if !self.broadcast.insert(server_id.clone()) {
            return self.fail("broadcast-twice", || format!("message:new {server_id} emitted again"));
        }
        self.call.news.insert(server_id, chat.clone());
        // (5) Each socket receives a chat's messages once, in seq order.
        for (socket, _) in recipients {
            let last = self.socket_seq.entry((socket.clone(), chat.clone())).or_insert(0);
            if seq <= *last {
                let before = *last;
                return self.fail("message-order-per-socket", || format!("{socket} got seq {seq} of {chat} after {before}"));
            }
            *last = seq;
            self.call.received.insert((socket.clone(), chat.clone(), seq));
        }
    }

    /// Whether `socket` received `message:new` for (chat, seq) in the current call.
    pub fn received(&self, socket: &SocketId, chat: &ChatId, seq: u64) -> bool {
        self.call.received.contains(&(socket.clone(), chat.clone(), seq))
    }

    /// §9: a committed change of a chat reached every member, old and new, once.
    pub fn chat_update_reached_everyone(&mut self, chat: &ChatId) {
        let mut everyone: BTreeSet<UserId> = self.members.get(chat).map(|m| m.iter().cloned().collect()).unwrap_or_default();
        everyone.extend(self.removed.get(chat).into_iter().flatten().cloned());
        for user in everyone {
            let got = self.call.chat_updates.get(&(chat.clone(), user.clone())).copied().unwrap_or(0);
            if got != 1 {
                self.fail("chat-update-not-everyone", || format!("change of {chat}: {user} got {got} chat:update"));
            }
        }
    }

    pub fn is_typing(&self, chat: &ChatId, user: &UserId) -> bool {
        self.typing.contains_key(&(chat.clone(), user.clone()))
    }

    /// Whether the current call broadcast `server_id`.
    pub fn broadcast_now(&self, server_id: &MessageId) -> bool {
        self.call.news.contains_key(server_id.as_str())
    }
}
