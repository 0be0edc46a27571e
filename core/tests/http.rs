//! PROTOCOL.md §9: the HTTP API as the core answers it.
mod common;

use chat_core::auth::sign_token;
use chat_core::command::HttpRequest;
use chat_core::effect::{Effect, Room, ServerEvent, Target};
use chat_core::ids::{is_uuid, ChatId, Millis, UserId};
use common::*;
use serde_json::{json, Value};

fn create_group(w: &mut World, owner: &str, others: &[&str]) -> String {
    let (status, body) = w.http(owner, HttpRequest::CreateChat { body: json!({ "kind": "group", "memberIds": others, "title": "team" }) });
    assert_eq!(status, 201, "{body}");
    body["chat"]["id"].as_str().unwrap().to_string()
}

fn create_dm(w: &mut World, user: &str, other: &str) -> (u16, Value) {
    w.http(user, HttpRequest::CreateChat { body: json!({ "kind": "dm", "memberIds": [other] }) })
}

fn list(w: &mut World, user: &str) -> Vec<Value> {
    let (status, body) = w.http(user, HttpRequest::ListChats);
    assert_eq!(status, 200, "{body}");
    body["chats"].as_array().unwrap().clone()
}

fn rename(w: &mut World, user: &str, chat: &str, title: Value) -> (u16, Value) {
    w.http(user, HttpRequest::RenameChat { chat_id: chat.into(), body: json!({ "title": title }) })
}

fn add(w: &mut World, user: &str, chat: &str, member: &str) -> (u16, Value) {
    w.http(user, HttpRequest::AddMember { chat_id: chat.into(), body: json!({ "userId": member }) })
}

fn remove(w: &mut World, user: &str, chat: &str, member: &str) -> (u16, Value) {
    w.http(user, HttpRequest::RemoveMember { chat_id: chat.into(), user_id: member.into() })
}

fn members(w: &World, chat: &str) -> Vec<String> {
    w.store.chat(&ChatId::from(chat)).unwrap().member_ids.iter().map(|u| u.as_str().to_string()).collect()
}

/// Rooms that got a `chat:update`, sorted.
fn chat_update_rooms(w: &World, since: usize) -> Vec<Room> {
    let mut rooms: Vec<Room> = w
        .since(since)
        .iter()
        .filter_map(|e| match e {
            Effect::Emit { to: Target::Room(room), event: ServerEvent::ChatUpdate, .. } => Some(room.clone()),
            _ => None,
        })
        .collect();
    rooms.sort();
    rooms
}

// --- authentication ------------------------------------------------------------------

fn every_call(chat: &str) -> Vec<HttpRequest> {
    vec![
        HttpRequest::ListChats,
        HttpRequest::CreateChat { body: json!({ "kind": "dm", "memberIds": ["bob"] }) },
        HttpRequest::History { chat_id: chat.into(), after_seq: None, before_seq: None, limit: None },
        HttpRequest::RenameChat { chat_id: chat.into(), body: json!({ "title": "x" }) },
        HttpRequest::AddMember { chat_id: chat.into(), body: json!({ "userId": "dave" }) },
        HttpRequest::RemoveMember { chat_id: chat.into(), user_id: "bob".into() },
    ]
}

#[test]
fn every_call_without_a_token_is_401_unauthorized() {
    let mut w = World::new();
    let chat = create_group(&mut w, "alice", &["bob"]);
    for call in every_call(&chat) {
        let (status, body) = w.http_as(None, call.clone());
        assert_eq!((status, body["error"].clone()), (401, json!("UNAUTHORIZED")), "{call:?}");
    }
    assert_eq!(members(&w, &chat), vec!["alice", "bob"]);
}

#[test]
fn every_call_with_an_invalid_token_is_401_unauthorized() {
    let mut w = World::new();
    let chat = create_group(&mut w, "alice", &["bob"]);
    let forged = format!("Bearer {}", sign_token(b"wrong", &UserId::from("alice"), false, w.now.plus(3_600_000)));
    let expired = format!("Bearer {}", sign_token(SECRET, &UserId::from("alice"), false, Millis(w.now.0 - 120_000)));
    let not_bearer = format!("Basic {}", w.token("alice"));
    for authorization in [forged, expired, not_bearer, "Bearer garbage".to_string()] {
        for call in every_call(&chat) {
            let (status, _) = w.http_as(Some(authorization.clone()), call.clone());
            assert_eq!(status, 401, "{authorization} {call:?}");
        }
    }
}

