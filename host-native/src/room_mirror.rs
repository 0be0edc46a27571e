//! Which of this process's sockets are in which room, as the core's effects say.
//!
//! Every emit to a room goes to the sockets listed here; admin sockets lists each room
//! with its sockets and, when the cluster changes, it tells which chats each socket is in.
//! Both directions are kept, so that a socket leaving touches only its own rooms, not
//! every room of the process.

use chat_core::effect::Room;
use chat_core::ids::{ChatId, SocketId};
use chat_core::sorted::VecSet;
use std::collections::{BTreeMap, HashMap};

#[derive(Default)]
pub struct RoomMirror {
    /// Each room's sockets (a `user:` room has one or two: sorted `Vec`s, not B-trees).
    members: BTreeMap<Room, VecSet<SocketId>>,
    /// Each socket's rooms.
    rooms_of: HashMap<SocketId, VecSet<Room>>,
}

impl RoomMirror {
    pub fn join(&mut self, socket: SocketId, room: Room) {
        self.members.entry(room.clone()).or_default().insert(socket.clone());
        self.rooms_of.entry(socket).or_default().insert(room);
    }

    pub fn leave(&mut self, socket: &SocketId, room: &Room) {
        let Some(rooms) = self.rooms_of.get_mut(socket) else { return };
        rooms.remove(room);
        if rooms.is_empty() {
            self.rooms_of.remove(socket);
        }
        self.remove_member(room, socket);
    }

    /// A socket that is gone leaves every room it was in, and only those are touched.
    pub fn forget(&mut self, socket: &SocketId) {
        let Some(rooms) = self.rooms_of.remove(socket) else { return };
        for room in &rooms {
            self.remove_member(room, socket);
        }
    }

    /// The chats whose room `socket` is in.
    pub fn chats_of(&self, socket: &SocketId) -> Vec<ChatId> {
        let Some(rooms) = self.rooms_of.get(socket) else { return Vec::new() };
        rooms
            .iter()
            .filter_map(|room| match room {
                Room::Chat(chat) => Some(chat.clone()),
                Room::User(_) => None,
            })
            .collect()
    }

    /// The sockets in `room`.
    pub fn members(&self, room: &Room) -> &[SocketId] {
        self.members.get(room).map_or(&[], |sockets| sockets.as_slice())
    }

    /// Each room with sockets in it, in room order, with its sockets.
    pub fn rooms(&self) -> impl Iterator<Item = (&Room, &[SocketId])> {
        self.members.iter().map(|(room, sockets)| (room, sockets.as_slice()))
    }

    /// An empty room is dropped, so that rooms come and go with their chats' sockets.
    fn remove_member(&mut self, room: &Room, socket: &SocketId) {
        let Some(members) = self.members.get_mut(room) else { return };
        members.remove(socket);
        if members.is_empty() {
            self.members.remove(room);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chat_core::ids::UserId;

    fn chat(id: &str) -> Room {
        Room::Chat(ChatId::new(id))
    }

    fn socket(id: &str) -> SocketId {
        SocketId::new(id)
    }

    fn rooms(mirror: &RoomMirror) -> Vec<(Room, Vec<SocketId>)> {
        mirror.rooms().map(|(room, sockets)| (room.clone(), sockets.to_vec())).collect()
    }

    #[test]
    fn a_socket_that_is_gone_leaves_exactly_its_rooms() {
        let mut mirror = RoomMirror::default();
        let user = Room::User(UserId::new("u"));
        mirror.join(socket("a"), user.clone());
        mirror.join(socket("a"), chat("c1"));
        mirror.join(socket("a"), chat("c2"));
        mirror.join(socket("b"), user.clone());
        mirror.join(socket("b"), chat("c2"));
        mirror.join(socket("b"), chat("c3"));
        mirror.forget(&socket("a"));
        assert_eq!(
            rooms(&mirror),
            [(chat("c2"), vec![socket("b")]), (chat("c3"), vec![socket("b")]), (user, vec![socket("b")])],
            "c1 had only a, and goes with it"
        );
        assert!(mirror.chats_of(&socket("a")).is_empty());
        assert_eq!(mirror.chats_of(&socket("b")), [ChatId::new("c2"), ChatId::new("c3")]);
    }

    #[test]
    fn leaving_a_room_keeps_the_others() {
        let mut mirror = RoomMirror::default();
        mirror.join(socket("a"), chat("c1"));
        mirror.join(socket("a"), chat("c2"));
        mirror.leave(&socket("a"), &chat("c1"));
        mirror.leave(&socket("b"), &chat("c2"));
        assert_eq!(rooms(&mirror), [(chat("c2"), vec![socket("a")])]);
        mirror.leave(&socket("a"), &chat("c2"));
        assert!(rooms(&mirror).is_empty());
        assert!(mirror.rooms_of.is_empty(), "a socket in no room is not kept");
    }

    #[test]
    fn joining_twice_is_joining_once() {
        let mut mirror = RoomMirror::default();
        mirror.join(socket("a"), chat("c1"));
        mirror.join(socket("a"), chat("c1"));
        assert_eq!(rooms(&mirror), [(chat("c1"), vec![socket("a")])]);
        assert_eq!(mirror.chats_of(&socket("a")), [ChatId::new("c1")]);
    }
}
