//! One object per user: hosts the core's `UserPartition` and the user's index (chats,
//! sent messages, sends on their way, sockets), and passes every packet for the user's
//! sockets on to their connection objects. HTTP calls of the user enter here. It tells the
//! user's directory shard which sockets are let in (before the CONNECT goes out) and
//! reports counters for `/metrics`.

use super::courier::{post, stub, Courier};
use super::{arm_alarm, config, ids, json_response, log, now, random_u128};
use super::sql::SqlIndex;
use crate::config::EdgeConfig;
use crate::directory::shard_of;
use crate::glue::{found_in_chat, index_arrival, index_departures, route, user_fanout, Core, Dest, Find, Local, UserHost};
use crate::wire::{Batch, HttpCall, Item};
use chat_core::ids::{ChatId, ClientId, RequestId, UserId};
use chat_core::model::Message;
use chat_core::route::{http_envelope, Envelope, Outbox, Reply};
use chat_core::storage::{InboxRow, StorageOp, StorageResult};
use chat_core::user::Presence;
use chat_core::validate::parse_http;
use futures_channel::oneshot;
use serde_json::{json, Value};
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use worker::*;

/// Counters go to the directory with the next directory update, or with the first request
/// handled at least this long after they were counted.
const COUNTS_FLUSH_MS: u64 = 10_000;

struct Inner {
    cfg: EdgeConfig,
    host: UserHost,
    core: Core,
    /// When the counters not yet reported must go out.
    counts_due: Option<u64>,
}

#[durable_object]
pub struct UserObject {
    state: State,
    env: Env,
    inner: RefCell<Option<Inner>>,
    courier: Courier,
    http: RefCell<BTreeMap<u64, oneshot::Sender<(u16, Value)>>>,
    alarm_at: Cell<Option<u64>>,
}

enum Work {
    Out(Outbox),
    Item(Item),
}

fn sql_err(error: String) -> Error {
    Error::RustError(error)
}

impl UserObject {
    fn init(&self, user: &str) -> Result<()> {
        if self.inner.borrow().is_some() {
            return Ok(());
        }
        if user.is_empty() {
            return Err(Error::RustError("a user object without a name".into()));
        }
        let cfg = config(&self.env)?;
        let sql = self.state.storage().sql();
        super::sql::user_schema(&sql).map_err(sql_err)?;
        if super::sql::meta_get(&sql, "name").map_err(sql_err)?.as_deref() != Some(user) {
            super::sql::meta_put(&sql, "name", Some(user)).map_err(sql_err)?;
        }
        let sockets = super::sql::load_sockets(&sql).map_err(sql_err)?;
        let presence = match super::sql::meta_get(&sql, "presence").map_err(sql_err)? {
            Some(text) => Some(serde_json::from_str::<Presence>(&text).map_err(|e| Error::RustError(e.to_string()))?),
            None => None,
        };
        let host = UserHost::new(UserId::new(user), sockets, presence);
        let core = Core::new(cfg.limits.clone(), ids());
        *self.inner.borrow_mut() = Some(Inner { cfg, host, core, counts_due: None });
        Ok(())
    }

    /// Wakes from storage (an alarm does not say the object's name); false if never used.
    fn init_from_storage(&self) -> Result<bool> {
        if self.inner.borrow().is_some() {
            return Ok(true);
        }
        let sql = self.state.storage().sql();
        super::sql::user_schema(&sql).map_err(sql_err)?;
        match super::sql::meta_get(&sql, "name").map_err(sql_err)? {
            Some(name) => self.init(&name).map(|()| true),
            None => Ok(false),
        }
    }

    fn me(&self) -> UserId {
        self.inner.borrow().as_ref().map(|i| i.host.id.clone()).unwrap_or_else(|| UserId::new(""))
    }