#[test]
fn an_http_error_body_has_error_message_and_a_logged_correlation_id() {
    let mut w = World::new();
    let (status, body) = w.http_as(None, HttpRequest::ListChats);
    assert_eq!(status, 401);
    let fields: Vec<&str> = body.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(fields, vec!["correlationId", "error", "message"]);
    let id = body["correlationId"].as_str().unwrap();
    assert!(is_uuid(id));
    assert!(w.logged(id));
}

// --- GET /api/v1/chats ---------------------------------------------------------------

#[test]
fn listing_chats_returns_only_the_callers_chats() {
    let mut w = World::new();
    let mine = create_group(&mut w, "alice", &["bob"]);
    create_group(&mut w, "carol", &["dave"]);
    let ids: Vec<Value> = list(&mut w, "alice").iter().map(|row| row["chat"]["id"].clone()).collect();
    assert_eq!(ids, vec![json!(mine)]);
}

#[test]
fn a_user_without_chats_lists_nothing() {
    let mut w = World::new();
    assert_eq!(w.http("nobody", HttpRequest::ListChats), (200, json!({ "chats": [] })));
}

#[test]
fn an_empty_chat_is_listed_with_a_null_last_message_and_no_unread() {
    let mut w = World::new();
    let (_, created) = w.http("alice", HttpRequest::CreateChat { body: json!({ "kind": "group", "memberIds": ["bob"], "title": "T" }) });
    assert_eq!(list(&mut w, "bob"), vec![json!({ "chat": created["chat"], "lastMessage": null, "unreadCount": 0 })]);
}

#[test]
fn a_chat_is_listed_with_its_last_message_and_the_callers_unread_count() {
    let mut w = World::new();
    let chat = create_group(&mut w, "alice", &["bob"]);
    let alice = w.connect("alice");
    data(&w.send(&alice, &chat, "one", 1));
    let last = data(&w.send(&alice, &chat, "two", 2));
    let rows = list(&mut w, "bob");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["lastMessage"]["body"], "two");
    assert_eq!(rows[0]["lastMessage"]["id"], last["serverId"]);
    assert_eq!(rows[0]["unreadCount"], 2);
    assert_eq!(list(&mut w, "alice")[0]["unreadCount"], 0);
}

#[test]
fn chats_are_listed_newest_activity_first() {
    let mut w = World::new();
    let alice = w.connect("alice");
    let old_with_message = create_group(&mut w, "alice", &["bob"]);
    w.advance_to(1_000);
    let middle = create_group(&mut w, "alice", &["carol"]);
    w.advance_to(2_000);
    let newest_created = create_group(&mut w, "alice", &["dave"]);
    w.advance_to(3_000);
    data(&w.send(&alice, &old_with_message, "bump", 1));
    let order: Vec<Value> = list(&mut w, "alice").iter().map(|row| row["chat"]["id"].clone()).collect();
    assert_eq!(order, vec![json!(old_with_message), json!(newest_created), json!(middle)]);
}

#[test]
fn a_message_older_than_a_chats_creation_ranks_below_it() {
    let mut w = World::new();
    let alice = w.connect("alice");
    let talked = create_group(&mut w, "alice", &["bob"]);
    w.advance_to(1_000);
    data(&w.send(&alice, &talked, "early", 1));
    w.advance_to(2_000);
    let fresh = create_group(&mut w, "alice", &["carol"]);
    let order: Vec<Value> = list(&mut w, "alice").iter().map(|row| row["chat"]["id"].clone()).collect();
    assert_eq!(order, vec![json!(fresh), json!(talked)]);
}

// --- POST /api/v1/chats --------------------------------------------------------------

#[test]
fn creating_a_group_is_201_with_the_chat() {
    let mut w = World::new();
    let (status, body) = w.http("alice", HttpRequest::CreateChat { body: json!({ "kind": "group", "memberIds": ["bob"], "title": "T" }) });
    assert_eq!(status, 201);
    assert_eq!(body["chat"]["kind"], "group");
    assert_eq!(body["chat"]["memberIds"], json!(["alice", "bob"]));
    assert_eq!(body["chat"]["createdBy"], "alice");
}

