//! Text and number conversions between the core's values and database columns.
//!
//! PostgreSQL `TEXT` cannot hold U+0000, yet the contract stores bodies "exactly as sent"
//! and ids, titles and bodies may all contain it. Every text value therefore goes through
//! an injective escaping that is the identity on text without U+0000 and U+0001 (that is,
//! on all real data): U+0000 → U+0001 '0', U+0001 → U+0001 '1'. Both backends use it, so
//! one database file or schema means the same on either. Equality (keys, uniqueness) is
//! preserved because the mapping is injective, and so is byte order (it is an
//! order-preserving prefix code); still, the store sorts in Rust wherever the reference's
//! answer has an order, so no database collation matters.

use super::StoreError;

const ESCAPE: char = '\u{1}';

/// The stored form of `text`.
pub(crate) fn enc(text: &str) -> String {
    if !text.contains(['\0', ESCAPE]) {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\0' => out.push_str("\u{1}0"),
            ESCAPE => out.push_str("\u{1}1"),
            c => out.push(c),
        }
    }
    out
}

/// The text whose stored form is `stored`.
pub(crate) fn dec(stored: String) -> Result<String, StoreError> {
    if !stored.contains(ESCAPE) {
        return Ok(stored);
    }
    let mut out = String::with_capacity(stored.len());
    let mut chars = stored.chars();
    while let Some(c) = chars.next() {
        if c != ESCAPE {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('0') => out.push('\0'),
            Some('1') => out.push(ESCAPE),
            _ => return Err(StoreError::Corrupt(format!("bad escape in stored text {stored:?}"))),
        }
    }
    Ok(out)
}

/// A core `u64` (seq, millis, count) as a BIGINT.
pub(crate) fn int(value: u64, what: &str) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::OutOfRange(format!("{what} {value} does not fit a BIGINT")))
}

/// A `u64` bound used only for comparison: values beyond BIGINT compare like BIGINT's max.
pub(crate) fn int_saturating(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// A BIGINT column back as the core's `u64`.
pub(crate) fn uint(value: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt(format!("negative {what} {value}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_is_identity_on_plain_text_and_round_trips_the_rest() {
        for plain in ["", "hello", "line\nnext\ttab 🙂", "\\0 and \\1"] {
            assert_eq!(enc(plain), plain);
        }
        for text in ["\0", "\u{1}", "\u{1}0", "a\0b\u{1}c\0", "\0\0\u{1}\u{1}0"] {
            let stored = enc(text);
            assert!(!stored.contains('\0'), "{stored:?}");
            assert_eq!(dec(stored).unwrap(), text);
        }
        // Injective: "\0" and "\u{1}0" (and so on) stay apart.
        assert_ne!(enc("\0"), enc("\u{1}0"));
        assert!(dec("\u{1}x".into()).is_err());
        assert!(dec("\u{1}".into()).is_err());
    }
}
