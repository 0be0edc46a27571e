//! PROTOCOL.md §8: presence to contacts, multiple devices, throttling, last seen.
mod common;

use chat_core::command::HttpRequest;
use chat_core::config::Limits;
use chat_core::effect::{Room, ServerEvent, Target};
use common::*;
use serde_json::{json, Value};

/// A group of `owner` and `others`, made over HTTP (no socket needed).
fn share_chat(w: &mut World, owner: &str, others: &[&str]) -> String {
    let (status, body) = w.http(owner, HttpRequest::CreateChat { body: json!({ "kind": "group", "memberIds": others, "title": "t" }) });
    assert_eq!(status, 201, "{body}");
    body["chat"]["id"].as_str().unwrap().to_string()
}

/// `presence:update`s about `about` sent to `user`'s room.
fn told(w: &World, user: &str, about: &str) -> Vec<Value> {
    w.emits_to_room(ServerEvent::PresenceUpdate, &user_room(user)).into_iter().filter(|p| p["userId"] == about).collect()
}

fn update(user: &str, status: &str, last_seen_ms: u64) -> Value {
    json!({ "userId": user, "status": status, "lastSeenAt": at(last_seen_ms) })
}

#[test]
fn a_connecting_user_is_announced_online_to_contacts() {
    let mut w = World::new();
    share_chat(&mut w, "alice", &["bob"]);
    let bob = w.connect("bob");
    w.advance_to(10_000);
    w.connect("alice");
    assert_eq!(told(&w, "bob", "alice"), vec![update("alice", "online", 10_000)]);
    assert_eq!(w.received(&bob, ServerEvent::PresenceUpdate).last(), Some(&update("alice", "online", 10_000)));
}

#[test]
fn presence_goes_to_contacts_only() {
    let mut w = World::new();
    share_chat(&mut w, "alice", &["bob"]);
    share_chat(&mut w, "carol", &["alice"]);
    share_chat(&mut w, "dave", &["erin"]);
    let dave = w.connect("dave");
    w.connect("alice");
    let mut rooms: Vec<Room> = w
        .emits(ServerEvent::PresenceUpdate)
        .into_iter()
        .filter(|(_, _, p)| p["userId"] == "alice")
        .map(|(to, _, _)| match to {
            Target::Room(room) => room,
            other => panic!("{other:?}"),
        })
        .collect();
    rooms.sort();
    assert_eq!(rooms, vec![user_room("bob"), user_room("carol")]);
    assert!(w.received(&dave, ServerEvent::PresenceUpdate).iter().all(|p| p["userId"] != "alice"));
}

#[test]
fn a_user_never_gets_their_own_presence() {
    let mut w = World::new();
    share_chat(&mut w, "alice", &["bob"]);
    w.connect("alice");
    assert!(told(&w, "alice", "alice").is_empty());
}

#[test]
fn the_last_socket_going_announces_offline() {
    let mut w = World::new();
    share_chat(&mut w, "alice", &["bob"]);
    let alice = w.connect("alice");
    w.advance_to(5_000);
    w.disconnect(&alice);
    assert_eq!(told(&w, "bob", "alice"), vec![update("alice", "online", 0), update("alice", "offline", 5_000)]);
}

#[test]
fn a_user_with_another_socket_stays_online() {
    let mut w = World::new();
    share_chat(&mut w, "alice", &["bob"]);
    let phone = w.connect("alice");
    let laptop = w.connect("alice");
    w.advance_to(5_000);
    w.disconnect(&phone);
    w.advance_to(20_000);
    assert_eq!(told(&w, "bob", "alice"), vec![update("alice", "online", 0)]);
    w.disconnect(&laptop);
    assert_eq!(told(&w, "bob", "alice").last(), Some(&update("alice", "offline", 20_000)));
}

#[test]
fn a_second_socket_does_not_announce_online_again() {
    let mut w = World::new();
    share_chat(&mut w, "alice", &["bob"]);
    w.connect("alice");
    w.advance_to(5_000);
    w.connect("alice");
    w.advance_to(20_000);
    assert_eq!(told(&w, "bob", "alice").len(), 1);
}

#[test]
fn a_change_inside_the_throttle_window_is_sent_at_the_windows_end() {
    let mut w = World::new();
    share_chat(&mut w, "alice", &["bob"]);
    let alice = w.connect("alice");
    w.advance_to(100);
    w.disconnect(&alice);
    assert_eq!(told(&w, "bob", "alice").len(), 1, "offline sent inside the window");
    w.advance_to(1_999);
    assert_eq!(told(&w, "bob", "alice").len(), 1, "offline sent inside the window");
    w.advance_to(2_000);
    assert_eq!(told(&w, "bob", "alice"), vec![update("alice", "online", 0), update("alice", "offline", 100)]);
}

#[test]
fn a_flap_back_to_the_announced_state_sends_nothing() {
    let mut w = World::new();
    share_chat(&mut w, "alice", &["bob"]);
    let alice = w.connect("alice");
    w.advance_to(100);
    w.disconnect(&alice);
    w.advance_to(200);
    w.connect("alice");
    w.advance_to(30_000);
    assert_eq!(told(&w, "bob", "alice"), vec![update("alice", "online", 0)]);
}