#[test]
fn creating_a_dm_is_201_then_200_with_the_same_chat() {
    let mut w = World::new();
    let (first_status, first) = create_dm(&mut w, "alice", "bob");
    let (again_status, again) = create_dm(&mut w, "alice", "bob");
    let (other_side_status, other_side) = create_dm(&mut w, "bob", "alice");
    assert_eq!((first_status, again_status, other_side_status), (201, 200, 200));
    assert_eq!(again, first);
    assert_eq!(other_side, first);
}

#[test]
fn creating_a_dm_over_http_finds_one_made_over_the_socket() {
    let mut w = World::new();
    let alice = w.connect("alice");
    let chat = w.dm(&alice, "bob");
    let (status, body) = create_dm(&mut w, "bob", "alice");
    assert_eq!(status, 200);
    assert_eq!(body["chat"]["id"], chat);
}

#[test]
fn creating_a_chat_over_http_emits_chat_update_to_its_members() {
    let mut w = World::new();
    let bob = w.connect("bob");
    let mark = w.mark();
    create_group(&mut w, "alice", &["bob"]);
    assert_eq!(chat_update_rooms(&w, mark), vec![user_room("alice"), user_room("bob")]);
    assert_eq!(w.received(&bob, ServerEvent::ChatUpdate).len(), 1);
}

#[test]
fn creating_an_invalid_chat_over_http_is_400() {
    let mut w = World::new();
    for body in [json!({ "kind": "dm", "memberIds": ["alice"] }), json!({ "kind": "group", "memberIds": ["bob"] }), json!([]), json!(null)] {
        let (status, answer) = w.http("alice", HttpRequest::CreateChat { body: body.clone() });
        assert_eq!((status, answer["error"].clone()), (400, json!("VALIDATION_ERROR")), "{body}");
    }
}

// --- PATCH /api/v1/chats/:chatId -----------------------------------------------------

#[test]
fn renaming_a_group_returns_the_chat_with_the_new_title_and_moves_updated_at() {
    let mut w = World::new();
    let chat = create_group(&mut w, "alice", &["bob"]);
    w.advance_to(5_000);
    let (status, body) = rename(&mut w, "alice", &chat, json!("Renamed"));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["chat"]["title"], "Renamed");
    assert_eq!(body["chat"]["createdAt"], at(0));
    assert_eq!(body["chat"]["updatedAt"], at(5_000));
    assert_eq!(w.store.chat(&ChatId::from(chat.as_str())).unwrap().title.as_deref(), Some("Renamed"));
}

#[test]
fn any_member_may_rename_a_group() {
    let mut w = World::new();
    let chat = create_group(&mut w, "alice", &["bob"]);
    let (status, body) = rename(&mut w, "bob", &chat, json!("Bob's"));
    assert_eq!(status, 200);
    assert_eq!(body["chat"]["title"], "Bob's");
}

#[test]
fn renaming_emits_chat_update_to_every_member() {
    let mut w = World::new();
    let chat = create_group(&mut w, "alice", &["bob", "carol"]);
    let bob = w.connect("bob");
    let mark = w.mark();
    let (_, body) = rename(&mut w, "alice", &chat, json!("New"));
    assert_eq!(chat_update_rooms(&w, mark), vec![user_room("alice"), user_room("bob"), user_room("carol")]);
    assert_eq!(w.received(&bob, ServerEvent::ChatUpdate).last(), Some(&json!({ "chat": body["chat"] })));
}

#[test]
fn renaming_a_dm_is_400() {
    let mut w = World::new();
    let (_, dm) = create_dm(&mut w, "alice", "bob");
    let mark = w.mark();
    let (status, body) = rename(&mut w, "alice", dm["chat"]["id"].as_str().unwrap(), json!("Us"));
    assert_eq!((status, body["error"].clone()), (400, json!("VALIDATION_ERROR")));
    assert!(w.emits_since(mark).is_empty());
}

