//! Promises about answers: the shape of every acknowledgement and HTTP error, that each
//! failure is logged with its correlation id, and that what each answer says agrees with
//! storage (acked messages stored once, retries answered the same, pages and inboxes as
//! stored, refusals only when due).

use super::Checker;
use crate::client::{Call, CallKind, HttpCall, HttpKind};
use chat_core::command::HistoryQuery;
use chat_core::ids::{is_uuid, ChatId, MessageId, Seq, UserId};
use chat_core::memory::MemoryStore;
use chat_core::model::Message;
use serde_json::Value;
use std::collections::BTreeSet;

/// What an answer answered, rendered only when a check fails.
enum What<'a> {
    Call(&'a CallKind, &'a UserId),
    Http(&'a HttpKind, &'a UserId),
}

impl std::fmt::Display for What<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            What::Call(kind, user) => write!(f, "{kind:?} by {user}"),
            What::Http(kind, user) => write!(f, "HTTP {kind:?} by {user}"),
        }
    }
}

/// The contract's error codes (§2, plus the handshake's).
const CODES: [&str; 7] =
    ["VALIDATION_ERROR", "UNAUTHORIZED", "FORBIDDEN", "NOT_FOUND", "RATE_LIMITED", "PAYLOAD_TOO_LARGE", "INTERNAL"];

impl Checker {
    /// §5: a refusal for the rate limit needs the window full of stored messages (plus
    /// sends possibly on their way, which hold a place).
    pub fn rate_limited(&mut self, user: &UserId, in_flight: usize) {
        let window = self.limits.rate_limit_window_ms;
        let since = self.now.0.saturating_sub(window);
        let stored = self.sends_at.get(user).map_or(0, |at| at.iter().filter(|t| **t > since).count());
        if stored + in_flight < self.limits.rate_limit_messages {
            let limit = self.limits.rate_limit_messages;
            self.fail("rate-limited-below-limit", || {
                format!("{user} refused RATE_LIMITED with {stored} messages stored in the last {window} ms and at most {in_flight} on their way (limit {limit})")
            });
        }
    }


