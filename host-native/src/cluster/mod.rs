//! Cluster mode: several `chat-server` processes on one Postgres, talking through Redis.
//!
//! Every chat and every user partition has one owner process at a time
//! (`chat_core::placement`, rendezvous hashing over the live processes), so every rule
//! keeps running in exactly one place, as in a process alone. What this module adds is
//! transport and shared state, nothing of the rules:
//! - **membership**: each process refreshes a heartbeat key; the live list is every
//!   process whose key has not expired ([`HEARTBEAT_TTL`]);
//! - **the bus**: mail for partitions owned elsewhere, effects for sockets and HTTP calls
//!   held elsewhere, and room emits for everyone, over Redis pub/sub. Everything a process
//!   sends goes through one connection in order and every process listens on one
//!   connection, so what one process sends another arrives in the order it was sent
//!   (an emit before the ack that follows it);
//! - **the socket registry**: which sockets each process holds, so that when a process
//!   dies its users' partitions hear that its sockets are gone ([`chat_core::route::UserMsg::Lost`]).

pub mod wire;

use crate::driver::{DriverHandle, HostInput};
use chat_core::ids::{SocketId, UserId};
use chat_core::placement::NodeId;
use clap::Args;
use redis::aio::MultiplexedConnection;
use std::collections::BTreeSet;
use std::time::Duration;
use tokio::sync::mpsc;
use wire::BusMsg;

/// A process whose heartbeat is older than this is dead.
pub const HEARTBEAT_TTL: Duration = Duration::from_millis(3_000);
/// How often each process refreshes its heartbeat and reads the live list.
pub const HEARTBEAT_EVERY: Duration = Duration::from_millis(500);

#[derive(Args, Clone, Debug)]
pub struct ClusterArgs {
    /// Redis URL; set, it turns on cluster mode (needs DATABASE_URL on Postgres)
    /// [default: unset, one process alone]
    #[arg(long, env = "REDIS_URL", hide_env_values = true, value_name = "URL")]
    pub redis_url: Option<String>,
    /// Prefix of every Redis key and channel of this cluster (one per cluster on a shared Redis).
    #[arg(long, env = "CHAT_CLUSTER_PREFIX", default_value = "chat", value_name = "PREFIX")]
    pub cluster_prefix: String,
}

/// Where a bus message goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Channel {
    Node(NodeId),
    All,
}

/// What the driver hands the cluster to do, in order.
pub enum Outgoing {
    Publish(Channel, BusMsg),
    /// A socket of this process was let in.
    Register { socket: SocketId, user: UserId },
    Unregister { socket: SocketId },
}

/// The driver's side of the cluster.
#[derive(Clone)]
pub struct ClusterLink {
    pub me: NodeId,
    out: mpsc::UnboundedSender<Outgoing>,
}

impl ClusterLink {
    pub fn send(&self, outgoing: Outgoing) {
        // The publisher task lives as long as the process.
        let _ = self.out.send(outgoing);
    }
}

struct Keys {
    prefix: String,
}

impl Keys {
    fn channel(&self, channel: Channel) -> String {
        match channel {
            Channel::Node(node) => format!("{}:to:{node}", self.prefix),
            Channel::All => format!("{}:all", self.prefix),
        }
    }
    fn heartbeat(&self, node: NodeId) -> String {
        format!("{}:node:{node}", self.prefix)
    }
    fn nodes(&self) -> String {
        format!("{}:nodes", self.prefix)
    }
    fn sockets(&self, node: NodeId) -> String {
        format!("{}:sockets:{node}", self.prefix)
    }
}