#[test]
fn a_non_member_cannot_rename_403() {
    let mut w = World::new();
    let chat = create_group(&mut w, "alice", &["bob"]);
    let (status, body) = rename(&mut w, "mallory", &chat, json!("Mine"));
    assert_eq!((status, body["error"].clone()), (403, json!("FORBIDDEN")));
    assert_eq!(w.store.chat(&ChatId::from(chat.as_str())).unwrap().title.as_deref(), Some("team"));
}

#[test]
fn renaming_an_unknown_chat_is_404() {
    let mut w = World::new();
    let (status, body) = rename(&mut w, "alice", "no-such-chat", json!("x"));
    assert_eq!((status, body["error"].clone()), (404, json!("NOT_FOUND")));
}

#[test]
fn renaming_with_a_bad_title_is_400() {
    let mut w = World::new();
    let chat = create_group(&mut w, "alice", &["bob"]);
    for title in [json!(""), json!("  "), json!(null), json!(3), json!("t".repeat(201))] {
        let (status, _) = rename(&mut w, "alice", &chat, title.clone());
        assert_eq!(status, 400, "{title}");
    }
}

#[test]
fn a_renamed_chat_moves_up_the_list_only_by_activity() {
    // updatedAt moves, but the list orders by last message, else creation time.
    let mut w = World::new();
    let first = create_group(&mut w, "alice", &["bob"]);
    w.advance_to(1_000);
    let second = create_group(&mut w, "alice", &["bob"]);
    w.advance_to(2_000);
    rename(&mut w, "alice", &first, json!("renamed"));
    let order: Vec<Value> = list(&mut w, "alice").iter().map(|row| row["chat"]["id"].clone()).collect();
    assert_eq!(order, vec![json!(second), json!(first)]);
}

// --- POST /api/v1/chats/:chatId/members ----------------------------------------------

#[test]
fn any_member_may_add_a_member() {
    let mut w = World::new();
    let chat = create_group(&mut w, "alice", &["bob"]);
    w.advance_to(1_000);
    let (status, body) = add(&mut w, "bob", &chat, "carol");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["chat"]["memberIds"], json!(["alice", "bob", "carol"]));
    assert_eq!(body["chat"]["updatedAt"], at(1_000));
    assert_eq!(members(&w, &chat), vec!["alice", "bob", "carol"]);
}

#[test]
fn adding_a_member_emits_chat_update_to_every_member_new_one_included() {
    let mut w = World::new();
    let chat = create_group(&mut w, "alice", &["bob"]);
    let carol = w.connect("carol");
    let mark = w.mark();
    let (_, body) = add(&mut w, "alice", &chat, "carol");
    assert_eq!(chat_update_rooms(&w, mark), vec![user_room("alice"), user_room("bob"), user_room("carol")]);
    assert_eq!(w.received(&carol, ServerEvent::ChatUpdate), vec![json!({ "chat": body["chat"] })]);
}

#[test]
fn adding_someone_already_a_member_is_200_and_changes_nothing() {
    let mut w = World::new();
    let chat = create_group(&mut w, "alice", &["bob"]);
    let mark = w.mark();
    let (status, body) = add(&mut w, "alice", &chat, "bob");
    assert_eq!(status, 200);
    assert_eq!(body["chat"]["memberIds"], json!(["alice", "bob"]));
    assert_eq!(body["chat"]["updatedAt"], at(0));
    assert!(w.emits_since(mark).is_empty());
}

#[test]
fn a_non_member_cannot_add_403() {
    let mut w = World::new();
    let chat = create_group(&mut w, "alice", &["bob"]);
    let (status, body) = add(&mut w, "mallory", &chat, "mallory");
    assert_eq!((status, body["error"].clone()), (403, json!("FORBIDDEN")));
    assert_eq!(members(&w, &chat), vec!["alice", "bob"]);
}

#[test]
fn adding_to_a_dm_is_400() {
    let mut w = World::new();
    let (_, dm) = create_dm(&mut w, "alice", "bob");
    let (status, body) = add(&mut w, "alice", dm["chat"]["id"].as_str().unwrap(), "carol");
    assert_eq!((status, body["error"].clone()), (400, json!("VALIDATION_ERROR")));
}

