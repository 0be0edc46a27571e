//! One object per chat: hosts the core's `ChatPartition` with the chat's storage on the
//! object's own SQLite, and its room. Objects named `dm:<key>` are the DM registry.
//!
//! Crash windows closed here (NOTES.md): membership mail waits in an outbox written with
//! the commit that caused it until its user object has it; typing deadlines are persisted
//! so the `stop` survives the object losing its memory; a DM's key is taken over from a
//! chat that claimed it but was never stored.

use super::courier::{post, stub, Courier};
use super::{arm_alarm, config, ids, log, now};
use crate::directory::shard_of;
use crate::glue::{map_changes, outbox_entry, route, ChatHost, Core, Dest, DmCreate, DmStep, Local, OUTBOX_RETRY_MS};
use crate::wire::{Batch, Item};
use chat_core::ids::{ChatId, ClientId, Millis, UserId};
use chat_core::model::Chat;
use chat_core::route::{ChatMsg, Outbox, Reply};
use chat_core::storage::{StorageOp, StorageResult};
use serde::Deserialize;
use serde_json::json;
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use worker::*;

struct Inner {
    host: ChatHost,
    core: Core,
    shards: u32,
}

#[durable_object]
pub struct ChatObject {
    state: State,
    env: Env,
    inner: RefCell<Option<Inner>>,
    courier: Courier,
    /// Which user object each HTTP call came through (its answer goes back there).
    http_origin: RefCell<BTreeMap<u64, UserId>>,
    alarm_at: Cell<Option<u64>>,
    /// Outbox entries to send again (found at wake-up, or after a failed delivery).
    redeliver: Cell<bool>,
}

#[derive(Deserialize)]
struct InboxAsk {
    to: String,
    user: String,
}

#[derive(Deserialize)]
struct Claim {
    to: String,
    key: String,
    chat: String,
    #[serde(default)]
    replacing: Option<String>,
}

#[derive(Deserialize)]
struct FindSent {
    to: String,
    sender: String,
    client_id: String,
}

fn reply_of(msg: &ChatMsg) -> Option<&Reply> {
    match msg {
        ChatMsg::Join { reply, .. }
        | ChatMsg::Leave { reply, .. }
        | ChatMsg::Send { reply, .. }
        | ChatMsg::Read { reply, .. }
        | ChatMsg::History { reply, .. }
        | ChatMsg::Create { reply, .. }
        | ChatMsg::Rename { reply, .. }
        | ChatMsg::AddMember { reply, .. }
        | ChatMsg::RemoveMember { reply, .. } => Some(reply),
        ChatMsg::SocketGone { .. } | ChatMsg::Typing { .. } | ChatMsg::Restore { .. } => None,
    }
}

/// Meta key of a chat object that answered "no record" to a DM creator: it never stores one.
const TOMBSTONE: &str = "abandoned";

impl ChatObject {
    fn init(&self, chat: &str) -> Result<()> {
        if self.inner.borrow().is_some() {
            return Ok(());
        }
        let cfg = config(&self.env)?;
        let sql = self.state.storage().sql();
        super::sql::chat_schema(&sql).map_err(Error::RustError)?;
        if chat.is_empty() {
            return Err(Error::RustError("a chat object without a name".into()));
        }
        if super::sql::meta_get(&sql, "name").map_err(Error::RustError)?.as_deref() != Some(chat) {
            super::sql::meta_put(&sql, "name", Some(chat)).map_err(Error::RustError)?;
        }
        let rooms = super::sql::load_room(&sql).map_err(Error::RustError)?;
        let typing = super::sql::load_typing(&sql).map_err(Error::RustError)?;
        // Whatever the outbox holds was not known to be delivered: send it again.
        let pending = !super::sql::outbox(&sql).map_err(Error::RustError)?.is_empty();
        self.redeliver.set(pending);
        let host = ChatHost::new(ChatId::new(chat), rooms, typing);
        *self.inner.borrow_mut() = Some(Inner { host, core: Core::new(cfg.limits, ids()), shards: cfg.directory_shards });
        Ok(())
    }