    /// (10) The shape of an ack: `{ok:true, data?}` or `{ok:false, error, message, correlationId}`.
    fn ack_shape(&mut self, what: &What, reply: &Value) -> Result<Option<&'static str>, ()> {
        let Some(fields) = reply.as_object() else {
            self.fail("ack-shape", || format!("{what}: ack {reply} is not an object"));
            return Err(());
        };
        match reply["ok"].as_bool() {
            Some(true) => {
                if fields.keys().any(|k| k != "ok" && k != "data") {
                    self.fail("ack-shape", || format!("{what}: ack {reply}"));
                    return Err(());
                }
                Ok(None)
            }
            Some(false) => self.error_shape(what, reply, 4).map(Some),
            None => {
                self.fail("ack-shape", || format!("{what}: ack {reply} without ok"));
                Err(())
            }
        }
    }

    /// `{ error, message, correlationId }` (plus `ok` in an ack); the code, if well made.
    fn error_shape(&mut self, what: &What, body: &Value, fields: usize) -> Result<&'static str, ()> {
        let code = CODES.iter().copied().find(|code| body["error"].as_str() == Some(code));
        let cid = body["correlationId"].as_str().unwrap_or_default().to_string();
        let well_made = code.is_some()
            && body["message"].is_string()
            && is_uuid(&cid)
            && body.as_object().is_some_and(|o| o.len() == fields);
        match code {
            Some(code) if well_made => {
                self.call.answered.push((cid, code));
                Ok(code)
            }
            _ => {
                self.fail("error-shape", || format!("{what}: error answer {body}"));
                Err(())
            }
        }
    }

    /// An acknowledgement callback was called.
    pub fn ack(&mut self, call: &Call, user: &UserId, reply: &Value, store: &MemoryStore) {
        let what = What::Call(&call.kind, user);
        let Ok(code) = self.ack_shape(&what, reply) else { return };
        let data = &reply["data"];
        match &call.kind {
            CallKind::Typing => self.fail("typing-acked", || format!("typing event answered: {reply}")),
            CallKind::Malformed => {
                if code != Some("VALIDATION_ERROR") {
                    self.fail("malformed-not-refused", || format!("malformed payload answered {reply}"));
                }
            }
            CallKind::Send { spec, known } => match code {
                None => {
                    let server_id = data["serverId"].as_str().unwrap_or_default();
                    let seq = data["seq"].as_u64().unwrap_or(0);
                    // (1) An acked message is in storage, once, as sent.
                    let stored = store.messages(&spec.chat).get((seq as usize).wrapping_sub(1));
                    let matches = stored.is_some_and(|m| {
                        m.id.as_str() == server_id && m.client_id.as_str() == spec.client_id && m.sender_id == *user && m.body == spec.body
                    });
                    if !matches || data["clientId"].as_str() != Some(spec.client_id.as_str()) {
                        return self.fail("acked-not-stored", || format!("ack {reply} for {spec:?}, storage has {stored:?}"));
                    }
                    // (3) Every ok ack of one (sender, clientId) carries the same serverId and seq.
                    let key = (user.clone(), spec.client_id.clone());
                    let seen = self.acked.entry(key).or_insert_with(|| (server_id.to_string(), seq)).clone();
                    if seen != (server_id.to_string(), seq) {
                        return self.fail("ack-changed", || format!("{user} clientId {} acked {seen:?}, now {server_id}/{seq}", spec.client_id));
                    }
                    if let Some(known) = known {
                        if !known.same {
                            return self.fail("client-id-reuse-accepted", || format!("clientId {} reused for another message, acked {reply}", spec.client_id));
                        }
                        if known.server_id.as_str() != server_id {
                            return self.fail("retry-answered-differently", || format!("retry of {} acked {server_id}, stored {:?}", spec.client_id, known.server_id));
                        }
                    }
                    // §5 order: commit, message:new, inbox:update to every member, ack.
                    let id = MessageId::from(server_id);
                    if self.call.fresh.contains(&id) {
                        let members = self.members.get(&spec.chat).map_or(0, Vec::len);
                        let inboxes = self.call.inbox.get(server_id).copied().unwrap_or(0);
                        let broadcast = self.broadcast_now(&id);
                        if !broadcast || inboxes != members {
                            self.fail("send-effect-order", || format!("ack of {server_id} after {inboxes} of {members} inbox updates (message:new: {broadcast})"));
                        }
                    }
                }
                Some(code) => {
                    if let Some(known) = known {
                        let allowed: &[&str] = if known.same { &["INTERNAL"] } else { &["VALIDATION_ERROR", "INTERNAL"] };
                        if !allowed.contains(&code) {
                            return self.fail("retry-refused", || format!("send of stored clientId {} (same message: {}) answered {reply}", spec.client_id, known.same));
                        }
                    }
                    if code == "FORBIDDEN" && self.is_member(&spec.chat, user) {
                        self.fail("forbidden-member", || format!("{user} refused FORBIDDEN in {} while a member", spec.chat));
                    }
                }
            },
            CallKind::Join { chat } => match code {
                None => {
                    let members: Vec<String> = self.members.get(chat).map(|m| m.iter().map(UserId::to_string).collect()).unwrap_or_default();
                    let last_seq = store.messages(chat).len() as u64;
                    let ok = self.is_member(chat, user)
                        && data["chatId"].as_str() == Some(chat.as_str())
                        && data["lastSeq"].as_u64() == Some(last_seq)
                        && data["memberIds"].as_array().is_some_and(|ids| ids.iter().map(|v| v.as_str().unwrap_or_default()).eq(members.iter().map(String::as_str)));
                    if !ok {
                        self.fail("join-answer", || format!("{user} joined {chat}: {reply}; storage: members {members:?}, lastSeq {last_seq}"));
                    }
                }
                Some("FORBIDDEN") if self.is_member(chat, user) => {
                    self.fail("forbidden-member", || format!("{user} refused FORBIDDEN joining {chat} while a member"))
                }
                Some("NOT_FOUND") if store.chat(chat).is_some() => self.fail("not-found-exists", || format!("join of {chat}: NOT_FOUND but it exists")),
                Some(_) => {}
            },
            CallKind::Read { chat, seq } => match code {
                None => {
                    let acked = data["seq"].as_u64().unwrap_or(0);
                    if seq.is_some_and(|read| acked < read) {
                        self.fail("read-answer", || format!("{user} read seq {seq:?} of {chat}; ack says the cursor is at {acked}"));
                    }
                }
                Some("FORBIDDEN") if self.is_member(chat, user) => {
                    self.fail("forbidden-member", || format!("{user} refused FORBIDDEN reading {chat} while a member"))
                }
                Some(_) => {}
            },
            CallKind::Sync { chat, after, limit } => match code {
                None => self.check_page(&what, chat, HistoryQuery::After(Seq(*after)), *limit, data, store),
                Some("FORBIDDEN") if self.is_member(chat, user) => {
                    self.fail("forbidden-member", || format!("{user} refused FORBIDDEN syncing {chat} while a member"))
                }
                Some(_) => {}
            },
            CallKind::Create { dm_with } => {
                if code.is_none() {
                    let id = ChatId::from(data["chat"]["id"].as_str().unwrap_or_default());
                    if store.chat(&id).is_none_or(|c| !c.is_member(user)) {
                        return self.fail("create-answer", || format!("chat:create answered {reply} but storage has no such chat of {user}"));
                    }
                    // §3: a DM between two users is unique; creating it again answers it.
                    if let Some(other) = dm_with {
                        let key = if user <= other { (user.clone(), other.clone()) } else { (other.clone(), user.clone()) };
                        if self.dms.get(&key) != Some(&id) {
                            let known = self.dms.get(&key).cloned();
                            self.fail("dm-not-unique", || format!("DM of {user} and {other} answered {id}, stored {known:?}"));
                        }
                    }
                }
            }
            CallKind::Leave { .. } | CallKind::Ping => {}
        }
    }

    /// A page of history is exactly what storage holds (§3 `messages:sync`, §9).
    fn check_page(&mut self, what: &What, chat: &ChatId, query: HistoryQuery, limit: u32, data: &Value, store: &MemoryStore) {
        let all = store.messages(chat);
        let limit = limit as usize;
        let (page, has_more): (Vec<&Message>, bool) = match query {
            HistoryQuery::After(after) => {
                let newer: Vec<&Message> = all.iter().filter(|m| m.seq > after).collect();
                (newer.iter().take(limit).copied().collect(), newer.len() > limit)
            }
            HistoryQuery::Before(before) => {
                let older: Vec<&Message> = all.iter().filter(|m| before.is_none_or(|b| m.seq < b)).collect();
                (older[older.len().saturating_sub(limit)..].to_vec(), older.len() > limit)
            }
        };
        let got = data["messages"].as_array();
        let same = got.is_some_and(|got| got.len() == page.len() && got.iter().zip(&page).all(|(g, m)| *g == m.to_json()));
        if !same || data["hasMore"].as_bool() != Some(has_more) {
            let seqs: Vec<u64> = page.iter().map(|m| m.seq.0).collect();
            self.fail("history-page", || format!("{what}: got {data}, storage page is seqs {seqs:?} hasMore {has_more}"));
        }
    }

    /// An HTTP response.
    pub fn http(&mut self, call: &HttpCall, user: &UserId, status: u16, body: &Value, store: &MemoryStore) {
        let what = What::Http(&call.kind, user);
        if let HttpKind::Refused { refusal } = call.kind {
            let code = body["error"].as_str();
            if status < 400 || code != Some(refusal) {
                return self.fail("bad-request-answer", || format!("{what}: answered {status} {body}"));
            }
        }
        if status >= 400 {
            let Ok(code) = self.error_shape(&what, body, 3) else { return };
            let expected = match code {
                "VALIDATION_ERROR" => 400,
                "UNAUTHORIZED" => 401,
                "FORBIDDEN" => 403,
                "NOT_FOUND" => 404,
                "PAYLOAD_TOO_LARGE" => 413,
                "RATE_LIMITED" => 429,
                _ => 500,
            };
            if status != expected {
                self.fail("http-status", || format!("{what}: {code} with status {status}"));
            }
            return;
        }
        match &call.kind {
            HttpKind::List => self.check_inbox(&what, user, body, store),
            HttpKind::History { chat, query, limit } => self.check_page(&what, chat, *query, *limit, body, store),
            HttpKind::Add { chat, member } => {
                if !self.is_member(chat, member) {
                    self.fail("member-change-answer", || format!("{what}: answered {status} but {member} is not a member"));
                }
            }
            HttpKind::Remove { chat, member } => {
                if self.is_member(chat, member) {
                    self.fail("member-change-answer", || format!("{what}: answered {status} but {member} is still a member"));
                }
            }
            HttpKind::Rename | HttpKind::Refused { .. } => {}
        }
    }

    /// `GET /api/v1/chats`: the caller's chats, newest activity first, counts as stored.
    fn check_inbox(&mut self, what: &What, user: &UserId, body: &Value, store: &MemoryStore) {
        let rows = body["chats"].as_array().cloned().unwrap_or_default();
        let mine: BTreeSet<String> = self.members.iter().filter(|(_, m)| m.contains(user)).map(|(c, _)| c.to_string()).collect();
        let listed: BTreeSet<String> = rows.iter().filter_map(|r| r["chat"]["id"].as_str().map(str::to_string)).collect();
        if mine != listed || listed.len() != rows.len() {
            return self.fail("inbox-list", || format!("{what}: lists {listed:?}, member of {mine:?}"));
        }
        let mut last_activity = u64::MAX;
        for row in &rows {
            let chat = ChatId::from(row["chat"]["id"].as_str().unwrap_or_default());
            let all = store.messages(&chat);
            let last = all.last();
            let activity = last.map(|m| m.created_at.0).or_else(|| store.chat(&chat).map(|c| c.created_at.0)).unwrap_or(0);
            let expected_unread = self.unread(&chat, user, all.len() as u64);
            if row["lastMessage"] != last.map_or(Value::Null, Message::to_json) || row["unreadCount"].as_u64() != Some(expected_unread) {
                return self.fail("inbox-list", || format!("{what}: row {row} but storage: last {:?}, unread {expected_unread}", last.map(|m| m.seq)));
            }
            if activity > last_activity {
                return self.fail("inbox-order", || format!("{what}: {chat} listed after older activity"));
            }
            last_activity = activity;
        }
    }
}
