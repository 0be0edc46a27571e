//! JWT verification and handshake token selection (`chat_core::auth`).
//!
//! The first byte picks a mode, the rest is its input:
//! - `0`: a raw credential, as a bare token, an HTTP `Authorization` header and a query
//!   parameter. Random bytes never carry a valid HMAC, so nothing may be accepted.
//! - `1`: a handshake: `auth` JSON, `Authorization` header and `token` query parameter,
//!   one per line. Whatever the verdict, it must be the verdict of the first present
//!   source alone (PROTOCOL.md §1: "the first source present decides alone").
//! - `2`: a token's header JSON and claims JSON (one line each), signed here with the
//!   server's secret, so the fuzzer reaches claim checking. An accepted token must say
//!   `alg: HS256`, name a 1..=128-character user, and be inside `exp`/`nbf` (30 s leeway).
//!
//! Every refusal must be `UNAUTHORIZED`.

#![no_main]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chat_core::auth::{authenticate_bearer, authenticate_handshake, verify_token, Handshake};
use chat_core::command::Principal;
use chat_core::error::ChatError;
use chat_core::ids::Millis;
use hmac::{Hmac, Mac};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use sha2::Sha256;

const SECRET: &[u8] = b"fuzz-secret";
/// 2023-11-14T22:13:20Z.
const NOW: Millis = Millis(1_700_000_000_000);
const LEEWAY: u64 = 30;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    // The host hands the core strings; bytes that are not UTF-8 arrive replaced.
    let text = String::from_utf8_lossy(rest);
    match mode % 3 {
        0 => raw_credential(&text),
        1 => handshake(&text),
        _ => signed_claims(&text),
    }
});

fn raw_credential(text: &str) {
    assert_refused(verify_token(text, SECRET, NOW, LEEWAY));
    assert_refused(authenticate_bearer(Some(text), SECRET, NOW, LEEWAY));
    let query = Handshake { query_token: Some(text.to_owned()), ..Handshake::default() };
    assert_refused(authenticate_handshake(&query, SECRET, NOW, LEEWAY));
}

fn handshake(text: &str) {
    let mut lines = text.splitn(3, '\n');
    let auth = lines.next().and_then(|line| serde_json::from_str::<Value>(line).ok());
    let header = lines.next().map(str::to_owned);
    let query = lines.next().map(str::to_owned);
    let full = Handshake { auth: auth.clone(), authorization_header: header.clone(), query_token: query.clone() };
    let verdict = authenticate_handshake(&full, SECRET, NOW, LEEWAY);
    if let Err(error) = &verdict {
        assert_unauthorized(error);
    }
    let alone = match first_present_source(&full) {
        Some(Source::Auth) => Handshake { auth, ..Handshake::default() },
        Some(Source::Header) => Handshake { authorization_header: header, ..Handshake::default() },
        Some(Source::Query) => Handshake { query_token: query, ..Handshake::default() },
        None => {
            assert!(verdict.is_err(), "accepted a handshake without a token");
            return;
        }
    };
    assert_eq!(authenticate_handshake(&alone, SECRET, NOW, LEEWAY), verdict, "a later source changed the verdict");
}

enum Source {
    Auth,
    Header,
    Query,
}

/// The contract's precedence, written out independently of the core.
fn first_present_source(handshake: &Handshake) -> Option<Source> {
    let blank = |s: &str| s.trim().is_empty();
    match handshake.auth.as_ref().and_then(Value::as_object).and_then(|auth| auth.get("token")) {
        None | Some(Value::Null) => {}
        Some(Value::String(token)) if blank(token) => {}
        Some(_) => return Some(Source::Auth),
    }
    if handshake.authorization_header.as_deref().is_some_and(|h| !blank(h)) {
        return Some(Source::Header);
    }
    if handshake.query_token.as_deref().is_some_and(|q| !blank(q)) {
        return Some(Source::Query);
    }
    None
}

fn signed_claims(text: &str) {
    let (header, claims) = text.split_once('\n').unwrap_or((text, ""));
    let input = format!("{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(claims));
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET).expect("any key length");
    mac.update(input.as_bytes());
    let token = format!("{input}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()));
    match verify_token(&token, SECRET, NOW, LEEWAY) {
        Err(error) => assert_unauthorized(&error),
        Ok(principal) => check_accepted(header, claims, &principal),
    }
}

fn check_accepted(header: &str, claims: &str, principal: &Principal) {
    let header: Value = serde_json::from_str(header).expect("accepted header is JSON");
    assert_eq!(header.get("alg").and_then(Value::as_str), Some("HS256"), "accepted alg {header}");
    let claims: Value = serde_json::from_str(claims).expect("accepted claims are JSON");
    let now = NOW.0 as f64 / 1000.0;
    let exp = claims.get("exp").and_then(Value::as_f64).expect("accepted a token without a numeric exp");
    assert!(now <= exp + LEEWAY as f64, "accepted an expired token: exp {exp}");
    if let Some(nbf) = claims.get("nbf").filter(|v| !v.is_null()) {
        let nbf = nbf.as_f64().expect("accepted a non-numeric nbf");
        assert!(now + LEEWAY as f64 >= nbf, "accepted a token before its nbf {nbf}");
    }
    let user = principal.user.as_str();
    let chars = user.chars().count();
    assert!((1..=128).contains(&chars) && !user.trim().is_empty(), "accepted user id {user:?}");
    let named = ["sub", "id", "userId"].iter().find_map(|key| claims.get(*key).filter(|v| !v.is_null()));
    assert_eq!(named.and_then(Value::as_str), Some(user), "user is not the first of sub, id, userId");
    assert_eq!(principal.admin, claims.get("role").and_then(Value::as_str) == Some("admin"));
}

fn assert_refused(verdict: Result<Principal, ChatError>) {
    match verdict {
        Ok(principal) => panic!("accepted an unsigned credential as {principal:?}"),
        Err(error) => assert_unauthorized(&error),
    }
}

fn assert_unauthorized(error: &ChatError) {
    assert!(matches!(error, ChatError::Unauthorized(_)), "refusal is not UNAUTHORIZED: {error:?}");
}