    /// Handles items (from a batch, or made here), carrying out everything that follows,
    /// then sends what goes elsewhere.
    async fn process(&self, work: Vec<Work>) -> Result<()> {
        let me = self.me();
        let sql = self.state.storage().sql();
        let mut queue: VecDeque<Work> = work.into();
        let mut remote: Vec<(Dest, Item)> = Vec::new();
        while let Some(next) = queue.pop_front() {
            match next {
                Work::Item(Item::User(msg)) => {
                    // The index first: durable before anything this message causes goes out.
                    index_arrival(&mut SqlIndex { sql: &sql, me: &me }, &me, &msg).map_err(sql_err)?;
                    let mut out = Outbox::default();
                    if let Some(inner) = self.inner.borrow_mut().as_mut() {
                        inner.host.deliver(&mut inner.core, now(), msg, &mut out);
                    }
                    queue.push_front(Work::Out(out));
                }
                Work::Item(item @ (Item::Socket { .. } | Item::UserRoom { .. })) => {
                    let sockets = match self.inner.borrow_mut().as_mut() {
                        Some(inner) => {
                            inner.host.note_outgoing(&item);
                            inner.host.socket_list()
                        }
                        None => Vec::new(),
                    };
                    remote.extend(user_fanout(item, &sockets));
                }
                Work::Item(Item::HttpDone { request, status, body }) => {
                    if let Some(waiting) = self.http.borrow_mut().remove(&request.0) {
                        let _ = waiting.send((status, body));
                    }
                }
                Work::Item(Item::DirCounts(counts)) => {
                    if let Some(inner) = self.inner.borrow_mut().as_mut() {
                        inner.host.counts.add(&counts);
                    }
                }
                Work::Item(other) => log(chat_core::effect::LogLevel::Error, None, &format!("a user object cannot take {other:?}")),
                Work::Out(out) => {
                    let routed = route(out, &mut BTreeMap::new());
                    // Where each send went, before it goes (a retry after a crash asks there).
                    index_departures(&mut SqlIndex { sql: &sql, me: &me }, &routed.remote).map_err(sql_err)?;
                    let mut follow = Vec::new();
                    for (dest, item) in routed.remote {
                        if dest == Dest::User(me.clone()) {
                            follow.push(Work::Item(item));
                        } else {
                            remote.push((dest, item));
                        }
                    }
                    for local in routed.local {
                        match local {
                            Local::Storage { op, request } => {
                                let result = self.storage(&request).await;
                                let mut out = Outbox::default();
                                if let Some(inner) = self.inner.borrow_mut().as_mut() {
                                    inner.host.storage(&mut inner.core, now(), op, result, &mut out);
                                }
                                follow.push(Work::Out(out));
                            }
                            Local::Http { request, status, body } => {
                                if let Some(waiting) = self.http.borrow_mut().remove(&request.0) {
                                    let _ = waiting.send((status, body));
                                }
                            }
                            Local::Log { level, correlation_id, message } => {
                                log(level, correlation_id.as_ref().map(|c| c.as_str()), &message)
                            }
                        }
                    }
                    for work in follow.into_iter().rev() {
                        queue.push_front(work);
                    }
                }
            }
        }
        let first = self.settle().await?;
        // The directory hears of sockets let in or gone before the CONNECT (or anything
        // else) leaves, so an admin call made after it lists them.
        self.courier.send_and_wait(&self.env, Some(me.as_str()), first).await;
        self.courier.send(&self.env, Some(me.as_str()), remote).await;
        Ok(())
    }

    /// Persists what changed and keeps the alarm; what must reach the directory first.
    async fn settle(&self) -> Result<Vec<(Dest, Item)>> {
        let sql = self.state.storage().sql();
        let now = now();
        let mut first = Vec::new();
        let deadline = {
            let mut guard = self.inner.borrow_mut();
            let Some(inner) = guard.as_mut() else { return Ok(first) };
            let settled = inner.host.settle(now, inner.cfg.limits.presence_throttle_ms);
            if !settled.sockets.is_empty() {
                super::sql::save_sockets(&sql, &settled.sockets).map_err(sql_err)?;
            }
            if let Some(presence) = settled.presence {
                let text = presence.map(|p| serde_json::to_string(&p)).transpose()?;
                super::sql::meta_put(&sql, "presence", text.as_deref()).map_err(sql_err)?;
            }
            let shard = Dest::Directory(shard_of(inner.host.id.as_str(), inner.cfg.directory_shards));
            let had_update = settled.directory.is_some();
            if let Some(item) = settled.directory {
                first.push((shard.clone(), item));
            }
            if inner.host.counts.is_empty() {
                inner.counts_due = None;
            } else {
                let due = *inner.counts_due.get_or_insert(now.0 + COUNTS_FLUSH_MS);
                if had_update || due <= now.0 {
                    first.push((shard, Item::DirCounts(std::mem::take(&mut inner.host.counts))));
                    inner.counts_due = None;
                }
            }
            // No alarm of its own for counters: an alarm of this object that fired while a
            // request was in flight left that request's ack stuck (durability check, not
            // yet understood); counters wait for the next request instead.
            settled.deadline
        };
        arm_alarm(&self.state, &self.alarm_at, deadline).await?;
        Ok(first)
    }

    async fn storage(&self, request: &StorageOp) -> StorageResult {
        let sql = self.state.storage().sql();
        let result = match request {
            StorageOp::LoadUser { sends_since, .. } => super::sql::load_user(&sql, *sends_since).map(StorageResult::User),
            StorageOp::FindMessage { sender, client_id } => self.find_message(sender, client_id).await.map(StorageResult::Message),
            StorageOp::ListInbox { user } => self.list_inbox(user).await.map(StorageResult::Inbox),
            other => Err(format!("a user object cannot carry out {other:?}")),
        };
        result.unwrap_or_else(StorageResult::Failed)
    }