    /// The object's own name, from its storage (an alarm does not say it).
    fn init_from_storage(&self) -> Result<bool> {
        if self.inner.borrow().is_some() {
            return Ok(true);
        }
        let sql = self.state.storage().sql();
        super::sql::chat_schema(&sql).map_err(Error::RustError)?;
        match super::sql::meta_get(&sql, "name").map_err(Error::RustError)? {
            Some(name) => self.init(&name).map(|()| true),
            None => Ok(false),
        }
    }

    /// Routes a partition's output; membership mail enters the outbox at once, in the same
    /// storage transaction as the commit that caused it (no await in between).
    fn route_out(&self, out: Outbox, outboxed: &mut Vec<(UserId, u64)>) -> Result<Option<crate::glue::Routed>> {
        let sql = self.state.storage().sql();
        let routed = match self.inner.borrow_mut().as_mut() {
            Some(inner) => route(out, &mut inner.host.rooms),
            None => return Ok(None),
        };
        for (dest, item) in &routed.remote {
            if let Some(user) = outbox_entry(dest, item) {
                let version = super::sql::outbox_put(&sql, &user, item).map_err(Error::RustError)?;
                outboxed.push((user, version));
                // Armed now, with the write: if this object dies before sending, the alarm
                // wakes it to send the outbox. (Polled once: the call is made, not awaited.)
                use futures_util::FutureExt;
                let at = now().0 + OUTBOX_RETRY_MS;
                if self.alarm_at.get().is_none_or(|armed| armed > at) {
                    self.alarm_at.set(Some(at));
                    let _ = self.state.storage().set_alarm(ScheduledTime::from(OUTBOX_RETRY_MS as i64)).now_or_never();
                }
            }
        }
        Ok(Some(routed))
    }

    async fn process(&self, from_user: Option<String>, items: Vec<Item>) -> Result<()> {
        let sql = self.state.storage().sql();
        let mut remote: Vec<(Dest, Item)> = Vec::new();
        let mut outboxed: Vec<(UserId, u64)> = Vec::new();
        let before = self.inner.borrow().as_ref().map(|i| i.host.rooms.clone()).unwrap_or_default();
        for item in items {
            let Item::Chat(msg) = item else {
                log(chat_core::effect::LogLevel::Error, None, "a chat object got an item that is not chat mail");
                continue;
            };
            if let (Some(Reply::Http { request }), Some(user)) = (reply_of(&msg), from_user.as_ref()) {
                self.http_origin.borrow_mut().insert(request.0, UserId::new(user.as_str()));
            }
            let mut out = Outbox::default();
            if let Some(inner) = self.inner.borrow_mut().as_mut() {
                inner.host.deliver(&mut inner.core, now(), msg, &mut out);
            }
            self.carry_out(out, &mut remote, &mut outboxed).await?;
        }
        self.finish(&sql, before, remote, outboxed).await
    }

    /// Carries out a partition's output here, and what it leads to, until nothing is left.
    async fn carry_out(&self, out: Outbox, remote: &mut Vec<(Dest, Item)>, outboxed: &mut Vec<(UserId, u64)>) -> Result<()> {
        let mut queue: VecDeque<crate::glue::Routed> = self.route_out(out, outboxed)?.into_iter().collect();
        while let Some(routed) = queue.pop_front() {
            remote.extend(routed.remote);
            for local in routed.local {
                match local {
                    Local::Storage { op, request } => {
                        let result = self.storage(&request).await;
                        let mut out = Outbox::default();
                        if let Some(inner) = self.inner.borrow_mut().as_mut() {
                            inner.host.storage(&mut inner.core, now(), op, result, &mut out);
                        }
                        // Routed before any other await, so a commit's mail enters the
                        // outbox in the commit's transaction.
                        queue.extend(self.route_out(out, outboxed)?);
                    }
                    Local::Http { request, status, body } => match self.http_origin.borrow_mut().remove(&request.0) {
                        Some(user) => remote.push((Dest::User(user), Item::HttpDone { request, status, body })),
                        None => log(chat_core::effect::LogLevel::Warn, None, &format!("no caller for http answer {}", request.0)),
                    },
                    Local::Log { level, correlation_id, message } => log(level, correlation_id.as_ref().map(|c| c.as_str()), &message),
                }
            }
        }
        Ok(())
    }