/// Connects to Redis (waiting for it, with a log line per attempt), joins the cluster and
/// starts its tasks. Returns once this process is in the live list, with that list.
pub async fn join(args: &ClusterArgs, url: &str, me: NodeId, driver: DriverHandle) -> Result<(ClusterLink, Vec<NodeId>), String> {
    let client = redis::Client::open(url).map_err(|error| format!("REDIS_URL is not a Redis URL: {error}"))?;
    let keys = std::sync::Arc::new(Keys { prefix: args.cluster_prefix.clone() });
    let connection = connect(&client).await;
    let live = heartbeat(&mut connection.clone(), &keys, me).await.map_err(|error| format!("Redis: {error}"))?.0;
    tracing::info!(node = %me, live = ?live.iter().map(|n| n.to_string()).collect::<Vec<_>>(), "joined the cluster");

    subscribe(client.clone(), keys.clone(), me, driver.clone()).await;
    let (out, rx) = mpsc::unbounded_channel();
    tokio::spawn(publish(client.clone(), connection.clone(), keys.clone(), me, rx));
    tokio::spawn(membership(connection, keys, me, driver));
    Ok((ClusterLink { me, out }, live))
}

/// A fresh random id for this process.
pub fn new_node_id() -> Result<NodeId, String> {
    let mut bytes = [0u8; 4];
    // Without OS randomness two processes could take one id; refuse to start instead.
    getrandom::fill(&mut bytes).map_err(|error| format!("the operating system's random source failed: {error}"))?;
    Ok(NodeId(u32::from_le_bytes(bytes)))
}

