//! PROTOCOL.md §1 at the engine level: who may connect, and what a new socket joins and learns.
mod common;

use chat_core::auth::{sign_token, Handshake};
use chat_core::config::Limits;
use chat_core::effect::{Effect, ServerEvent, Target};
use chat_core::ids::{is_uuid, Millis, SocketId, UserId};
use common::*;
use serde_json::json;

fn handshake_with_token(token: &str) -> Handshake {
    Handshake { auth: Some(json!({ "token": token })), ..Default::default() }
}

#[test]
fn a_valid_token_is_accepted_as_its_user() {
    let mut w = World::new();
    let socket = w.connect("alice");
    let accepted: Vec<_> = w
        .log
        .iter()
        .filter_map(|e| match e {
            Effect::AcceptConnection { socket: s, user } if *s == socket => Some(user.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(accepted, vec![UserId::from("alice")]);
}

#[test]
fn a_handshake_without_a_token_is_refused_unauthorized() {
    let mut w = World::new();
    let socket = w.connect_handshake("anon", Handshake::default());
    assert!(!w.accepted(&socket));
    assert_eq!(w.rejection(&socket).map(|(code, _)| code), Some("UNAUTHORIZED"));
}

#[test]
fn a_badly_signed_token_is_refused_unauthorized() {
    let mut w = World::new();
    let forged = sign_token(b"another-secret", &UserId::from("alice"), false, w.now.plus(3_600_000));
    let socket = w.connect_handshake("alice", handshake_with_token(&forged));
    assert!(!w.accepted(&socket));
    assert_eq!(w.rejection(&socket).map(|(code, _)| code), Some("UNAUTHORIZED"));
}

#[test]
fn an_expired_token_is_refused_unauthorized() {
    let mut w = World::new();
    let expired = sign_token(SECRET, &UserId::from("alice"), false, Millis(w.now.0 - 60_000));
    let socket = w.connect_handshake("alice", handshake_with_token(&expired));
    assert!(!w.accepted(&socket));
    assert_eq!(w.rejection(&socket).map(|(code, _)| code), Some("UNAUTHORIZED"));
}

#[test]
fn a_malformed_token_is_refused_unauthorized() {
    let mut w = World::new();
    let socket = w.connect_handshake("x", handshake_with_token("not.a.jwt"));
    assert_eq!(w.rejection(&socket).map(|(code, _)| code), Some("UNAUTHORIZED"));
}

#[test]
fn a_refused_handshake_is_logged_with_its_correlation_id() {
    let mut w = World::new();
    let socket = w.connect_handshake("anon", Handshake::default());
    let (_, correlation_id) = w.rejection(&socket).expect("refused");
    assert!(is_uuid(correlation_id.as_str()), "{correlation_id}");
    assert!(w.logged(correlation_id.as_str()));
}

#[test]
fn a_refused_socket_cannot_send_events() {
    let mut w = World::new();
    let socket = w.connect_handshake("anon", Handshake::default());
    assert_eq!(w.try_call(&socket, "presence:ping", json!({})), None);
}

#[test]
fn the_socket_beyond_max_sockets_per_user_is_refused_too_many_connections() {
    let mut w = World::new();
    for _ in 0..5 {
        w.connect("alice");
    }
    let (sixth, accepted) = w.connect_with("alice", json!({}));
    assert!(!accepted);
    assert_eq!(w.rejection(&sixth).map(|(code, _)| code), Some("TOO_MANY_CONNECTIONS"));
}

#[test]
fn the_too_many_connections_refusal_is_logged_with_its_correlation_id() {
    let mut w = World::new();
    for _ in 0..5 {
        w.connect("alice");
    }
    let (sixth, _) = w.connect_with("alice", json!({}));
    let (_, correlation_id) = w.rejection(&sixth).expect("refused");
    assert!(is_uuid(correlation_id.as_str()));
    assert!(w.logged(correlation_id.as_str()));
}

#[test]
fn max_sockets_per_user_is_configurable() {
    let mut w = World::with_limits(Limits { max_sockets_per_user: 2, ..Limits::default() });
    w.connect("alice");
    w.connect("alice");
    let (third, accepted) = w.connect_with("alice", json!({}));
    assert!(!accepted);
    assert_eq!(w.rejection(&third).map(|(code, _)| code), Some("TOO_MANY_CONNECTIONS"));
}

#[test]
fn the_socket_limit_counts_each_user_separately() {
    let mut w = World::new();
    for _ in 0..5 {
        w.connect("alice");
    }
    let (bob, accepted) = w.connect_with("bob", json!({}));
    assert!(accepted, "{bob:?}");
}

#[test]
fn a_user_at_the_limit_may_connect_again_after_one_socket_disconnects() {
    let mut w = World::new();
    let sockets: Vec<SocketId> = (0..5).map(|_| w.connect("alice")).collect();
    let (refused, accepted) = w.connect_with("alice", json!({}));
    assert!(!accepted, "{refused:?}");
    w.disconnect(&sockets[2]);
    let (again, accepted) = w.connect_with("alice", json!({}));
    assert!(accepted, "{again:?}");
}

#[test]
fn a_refused_socket_does_not_take_a_place() {
    let mut w = World::new();
    let sockets: Vec<SocketId> = (0..5).map(|_| w.connect("alice")).collect();
    for _ in 0..3 {
        assert!(!w.connect_with("alice", json!({})).1);
    }
    w.disconnect(&sockets[0]);
    assert!(w.connect_with("alice", json!({})).1);
    assert!(!w.connect_with("alice", json!({})).1);
}

#[test]
fn a_connected_socket_joins_its_user_room() {
    let mut w = World::new();
    let socket = w.connect("alice");
    assert!(w
        .log
        .iter()
        .any(|e| matches!(e, Effect::JoinRoom { socket: s, room } if *s == socket && *room == user_room("alice"))));
    assert_eq!(w.in_room(&user_room("alice")), [socket].into_iter().collect());
}

#[test]
fn without_auto_join_a_socket_joins_no_chat_room() {
    let mut w = World::new();
    let alice = w.connect("alice");
    let chat = w.group(&alice, &["bob"]);
    let later = w.connect("alice");
    assert!(!w.in_room(&chat_room(&chat)).contains(&later));
    assert!(w.in_room(&chat_room(&chat)).is_empty());
}

#[test]
fn auto_join_joins_the_room_of_every_chat_of_the_user() {
    let mut w = World::new();
    let alice = w.connect("alice");
    let group = w.group(&alice, &["bob", "carol"]);
    let dm = w.dm(&alice, "dave");
    let bobs = w.connect("bob");
    let elsewhere = w.group(&bobs, &["carol"]);
    let auto = w.connect_auto("alice");
    assert!(w.in_room(&chat_room(&group)).contains(&auto));
    assert!(w.in_room(&chat_room(&dm)).contains(&auto));
    assert!(!w.in_room(&chat_room(&elsewhere)).contains(&auto));
}

#[test]
fn auto_join_happens_after_a_restart_from_storage() {
    let mut w = World::new();
    let alice = w.connect("alice");
    let chat = w.group(&alice, &["bob"]);
    w.restart();
    let bob = w.connect_auto("bob");
    assert!(w.in_room(&chat_room(&chat)).contains(&bob));
}

#[test]
fn an_auto_joined_socket_receives_new_messages() {
    let mut w = World::new();
    let alice = w.connect("alice");
    let chat = w.group(&alice, &["bob"]);
    let bob = w.connect_auto("bob");
    data(&w.send(&alice, &chat, "hello", 1));
    let news = w.received(&bob, ServerEvent::MessageNew);
    assert_eq!(news.len(), 1);
    assert_eq!(news[0]["body"], "hello");
}

#[test]
fn auto_join_false_joins_no_chat_room() {
    let mut w = World::new();
    let alice = w.connect("alice");
    let chat = w.group(&alice, &["bob"]);
    let (bob, accepted) = w.connect_with("bob", json!({ "autoJoin": false }));
    assert!(accepted);
    assert!(!w.in_room(&chat_room(&chat)).contains(&bob));
}

#[test]
fn a_new_socket_gets_a_presence_snapshot_of_its_online_contacts() {
    let mut w = World::new();
    let alice = w.connect("alice");
    w.group(&alice, &["bob", "carol"]);
    w.connect("bob");
    w.connect("dave"); // online, but shares no chat with alice
    let fresh = w.connect("alice");
    let snapshots = w.received(&fresh, ServerEvent::PresenceSnapshot);
    assert_eq!(snapshots, vec![json!({ "online": ["bob"] })]);
}

#[test]
fn the_presence_snapshot_goes_to_the_connecting_socket_only() {
    let mut w = World::new();
    let first = w.connect("alice");
    w.group(&first, &["bob"]);
    w.connect("bob");
    let before = w.received(&first, ServerEvent::PresenceSnapshot).len();
    let second = w.connect("alice");
    assert_eq!(w.received(&first, ServerEvent::PresenceSnapshot).len(), before);
    assert_eq!(w.received(&second, ServerEvent::PresenceSnapshot).len(), 1);
    assert!(w
        .emits(ServerEvent::PresenceSnapshot)
        .iter()
        .any(|(to, _, _)| *to == Target::Socket(second.clone())));
}

#[test]
fn a_user_without_contacts_gets_an_empty_presence_snapshot() {
    let mut w = World::new();
    let alice = w.connect("alice");
    assert_eq!(w.received(&alice, ServerEvent::PresenceSnapshot), vec![json!({ "online": [] })]);
}

#[test]
fn the_presence_snapshot_comes_right_after_the_connection_is_accepted() {
    let mut w = World::new();
    let alice = w.connect("alice");
    w.group(&alice, &["bob"]);
    w.connect("bob");
    let mark = w.mark();
    let fresh = w.connect("alice");
    let effects = w.since(mark);
    let accepted = effects.iter().position(|e| matches!(e, Effect::AcceptConnection { socket, .. } if *socket == fresh)).unwrap();
    let snapshot = effects
        .iter()
        .position(|e| matches!(e, Effect::Emit { event: ServerEvent::PresenceSnapshot, to: Target::Socket(s), .. } if *s == fresh))
        .unwrap();
    assert!(accepted < snapshot);
}

#[test]
fn a_contact_that_disconnected_is_not_in_the_snapshot() {
    let mut w = World::new();
    let alice = w.connect("alice");
    w.group(&alice, &["bob"]);
    let bob = w.connect("bob");
    w.disconnect(&bob);
    let fresh = w.connect("alice");
    assert_eq!(w.received(&fresh, ServerEvent::PresenceSnapshot), vec![json!({ "online": [] })]);
}

#[test]
fn a_token_expired_within_the_leeway_is_accepted() {
    let mut w = World::new();
    let token = sign_token(SECRET, &UserId::from("alice"), false, Millis(w.now.0 - 20_000));
    let socket = w.connect_handshake("alice", handshake_with_token(&token));
    assert!(w.accepted(&socket));
}

#[test]
fn a_token_expired_beyond_30_seconds_is_refused() {
    let mut w = World::new();
    let token = sign_token(SECRET, &UserId::from("alice"), false, Millis(w.now.0 - 31_000));
    let socket = w.connect_handshake("alice", handshake_with_token(&token));
    assert_eq!(w.rejection(&socket).map(|(code, _)| code), Some("UNAUTHORIZED"));
}

#[test]
fn a_bearer_prefixed_auth_token_is_accepted() {
    let mut w = World::new();
    let bearer = w.bearer("alice");
    let socket = w.connect_handshake("alice", handshake_with_token(&bearer));
    assert!(w.accepted(&socket));
}

#[test]
fn a_token_in_the_authorization_header_is_accepted() {
    let mut w = World::new();
    let handshake = Handshake { authorization_header: Some(w.bearer("alice")), ..Default::default() };
    let socket = w.connect_handshake("alice", handshake);
    assert!(w.accepted(&socket));
}

#[test]
fn a_token_in_the_query_is_accepted() {
    let mut w = World::new();
    let handshake = Handshake { query_token: Some(w.token("alice")), ..Default::default() };
    let socket = w.connect_handshake("alice", handshake);
    assert!(w.accepted(&socket));
}

#[test]
fn the_auth_token_comes_before_the_header_and_the_query() {
    let mut w = World::new();
    let handshake = Handshake {
        auth: Some(json!({ "token": w.token("alice") })),
        authorization_header: Some(w.bearer("bob")),
        query_token: Some(w.token("carol")),
    };
    let socket = w.connect_handshake("x", handshake);
    assert!(w.log.iter().any(|e| matches!(e, Effect::AcceptConnection { socket: s, user } if *s == socket && user.as_str() == "alice")));
}

#[test]
fn a_token_signed_with_another_algorithm_is_refused() {
    use base64::Engine as _;
    let b64 = |v: serde_json::Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let mut w = World::new();
    let claims = json!({ "sub": "alice", "exp": w.now.0 / 1000 + 3600 });
    let none = format!("{}.{}.", b64(json!({ "alg": "none", "typ": "JWT" })), b64(claims));
    let socket = w.connect_handshake("alice", handshake_with_token(&none));
    assert_eq!(w.rejection(&socket).map(|(code, _)| code), Some("UNAUTHORIZED"));
}

#[test]
fn handshakes_arriving_together_still_stop_at_max_sockets_per_user() {
    let mut w = World::new();
    w.hold_storage();
    let sockets: Vec<SocketId> = (0..7).map(|_| w.connect_with("alice", json!({})).0).collect();
    w.release_storage();
    let accepted = sockets.iter().filter(|s| w.accepted(s)).count();
    let refused: Vec<_> = sockets.iter().filter_map(|s| w.rejection(s)).map(|(code, _)| code).collect();
    assert_eq!(accepted, 5);
    assert_eq!(refused, vec!["TOO_MANY_CONNECTIONS", "TOO_MANY_CONNECTIONS"]);
}

#[test]
fn a_removed_member_is_not_auto_joined() {
    let mut w = World::new();
    let alice = w.connect("alice");
    let chat = w.group(&alice, &["bob"]);
    let bob = w.connect("bob");
    let (status, _) = w.http("alice", chat_core::command::HttpRequest::RemoveMember { chat_id: chat.clone(), user_id: "bob".into() });
    assert_eq!(status, 200);
    let later = w.connect_auto("bob");
    assert!(!w.in_room(&chat_room(&chat)).contains(&later));
    let _ = bob;
}

#[test]
fn a_socket_that_disconnects_before_it_is_accepted_is_never_counted() {
    let mut w = World::new();
    w.hold_storage();
    let (early, _) = w.connect_with("alice", json!({}));
    w.disconnect(&early);
    w.release_storage();
    for _ in 0..5 {
        w.connect("alice");
    }
}

#[test]
fn an_auto_joining_socket_is_let_in_only_once_it_is_in_every_chat_room() {
    let mut w = World::new();
    let alice = w.connect("alice");
    let chat = w.group(&alice, &["bob"]);
    w.restart();
    w.hold_storage();
    let (bob, accepted) = w.connect_with("bob", json!({ "autoJoin": true }));
    assert!(!accepted, "let in before its chat rooms were joined");
    w.release_storage();
    let joined_at = w.log.iter().position(|e| matches!(e, Effect::JoinRoom { socket, room } if *socket == bob && *room == chat_room(&chat)));
    let accepted_at = w.log.iter().position(|e| matches!(e, Effect::AcceptConnection { socket, .. } if *socket == bob));
    assert!(joined_at.is_some() && accepted_at.is_some(), "{:?}", w.log);
    assert!(joined_at < accepted_at);
}
