//! Regressions: the runs that found core bugs, shrunk, replayed as scripts. Each fails
//! (with the violation named) when its fix is reverted, and passes now.

use chat_harness::action::Action::*;
use chat_harness::action::{Action, Fault, Step};
use chat_harness::config::SimConfig;
use chat_harness::runner::simulate;
use chat_harness::trace::Trace;

fn step(action: Action, salt: u64) -> Step {
    Step { action, salt }
}

/// The script runs in the world of `seed` and keeps every invariant.
fn passes(seed: u64, script: &[Step]) {
    let cfg = SimConfig::from_seed(seed, script.len());
    let outcome = simulate(&cfg, Some(script), Trace::off());
    assert!(outcome.violation.is_none(), "seed {seed}: {:?}", outcome.violation);
}

/// A commit carrying [message, cursor] announced the message's `inbox:update` with the
/// reader's old cursor: an unread count storage never had.
/// Without the fix: [unread-count].
#[test]
fn unread_counts_of_a_commit_count_the_cursor_it_moves() {
    passes(
        2,
        &[
            step(Connect { user: 4, device: 0, auto_join: true }, 0xa8bb6259ac16d286),
            step(AddMember { actor: 4, chat: 121, member: 1 }, 0x2ba5ad71fca64d89),
            step(Deliver { pick: 1, fault: Fault::None }, 0x3becf78ed22b02e),
            step(Send { user: 4, device: 0, chat: 142, body: 34348, image: false, client_id: 151603082535479294538036889590686967858, ack: true }, 0x9196cba41f240015),
            step(Send { user: 4, device: 0, chat: 10, body: 22683, image: false, client_id: 313271305392542118177744679853839963345, ack: true }, 0x55a14d9974c188fe),
            step(Connect { user: 1, device: 1, auto_join: true }, 0xc77d4fa9a71cb583),
            step(Send { user: 1, device: 1, chat: 11, body: 16131, image: false, client_id: 240985351218464378690244170125313664733, ack: true }, 0x927bfabaa2725187),
            step(Read { user: 1, device: 1, chat: 69, pick: 458 }, 0x510fe23c2528878b),
        ],
    );
}

/// A disconnect queued behind a reload that failed was dropped: the dead socket stayed in
/// the chat room for good (the partition never went idle).
/// Without the fix: [partitions-leak].
#[test]
fn a_socket_gone_while_its_chat_fails_to_reload_leaves_the_room() {
    passes(
        690,
        &[
            step(Connect { user: 1, device: 0, auto_join: true }, 0x7ae8c4ecee55dee3),
            step(Deliver { pick: 1, fault: Fault::None }, 0x69f78764a84b0487),
            step(Send { user: 1, device: 0, chat: 141, body: 43233, image: false, client_id: 76901960037540766007535492107885423462, ack: true }, 0xd3aaf368b2f521a),
            step(Send { user: 1, device: 0, chat: 150, body: 56924, image: false, client_id: 324200721131057345525194477864631732163, ack: true }, 0x1b4bc01a84fc9969),
            step(Send { user: 1, device: 0, chat: 68, body: 3916, image: true, client_id: 29775349802277591081373227010689386314, ack: true }, 0x926b3628f4b75fa5),
            step(Send { user: 1, device: 0, chat: 188, body: 21426, image: false, client_id: 77577449308168970860417358713323028637, ack: true }, 0x4f3c44448609ca30),
            step(Send { user: 1, device: 0, chat: 150, body: 58193, image: false, client_id: 119187340776516614459171383299007342440, ack: true }, 0x5f4aee42211ec30d),
            step(Deliver { pick: 4, fault: Fault::None }, 0xe865ae7a8d7ef5b9),
            step(Deliver { pick: 2, fault: Fault::None }, 0xc1fade221b619eaa),
            step(Deliver { pick: 0, fault: Fault::Fail }, 0x6e522083850b95d5),
            step(Connect { user: 1, device: 0, auto_join: true }, 0xdd8c9ca4a23a3c01),
            step(Deliver { pick: 1, fault: Fault::Fail }, 0xc9514822aa2e2fa7),
            step(Deliver { pick: 1, fault: Fault::Fail }, 0xa606203f46d57b32),
        ],
    );
}