#[test]
fn adding_to_an_unknown_chat_is_404() {
    let mut w = World::new();
    let (status, _) = add(&mut w, "alice", "no-such-chat", "bob");
    assert_eq!(status, 404);
}

#[test]
fn an_added_member_may_join_and_send_at_once() {
    let mut w = World::new();
    let chat = create_group(&mut w, "alice", &["bob"]);
    let carol = w.connect("carol");
    add(&mut w, "alice", &chat, "carol");
    w.join(&carol, &chat);
    assert_eq!(data(&w.send(&carol, &chat, "hi all", 1))["seq"], 1);
}

#[test]
fn an_added_member_connected_with_auto_join_is_auto_joined_next_time() {
    let mut w = World::new();
    let chat = create_group(&mut w, "alice", &["bob"]);
    w.connect("carol");
    add(&mut w, "alice", &chat, "carol");
    let later = w.connect_auto("carol");
    assert!(w.in_room(&chat_room(&chat)).contains(&later));
}

// --- DELETE /api/v1/chats/:chatId/members/:userId ------------------------------------

#[test]
fn a_member_may_remove_themself() {
    let mut w = World::new();
    let chat = create_group(&mut w, "alice", &["bob", "carol"]);
    let (status, body) = remove(&mut w, "bob", &chat, "bob");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["chat"]["memberIds"], json!(["alice", "carol"]));
    assert_eq!(members(&w, &chat), vec!["alice", "carol"]);
}

#[test]
fn the_creator_may_remove_anyone() {
    let mut w = World::new();
    let chat = create_group(&mut w, "alice", &["bob", "carol"]);
    let (status, body) = remove(&mut w, "alice", &chat, "carol");
    assert_eq!(status, 200);
    assert_eq!(body["chat"]["memberIds"], json!(["alice", "bob"]));
}

#[test]
fn another_member_cannot_remove_someone_else_403() {
    let mut w = World::new();
    let chat = create_group(&mut w, "alice", &["bob", "carol"]);
    let (status, body) = remove(&mut w, "bob", &chat, "carol");
    assert_eq!((status, body["error"].clone()), (403, json!("FORBIDDEN")));
    assert_eq!(members(&w, &chat), vec!["alice", "bob", "carol"]);
}

#[test]
fn a_non_member_cannot_remove_anyone_403() {
    let mut w = World::new();
    let chat = create_group(&mut w, "alice", &["bob"]);
    let (status, _) = remove(&mut w, "mallory", &chat, "bob");
    assert_eq!(status, 403);
}

#[test]
fn removing_from_a_dm_is_400() {
    let mut w = World::new();
    let (_, dm) = create_dm(&mut w, "alice", "bob");
    let id = dm["chat"]["id"].as_str().unwrap().to_string();
    for (actor, member) in [("alice", "alice"), ("alice", "bob")] {
        let (status, body) = remove(&mut w, actor, &id, member);
        assert_eq!((status, body["error"].clone()), (400, json!("VALIDATION_ERROR")));
    }
    assert_eq!(members(&w, &id), vec!["alice", "bob"]);
}

#[test]
fn removing_from_an_unknown_chat_is_404() {
    let mut w = World::new();
    let (status, _) = remove(&mut w, "alice", "no-such-chat", "alice");
    assert_eq!(status, 404);
}

#[test]
fn removing_emits_chat_update_to_old_and_new_members() {
    let mut w = World::new();
    let chat = create_group(&mut w, "alice", &["bob", "carol"]);
    let bob = w.connect("bob");
    let mark = w.mark();
    let (_, body) = remove(&mut w, "alice", &chat, "bob");
    assert_eq!(chat_update_rooms(&w, mark), vec![user_room("alice"), user_room("bob"), user_room("carol")]);
    assert_eq!(w.received(&bob, ServerEvent::ChatUpdate).last(), Some(&json!({ "chat": body["chat"] })));
}

