//! One object per chat: hosts the core's `ChatPartition` with the chat's storage on the
//! object's own SQLite, and its room. Objects named `dm:<key>` are the DM registry.

use super::courier::{post, stub, Courier};
use super::{arm_alarm, config, ids, log, now};
use crate::glue::{room_changes, route, ChatHost, Core, Dest, Local};
use crate::wire::{Batch, Item};
use chat_core::ids::{ChatId, UserId};
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

impl ChatObject {
    fn init(&self, chat: &str) -> Result<()> {
        if self.inner.borrow().is_some() {
            return Ok(());
        }
        let cfg = config(&self.env)?;
        let sql = self.state.storage().sql();
        super::sql::chat_schema(&sql).map_err(Error::RustError)?;
        let rooms = super::sql::load_room(&sql).map_err(Error::RustError)?;
        *self.inner.borrow_mut() = Some(Inner { host: ChatHost::new(ChatId::new(chat), rooms), core: Core::new(cfg.limits, ids()) });
        Ok(())
    }

    async fn process(&self, from_user: Option<String>, items: Vec<Item>) -> Result<()> {
        let sql = self.state.storage().sql();
        let mut queue: VecDeque<Outbox> = VecDeque::new();
        let mut remote: Vec<(Dest, Item)> = Vec::new();
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
            queue.push_back(out);
            while let Some(out) = queue.pop_front() {
                let routed = match self.inner.borrow_mut().as_mut() {
                    Some(inner) => route(out, &mut inner.host.rooms),
                    None => break,
                };
                remote.extend(routed.remote);
                for local in routed.local {
                    match local {
                        Local::Storage { op, request } => {
                            let result = self.storage(&request).await;
                            let mut out = Outbox::default();
                            if let Some(inner) = self.inner.borrow_mut().as_mut() {
                                inner.host.storage(&mut inner.core, now(), op, result, &mut out);
                            }
                            queue.push_back(out);
                        }
                        Local::Http { request, status, body } => match self.http_origin.borrow_mut().remove(&request.0) {
                            Some(user) => remote.push((Dest::User(user), Item::HttpDone { request, status, body })),
                            None => log(chat_core::effect::LogLevel::Warn, None, &format!("no caller for http answer {}", request.0)),
                        },
                        Local::Log { level, correlation_id, message } => log(level, correlation_id.as_ref().map(|c| c.as_str()), &message),
                    }
                }
            }
        }
        let after = self.inner.borrow().as_ref().map(|i| i.host.rooms.clone()).unwrap_or_default();
        let changes = room_changes(&before, &after);
        if !changes.is_empty() {
            super::sql::save_room(&sql, &changes).map_err(Error::RustError)?;
        }
        self.settle().await?;
        self.courier.send(&self.env, None, remote).await;
        Ok(())
    }

    async fn settle(&self) -> Result<()> {
        let deadline = match self.inner.borrow_mut().as_mut() {
            Some(inner) => inner.host.settle(),
            None => return Ok(()),
        };
        arm_alarm(&self.state, &self.alarm_at, deadline).await
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

    /// A new chat; a DM claims its key in the registry first, and a key already claimed
    /// answers the chat that holds it.
    async fn create(&self, chat: &Chat, dm_key: Option<&str>) -> std::result::Result<StorageResult, String> {
        let sql = self.state.storage().sql();
        if let Some(key) = dm_key {
            let owner = self.claim(key, &chat.id).await.map_err(|e| format!("DM registry: {e}"))?;
            if owner != chat.id {
                let existing = self.record_of(&owner).await.map_err(|e| format!("DM {owner}: {e}"))?;
                return match existing {
                    Some(existing) => Ok(StorageResult::Created { existing: Some(existing) }),
                    None => Err(format!("the DM key is held by chat {owner}, which is not stored")),
                };
            }
        }
        super::sql::insert_chat(&sql, chat)?;
        Ok(StorageResult::Created { existing: None })
    }

    async fn claim(&self, key: &str, chat: &ChatId) -> Result<ChatId> {
        let name = format!("dm:{key}");
        let stub = stub(&self.env, &Dest::Chat(ChatId::new(name.as_str())))?;
        let body = json!({ "to": name, "key": key, "chat": chat.as_str() });
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
            "/record" => {
                let ask: serde_json::Value = super::read_json(&mut req).await?;
                self.init(ask["to"].as_str().unwrap_or_default())?;
                Response::from_json(&super::sql::chat_record(&sql).map_err(Error::RustError)?)
            }
            "/claim" => {
                let claim: Claim = super::read_json(&mut req).await?;
                self.init(&claim.to)?;
                let owner = super::sql::claim_dm(&sql, &claim.key, &ChatId::new(claim.chat)).map_err(Error::RustError)?;
                Response::from_json(&owner.as_str())
            }
            _ => Response::error("not found", 404),
        }
    }

    async fn alarm(&self) -> Result<Response> {
        self.alarm_at.set(None);
        let mut out = Outbox::default();
        match self.inner.borrow_mut().as_mut() {
            Some(inner) => inner.host.timeout(&mut inner.core, now(), &mut out),
            None => return Response::ok(""),
        }
        // Feed the timer's output through the same path as mail (no item to deliver).
        self.process_out(out).await?;
        Response::ok("")
    }
}

impl ChatObject {
    async fn process_out(&self, out: Outbox) -> Result<()> {
        let mut remote = Vec::new();
        let routed = match self.inner.borrow_mut().as_mut() {
            Some(inner) => route(out, &mut inner.host.rooms),
            None => return Ok(()),
        };
        remote.extend(routed.remote);
        for local in routed.local {
            if let Local::Log { level, correlation_id, message } = local {
                log(level, correlation_id.as_ref().map(|c| c.as_str()), &message);
            }
        }
        self.settle().await?;
        self.courier.send(&self.env, None, remote).await;
        Ok(())
    }
}
