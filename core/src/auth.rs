//! Handshake authentication: HS256 JWTs found in the contract's three places (§1).
//!
//! Verification is deliberately narrow: exactly three base64url segments, a header whose
//! `alg` is exactly `"HS256"`, an HMAC-SHA256 signature compared in constant time, a
//! user id in `sub` (else `id`, else `userId`), a required `exp` and an optional `nbf`,
//! both checked with a leeway of at most [`bounds::MAX_LEEWAY_SECS`]. Every failure is
//! [`ChatError::Unauthorized`] with a short reason; no input makes it panic.

use crate::command::Principal;
use crate::config::bounds;
use crate::error::ChatError;
use crate::ids::{Millis, UserId};
use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, URL_SAFE_NO_PAD};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{Map, Value};
use sha2::Sha256;

/// Longest token accepted. Anything longer is refused before any decoding.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Longest raw credential (token plus a `Bearer ` prefix and some whitespace) looked at.
const MAX_CREDENTIAL_BYTES: usize = MAX_TOKEN_BYTES + 64;

/// base64url that accepts both padded and unpadded input.
const B64_LENIENT: GeneralPurpose =
    GeneralPurpose::new(&alphabet::URL_SAFE, GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent));

type HmacSha256 = Hmac<Sha256>;

/// What the host saw of a Socket.IO handshake, untouched.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Handshake {
    /// The CONNECT packet's `auth` object, if any.
    pub auth: Option<Value>,
    /// The handshake request's `Authorization` header, if any.
    pub authorization_header: Option<String>,
    /// The handshake request's `token` query parameter, if any.
    pub query_token: Option<String>,
}

impl Handshake {
    /// `auth.autoJoin === true`.
    pub fn auto_join(&self) -> bool {
        self.auth.as_ref().and_then(|a| a.get("autoJoin")).and_then(Value::as_bool) == Some(true)
    }
}

/// Checks a socket handshake's token, taken from the first place that has one.
///
/// Precedence (PROTOCOL.md §1), first present source wins:
/// 1. `auth.token` of the CONNECT packet, as `"<jwt>"` or `"Bearer <jwt>"`;
/// 2. the handshake request's `Authorization: Bearer <jwt>` header;
/// 3. the `token` query parameter (`"<jwt>"`; a `Bearer ` prefix is tolerated).
///
/// A source is *absent* when it is missing, JSON `null` (for `auth.token`), or a string
/// that is empty or only whitespace. Once a source is present it alone decides: if its
/// token is invalid the handshake is refused, and later sources are **not** tried (so a
/// stale token in `auth` cannot be rescued by, nor mask, another one). `auth.token`
/// present but not a string, and an `Authorization` header with another scheme than
/// `Bearer`, are refusals too.
pub fn authenticate_handshake(handshake: &Handshake, secret: &[u8], now: Millis, leeway_secs: u64) -> Result<Principal, ChatError> {
    let auth_token = handshake.auth.as_ref().and_then(|auth| auth.as_object()).and_then(|auth| auth.get("token"));
    match auth_token {
        None | Some(Value::Null) => {}
        Some(Value::String(raw)) if is_blank(raw) => {}
        Some(Value::String(raw)) => {
            let token = strip_optional_bearer(raw)?;
            return verify_token(token, secret, now, leeway_secs);
        }
        Some(_) => return Err(ChatError::unauthorized("auth.token must be a string")),
    }
    if let Some(header) = handshake.authorization_header.as_deref().filter(|h| !is_blank(h)) {
        let token = strip_required_bearer(header)?;
        return verify_token(token, secret, now, leeway_secs);
    }
    if let Some(raw) = handshake.query_token.as_deref().filter(|q| !is_blank(q)) {
        let token = strip_optional_bearer(raw)?;
        return verify_token(token, secret, now, leeway_secs);
    }
    Err(ChatError::unauthorized("missing token"))
}

/// Checks an HTTP request's `Authorization: Bearer` header (scheme case-insensitive).
pub fn authenticate_bearer(header: Option<&str>, secret: &[u8], now: Millis, leeway_secs: u64) -> Result<Principal, ChatError> {
    match header.filter(|h| !is_blank(h)) {
        None => Err(ChatError::unauthorized("missing token")),
        Some(header) => verify_token(strip_required_bearer(header)?, secret, now, leeway_secs),
    }
}

