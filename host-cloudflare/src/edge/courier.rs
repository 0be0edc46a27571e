//! Sending batches of items between objects, in order per destination.
//!
//! Each object keeps one lane per destination: while a batch to it is in flight, later
//! items for it queue and go in the next batch, so a destination sees items in the order
//! this object produced them even when several requests of this object run interleaved.
//! A send returns once its own items were delivered (or failed), also when they queued
//! behind another request's batch, so a caller can make one send happen before the next.

use crate::glue::Dest;
use crate::wire::{Batch, Item};
use futures_channel::oneshot;
use serde::Serialize;
use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use worker::*;

pub(crate) fn post(url: &str, body: &impl Serialize) -> Result<Request> {
    let mut init = RequestInit::new();
    let headers = Headers::new();
    headers.set("content-type", "application/json")?;
    init.with_method(Method::Post).with_headers(headers).with_body(Some(serde_json::to_string(body)?.into()));
    Request::new_with_init(url, &init)
}

pub(crate) fn stub(env: &Env, dest: &Dest) -> Result<Stub> {
    let name = name(dest);
    let binding = match dest {
        Dest::Chat(_) => super::CHAT_BINDING,
        Dest::User(_) => super::USER_BINDING,
        Dest::Conn(_) => super::CONN_BINDING,
        Dest::Directory(_) => super::DIRECTORY_BINDING,
    };
    env.durable_object(binding)?.id_from_name(&name)?.get_stub()
}

fn name(dest: &Dest) -> String {
    match dest {
        Dest::Chat(chat) => chat.to_string(),
        Dest::User(user) => user.to_string(),
        Dest::Conn(sid) => sid.clone(),
        Dest::Directory(shard) => format!("dir:{shard}"),
    }
}

/// How long a waiting send lets another request's batch hold a lane before taking it over.
const TAKEOVER_MS: u64 = 2_000;

#[derive(Default)]
struct Lane {
    queue: VecDeque<Item>,
    busy: bool,
    /// Items ever queued on this lane, and ever delivered or failed.
    queued: u64,
    finished: u64,
    /// Senders waiting for the items up to a count to finish (true: delivered).
    waiters: Vec<(u64, oneshot::Sender<bool>)>,
}

#[derive(Default)]
pub(crate) struct Courier {
    lanes: RefCell<BTreeMap<Dest, Lane>>,
}

impl Courier {
    /// Sends `remote` (in order per destination; destinations in parallel). Returns once
    /// the lanes this call started have drained: the destinations known delivered (items
    /// that queued behind another call's batch go with it, unconfirmed here).
    pub(crate) async fn send(&self, env: &Env, from_user: Option<&str>, remote: Vec<(Dest, Item)>) -> Vec<Dest> {
        self.send_with(env, from_user, remote, false).await
    }

    /// Sends `remote` and returns once all of it was delivered, also what queued behind
    /// another call's batch. Only for destinations that never send back to this object
    /// (the directory): waiting on a lane whose receiver waits on us would deadlock.
    pub(crate) async fn send_and_wait(&self, env: &Env, from_user: Option<&str>, remote: Vec<(Dest, Item)>) -> Vec<Dest> {
        self.send_with(env, from_user, remote, true).await
    }

    async fn send_with(&self, env: &Env, from_user: Option<&str>, remote: Vec<(Dest, Item)>, wait_queued: bool) -> Vec<Dest> {
        let mut started = Vec::new();
        let mut waits = Vec::new();
        {
            let mut lanes = self.lanes.borrow_mut();
            let mut upto: BTreeMap<Dest, u64> = BTreeMap::new();
            for (dest, item) in remote {
                let lane = lanes.entry(dest.clone()).or_default();
                lane.queue.push_back(item);
                lane.queued += 1;
                upto.insert(dest, lane.queued);
            }
            for (dest, count) in upto {
                let lane = lanes.entry(dest.clone()).or_default();
                let start = !lane.busy;
                if start {
                    lane.busy = true;
                    started.push(dest.clone());
                }
                if start || wait_queued {
                    let (tx, rx) = oneshot::channel();
                    lane.waiters.push((count, tx));
                    waits.push((dest, rx));
                }
            }
        }
        let ours: Vec<Dest> = started.clone();
        let runs = started.into_iter().map(|dest| self.drain(env, from_user, dest));
        futures_util::future::join_all(runs).await;
        let mut delivered = Vec::new();
        for (dest, mut rx) in waits {
            if !ours.contains(&dest) {
                // Queued behind another request's batch. If that request's drain stalls
                // (seen when an alarm handler and a request share a lane), this one takes
                // the lane over rather than wait forever with its CONNECT or ack held.
                let timer = Delay::from(std::time::Duration::from_millis(TAKEOVER_MS));
                match futures_util::future::select(&mut rx, timer).await {
                    futures_util::future::Either::Left((done, _)) => {
                        if done.unwrap_or(false) {
                            delivered.push(dest);
                        }
                        continue;
                    }
                    futures_util::future::Either::Right(_) => {
                        super::log(chat_core::effect::LogLevel::Warn, None, &format!("lane to {dest:?} stalled; taking it over"));
                        if let Some(lane) = self.lanes.borrow_mut().get_mut(&dest) {
                            // What the stalled batch holds is given up on (unknown outcome).
                            lane.finished = lane.queued - lane.queue.len() as u64;
                            lane.busy = true;
                            let finished = lane.finished;
                            for (_, tx) in lane.waiters.extract_if(.., |(upto, _)| *upto <= finished) {
                                let _ = tx.send(false);
                            }
                        }
                        self.drain(env, from_user, dest.clone()).await;
                    }
                }
            }
            if rx.await.unwrap_or(false) {
                delivered.push(dest);
            }
        }
        delivered
    }

    async fn drain(&self, env: &Env, from_user: Option<&str>, dest: Dest) {
        loop {
            let items: Vec<Item> = match self.lanes.borrow_mut().get_mut(&dest) {
                Some(lane) if !lane.queue.is_empty() => lane.queue.drain(..).collect(),
                Some(lane) => {
                    lane.busy = false;
                    return;
                }
                None => return,
            };
            let count = items.len() as u64;
            let batch = Batch { to: name(&dest), from_user: from_user.map(str::to_string), items };
            let delivered = match deliver(env, &dest, &batch).await {
                Ok(()) => true,
                Err(error) => {
                    super::log(chat_core::effect::LogLevel::Error, None, &format!("delivery to {dest:?} failed: {error}"));
                    false
                }
            };
            let mut lanes = self.lanes.borrow_mut();
            let Some(lane) = lanes.get_mut(&dest) else { return };
            lane.finished += count;
            let finished = lane.finished;
            for (_, tx) in lane.waiters.extract_if(.., |(upto, _)| *upto <= finished) {
                let _ = tx.send(delivered);
            }
            if lane.queue.is_empty() && lane.waiters.is_empty() {
                lanes.remove(&dest);
                return;
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