async fn connect(client: &redis::Client) -> MultiplexedConnection {
    loop {
        match client.get_multiplexed_async_connection().await {
            Ok(connection) => return connection,
            Err(error) => {
                tracing::warn!(%error, "Redis is not answering; cluster mode waits for it (retrying in 1 s)");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// Listens on this process's channel and the broadcast channel, on one connection, and
/// hands every message to the driver in arrival order. Returns once subscribed.
async fn subscribe(client: redis::Client, keys: std::sync::Arc<Keys>, me: NodeId, driver: DriverHandle) {
    let channels = [keys.channel(Channel::Node(me)), keys.channel(Channel::All)];
    let mut pubsub = open_pubsub(&client, &channels).await;
    tokio::spawn(async move {
        loop {
            {
                use futures_util::StreamExt;
                let mut stream = pubsub.on_message();
                while let Some(message) = stream.next().await {
                    match serde_json::from_slice::<BusMsg>(message.get_payload_bytes()) {
                        Ok(msg) => driver.send(HostInput::Bus(msg)),
                        Err(error) => tracing::error!(%error, "unreadable cluster message dropped"),
                    }
                }
            }
            tracing::error!("lost the Redis subscription; messages sent meanwhile are lost (clients retry); reconnecting");
            pubsub = open_pubsub(&client, &channels).await;
        }
    });
}

async fn open_pubsub(client: &redis::Client, channels: &[String]) -> redis::aio::PubSub {
    loop {
        let attempt = async {
            let mut pubsub = client.get_async_pubsub().await?;
            for channel in channels {
                pubsub.subscribe(channel).await?;
            }
            Ok::<_, redis::RedisError>(pubsub)
        };
        match attempt.await {
            Ok(pubsub) => return pubsub,
            Err(error) => {
                tracing::warn!(%error, "cannot subscribe to the cluster's Redis channels (retrying in 1 s)");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// Carries the driver's outgoing messages in order: whatever has queued up goes out as
/// one pipeline, and the next waits for it.
async fn publish(
    client: redis::Client,
    mut connection: MultiplexedConnection,
    keys: std::sync::Arc<Keys>,
    me: NodeId,
    mut rx: mpsc::UnboundedReceiver<Outgoing>,
) {
    let registry = keys.sockets(me);
    while let Some(first) = rx.recv().await {
        let mut pipe = redis::pipe();
        let mut next = Some(first);
        let mut count = 0;
        while let Some(outgoing) = next.take() {
            match outgoing {
                Outgoing::Publish(channel, msg) => match serde_json::to_vec(&msg) {
                    Ok(bytes) => {
                        pipe.cmd("PUBLISH").arg(keys.channel(channel)).arg(bytes).ignore();
                    }
                    Err(error) => tracing::error!(%error, "cluster message could not be encoded"),
                },
                Outgoing::Register { socket, user } => {
                    pipe.cmd("HSET").arg(&registry).arg(socket.as_str()).arg(user.as_str()).ignore();
                }
                Outgoing::Unregister { socket } => {
                    pipe.cmd("HDEL").arg(&registry).arg(socket.as_str()).ignore();
                }
            }
            count += 1;
            if count < 512 {
                next = rx.try_recv().ok();
            }
        }
        if let Err(error) = pipe.query_async::<()>(&mut connection).await {
            tracing::error!(%error, count, "cluster messages lost: Redis did not take them (clients retry); reconnecting");
            connection = connect(&client).await;
        }
    }
}

/// Refreshes this process's heartbeat and reads the live list: (live, dead but not yet
/// cleaned up).
async fn heartbeat(connection: &mut MultiplexedConnection, keys: &Keys, me: NodeId) -> redis::RedisResult<(Vec<NodeId>, Vec<NodeId>)> {
    let ttl = HEARTBEAT_TTL.as_millis() as u64;
    redis::pipe()
        .cmd("SET")
        .arg(keys.heartbeat(me))
        .arg(1)
        .arg("PX")
        .arg(ttl)
        .ignore()
        .cmd("SADD")
        .arg(keys.nodes())
        .arg(me.to_string())
        .ignore()
        .query_async::<()>(connection)
        .await?;
    let members: Vec<String> = redis::cmd("SMEMBERS").arg(keys.nodes()).query_async(connection).await?;
    let nodes: Vec<NodeId> = members.iter().filter_map(|text| NodeId::parse(text)).collect();
    let beats: Vec<Option<String>> = if nodes.is_empty() {
        Vec::new()
    } else {
        let mut mget = redis::cmd("MGET");
        for node in &nodes {
            mget.arg(keys.heartbeat(*node));
        }
        mget.query_async(connection).await?
    };
    let mut live = Vec::new();
    let mut dead = Vec::new();
    for (node, beat) in nodes.into_iter().zip(beats) {
        if beat.is_some() || node == me {
            live.push(node);
        } else {
            dead.push(node);
        }
    }
    Ok((live, dead))
}

/// Keeps this process in the live list and tells the driver when the list changes. The
/// live process with the lowest id also cleans up after dead ones: it hands their sockets
/// to the driver as lost, then forgets them.
async fn membership(mut connection: MultiplexedConnection, keys: std::sync::Arc<Keys>, me: NodeId, driver: DriverHandle) {
    let mut ticker = tokio::time::interval(HEARTBEAT_EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last: BTreeSet<NodeId> = BTreeSet::new();
    loop {
        ticker.tick().await;
        let (live, dead) = match heartbeat(&mut connection, &keys, me).await {
            Ok(found) => found,
            Err(error) => {
                tracing::warn!(%error, "cluster heartbeat failed; retrying");
                continue;
            }
        };
        let now: BTreeSet<NodeId> = live.iter().copied().collect();
        if now != last {
            tracing::info!(live = ?now.iter().map(|n| n.to_string()).collect::<Vec<_>>(), "cluster membership changed");
            driver.send(HostInput::View { live: live.clone() });
            last = now;
        }
        if live.iter().min() == Some(&me) {
            for node in dead {
                if let Err(error) = bury(&mut connection, &keys, node, &driver).await {
                    tracing::warn!(%error, node = %node, "cleaning up after a dead process failed; retrying");
                }
            }
        }
    }
}

async fn bury(connection: &mut MultiplexedConnection, keys: &Keys, node: NodeId, driver: &DriverHandle) -> redis::RedisResult<()> {
    let sockets: Vec<(String, String)> = redis::cmd("HGETALL").arg(keys.sockets(node)).query_async(connection).await?;
    tracing::warn!(node = %node, sockets = sockets.len(), "a cluster process died; its sockets are gone");
    let sockets = sockets.into_iter().map(|(socket, user)| (SocketId::new(socket), UserId::new(user))).collect();
    driver.send(HostInput::NodeDied { node, sockets });
    redis::pipe()
        .cmd("DEL")
        .arg(keys.sockets(node))
        .ignore()
        .cmd("SREM")
        .arg(keys.nodes())
        .arg(node.to_string())
        .ignore()
        .query_async::<()>(connection)
        .await
}
