//! One object per user: hosts the core's `UserPartition` and the user's index (chats,
//! sent messages, sockets), and passes every packet for the user's sockets on to their
//! connection objects. HTTP calls of the user enter here.

use super::courier::{post, stub, Courier};
use super::{arm_alarm, config, ids, json_response, log, now, random_u128};
use crate::config::EdgeConfig;
use crate::glue::{route, user_fanout, Core, Dest, Local, UserHost};
use crate::wire::{Batch, HttpCall, Item};
use chat_core::ids::{ChatId, RequestId, UserId};
use chat_core::route::{http_envelope, Envelope, Outbox, Reply, UserMsg};
use chat_core::storage::{InboxRow, StorageOp, StorageResult};
use chat_core::validate::parse_http;
use futures_channel::oneshot;
use serde_json::{json, Value};
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use worker::*;

struct Inner {
    cfg: EdgeConfig,
    host: UserHost,
    core: Core,
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

impl UserObject {
    fn init(&self, user: &str) -> Result<()> {
        if self.inner.borrow().is_some() {
            return Ok(());
        }
        let cfg = config(&self.env)?;
        let sql = self.state.storage().sql();
        super::sql::user_schema(&sql).map_err(Error::RustError)?;
        let sockets = super::sql::load_sockets(&sql).map_err(Error::RustError)?;
        let host = UserHost::new(UserId::new(user), sockets);
        let core = Core::new(cfg.limits.clone(), ids());
        *self.inner.borrow_mut() = Some(Inner { cfg, host, core });
        Ok(())
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
                    match &msg {
                        UserMsg::ChatMembers { chat, members } => {
                            super::sql::index_members(&sql, &me, chat, members).map_err(Error::RustError)?
                        }
                        UserMsg::SendDone { outcome: Ok(message), .. } => super::sql::index_send(&sql, message).map_err(Error::RustError)?,
                        _ => {}
                    }
                    let mut out = Outbox::default();
                    if let Some(inner) = self.inner.borrow_mut().as_mut() {
                        inner.host.deliver(&mut inner.core, now(), msg, &mut out);
                    }
                    queue.push_front(Work::Out(out));
                }
                Work::Item(item @ (Item::Socket { .. } | Item::UserRoom { .. })) => {
                    let sockets = self.inner.borrow().as_ref().map(|i| i.host.socket_list()).unwrap_or_default();
                    remote.extend(user_fanout(item, &sockets));
                }
                Work::Item(Item::HttpDone { request, status, body }) => {
                    if let Some(waiting) = self.http.borrow_mut().remove(&request.0) {
                        let _ = waiting.send((status, body));
                    }
                }
                Work::Item(Item::Chat(_)) => log(chat_core::effect::LogLevel::Error, None, "chat mail reached a user object"),
                Work::Out(out) => {
                    let routed = route(out, &mut BTreeMap::new());
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
        self.settle().await?;
        self.courier.send(&self.env, Some(me.as_str()), remote).await;
        Ok(())
    }

    async fn settle(&self) -> Result<()> {
        let (deadline, changes) = match self.inner.borrow_mut().as_mut() {
            Some(inner) => {
                let throttle = inner.cfg.limits.presence_throttle_ms;
                inner.host.settle(now(), throttle)
            }
            None => return Ok(()),
        };
        if !changes.is_empty() {
            super::sql::save_sockets(&self.state.storage().sql(), &changes).map_err(Error::RustError)?;
        }
        arm_alarm(&self.state, &self.alarm_at, deadline).await
    }

    async fn storage(&self, request: &StorageOp) -> StorageResult {
        let sql = self.state.storage().sql();
        let result = match request {
            StorageOp::LoadUser { sends_since, .. } => super::sql::load_user(&sql, *sends_since).map(StorageResult::User),
            StorageOp::FindMessage { client_id, .. } => super::sql::find_message(&sql, client_id).map(StorageResult::Message),
            StorageOp::ListInbox { user } => self.list_inbox(user).await.map(StorageResult::Inbox),
            other => Err(format!("a user object cannot carry out {other:?}")),
        };
        result.unwrap_or_else(StorageResult::Failed)
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

    async fn alarm(&self) -> Result<Response> {
        self.alarm_at.set(None);
        let mut out = Outbox::default();
        match self.inner.borrow_mut().as_mut() {
            Some(inner) => inner.host.timeout(&mut inner.core, now(), &mut out),
            // The object lost its memory: nothing of the partition's timers is left.
            None => return Response::ok(""),
        }
        self.process(vec![Work::Out(out)]).await?;
        Response::ok("")
    }
}
