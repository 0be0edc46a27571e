//! Session and socket ids: random, URL-safe, from the operating system's random source.

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// `len` random characters of the URL-safe base64 alphabet.
fn random_id(len: usize) -> String {
    let mut bytes = vec![0u8; len];
    if getrandom::fill(&mut bytes).is_err() {
        // No OS randomness is a broken machine; guessable session ids would let anyone
        // post into another's session, so stop loudly.
        panic!("the operating system's random source failed");
    }
    bytes.iter().map(|byte| ALPHABET[usize::from(byte & 63)] as char).collect()
}

/// An Engine.IO session id (it is also the polling session's only credential).
pub fn session_id() -> String {
    random_id(20)
}

/// A Socket.IO socket id (sent to the client in the CONNECT answer).
pub fn socket_id() -> String {
    random_id(16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_url_safe_and_differ() {
        let (a, b) = (session_id(), session_id());
        assert_eq!(a.len(), 20);
        assert!(a.bytes().all(|byte| ALPHABET.contains(&byte)));
        assert_ne!(a, b);
    }
}
