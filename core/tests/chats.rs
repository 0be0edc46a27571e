//! PROTOCOL.md §3 `chat:create`, and `chat:update` on creation.
mod common;

use chat_core::effect::{Room, ServerEvent, Target};
use chat_core::ids::{is_uuid, ChatId};
use common::*;
use serde_json::{json, Value};

fn create(w: &mut World, socket: &chat_core::ids::SocketId, payload: Value) -> Value {
    w.call(socket, "chat:create", payload)
}

#[test]
fn a_group_acks_the_whole_chat() {
    let mut w = World::new();
    let alice = w.connect("alice");
    w.advance(500);
    let chat = data(&create(&mut w, &alice, json!({ "kind": "group", "memberIds": ["bob", "carol"], "title": "Team" })))["chat"].clone();
    let id = chat["id"].as_str().unwrap();
    assert!(is_uuid(id) && &id[14..15] == "7", "not a UUIDv7: {id}");
    assert_eq!(
        chat,
        json!({
            "id": id, "kind": "group", "title": "Team", "memberIds": ["alice", "bob", "carol"],
            "createdBy": "alice", "createdAt": at(500), "updatedAt": at(500),
        })
    );
}

#[test]
fn the_creator_of_a_group_is_a_member() {
    let mut w = World::new();
    let alice = w.connect("alice");
    let chat = data(&create(&mut w, &alice, json!({ "kind": "group", "memberIds": ["bob"], "title": "T" })))["chat"].clone();
    assert!(chat["memberIds"].as_array().unwrap().contains(&json!("alice")));
    let stored = w.store.chat(&ChatId::from(chat["id"].as_str().unwrap())).unwrap();
    assert!(stored.is_member(&"alice".into()));
}

#[test]
fn naming_the_creator_among_the_members_does_not_repeat_them() {
    let mut w = World::new();
    let alice = w.connect("alice");
    let chat = data(&create(&mut w, &alice, json!({ "kind": "group", "memberIds": ["bob", "alice", "bob"], "title": "T" })))["chat"].clone();
    assert_eq!(chat["memberIds"], json!(["alice", "bob"]));
}

#[test]
fn a_group_of_the_creator_alone_is_allowed() {
    let mut w = World::new();
    let alice = w.connect("alice");
    let chat = data(&create(&mut w, &alice, json!({ "kind": "group", "memberIds": [], "title": "Notes" })))["chat"].clone();
    assert_eq!(chat["memberIds"], json!(["alice"]));
}

#[test]
fn the_creator_may_send_in_the_new_group_at_once() {
    let mut w = World::new();
    let alice = w.connect("alice");
    let chat = w.group(&alice, &["bob"]);
    assert_eq!(data(&w.send(&alice, &chat, "first", 1))["seq"], 1);
}

#[test]
fn a_dm_acks_the_chat_with_both_users_and_no_title() {
    let mut w = World::new();
    let alice = w.connect("alice");
    let chat = data(&create(&mut w, &alice, json!({ "kind": "dm", "memberIds": ["bob"] })))["chat"].clone();
    assert_eq!(chat["kind"], "dm");
    assert_eq!(chat["title"], Value::Null);
    assert_eq!(chat["memberIds"], json!(["alice", "bob"]));
    assert_eq!(chat["createdBy"], "alice");
}

#[test]
fn creating_a_dm_again_returns_the_same_chat() {
    let mut w = World::new();
    let alice = w.connect("alice");
    let first = w.dm(&alice, "bob");
    let second = w.dm(&alice, "bob");
    assert_eq!(first, second);
    assert_eq!(w.store.chats().count(), 1);
}

#[test]
fn creating_a_dm_from_the_other_side_returns_the_same_chat() {
    let mut w = World::new();
    let alice = w.connect("alice");
    let bob = w.connect("bob");
    let first = w.dm(&alice, "bob");
    let second = w.dm(&bob, "alice");
    assert_eq!(first, second);
}

#[test]
fn creating_a_dm_again_after_a_restart_returns_the_same_chat() {
    let mut w = World::new();
    let alice = w.connect("alice");
    let first = w.dm(&alice, "bob");
    w.restart();
    let bob = w.connect("bob");
    assert_eq!(w.dm(&bob, "alice"), first);
}

#[test]
fn the_existing_dm_is_returned_as_stored() {
    let mut w = World::new();
    let alice = w.connect("alice");
    let first = data(&create(&mut w, &alice, json!({ "kind": "dm", "memberIds": ["bob"] })))["chat"].clone();
    w.advance(10_000);
    let bob = w.connect("bob");
    let again = data(&create(&mut w, &bob, json!({ "kind": "dm", "memberIds": ["alice"] })))["chat"].clone();
    assert_eq!(again, first);
}

#[test]
fn dms_with_different_users_are_different_chats() {
    let mut w = World::new();
    let alice = w.connect("alice");
    assert_ne!(w.dm(&alice, "bob"), w.dm(&alice, "carol"));
}