    /// Persists the room and typing, tells the directory of room changes (before anything
    /// else leaves), sends, and lets go of delivered outbox entries.
    async fn finish(&self, sql: &SqlStorage, before: BTreeMap<chat_core::ids::SocketId, UserId>, mut remote: Vec<(Dest, Item)>, mut outboxed: Vec<(UserId, u64)>) -> Result<()> {
        let (id, after, shards) = match self.inner.borrow().as_ref() {
            Some(inner) => (inner.host.id.clone(), inner.host.rooms.clone(), inner.shards),
            None => return Ok(()),
        };
        let changes = map_changes(&before, &after);
        let mut first = Vec::new();
        if !changes.is_empty() {
            super::sql::save_room(sql, &changes).map_err(Error::RustError)?;
            first.push((Dest::Directory(shard_of(id.as_str(), shards)), Item::DirRoom { chat: id.clone(), changes }));
        }
        if self.redeliver.replace(false) {
            for (user, version, item) in super::sql::outbox(sql).map_err(Error::RustError)? {
                if !outboxed.iter().any(|(u, _)| *u == user) {
                    remote.insert(0, (Dest::User(user.clone()), item));
                    outboxed.push((user, version));
                }
            }
        }
        let deadline = self.settle(sql)?;
        self.courier.send_and_wait(&self.env, None, first).await;
        let delivered = self.courier.send(&self.env, None, remote).await;
        for (user, version) in outboxed {
            if delivered.contains(&Dest::User(user.clone())) {
                super::sql::outbox_done(sql, &user, version).map_err(Error::RustError)?;
            } else {
                // Failed, or went with another request's batch: sent again later (each
                // entry is its user's latest membership, so a repeat changes nothing).
                self.redeliver.set(true);
            }
        }
        let retry = self.redeliver.get().then(|| Millis(now().0 + OUTBOX_RETRY_MS));
        let next = match (deadline, retry) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        arm_alarm(&self.state, &self.alarm_at, next).await
    }

    /// Drops an idle partition and persists typing; the partition's next timer.
    fn settle(&self, sql: &SqlStorage) -> Result<Option<Millis>> {
        let (deadline, typing) = match self.inner.borrow_mut().as_mut() {
            Some(inner) => inner.host.settle(),
            None => return Ok(None),
        };
        if !typing.is_empty() {
            super::sql::save_typing(sql, &typing).map_err(Error::RustError)?;
        }
        Ok(deadline)
    }

    async fn storage(&self, request: &StorageOp) -> StorageResult {
        let sql = self.state.storage().sql();
        let result = match request {
            StorageOp::LoadChat { chat } => super::sql::load_chat(&sql, chat).map(StorageResult::Chat),
            StorageOp::CreateChat { chat, dm_key } => self.create(chat, dm_key.as_deref()).await,
            StorageOp::Commit { chat, writes } => super::sql::commit(&sql, chat, writes).map(|()| StorageResult::Committed),
            StorageOp::LoadMessages { query, limit, .. } => super::sql::load_messages(&sql, *query, *limit).map(StorageResult::Messages),
            StorageOp::ResolveRead { message, reader, .. } => super::sql::resolve_read(&sql, message, reader).map(StorageResult::ReadTarget),
            other => Err(format!("a chat object cannot carry out {other:?}")),
        };
        result.unwrap_or_else(StorageResult::Failed)
    }

    /// A new chat; a DM claims its key in the registry first (`glue::DmCreate`).
    async fn create(&self, chat: &Chat, dm_key: Option<&str>) -> std::result::Result<StorageResult, String> {
        let sql = self.state.storage().sql();
        if let Some(key) = dm_key {
            let (mut dm, mut step) = DmCreate::start(chat.id.clone());
            loop {
                step = match step {
                    DmStep::Claim { replacing } => {
                        let owner = self.claim(key, &chat.id, replacing.as_ref()).await.map_err(|e| format!("DM registry: {e}"))?;
                        dm.claimed(owner)
                    }
                    DmStep::AskRecord(owner) => {
                        let record = self.record_of(&owner).await.map_err(|e| format!("DM {owner}: {e}"))?;
                        dm.recorded(owner, record)
                    }
                    DmStep::Store => break,
                    DmStep::Done(result) => return Ok(result),
                }
            }
            // Checked with no await before the insert: a creator that found this object
            // empty has tombstoned it, and may hold the key now.
            if super::sql::meta_get(&sql, TOMBSTONE)?.is_some() {
                return Err("this DM's key was taken over while it was being stored".into());
            }
        }
        super::sql::insert_chat(&sql, chat)?;
        Ok(StorageResult::Created { existing: None })
    }

