mod common;
use chat_core::effect::{Room, ServerEvent};
use chat_core::ids::ChatId;
use common::*;
use serde_json::json;

#[test]
fn a_message_travels_from_sender_to_room_and_inbox() {
    let mut w = World::new();
    let alice = w.connect("alice");
    let bob = w.connect("bob");
    let chat = w.group(&alice, &["bob"]);
    let join = w.call(&bob, "room:join", json!({ "chatId": chat }));
    assert_eq!(join["ok"], true, "{join}");
    let ack = w.call(&alice, "message:send", json!({ "chatId": chat, "body": "hi", "clientId": uuid(1) }));
    assert_eq!(ack["ok"], true, "{ack}");
    assert_eq!(ack["data"]["seq"], 1);
    let news = w.emits_to_room(ServerEvent::MessageNew, &Room::Chat(ChatId::from(chat.as_str())));
    assert_eq!(news.len(), 1);
    assert_eq!(news[0]["body"], "hi");
    let again = w.call(&bob, "message:send", json!({ "chatId": chat, "body": "yo", "clientId": uuid(1) }));
    assert_eq!(again["data"]["seq"], 2, "{again}");
    let retry = w.call(&alice, "message:send", json!({ "chatId": chat, "body": "hi", "clientId": uuid(1) }));
    assert_eq!(retry["data"], ack["data"]);
}

#[test]
fn with_world_nodes_set_the_partitions_spread_over_that_many_engines() {
    let mut w = World::new();
    let sockets: Vec<_> = (0..12).map(|i| w.connect(&format!("user-{i}"))).collect();
    for socket in &sockets {
        w.group(socket, &["someone"]);
    }
    let expected = common::world_nodes().min(3);
    assert_eq!(w.engines_in_use(), expected);
}
