//! `chat-echo`: the least server the load generator's scenarios can run against, to
//! measure the generator's own ceiling. One thread, everything in memory, no checks: it
//! answers the Engine.IO/Socket.IO handshake (taking the token's `sub` unverified),
//! `chat:create`, `room:join`, and broadcasts each `message:send` as `message:new` to the
//! room and `inbox:update` to every member, serialised once, then acks. Not a chat server.
//! Env: BIND (default 127.0.0.1:3999).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chat_sio_codec::{decode_engine, EnginePacket, Handshake, SocketPacket};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

type Tx = mpsc::UnboundedSender<Utf8Bytes>;

#[derive(Default)]
struct World {
    next_id: u64,
    conns: HashMap<u64, Tx>,
    user_conns: HashMap<String, Vec<u64>>,
    chats: HashMap<String, EchoChat>,
}

/// A chat's members, the sockets in its room, and its last seq.
type EchoChat = (Rc<Vec<String>>, Vec<u64>, u64);

fn listen(address: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if address.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(1024)
}

type Shared = Rc<RefCell<World>>;

fn main() {
    let bind = std::env::var("BIND").unwrap_or_else(|_| "127.0.0.1:3999".into());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async move {
        // The same accept backlog as chat-server's (std's 128 overflows in a storm).
        let listener = match bind.parse().map_err(std::io::Error::other).and_then(listen) {
            Ok(l) => l,
            Err(e) => {
                eprintln!("chat-echo: bind {bind}: {e}");
                std::process::exit(1);
            }
        };
        eprintln!("chat-echo: listening on {bind}");
        let world: Shared = Rc::default();
        loop {
            if let Ok((stream, _)) = listener.accept().await {
                let _ = stream.set_nodelay(true);
                tokio::task::spawn_local(serve(stream, world.clone()));
            }
        }
    });
}

fn subject(token: &str) -> Option<String> {
    let token = token.strip_prefix("Bearer ").unwrap_or(token);
    let payload = URL_SAFE_NO_PAD.decode(token.split('.').nth(1)?).ok()?;
    let claims: Value = serde_json::from_slice(&payload).ok()?;
    claims.get("sub").and_then(Value::as_str).map(str::to_string)
}

async fn serve(stream: TcpStream, world: Shared) {
    let config = WebSocketConfig::default().read_buffer_size(4096).write_buffer_size(0);
    let Ok(mut ws) = tokio_tungstenite::accept_async_with_config(stream, Some(config)).await else { return };
    let id = {
        let mut w = world.borrow_mut();
        w.next_id += 1;
        w.next_id
    };
    let open = Handshake { sid: format!("e{id}"), upgrades: vec![], ping_interval_ms: 25_000, ping_timeout_ms: 20_000, max_payload: 1_000_000 };
    if ws.send(Message::text(open.encode())).await.is_err() {
        return;
    }
    // The Socket.IO CONNECT with the token.
    let user = loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => {
                if let Ok(EnginePacket::Message(sio)) = decode_engine(t.as_str()) {
                    if let Ok(SocketPacket::Connect { data, nsp }) = SocketPacket::decode(sio) {
                        let user = data.as_ref().and_then(|d| d.get("token")).and_then(Value::as_str).and_then(subject);
                        let Some(user) = user else {
                            let refusal = SocketPacket::ConnectError { nsp, data: json!({ "message": "UNAUTHORIZED" }) };
                            let _ = ws.send(Message::text(refusal.to_frame())).await;
                            return;
                        };
                        let ok = SocketPacket::Connect { nsp, data: Some(json!({ "sid": format!("e{id}") })) };
                        if ws.send(Message::text(ok.to_frame())).await.is_err() {
                            return;
                        }
                        break user;
                    }
                }
            }
            Some(Ok(_)) => continue,
            _ => return,
        }
    };
    let (tx, mut rx) = mpsc::unbounded_channel::<Utf8Bytes>();
    {
        let mut w = world.borrow_mut();
        w.conns.insert(id, tx.clone());
        w.user_conns.entry(user.clone()).or_default().push(id);
    }
    loop {
        tokio::select! {
            out = rx.recv() => {
                let Some(frame) = out else { break };
                if ws.feed(Message::Text(frame)).await.is_err() { break; }
                while let Ok(frame) = rx.try_recv() {
                    if ws.feed(Message::Text(frame)).await.is_err() { break; }
                }
                if ws.flush().await.is_err() { break; }
            }
            incoming = ws.next() => match incoming {
                Some(Ok(Message::Text(t))) => on_frame(t.as_str(), id, &user, &tx, &world),
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
        }
    }
    let mut w = world.borrow_mut();
    w.conns.remove(&id);
    if let Some(list) = w.user_conns.get_mut(&user) {
        list.retain(|c| *c != id);
    }
    for (_, room, _) in w.chats.values_mut() {
        room.retain(|c| *c != id);
    }
}

fn on_frame(text: &str, id: u64, user: &str, tx: &Tx, world: &Shared) {
    let Ok(EnginePacket::Message(sio)) = decode_engine(text) else { return };
    let Ok(SocketPacket::Event { nsp, id: ack, event, args }) = SocketPacket::decode(sio) else { return };
    let arg = args.into_iter().next().unwrap_or(Value::Null);
    let chat_id = arg.get("chatId").and_then(Value::as_str).unwrap_or("").to_string();
    let mut w = world.borrow_mut();
    let reply = match event.as_str() {
        "chat:create" => {
            w.next_id += 1;
            let chat = format!("chat{}", w.next_id);
            let mut members = vec![user.to_string()];
            members.extend(arg.get("memberIds").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).map(str::to_string));
            let data = json!({ "chat": { "id": chat, "kind": arg.get("kind"), "memberIds": members } });
            w.chats.insert(chat, (Rc::new(members), Vec::new(), 0));
            data
        }
        "room:join" => match w.chats.get_mut(&chat_id) {
            Some((members, room, seq)) => {
                room.push(id);
                json!({ "chatId": chat_id, "lastSeq": *seq, "memberIds": **members })
            }
            None => json!(null),
        },
        "message:send" => {
            let Some((members, room, seq)) = w.chats.get_mut(&chat_id) else { return };
            *seq += 1;
            let message = json!({ "id": format!("m{seq}"), "chatId": chat_id, "seq": *seq, "senderId": user,
                                  "body": arg.get("body"), "kind": "text", "clientId": arg.get("clientId") });
            let new: Utf8Bytes = format!("42{}", json!(["message:new", message])).into();
            let inbox: Utf8Bytes = format!("42{}", json!(["inbox:update", { "chatId": chat_id, "lastMessage": message, "unreadCount": 0 }])).into();
            let (room, members, seq) = (room.clone(), members.clone(), *seq);
            for c in room {
                if let Some(t) = w.conns.get(&c) {
                    let _ = t.send(new.clone());
                }
            }
            for m in members.iter() {
                for c in w.user_conns.get(m).into_iter().flatten() {
                    if let Some(t) = w.conns.get(c) {
                        let _ = t.send(inbox.clone());
                    }
                }
            }
            json!({ "clientId": arg.get("clientId"), "serverId": format!("m{seq}"), "seq": seq, "createdAt": "1970-01-01T00:00:00.000Z" })
        }
        _ => json!({}),
    };
    if let Some(ack) = ack {
        let packet = SocketPacket::Ack { nsp, id: ack, args: vec![json!({ "ok": true, "data": reply })] };
        let _ = tx.send(packet.to_frame().into());
    }
}