    async fn claim(&self, key: &str, chat: &ChatId, replacing: Option<&ChatId>) -> Result<ChatId> {
        let name = format!("dm:{key}");
        let stub = stub(&self.env, &Dest::Chat(ChatId::new(name.as_str())))?;
        let body = json!({ "to": name, "key": key, "chat": chat.as_str(), "replacing": replacing.map(ChatId::as_str) });
        let mut response = stub.fetch_with_request(post("https://chat/claim", &body)?).await?;
        Ok(ChatId::new(super::response_json::<String>(&mut response).await?))
    }

    async fn record_of(&self, chat: &ChatId) -> Result<Option<Chat>> {
        let stub = stub(&self.env, &Dest::Chat(chat.clone()))?;
        let body = json!({ "to": chat.as_str() });
        let mut response = stub.fetch_with_request(post("https://chat/record", &body)?).await?;
        super::response_json::<Option<Chat>>(&mut response).await
    }
}

impl DurableObject for ChatObject {
    fn new(state: State, env: Env) -> Self {
        Self {
            state,
            env,
            inner: RefCell::new(None),
            courier: Courier::default(),
            http_origin: RefCell::new(BTreeMap::new()),
            alarm_at: Cell::new(None),
            redeliver: Cell::new(false),
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let sql = self.state.storage().sql();
        match req.path().as_str() {
            "/batch" => {
                let batch: Batch = super::read_json(&mut req).await?;
                self.init(&batch.to)?;
                self.process(batch.from_user, batch.items).await?;
                Response::ok("")
            }
            "/inbox-row" => {
                let ask: InboxAsk = super::read_json(&mut req).await?;
                self.init(&ask.to)?;
                let row = super::sql::inbox_row(&sql, &UserId::new(ask.user)).map_err(Error::RustError)?;
                Response::from_json(&row)
            }
            "/find-sent" => {
                let ask: FindSent = super::read_json(&mut req).await?;
                self.init(&ask.to)?;
                let found = super::sql::find_sent(&sql, &UserId::new(ask.sender), &ClientId::new(ask.client_id)).map_err(Error::RustError)?;
                Response::from_json(&found)
            }
            "/record" => {
                let ask: serde_json::Value = super::read_json(&mut req).await?;
                self.init(ask["to"].as_str().unwrap_or_default())?;
                let record = super::sql::chat_record(&sql).map_err(Error::RustError)?;
                if record.is_none() {
                    // A DM creator found no chat here: it may take the key over, so this
                    // object must never store one.
                    super::sql::meta_put(&sql, TOMBSTONE, Some("1")).map_err(Error::RustError)?;
                }
                Response::from_json(&record)
            }
            "/claim" => {
                let claim: Claim = super::read_json(&mut req).await?;
                self.init(&claim.to)?;
                let replacing = claim.replacing.map(ChatId::new);
                let owner = super::sql::claim_dm(&sql, &claim.key, &ChatId::new(claim.chat), replacing.as_ref()).map_err(Error::RustError)?;
                Response::from_json(&owner.as_str())
            }
            _ => Response::error("not found", 404),
        }
    }

    async fn alarm(&self) -> Result<Response> {
        self.alarm_at.set(None);
        if !self.init_from_storage()? {
            return Response::ok("");
        }
        let sql = self.state.storage().sql();
        let before = self.inner.borrow().as_ref().map(|i| i.host.rooms.clone()).unwrap_or_default();
        // Typing lapses (rebuilt from storage if the object lost its memory) and the outbox.
        let mut out = Outbox::default();
        if let Some(inner) = self.inner.borrow_mut().as_mut() {
            inner.host.timeout(&mut inner.core, now(), &mut out);
        }
        self.redeliver.set(!super::sql::outbox(&sql).map_err(Error::RustError)?.is_empty());
        let mut remote = Vec::new();
        let mut outboxed = Vec::new();
        self.carry_out(out, &mut remote, &mut outboxed).await?;
        self.finish(&sql, before, remote, outboxed).await?;
        Response::ok("")
    }
}