#[test]
fn a_removed_members_sockets_leave_the_chat_room_at_once() {
    let mut w = World::new();
    let chat = create_group(&mut w, "alice", &["bob"]);
    let phone = w.connect("bob");
    let laptop = w.connect("bob");
    w.join(&phone, &chat);
    w.join(&laptop, &chat);
    let mark = w.mark();
    remove(&mut w, "alice", &chat, "bob");
    let left: Vec<_> = w
        .since(mark)
        .iter()
        .filter_map(|e| match e {
            Effect::LeaveRoom { socket, room } if *room == chat_room(&chat) => Some(socket.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(left.len(), 2);
    assert!(left.contains(&phone) && left.contains(&laptop));
    assert!(w.in_room(&chat_room(&chat)).is_empty());
}

#[test]
fn a_removed_member_stops_receiving_the_chats_messages() {
    let mut w = World::new();
    let chat = create_group(&mut w, "alice", &["bob", "carol"]);
    let alice = w.connect("alice");
    let bob = w.connect("bob");
    let carol = w.connect("carol");
    w.join(&bob, &chat);
    w.join(&carol, &chat);
    remove(&mut w, "alice", &chat, "bob");
    data(&w.send(&alice, &chat, "after", 1));
    assert!(w.received(&bob, ServerEvent::MessageNew).is_empty());
    assert!(w.received(&bob, ServerEvent::InboxUpdate).is_empty());
    assert_eq!(w.received(&carol, ServerEvent::MessageNew).len(), 1);
}

#[test]
fn a_member_leaving_the_chat_stops_receiving_its_messages() {
    let mut w = World::new();
    let chat = create_group(&mut w, "alice", &["bob"]);
    let alice = w.connect("alice");
    let bob = w.connect_auto("bob");
    remove(&mut w, "bob", &chat, "bob");
    data(&w.send(&alice, &chat, "after", 1));
    assert!(w.received(&bob, ServerEvent::MessageNew).is_empty());
}

#[test]
fn a_removed_member_can_no_longer_send_or_join() {
    let mut w = World::new();
    let chat = create_group(&mut w, "alice", &["bob"]);
    let bob = w.connect("bob");
    remove(&mut w, "alice", &chat, "bob");
    assert_eq!(code(&w.send(&bob, &chat, "let me in", 1)), "FORBIDDEN");
    assert_eq!(code(&w.call(&bob, "room:join", json!({ "chatId": chat }))), "FORBIDDEN");
}

#[test]
fn a_removed_member_no_longer_lists_the_chat() {
    let mut w = World::new();
    let chat = create_group(&mut w, "alice", &["bob"]);
    remove(&mut w, "bob", &chat, "bob");
    assert!(list(&mut w, "bob").is_empty());
    assert_eq!(list(&mut w, "alice").len(), 1);
}

#[test]
fn a_removed_members_typing_stops() {
    let mut w = World::new();
    let chat = create_group(&mut w, "alice", &["bob"]);
    let alice = w.connect("alice");
    let bob = w.connect("bob");
    w.join(&alice, &chat);
    w.join(&bob, &chat);
    w.send_event(&bob, "typing:start", json!({ "chatId": chat }));
    remove(&mut w, "alice", &chat, "bob");
    assert_eq!(
        w.received(&alice, ServerEvent::TypingUpdate),
        vec![json!({ "chatId": chat, "userId": "bob", "state": "start" }), json!({ "chatId": chat, "userId": "bob", "state": "stop" })]
    );
}

#[test]
fn a_removed_member_may_be_added_again() {
    let mut w = World::new();
    let chat = create_group(&mut w, "alice", &["bob"]);
    remove(&mut w, "alice", &chat, "bob");
    let (status, body) = add(&mut w, "alice", &chat, "bob");
    assert_eq!(status, 200);
    assert_eq!(body["chat"]["memberIds"], json!(["alice", "bob"]));
    let bob = w.connect("bob");
    assert_eq!(data(&w.send(&bob, &chat, "back", 1))["seq"], 1);
}

#[test]
fn removing_someone_who_is_not_a_member_changes_nothing() {
    let mut w = World::new();
    let chat = create_group(&mut w, "alice", &["bob"]);
    let mark = w.mark();
    let (status, _) = remove(&mut w, "alice", &chat, "zed");
    assert!(matches!(status, 200 | 404), "{status}");
    assert!(w.emits_since(mark).is_empty());
    assert_eq!(members(&w, &chat), vec!["alice", "bob"]);
}