#[test]
fn a_flap_inside_the_window_sends_only_the_final_state() {
    let mut w = World::new();
    share_chat(&mut w, "alice", &["bob"]);
    let alice = w.connect("alice");
    w.advance_to(100);
    w.disconnect(&alice);
    w.advance_to(200);
    let again = w.connect("alice");
    w.advance_to(300);
    w.disconnect(&again);
    w.advance_to(30_000);
    assert_eq!(told(&w, "bob", "alice"), vec![update("alice", "online", 0), update("alice", "offline", 300)]);
}

#[test]
fn presence_goes_out_at_most_once_per_throttle_window() {
    let mut w = World::new();
    share_chat(&mut w, "alice", &["bob"]);
    let alice = w.connect("alice");
    w.advance_to(100);
    w.disconnect(&alice);
    w.advance_to(2_000); // offline goes out now
    w.advance_to(2_100);
    w.connect("alice");
    w.advance_to(3_999);
    assert_eq!(told(&w, "bob", "alice").len(), 2, "online sent inside the window");
    w.advance_to(4_000);
    assert_eq!(told(&w, "bob", "alice").last(), Some(&update("alice", "online", 2_100)));
}

#[test]
fn a_change_after_the_window_is_sent_at_once() {
    let mut w = World::new();
    share_chat(&mut w, "alice", &["bob"]);
    let alice = w.connect("alice");
    w.advance_to(2_000);
    w.disconnect(&alice);
    assert_eq!(told(&w, "bob", "alice").last(), Some(&update("alice", "offline", 2_000)));
}

#[test]
fn the_presence_throttle_is_configurable() {
    let mut w = World::with_limits(Limits { presence_throttle_ms: 10_000, ..Limits::default() });
    share_chat(&mut w, "alice", &["bob"]);
    let alice = w.connect("alice");
    w.advance_to(5_000);
    w.disconnect(&alice);
    w.advance_to(9_999);
    assert_eq!(told(&w, "bob", "alice").len(), 1);
    w.advance_to(10_000);
    assert_eq!(told(&w, "bob", "alice").last(), Some(&update("alice", "offline", 5_000)));
}

#[test]
fn last_seen_at_is_refreshed_by_presence_ping() {
    let mut w = World::new();
    share_chat(&mut w, "alice", &["bob"]);
    let alice = w.connect("alice");
    w.advance_to(3_000);
    w.disconnect(&alice); // offline at once: announced at 3 s
    w.advance_to(3_500);
    let alice = w.connect("alice"); // online is due at 5 s
    w.advance_to(4_000);
    data(&w.call(&alice, "presence:ping", json!({})));
    w.advance_to(5_000);
    assert_eq!(told(&w, "bob", "alice").last(), Some(&update("alice", "online", 4_000)));
}

#[test]
fn last_seen_at_is_refreshed_by_any_event() {
    let mut w = World::new();
    let chat = share_chat(&mut w, "alice", &["bob"]);
    let alice = w.connect("alice");
    w.advance_to(3_000);
    w.disconnect(&alice);
    w.advance_to(3_500);
    let alice = w.connect("alice");
    w.advance_to(4_200);
    w.send_event(&alice, "typing:start", json!({ "chatId": chat }));
    w.advance_to(5_000);
    assert_eq!(told(&w, "bob", "alice").last(), Some(&update("alice", "online", 4_200)));
}

#[test]
fn presence_ping_acks_the_server_time() {
    let mut w = World::new();
    let alice = w.connect("alice");
    w.advance(1_234);
    assert_eq!(data(&w.call(&alice, "presence:ping", json!({}))), json!({ "serverTime": at(1_234) }));
}

#[test]
fn a_new_chat_makes_its_members_contacts() {
    let mut w = World::new();
    let alice = w.connect("alice");
    w.connect("bob");
    w.dm(&alice, "bob");
    w.advance_to(5_000);
    w.disconnect(&alice);
    assert_eq!(told(&w, "bob", "alice"), vec![update("alice", "offline", 5_000)]);
}

#[test]
fn a_removed_member_is_no_longer_a_contact() {
    let mut w = World::new();
    let chat = share_chat(&mut w, "alice", &["bob"]);
    let alice = w.connect("alice");
    let (status, _) = w.http("alice", HttpRequest::RemoveMember { chat_id: chat, user_id: "bob".into() });
    assert_eq!(status, 200);
    w.advance_to(5_000);
    w.disconnect(&alice);
    assert_eq!(told(&w, "bob", "alice"), vec![update("alice", "online", 0)]);
}

#[test]
fn a_contact_connecting_is_announced_to_a_connected_user() {
    let mut w = World::new();
    share_chat(&mut w, "alice", &["bob"]);
    let alice = w.connect("alice");
    w.advance_to(700);
    w.connect("bob");
    assert_eq!(w.received(&alice, ServerEvent::PresenceUpdate), vec![update("bob", "online", 700)]);
}
