//! Reading URL query strings without trusting them.

/// The first value of `name` in a query string, percent-decoded (`+` is a space).
/// Malformed escapes are kept as they are. Escapes that decode to invalid UTF-8 are
/// replaced (U+FFFD): the first `name` decides even then, so `token=%ff&token=<jwt>` is
/// a refused token, not the second one.
pub fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (decode(key) == name).then(|| decode(value))
    })
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(high), Some(low)) => {
                    out.push(high << 4 | low);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(byte: u8) -> Option<u8> {
    (byte as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_parameter_among_others() {
        assert_eq!(query_param("EIO=4&transport=polling&token=abc", "token").as_deref(), Some("abc"));
    }

    #[test]
    fn decodes_percent_escapes_and_plus() {
        assert_eq!(query_param("token=Bearer%20a.b.c", "token").as_deref(), Some("Bearer a.b.c"));
        assert_eq!(query_param("q=a+b", "q").as_deref(), Some("a b"));
    }

    #[test]
    fn keeps_malformed_escapes_and_replaces_bad_utf8() {
        assert_eq!(query_param("token=%zz%", "token").as_deref(), Some("%zz%"));
        assert_eq!(query_param("token=%ff", "token").as_deref(), Some("\u{fffd}"));
    }

    #[test]
    fn the_first_occurrence_decides_even_when_it_is_not_utf8() {
        assert_eq!(query_param("token=%ff&token=a.b.c", "token").as_deref(), Some("\u{fffd}"));
        assert_eq!(query_param("token=x&token=y", "token").as_deref(), Some("x"));
    }

    #[test]
    fn absent_parameters_are_none() {
        assert_eq!(query_param("a=1", "token"), None);
        assert_eq!(query_param("", "token"), None);
    }
}
