//! Self-routing socket ids: the core's `SocketId` of an edge socket is its Engine.IO `sid`
//! (fixed length) followed by its user's id, so any object can tell from the id alone
//! which user object and which connection object a packet for that socket goes through.

use chat_core::ids::{SocketId, UserId};

/// Length of an Engine.IO `sid` made by [`make_sid`].
pub const SID_LEN: usize = 20;

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// A `sid` from 120 random bits (URL-safe base64, [`SID_LEN`] characters).
pub fn make_sid(random: u128) -> String {
    (0..SID_LEN).map(|i| ALPHABET[((random >> (6 * i)) & 63) as usize] as char).collect()
}

pub fn is_sid(text: &str) -> bool {
    text.len() == SID_LEN && text.bytes().all(|b| ALPHABET.contains(&b))
}

/// The core's id of the socket `sid` of `user`.
pub fn socket_id(sid: &str, user: &UserId) -> SocketId {
    SocketId::new(format!("{sid}{user}"))
}

/// The `sid` and user of an edge socket id.
pub fn split_socket(socket: &SocketId) -> Option<(&str, UserId)> {
    let text = socket.as_str();
    if text.len() <= SID_LEN || !text.is_char_boundary(SID_LEN) {
        return None;
    }
    let (sid, user) = text.split_at(SID_LEN);
    is_sid(sid).then(|| (sid, UserId::new(user)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_ids_carry_sid_and_user() {
        let sid = make_sid(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
        assert!(is_sid(&sid), "{sid}");
        for user in ["alice", "ü/ß:chat", "x"] {
            let socket = socket_id(&sid, &UserId::new(user));
            let (back_sid, back_user) = split_socket(&socket).unwrap();
            assert_eq!(back_sid, sid);
            assert_eq!(back_user.as_str(), user);
        }
        assert!(split_socket(&SocketId::new("short")).is_none());
        assert!(split_socket(&SocketId::new(sid.to_string())).is_none());
    }

    #[test]
    fn sids_differ_with_randomness() {
        assert_ne!(make_sid(1), make_sid(2));
        assert_eq!(make_sid(u128::MAX).len(), SID_LEN);
    }
}