#[test]
fn a_group_is_never_deduplicated() {
    let mut w = World::new();
    let alice = w.connect("alice");
    assert_ne!(w.group(&alice, &["bob"]), w.group(&alice, &["bob"]));
}

#[test]
fn a_dm_and_a_group_of_the_same_two_users_are_different_chats() {
    let mut w = World::new();
    let alice = w.connect("alice");
    assert_ne!(w.dm(&alice, "bob"), w.group(&alice, &["bob"]));
}

#[test]
fn a_dm_with_oneself_is_a_validation_error() {
    let mut w = World::new();
    let alice = w.connect("alice");
    assert_eq!(code(&create(&mut w, &alice, json!({ "kind": "dm", "memberIds": ["alice"] }))), "VALIDATION_ERROR");
    assert_eq!(w.store.chats().count(), 0);
}

#[test]
fn a_dm_needs_exactly_one_other_user() {
    let mut w = World::new();
    let alice = w.connect("alice");
    for members in [json!([]), json!(["bob", "carol"])] {
        assert_eq!(code(&create(&mut w, &alice, json!({ "kind": "dm", "memberIds": members }))), "VALIDATION_ERROR");
    }
}

#[test]
fn a_group_needs_a_title() {
    let mut w = World::new();
    let alice = w.connect("alice");
    for title in [json!(null), json!(""), json!("   "), json!(7)] {
        let ack = create(&mut w, &alice, json!({ "kind": "group", "memberIds": ["bob"], "title": title }));
        assert_eq!(code(&ack), "VALIDATION_ERROR", "{title}");
    }
}

#[test]
fn chat_update_goes_to_every_member_on_creation() {
    let mut w = World::new();
    let alice = w.connect("alice");
    let bob = w.connect("bob");
    let chat = data(&create(&mut w, &alice, json!({ "kind": "group", "memberIds": ["bob", "carol"], "title": "T" })))["chat"].clone();
    let mut rooms: Vec<Room> = w
        .emits(ServerEvent::ChatUpdate)
        .into_iter()
        .map(|(to, except, payload)| {
            assert_eq!(except, None);
            assert_eq!(payload, json!({ "chat": chat }));
            match to {
                Target::Room(room) => room,
                other => panic!("{other:?}"),
            }
        })
        .collect();
    rooms.sort();
    assert_eq!(rooms, vec![user_room("alice"), user_room("bob"), user_room("carol")]);
    assert_eq!(w.received(&bob, ServerEvent::ChatUpdate), vec![json!({ "chat": chat })]);
}

#[test]
fn chat_update_goes_to_both_users_of_a_new_dm() {
    let mut w = World::new();
    let alice = w.connect("alice");
    let bob = w.connect("bob");
    w.dm(&alice, "bob");
    assert_eq!(w.received(&alice, ServerEvent::ChatUpdate).len(), 1);
    assert_eq!(w.received(&bob, ServerEvent::ChatUpdate).len(), 1);
}

#[test]
fn finding_an_existing_dm_sends_no_chat_update() {
    let mut w = World::new();
    let alice = w.connect("alice");
    w.dm(&alice, "bob");
    let mark = w.mark();
    w.dm(&alice, "bob");
    assert!(w.emits_since(mark).is_empty());
}

#[test]
fn a_new_member_can_join_the_room_at_once() {
    let mut w = World::new();
    let bob = w.connect("bob");
    let alice = w.connect("alice");
    let chat = w.group(&alice, &["bob"]);
    w.join(&bob, &chat);
}

#[test]
fn a_new_chat_is_auto_joined_on_the_next_connect() {
    let mut w = World::new();
    let bob = w.connect("bob");
    let alice = w.connect("alice");
    let chat = w.group(&alice, &["bob"]);
    let _ = bob;
    let later = w.connect_auto("bob");
    assert!(w.in_room(&chat_room(&chat)).contains(&later));
}

#[test]
fn two_users_creating_their_dm_at_the_same_time_get_the_same_chat() {
    let mut w = World::new();
    let alice = w.connect("alice");
    let bob = w.connect("bob");
    w.hold_storage();
    let from_alice = w.start(&alice, "chat:create", json!({ "kind": "dm", "memberIds": ["bob"] }));
    let from_bob = w.start(&bob, "chat:create", json!({ "kind": "dm", "memberIds": ["alice"] }));
    w.release_storage();
    let a = data(&w.ack_of(&alice, from_alice).expect("answered"))["chat"]["id"].clone();
    let b = data(&w.ack_of(&bob, from_bob).expect("answered"))["chat"]["id"].clone();
    assert_eq!(a, b);
    assert_eq!(w.store.chats().count(), 1);
    assert_eq!(w.received(&bob, ServerEvent::ChatUpdate).len(), 1);
}