/// Signs an HS256 token for `user`, valid until `expires_at` (for `chat-server token` and tests).
///
/// Claims are `sub`, `exp` (whole seconds, rounded down) and `role: "admin"` when `admin`.
pub fn sign_token(secret: &[u8], user: &UserId, admin: bool, expires_at: Millis) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let mut claims = Map::new();
    claims.insert("sub".into(), Value::from(user.as_str()));
    claims.insert("exp".into(), Value::from(expires_at.0 / 1000));
    if admin {
        claims.insert("role".into(), Value::from("admin"));
    }
    let payload = URL_SAFE_NO_PAD.encode(Value::Object(claims).to_string());
    let signing_input = format!("{header}.{payload}");
    let mut mac = new_mac(secret);
    mac.update(signing_input.as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{signing_input}.{signature}")
}

/// Verifies one bare JWT (no `Bearer ` prefix) and returns who it names.
///
/// `now` is compared with millisecond precision: the token is expired when
/// `now > exp + leeway` and not yet valid when `now + leeway < nbf`, where
/// `leeway = min(leeway_secs, 30)`. An empty `secret` refuses every token.
pub fn verify_token(token: &str, secret: &[u8], now: Millis, leeway_secs: u64) -> Result<Principal, ChatError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(ChatError::unauthorized("token too long"));
    }
    if secret.is_empty() {
        return Err(ChatError::unauthorized("token secret not configured"));
    }
    let mut parts = token.split('.');
    let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed());
    };
    if header_b64.is_empty() || payload_b64.is_empty() {
        return Err(malformed());
    }

    let header = decode_json_object(header_b64)?;
    match header.get("alg") {
        Some(Value::String(alg)) if alg == "HS256" => {}
        _ => return Err(ChatError::unauthorized("unsupported token algorithm")),
    }

    let signature = B64_LENIENT.decode(signature_b64).map_err(|_| malformed())?;
    let signed_len = header_b64.len() + 1 + payload_b64.len();
    let mut mac = new_mac(secret);
    mac.update(&token.as_bytes()[..signed_len]);
    mac.verify_slice(&signature).map_err(|_| ChatError::unauthorized("invalid token signature"))?;

    let claims = decode_json_object(payload_b64)?;
    let user = user_claim(&claims)?;

    let leeway = leeway_secs.min(bounds::MAX_LEEWAY_SECS) as f64;
    let now_secs = now.0 as f64 / 1000.0;
    let exp = match claims.get("exp") {
        None | Some(Value::Null) => return Err(ChatError::unauthorized("token has no exp")),
        Some(value) => value.as_f64().ok_or_else(|| ChatError::unauthorized("token exp must be a number"))?,
    };
    if now_secs > exp + leeway {
        return Err(ChatError::unauthorized("token expired"));
    }
    match claims.get("nbf") {
        None | Some(Value::Null) => {}
        Some(value) => {
            let nbf = value.as_f64().ok_or_else(|| ChatError::unauthorized("token nbf must be a number"))?;
            if now_secs + leeway < nbf {
                return Err(ChatError::unauthorized("token not yet valid"));
            }
        }
    }

    let admin = claims.get("role").and_then(Value::as_str) == Some("admin");
    Ok(Principal { user, admin })
}

fn new_mac(secret: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length; this cannot fail.
    <HmacSha256 as Mac>::new_from_slice(secret).expect("HMAC accepts keys of any length")
}

fn malformed() -> ChatError {
    ChatError::unauthorized("malformed token")
}

fn is_blank(text: &str) -> bool {
    text.trim().is_empty()
}

fn decode_json_object(segment: &str) -> Result<Map<String, Value>, ChatError> {
    let bytes = B64_LENIENT.decode(segment).map_err(|_| malformed())?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(malformed()),
    }
}

