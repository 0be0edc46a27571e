//! Typed identifiers and the injected id source.
//!
//! The core never draws randomness itself: the host hands it an [`IdSource`], so a
//! simulation seeded with the same value produces the same ids.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Arc<str>);

        impl $name {
            pub fn new(value: impl Into<Arc<str>>) -> Self {
                Self(value.into())
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), &*self.0)
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                Self::new(value)
            }
        }
    };
}

string_id!(
    /// A chat (DM or group); server-made UUIDv7.
    ChatId
);
string_id!(
    /// A user, as named by the `sub` claim of their token.
    UserId
);
string_id!(
    /// A stored message; server-made UUIDv7 (`serverId` on the wire).
    MessageId
);
string_id!(
    /// The client's UUID for a message, the idempotency key together with the sender.
    ClientId
);
string_id!(
    /// One socket of one device; made by the host (Socket.IO's socket id).
    SocketId
);
string_id!(
    /// A UUID that ties an error answer to its log line.
    CorrelationId
);

/// Position of a message within its chat: 1, 2, 3, … with no gaps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Seq(pub u64);

impl Seq {
    pub const ZERO: Seq = Seq(0);
    pub fn next(self) -> Seq {
        Seq(self.0 + 1)
    }
}

impl fmt::Display for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Wall-clock time as milliseconds since the Unix epoch, always handed in by the host.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Millis(pub u64);

impl Millis {
    pub fn plus(self, ms: u64) -> Millis {
        Millis(self.0.saturating_add(ms))
    }
    pub fn since(self, earlier: Millis) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

/// The host's handle for an acknowledgement callback; echoed back untouched.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AckId(pub u64);

/// The host's handle for an HTTP request awaiting its response.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RequestId(pub u64);

/// Names one storage operation; its result comes back with the same id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct OpId(pub u64);

/// Randomness for ids, injected by the host (a CSPRNG natively, a seeded PRNG in simulation).
pub trait IdSource {
    /// 128 fresh random bits.
    fn random_u128(&mut self) -> u128;
}

/// Makes the UUIDs the contract asks for from the injected randomness.
pub struct IdMaker {
    source: Box<dyn IdSource + Send>,
    last_v7: (u64, u128),
}

impl IdMaker {
    pub fn new(source: Box<dyn IdSource + Send>) -> Self {
        Self { source, last_v7: (0, 0) }
    }

    /// A random (version 4) UUID, for correlation ids.
    pub fn uuid_v4(&mut self) -> String {
        let mut bits = self.source.random_u128();
        bits &= !(0xF_u128 << 76);
        bits |= 0x4_u128 << 76;
        bits &= !(0x3_u128 << 62);
        bits |= 0x2_u128 << 62;
        format_uuid(bits)
    }

    /// A time-ordered (version 7) UUID. Ids made in the same millisecond still sort in
    /// the order they were made: the random part counts up from the previous one.
    pub fn uuid_v7(&mut self, now: Millis) -> String {
        let ts = now.0 & 0xFFFF_FFFF_FFFF;
        // 74 bits of randomness: 12 in rand_a and 62 in rand_b.
        let mask: u128 = (1u128 << 74) - 1;
        let random = if ts <= self.last_v7.0 && self.last_v7.1 < mask {
            self.last_v7.1 + 1
        } else {
            self.source.random_u128() & mask >> 1
        };
        let ts = ts.max(self.last_v7.0);
        self.last_v7 = (ts, random);
        let rand_a = (random >> 62) & 0xFFF;
        let rand_b = random & ((1u128 << 62) - 1);
        let bits = ((ts as u128) << 80) | (0x7_u128 << 76) | (rand_a << 64) | (0x2_u128 << 62) | rand_b;
        format_uuid(bits)
    }

    pub fn correlation_id(&mut self) -> CorrelationId {
        CorrelationId::new(self.uuid_v4())
    }
}

/// The 8-4-4-4-12 lowercase form, written digit by digit: every message gets an id, and
/// two `format!`s were 1% of a DM send's CPU.
fn format_uuid(bits: u128) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(36);
    for nibble in 0..32 {
        if matches!(nibble, 8 | 12 | 16 | 20) {
            text.push('-');
        }
        let digit = (bits >> (124 - 4 * nibble)) & 0xF;
        text.push(char::from(DIGITS[digit as usize]));
    }
    text
}

/// True for the canonical 8-4-4-4-12 hexadecimal UUID form (any version).
pub fn is_uuid(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == 36
        && bytes.iter().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => *b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Counter(u128);
    impl IdSource for Counter {
        fn random_u128(&mut self) -> u128 {
            self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            self.0
        }
    }

    #[test]
    fn v4_ids_are_uuids_of_version_4() {
        let mut ids = IdMaker::new(Box::new(Counter(1)));
        let id = ids.uuid_v4();
        assert!(is_uuid(&id), "{id}");
        assert_eq!(&id[14..15], "4");
        assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"));
    }

    #[test]
    fn v7_ids_carry_the_time_and_sort_in_creation_order() {
        let mut ids = IdMaker::new(Box::new(Counter(7)));
        let made: Vec<String> = (0..50).map(|i| ids.uuid_v7(Millis(1_700_000_000_000 + i / 10))).collect();
        for id in &made {
            assert!(is_uuid(id), "{id}");
            assert_eq!(&id[14..15], "7");
        }
        assert!(made.windows(2).all(|w| w[0] < w[1]), "{made:?}");
        assert!(made[0].starts_with("018bcfe5"), "{}", made[0]);
    }

    #[test]
    fn uuids_are_written_in_the_canonical_lowercase_form() {
        assert_eq!(format_uuid(0x0123_4567_89ab_cdef_fedc_ba98_7654_3210), "01234567-89ab-cdef-fedc-ba9876543210");
        assert_eq!(format_uuid(0), "00000000-0000-0000-0000-000000000000");
        assert_eq!(format_uuid(u128::MAX), "ffffffff-ffff-ffff-ffff-ffffffffffff");
    }

    #[test]
    fn is_uuid_rejects_other_shapes() {
        assert!(!is_uuid("not-a-uuid"));
        assert!(!is_uuid("0189c6f0-0000-7000-8000-00000000000g"));
        assert!(is_uuid("0189c6f0-0000-7000-8000-000000000000"));
    }
}