    /// The index; a send the index saw leave but never heard back of is asked of its chat.
    async fn find_message(&self, sender: &UserId, client_id: &ClientId) -> std::result::Result<Option<Message>, String> {
        let sql = self.state.storage().sql();
        let chat = match crate::glue::find_sent(&SqlIndex { sql: &sql, me: sender }, client_id)? {
            Find::Done(found) => return Ok(found),
            Find::AskChat(chat) => chat,
        };
        let ask = async {
            let stub = stub(&self.env, &Dest::Chat(chat.clone()))?;
            let body = json!({ "to": chat.as_str(), "sender": sender.as_str(), "client_id": client_id.as_str() });
            let mut response = stub.fetch_with_request(post("https://chat/find-sent", &body)?).await?;
            super::response_json::<Option<Message>>(&mut response).await
        };
        let found = ask.await.map_err(|e| format!("clientId {client_id} in chat {chat}: {e}"))?;
        found_in_chat(&mut SqlIndex { sql: &sql, me: sender }, client_id, found)
    }

    /// Every chat of the index answers for itself (its chat object is the authority).
    async fn list_inbox(&self, user: &UserId) -> std::result::Result<Vec<InboxRow>, String> {
        let chats = super::sql::user_chats(&self.state.storage().sql())?;
        let asks = chats.into_iter().map(|(chat, _)| self.inbox_row(chat, user.clone()));
        let rows = futures_util::future::join_all(asks).await;
        let mut inbox: Vec<InboxRow> = rows.into_iter().collect::<std::result::Result<Vec<_>, String>>()?.into_iter().flatten().collect();
        inbox.sort_by(|a, b| a.chat.id.cmp(&b.chat.id));
        Ok(inbox)
    }

    async fn inbox_row(&self, chat: ChatId, user: UserId) -> std::result::Result<Option<InboxRow>, String> {
        let ask = async {
            let stub = stub(&self.env, &Dest::Chat(chat.clone()))?;
            let body = json!({ "to": chat.as_str(), "user": user.as_str() });
            let mut response = stub.fetch_with_request(post("https://chat/inbox-row", &body)?).await?;
            super::response_json::<Option<InboxRow>>(&mut response).await
        };
        ask.await.map_err(|e| format!("inbox of chat {chat}: {e}"))
    }

    async fn http(&self, call: HttpCall) -> Result<Response> {
        self.init(&call.user)?;
        let me = self.me();
        let request = RequestId((random_u128() as u64) >> 11);
        let (tx, rx) = oneshot::channel();
        self.http.borrow_mut().insert(request.0, tx);
        let reply = Reply::Http { request };
        let work = match parse_http(&call.call) {
            Ok(command) => match http_envelope(me.clone(), command, reply) {
                Envelope::ToUser(_, msg) => Work::Item(Item::User(msg)),
                Envelope::ToChat(chat, msg) => {
                    self.courier.send(&self.env, Some(me.as_str()), vec![(Dest::Chat(chat), Item::Chat(msg))]).await;
                    Work::Out(Outbox::default())
                }
            },
            Err(error) => {
                let mut out = Outbox::default();
                if let Some(inner) = self.inner.borrow_mut().as_mut() {
                    inner.core.run(now(), &mut out, |ctx| ctx.reply_err(&reply, error));
                }
                Work::Out(out)
            }
        };
        self.process(vec![work]).await?;
        match rx.await {
            Ok((status, body)) => json_response(status, &body),
            Err(_) => json_response(500, &json!({ "error": "INTERNAL", "message": "the call was dropped" })),
        }
    }
}

impl DurableObject for UserObject {
    fn new(state: State, env: Env) -> Self {
        Self {
            state,
            env,
            inner: RefCell::new(None),
            courier: Courier::default(),
            http: RefCell::new(BTreeMap::new()),
            alarm_at: Cell::new(None),
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        match req.path().as_str() {
            "/batch" => {
                let batch: Batch = super::read_json(&mut req).await?;
                self.init(&batch.to)?;
                self.process(batch.items.into_iter().map(Work::Item).collect()).await?;
                Response::ok("")
            }
            "/http" => {
                let call: HttpCall = super::read_json(&mut req).await?;
                self.http(call).await
            }
            _ => Response::error("not found", 404),
        }
    }

    /// Presence due at the end of a throttle window (rebuilt from storage if the object
    /// lost its memory), and counters due for the directory.
    async fn alarm(&self) -> Result<Response> {
        self.alarm_at.set(None);
        if !self.init_from_storage()? {
            return Response::ok("");
        }
        let mut out = Outbox::default();
        if let Some(inner) = self.inner.borrow_mut().as_mut() {
            inner.host.timeout(&mut inner.core, now(), &mut out);
        }
        self.process(vec![Work::Out(out)]).await?;
        Response::ok("")
    }
}