/// The user id: `sub`, else `id`, else `userId` (the first one present and not `null`).
fn user_claim(claims: &Map<String, Value>) -> Result<UserId, ChatError> {
    let value = ["sub", "id", "userId"]
        .iter()
        .find_map(|key| claims.get(*key).filter(|v| !v.is_null()))
        .ok_or_else(|| ChatError::unauthorized("token has no user id"))?;
    let Value::String(user) = value else {
        return Err(ChatError::unauthorized("token user id must be a string"));
    };
    let chars = user.chars().take(bounds::MAX_USER_ID_CHARS + 1).count();
    if chars == 0 || chars > bounds::MAX_USER_ID_CHARS || is_blank(user) {
        return Err(ChatError::unauthorized("token user id must be 1 to 128 characters"));
    }
    Ok(UserId::new(user.as_str()))
}

/// `"<jwt>"` or `"Bearer <jwt>"` (scheme case-insensitive) → the jwt.
fn strip_optional_bearer(raw: &str) -> Result<&str, ChatError> {
    if raw.len() > MAX_CREDENTIAL_BYTES {
        return Err(ChatError::unauthorized("token too long"));
    }
    let raw = raw.trim();
    Ok(split_bearer(raw).unwrap_or(raw))
}

/// `"Bearer <jwt>"` (scheme case-insensitive) → the jwt; any other scheme is refused.
fn strip_required_bearer(raw: &str) -> Result<&str, ChatError> {
    if raw.len() > MAX_CREDENTIAL_BYTES {
        return Err(ChatError::unauthorized("token too long"));
    }
    split_bearer(raw.trim()).ok_or_else(|| ChatError::unauthorized("expected a Bearer token"))
}