/// A `room:join` of a socket already in the room, failing on a reload, told the user
/// partition the socket had left: its later disconnect never reached the chat.
/// Without the fix: [typing-not-stopped-on-leave].
#[test]
fn a_failed_second_join_keeps_the_socket_in_the_room_it_is_in() {
    passes(
        362,
        &[
            step(AddMember { actor: 0, chat: 96, member: 2 }, 0xc8da168986e28b92),
            step(Connect { user: 2, device: 2, auto_join: true }, 0x2391016ce73bdd76),
            step(Deliver { pick: 0, fault: Fault::None }, 0x20aa685eee0a58d2),
            step(Send { user: 2, device: 2, chat: 184, body: 95360, image: false, client_id: 218439152476605245275319905165833823049, ack: true }, 0x88b2312f959083d),
            step(Deliver { pick: 0, fault: Fault::None }, 0x2e8844b32201c1ab),
            step(Send { user: 2, device: 2, chat: 70, body: 12644, image: false, client_id: 290163023580584537505707222959488343717, ack: true }, 0x9f1df9a9c81d3a41),
            step(Send { user: 2, device: 2, chat: 214, body: 33007, image: false, client_id: 178474549506715466635354340247896644350, ack: true }, 0x84d34595fe643832),
            step(Sync { user: 2, device: 2, chat: 193, after: 278, limit: 0 }, 0x99e282d89e3ff68a),
            step(Join { user: 2, device: 2, chat: 76, any: false }, 0xa4d4f4209880ca6f),
            step(Deliver { pick: 3, fault: Fault::None }, 0xf4dc403175b06b4e),
            step(Deliver { pick: 0, fault: Fault::Fail }, 0xac5bfc33c895288),
            step(Deliver { pick: 2, fault: Fault::None }, 0x81479db352e418),
            step(Deliver { pick: 0, fault: Fault::None }, 0x7e0eede342180392),
            step(Disconnect { user: 2, device: 2 }, 0xf119617e6dbab592),
            step(Connect { user: 2, device: 0, auto_join: true }, 0xf473c638064c9a84),
            step(Deliver { pick: 0, fault: Fault::None }, 0x2c4d98d9b989f1ea),
            step(Typing { user: 2, device: 0, chat: 60, start: true, ack: false }, 0xa4450d63c44c91a2),
            step(Leave { user: 2, device: 0, chat: 98 }, 0xb36fd225d9daff9b),
        ],
    );
}

/// Sends of two chats completing out of `createdAt` order left an expired time stuck behind
/// a newer one in the rate window: `RATE_LIMITED` with the window not full.
/// Without the fix: [rate-limited-below-limit].
#[test]
fn sends_completing_out_of_order_leave_the_rate_window_in_time() {
    passes(
        1,
        &[
            step(Connect { user: 2, device: 1, auto_join: true }, 0xfda466fab9ff2055),
            step(Connect { user: 2, device: 0, auto_join: true }, 0x7cfa59c73fca5e79),
            step(Send { user: 2, device: 1, chat: 62, body: 11881, image: false, client_id: 94862888513135185739634480010861406683, ack: true }, 0x9540a6c1d5d3fe87),
            step(Advance { ms: 32 }, 0xc8fc70731d42d2af),
            step(Advance { ms: 75 }, 0xc8d4c92da73b57d2),
            step(Advance { ms: 150 }, 0x284061cc96de0e68),
            step(Send { user: 2, device: 1, chat: 130, body: 47387, image: false, client_id: 194315848152257593904936706583167075989, ack: true }, 0x8d6c471bf5e199e2),
            step(Advance { ms: 229 }, 0x5845a5455339d6d6),
            step(Advance { ms: 96 }, 0x3dd8c53739e42fab),
            step(Advance { ms: 285 }, 0x95d088e2ff5a75e),
            step(Deliver { pick: 1, fault: Fault::None }, 0x6dcd0a877e4843a),
            step(Advance { ms: 151 }, 0xd9d799bf593d0018),
            step(Send { user: 2, device: 0, chat: 182, body: 9185, image: false, client_id: 124169713772236699680147011485471828443, ack: true }, 0x764c42db5730f18a),
        ],
    );
}

