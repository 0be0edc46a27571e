//! Sending batches of items between objects, in order per destination.
//!
//! Each object keeps one lane per destination: while a batch to it is in flight, later
//! items for it queue and go in the next batch, so a destination sees items in the order
//! this object produced them even when several requests of this object run interleaved.

use crate::glue::Dest;
use crate::wire::{Batch, Item};
use serde::Serialize;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use worker::*;

pub(crate) fn post(url: &str, body: &impl Serialize) -> Result<Request> {
    let mut init = RequestInit::new();
    let headers = Headers::new();
    headers.set("content-type", "application/json")?;
    init.with_method(Method::Post).with_headers(headers).with_body(Some(serde_json::to_string(body)?.into()));
    Request::new_with_init(url, &init)
}

pub(crate) fn stub(env: &Env, dest: &Dest) -> Result<Stub> {
    let (binding, name) = match dest {
        Dest::Chat(chat) => (super::CHAT_BINDING, chat.as_str()),
        Dest::User(user) => (super::USER_BINDING, user.as_str()),
        Dest::Conn(sid) => (super::CONN_BINDING, sid.as_str()),
    };
    env.durable_object(binding)?.id_from_name(name)?.get_stub()
}

fn name(dest: &Dest) -> String {
    match dest {
        Dest::Chat(chat) => chat.to_string(),
        Dest::User(user) => user.to_string(),
        Dest::Conn(sid) => sid.clone(),
    }
}

#[derive(Default)]
pub(crate) struct Courier {
    lanes: RefCell<BTreeMap<Dest, VecDeque<Item>>>,
    busy: RefCell<BTreeSet<Dest>>,
}

impl Courier {
    /// Sends `remote` (in order per destination; destinations in parallel). Returns once
    /// every lane this call started has drained.
    pub(crate) async fn send(&self, env: &Env, from_user: Option<&str>, remote: Vec<(Dest, Item)>) {
        let mut started = Vec::new();
        {
            let mut lanes = self.lanes.borrow_mut();
            for (dest, item) in remote {
                lanes.entry(dest.clone()).or_default().push_back(item);
                if !started.contains(&dest) && !self.busy.borrow().contains(&dest) {
                    started.push(dest);
                }
            }
            let mut busy = self.busy.borrow_mut();
            for dest in &started {
                busy.insert(dest.clone());
            }
        }
        let runs = started.into_iter().map(|dest| self.drain(env, from_user, dest));
        futures_util::future::join_all(runs).await;
    }

    async fn drain(&self, env: &Env, from_user: Option<&str>, dest: Dest) {
        loop {
            let items: Vec<Item> = self.lanes.borrow_mut().get_mut(&dest).map(|queue| queue.drain(..).collect()).unwrap_or_default();
            if items.is_empty() {
                self.lanes.borrow_mut().remove(&dest);
                self.busy.borrow_mut().remove(&dest);
                return;
            }
            let batch = Batch { to: name(&dest), from_user: from_user.map(str::to_string), items };
            if let Err(error) = deliver(env, &dest, &batch).await {
                super::log(chat_core::effect::LogLevel::Error, None, &format!("delivery to {dest:?} failed: {error}"));
            }
        }
    }
}

async fn deliver(env: &Env, dest: &Dest, batch: &Batch) -> Result<()> {
    let stub = stub(env, dest)?;
    let mut response = stub.fetch_with_request(post("https://object/batch", batch)?).await?;
    if response.status_code() >= 300 {
        let text = response.text().await.unwrap_or_default();
        return Err(Error::RustError(format!("status {}: {text}", response.status_code())));
    }
    Ok(())
}