fn split_bearer(raw: &str) -> Option<&str> {
    let (scheme, rest) = raw.split_once(|c: char| c.is_ascii_whitespace())?;
    let token = rest.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SECRET: &[u8] = b"test-secret";
    /// 2023-11-14T22:13:20Z.
    const NOW: Millis = Millis(1_700_000_000_000);
    const NOW_SECS: i64 = 1_700_000_000;

    fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// A token made by hand: any header, any claims, signed with `secret`.
    fn craft(header: &Value, claims: &Value, secret: &[u8]) -> String {
        let input = format!("{}.{}", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()));
        let mut mac = HmacSha256::new_from_slice(secret).unwrap();
        mac.update(input.as_bytes());
        format!("{input}.{}", b64(&mac.finalize().into_bytes()))
    }

    fn hs256() -> Value {
        json!({"alg": "HS256", "typ": "JWT"})
    }

    fn token_for(user: &str) -> String {
        craft(&hs256(), &json!({"sub": user, "exp": NOW_SECS + 3600}), SECRET)
    }

    fn with_claims(claims: Value) -> String {
        craft(&hs256(), &claims, SECRET)
    }

    fn verify(token: &str) -> Result<Principal, ChatError> {
        verify_token(token, SECRET, NOW, 30)
    }

    fn user_of(result: Result<Principal, ChatError>) -> String {
        result.expect("accepted").user.as_str().to_owned()
    }

    fn assert_unauthorized(result: Result<Principal, ChatError>) {
        match result {
            Err(ChatError::Unauthorized(reason)) => assert!(!reason.is_empty()),
            other => panic!("expected UNAUTHORIZED, got {other:?}"),
        }
    }

    fn handshake(auth: Option<Value>, header: Option<&str>, query: Option<&str>) -> Handshake {
        Handshake { auth, authorization_header: header.map(str::to_owned), query_token: query.map(str::to_owned) }
    }

    fn shake(h: &Handshake) -> Result<Principal, ChatError> {
        authenticate_handshake(h, SECRET, NOW, 30)
    }

    // --- where the token comes from -------------------------------------------------

    #[test]
    fn handshake_accepts_token_in_auth_object() {
        let h = handshake(Some(json!({"token": token_for("alice")})), None, None);
        assert_eq!(user_of(shake(&h)), "alice");
    }

    #[test]
    fn handshake_accepts_token_in_authorization_header() {
        let h = handshake(None, Some(&format!("Bearer {}", token_for("alice"))), None);
        assert_eq!(user_of(shake(&h)), "alice");
    }

    #[test]
    fn handshake_accepts_token_in_query_parameter() {
        let h = handshake(None, None, Some(&token_for("alice")));
        assert_eq!(user_of(shake(&h)), "alice");
    }

    #[test]
    fn handshake_accepts_bearer_prefix_in_auth_token() {
        let h = handshake(Some(json!({"token": format!("Bearer {}", token_for("alice"))})), None, None);
        assert_eq!(user_of(shake(&h)), "alice");
    }

    #[test]
    fn handshake_accepts_lowercase_bearer_scheme_in_header() {
        let h = handshake(None, Some(&format!("bearer  {}", token_for("alice"))), None);
        assert_eq!(user_of(shake(&h)), "alice");
    }

    #[test]
    fn auth_token_wins_over_header_and_query() {
        let h = handshake(
            Some(json!({"token": token_for("alice")})),
            Some(&format!("Bearer {}", token_for("bob"))),
            Some(&token_for("carol")),
        );
        assert_eq!(user_of(shake(&h)), "alice");
    }

    #[test]
    fn header_wins_over_query() {
        let h = handshake(None, Some(&format!("Bearer {}", token_for("bob"))), Some(&token_for("carol")));
        assert_eq!(user_of(shake(&h)), "bob");
    }

    #[test]
    fn invalid_auth_token_is_refused_even_if_header_is_valid() {
        let h = handshake(Some(json!({"token": "garbage"})), Some(&format!("Bearer {}", token_for("bob"))), Some(&token_for("carol")));
        assert_unauthorized(shake(&h));
    }

    #[test]
    fn invalid_header_is_refused_even_if_query_is_valid() {
        let h = handshake(None, Some("Bearer garbage"), Some(&token_for("carol")));
        assert_unauthorized(shake(&h));
    }

    #[test]
    fn non_bearer_header_is_refused_even_if_query_is_valid() {
        let h = handshake(None, Some(&format!("Basic {}", token_for("bob"))), Some(&token_for("carol")));
        assert_unauthorized(shake(&h));
    }

    #[test]
    fn empty_or_blank_sources_count_as_absent() {
        let h = handshake(Some(json!({"token": "  "})), Some(""), Some(&token_for("carol")));
        assert_eq!(user_of(shake(&h)), "carol");
    }

    #[test]
    fn null_auth_token_counts_as_absent() {
        let h = handshake(Some(json!({"token": null})), None, Some(&token_for("carol")));
        assert_eq!(user_of(shake(&h)), "carol");
    }

    #[test]
    fn non_string_auth_token_is_refused() {
        for token in [json!(42), json!({"jwt": token_for("alice")}), json!([token_for("alice")]), json!(true)] {
            let h = handshake(Some(json!({ "token": token })), None, Some(&token_for("carol")));
            assert_unauthorized(shake(&h));
        }
    }

    #[test]
    fn handshake_without_any_token_is_refused() {
        assert_unauthorized(shake(&Handshake::default()));
        assert_unauthorized(shake(&handshake(Some(json!({"autoJoin": true})), None, None)));
        assert_unauthorized(shake(&handshake(Some(json!("not an object")), None, None)));
    }

    #[test]
    fn bearer_header_is_accepted_over_http() {
        let header = format!("Bearer {}", token_for("alice"));
        assert_eq!(user_of(authenticate_bearer(Some(&header), SECRET, NOW, 30)), "alice");
    }

    #[test]
    fn http_header_scheme_is_case_insensitive() {
        let header = format!("BEARER {}", token_for("alice"));
        assert_eq!(user_of(authenticate_bearer(Some(&header), SECRET, NOW, 30)), "alice");
    }

    #[test]
    fn http_header_without_bearer_scheme_is_refused() {
        assert_unauthorized(authenticate_bearer(Some(&token_for("alice")), SECRET, NOW, 30));
        assert_unauthorized(authenticate_bearer(Some(&format!("Basic {}", token_for("alice"))), SECRET, NOW, 30));
        assert_unauthorized(authenticate_bearer(Some("Bearer"), SECRET, NOW, 30));
        assert_unauthorized(authenticate_bearer(Some("Bearer "), SECRET, NOW, 30));
    }

    #[test]
    fn http_missing_header_is_refused() {
        assert_unauthorized(authenticate_bearer(None, SECRET, NOW, 30));
        assert_unauthorized(authenticate_bearer(Some(""), SECRET, NOW, 30));
    }

    // --- time ------------------------------------------------------------------------

    #[test]
    fn expired_beyond_leeway_is_refused() {
        let token = with_claims(json!({"sub": "alice", "exp": NOW_SECS - 31}));
        assert_unauthorized(verify_token(&token, SECRET, NOW, 30));
    }

    #[test]
    fn expired_within_leeway_is_accepted() {
        let token = with_claims(json!({"sub": "alice", "exp": NOW_SECS - 30}));
        assert_eq!(user_of(verify_token(&token, SECRET, NOW, 30)), "alice");
    }

    #[test]
    fn expired_without_leeway_is_refused() {
        let token = with_claims(json!({"sub": "alice", "exp": NOW_SECS - 1}));
        assert_unauthorized(verify_token(&token, SECRET, NOW, 0));
    }

    #[test]
    fn leeway_is_capped_at_thirty_seconds() {
        let token = with_claims(json!({"sub": "alice", "exp": NOW_SECS - 45}));
        assert_unauthorized(verify_token(&token, SECRET, NOW, 60));
    }

    #[test]
    fn fractional_exp_is_accepted() {
        let token = with_claims(json!({"sub": "alice", "exp": NOW_SECS as f64 + 0.5}));
        assert_eq!(user_of(verify_token(&token, SECRET, NOW, 0)), "alice");
    }

    #[test]
    fn nbf_in_the_future_is_refused() {
        let token = with_claims(json!({"sub": "alice", "exp": NOW_SECS + 3600, "nbf": NOW_SECS + 31}));
        assert_unauthorized(verify(&token));
    }

    #[test]
    fn nbf_within_leeway_is_accepted() {
        let token = with_claims(json!({"sub": "alice", "exp": NOW_SECS + 3600, "nbf": NOW_SECS + 30}));
        assert_eq!(user_of(verify(&token)), "alice");
    }

    #[test]
    fn non_numeric_nbf_is_refused() {
        let token = with_claims(json!({"sub": "alice", "exp": NOW_SECS + 3600, "nbf": "soon"}));
        assert_unauthorized(verify(&token));
    }

    #[test]
    fn missing_exp_is_refused() {
        assert_unauthorized(verify(&with_claims(json!({"sub": "alice"}))));
        assert_unauthorized(verify(&with_claims(json!({"sub": "alice", "exp": null}))));
    }

    #[test]
    fn non_numeric_exp_is_refused() {
        assert_unauthorized(verify(&with_claims(json!({"sub": "alice", "exp": "9999999999"}))));
    }

    // --- algorithm and signature ------------------------------------------------------

    #[test]
    fn alg_none_is_refused() {
        let header = b64(br#"{"alg":"none","typ":"JWT"}"#);
        let claims = b64(json!({"sub": "alice", "exp": NOW_SECS + 3600}).to_string().as_bytes());
        assert_unauthorized(verify(&format!("{header}.{claims}.")));
    }

    #[test]
    fn other_algorithms_are_refused_even_when_hmac_signed() {
        for alg in ["HS384", "HS512", "RS256", "ES256", "hs256", "none", "None"] {
            let token = craft(&json!({"alg": alg, "typ": "JWT"}), &json!({"sub": "alice", "exp": NOW_SECS + 3600}), SECRET);
            assert_unauthorized(verify(&token));
        }
    }

    #[test]
    fn missing_or_non_string_alg_is_refused() {
        let claims = json!({"sub": "alice", "exp": NOW_SECS + 3600});
        assert_unauthorized(verify(&craft(&json!({"typ": "JWT"}), &claims, SECRET)));
        assert_unauthorized(verify(&craft(&json!({"alg": null}), &claims, SECRET)));
        assert_unauthorized(verify(&craft(&json!({"alg": ["HS256"]}), &claims, SECRET)));
    }

    #[test]
    fn typ_is_ignored() {
        let token = craft(&json!({"alg": "HS256", "typ": "whatever"}), &json!({"sub": "alice", "exp": NOW_SECS + 3600}), SECRET);
        assert_eq!(user_of(verify(&token)), "alice");
    }

    #[test]
    fn wrong_secret_is_refused() {
        let token = craft(&hs256(), &json!({"sub": "alice", "exp": NOW_SECS + 3600}), b"another-secret");
        assert_unauthorized(verify(&token));
    }

    #[test]
    fn tampered_payload_is_refused() {
        let token = token_for("alice");
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged = b64(json!({"sub": "mallory", "exp": NOW_SECS + 3600}).to_string().as_bytes());
        parts[1] = &forged;
        assert_unauthorized(verify(&parts.join(".")));
    }

    #[test]
    fn empty_or_truncated_signature_is_refused() {
        let token = token_for("alice");
        let (signed, signature) = token.rsplit_once('.').unwrap();
        assert_unauthorized(verify(&format!("{signed}.")));
        assert_unauthorized(verify(&format!("{signed}.{}", &signature[..signature.len() - 4])));
    }

    #[test]
    fn padded_base64_segments_are_accepted() {
        let header = base64::engine::general_purpose::URL_SAFE.encode(hs256().to_string());
        let claims = base64::engine::general_purpose::URL_SAFE.encode(json!({"sub": "al", "exp": NOW_SECS + 3600}).to_string());
        let input = format!("{header}.{claims}");
        let mut mac = HmacSha256::new_from_slice(SECRET).unwrap();
        mac.update(input.as_bytes());
        let token = format!("{input}.{}", base64::engine::general_purpose::URL_SAFE.encode(mac.finalize().into_bytes()));
        assert!(token.contains('='), "the test token should carry padding: {token}");
        assert_eq!(user_of(verify(&token)), "al");
    }

    #[test]
    fn empty_secret_refuses_every_token() {
        let token = craft(&hs256(), &json!({"sub": "alice", "exp": NOW_SECS + 3600}), b"");
        assert_unauthorized(verify_token(&token, b"", NOW, 30));
    }

    // --- claims ------------------------------------------------------------------------

    #[test]
    fn missing_user_id_is_refused() {
        assert_unauthorized(verify(&with_claims(json!({"exp": NOW_SECS + 3600}))));
        assert_unauthorized(verify(&with_claims(json!({"sub": null, "exp": NOW_SECS + 3600}))));
    }

    #[test]
    fn id_claim_is_used_when_sub_is_absent() {
        assert_eq!(user_of(verify(&with_claims(json!({"id": "bob", "userId": "carol", "exp": NOW_SECS + 3600})))), "bob");
    }

    #[test]
    fn user_id_claim_is_used_when_sub_and_id_are_absent() {
        assert_eq!(user_of(verify(&with_claims(json!({"userId": "carol", "exp": NOW_SECS + 3600})))), "carol");
    }

    #[test]
    fn sub_wins_over_id_and_user_id() {
        assert_eq!(user_of(verify(&with_claims(json!({"sub": "alice", "id": "bob", "userId": "carol", "exp": NOW_SECS + 3600})))), "alice");
    }

    #[test]
    fn numeric_sub_is_refused() {
        assert_unauthorized(verify(&with_claims(json!({"sub": 42, "exp": NOW_SECS + 3600}))));
    }

    #[test]
    fn numeric_sub_does_not_fall_back_to_id() {
        assert_unauthorized(verify(&with_claims(json!({"sub": 42, "id": "bob", "exp": NOW_SECS + 3600}))));
    }

    #[test]
    fn sub_of_128_characters_is_accepted() {
        let user = "é".repeat(128);
        assert_eq!(user_of(verify(&token_for(&user))), user);
    }

    #[test]
    fn sub_of_129_characters_is_refused() {
        assert_unauthorized(verify(&token_for(&"a".repeat(129))));
    }

    #[test]
    fn empty_or_blank_sub_is_refused() {
        assert_unauthorized(verify(&token_for("")));
        assert_unauthorized(verify(&token_for("   ")));
    }

    #[test]
    fn admin_role_marks_an_admin() {
        let principal = verify(&with_claims(json!({"sub": "root", "role": "admin", "exp": NOW_SECS + 3600}))).unwrap();
        assert!(principal.admin);
    }

    #[test]
    fn other_roles_are_not_admin() {
        for role in [json!("user"), json!("Admin"), json!(["admin"]), json!(true)] {
            let principal = verify(&with_claims(json!({"sub": "u", "role": role, "exp": NOW_SECS + 3600}))).unwrap();
            assert!(!principal.admin);
        }
        assert!(!verify(&token_for("u")).unwrap().admin);
    }

    #[test]
    fn non_object_claims_are_refused() {
        assert_unauthorized(verify(&craft(&hs256(), &json!(["sub", "alice"]), SECRET)));
        assert_unauthorized(verify(&craft(&hs256(), &json!("alice"), SECRET)));
    }

    // --- garbage -------------------------------------------------------------------------

    #[test]
    fn one_megabyte_token_is_refused() {
        let huge = format!("{}.{}.{}", "a".repeat(400_000), "b".repeat(400_000), "c".repeat(248_576));
        assert_unauthorized(verify(&huge));
        let h = handshake(Some(json!({ "token": format!("Bearer {huge}") })), None, None);
        assert_unauthorized(shake(&h));
        assert_unauthorized(authenticate_bearer(Some(&format!("Bearer {huge}")), SECRET, NOW, 30));
    }

    #[test]
    fn token_just_over_the_size_limit_is_refused() {
        let padded = with_claims(json!({"sub": "alice", "exp": NOW_SECS + 3600, "pad": "x".repeat(MAX_TOKEN_BYTES)}));
        assert!(padded.len() > MAX_TOKEN_BYTES);
        assert_unauthorized(verify(&padded));
    }

    #[test]
    fn garbage_strings_are_refused() {
        let header = b64(hs256().to_string().as_bytes());
        for garbage in [
            "",
            ".",
            "..",
            "a.b",
            "a.b.c",
            "a.b.c.d",
            "!!!.@@@.###",
            "eyJ.eyJ.sig",
            "\u{0}\u{1}.\u{2}.\u{3}",
            "ünïcödé.ünïcödé.ünïcödé",
            &format!("{header}.{}.", b64(b"not json")),
            &format!("{header}.{}.", b64(&[0xff, 0xfe, 0x00])),
            &format!("{}.{}.", b64(b"{"), b64(b"{}")),
            &format!("{}..sig", header),
        ] {
            assert_unauthorized(verify(garbage));
        }
    }

    // --- signing -----------------------------------------------------------------------

    #[test]
    fn signed_token_verifies() {
        let token = sign_token(SECRET, &UserId::new("alice"), false, NOW.plus(3_600_000));
        let principal = verify(&token).unwrap();
        assert_eq!(principal, Principal { user: UserId::new("alice"), admin: false });
    }

    #[test]
    fn signed_admin_token_verifies_as_admin() {
        let token = sign_token(SECRET, &UserId::new("root"), true, NOW.plus(3_600_000));
        assert!(verify(&token).unwrap().admin);
    }

    #[test]
    fn signed_token_has_the_expected_header_and_claims() {
        let token = sign_token(SECRET, &UserId::new("alice"), true, Millis(1_700_000_123_999));
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(header, json!({"alg": "HS256", "typ": "JWT"}));
        assert_eq!(claims, json!({"sub": "alice", "exp": 1_700_000_123, "role": "admin"}));
    }

    #[test]
    fn signed_token_expires() {
        let token = sign_token(SECRET, &UserId::new("alice"), false, NOW);
        assert!(verify_token(&token, SECRET, NOW.plus(30_000), 30).is_ok());
        assert_unauthorized(verify_token(&token, SECRET, NOW.plus(31_000), 30));
    }

    #[test]
    fn signed_token_is_refused_with_another_secret() {
        let token = sign_token(SECRET, &UserId::new("alice"), false, NOW.plus(3_600_000));
        assert_unauthorized(verify_token(&token, b"other", NOW, 30));
    }
}