/// A `receipt:read` resolved after its chat's reload failed was queued and never answered.
/// Without the fix: [ack-missing].
#[test]
fn a_read_resolved_after_a_failed_reload_is_answered() {
    passes(
        30146,
        &[
            step(Connect { user: 0, device: 0, auto_join: true }, 0x2595a0b61448507b),
            step(Deliver { pick: 1, fault: Fault::None }, 0x239588c9b1f9793f),
            step(RemoveMember { actor: 0, chat: 108, member: 0 }, 0xb8853252bee46a5c),
            step(CreateGroup { user: 0, device: 0, members: 2451460347 }, 0x64eb41518d152958),
            step(CreateGroup { user: 0, device: 0, members: 400444493 }, 0x7494761e0dcad576),
            step(CreateGroup { user: 0, device: 0, members: 3165228366 }, 0xc0c3c0ee368205c3),
            step(RemoveMember { actor: 0, chat: 167, member: 0 }, 0x2d899910d34b4b83),
            step(CreateDm { user: 0, device: 0, other: 2 }, 0x6cf862a529c00b6),
            step(CreateGroup { user: 0, device: 0, members: 2027348349 }, 0x478908fda4fb84e9),
            step(Deliver { pick: 0, fault: Fault::None }, 0x8541e0b2dcb0181f),
            step(Connect { user: 0, device: 0, auto_join: true }, 0x416dcf16f366dfa2),
            step(Send { user: 0, device: 0, chat: 175, body: 21818, image: true, client_id: 328728298153828428669727274708525700763, ack: true }, 0x2cef5e78109b729),
            step(Deliver { pick: 1, fault: Fault::None }, 0x5a4885396acc240a),
            step(Deliver { pick: 0, fault: Fault::None }, 0xb4d3dbf40ac2c9d0),
            step(CreateGroup { user: 0, device: 0, members: 1048176141 }, 0xe68fde73c4f49f24),
            step(Crash, 0xbac3ddcad6c5bf8f),
            step(Connect { user: 0, device: 0, auto_join: true }, 0x47f62b2f274c92cc),
            step(Deliver { pick: 1, fault: Fault::None }, 0x3083859a887ab84f),
            step(Deliver { pick: 3, fault: Fault::None }, 0x74b6ce96e7958ec0),
            step(CreateGroup { user: 0, device: 0, members: 3914036392 }, 0xf38237d161722272),
            step(CreateGroup { user: 0, device: 0, members: 3276271004 }, 0x502ecb86eb577cbc),
            step(Read { user: 0, device: 0, chat: 87, pick: 333 }, 0x7d5bb4c00b52c74e),
            step(Read { user: 0, device: 0, chat: 108, pick: 280 }, 0xd74c282da768b454),
        ],
    );
}

/// Members changed while a user partition loaded were replayed after the load in order,
/// so a queued connect announced presence from an older view: to a user who no longer
/// shared a chat. Without the fix: [presence-to-stranger] (the run needs a long history,
/// so the whole seed is the regression).
#[test]
fn members_changed_while_loading_count_before_queued_connects() {
    let outcome = simulate(&SimConfig::from_seed(8547, 2_000), None, Trace::off());
    assert!(outcome.violation.is_none(), "{:?}", outcome.violation);
}
