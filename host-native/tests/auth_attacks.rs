//! Hostile handshakes and HTTP calls against a running `chat-server` (PROTOCOL.md §1, §9):
//! each forged, stale or malformed token is refused with `UNAUTHORIZED`, and the server's
//! log line for the refusal carries a correlation id (over HTTP, the one in the body).
//!
//! The server runs as the real binary on a free loopback port with its log captured, and
//! is spoken to over Engine.IO long-polling with raw HTTP/1.1, so headers can carry bytes
//! that are not UTF-8 and the `CONNECT` packet can carry a 1 MB token.
//! docs/reliability.md lists these attacks with the figures measured.

mod running_server;

use running_server::{b64, good_token, hmac_sign, hs256, now_secs, uuid_in, valid_claims, Handshake, Server, SECRET};
use serde_json::{json, Value};
use std::time::Instant;

/// A public key as an RS256 server would publish it: the classic HS/RS confusion signs an
/// HS256 token with this text as the HMAC secret.
const RSA_PUBLIC_KEY: &str = "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAu1SU1LfVLPHCozMxH2Mo\n4lgOEePzNm0tRgeLezV6ffAt0gunVTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u\n+qKhbwKfBstIs+bMY2Zkp18gnTxKLxoS2tFczGkPLPgizskuemMghRniWaoLcyeh\nkd3qqGElvW/VDL5AaWTg0nLVkjRo9z+40RQzuVaE8AkAFmxZzow3x+VJYKdjykkJ\n0iT9wCS0DRTXu269V264Vf/3jvredZiKRkgwlL9xNAwxXFg0x/XFw005UWVRIkdg\ncKWTjpBP2dPwVZ4WWC+9aGVd+Gyn1o0CLelf4rEjGoXbAAEgAqeGUxrcIlbjXfbc\nmwIDAQAB\n-----END PUBLIC KEY-----\n";

/// `MAX_PAYLOAD_BYTES` of 2 MB, so that a 1 MB token reaches the token check instead of
/// the transport's size limit.
fn start_server() -> Server {
    Server::start_with(&[("MAX_PAYLOAD_BYTES", "2000000")])
}

/// One forged or unacceptable token, with the reason the server must log for it.
struct Attack {
    name: &'static str,
    token: String,
    reason: &'static str,
}

fn token_attacks() -> Vec<Attack> {
    let now = now_secs();
    let secret = SECRET.as_bytes();
    let alg_none = format!("{}.{}.", b64(br#"{"alg":"none","typ":"JWT"}"#), b64(valid_claims("mallory").to_string().as_bytes()));
    let rs256_garbage_signature = {
        let input = format!("{}.{}", b64(br#"{"alg":"RS256","typ":"JWT"}"#), b64(valid_claims("mallory").to_string().as_bytes()));
        format!("{input}.{}", b64(&[0xab; 256]))
    };
    let huge = format!("{}.{}.{}", "a".repeat(400_000), "b".repeat(400_000), "c".repeat(248_576));
    assert_eq!(huge.len(), 1_048_578);
    vec![
        Attack { name: "alg none, no signature", token: alg_none, reason: "unsupported token algorithm" },
        Attack {
            name: "alg none, HMAC-signed",
            token: hmac_sign(&json!({ "alg": "none" }), &valid_claims("mallory"), secret),
            reason: "unsupported token algorithm",
        },
        Attack {
            name: "RS256 header signed with the HMAC secret",
            token: hmac_sign(&json!({ "alg": "RS256", "typ": "JWT" }), &valid_claims("mallory"), secret),
            reason: "unsupported token algorithm",
        },
        Attack {
            name: "HS256 signed with an RSA public key as the HMAC secret",
            token: hmac_sign(&hs256(), &valid_claims("mallory"), RSA_PUBLIC_KEY.as_bytes()),
            reason: "invalid token signature",
        },
        Attack { name: "RS256 with a 2048-bit signature", token: rs256_garbage_signature, reason: "unsupported token algorithm" },
        Attack {
            name: "wrong secret",
            token: hmac_sign(&hs256(), &valid_claims("mallory"), b"not-the-secret"),
            reason: "invalid token signature",
        },
        Attack {
            name: "expired (beyond the 30 s leeway)",
            token: hmac_sign(&hs256(), &json!({ "sub": "mallory", "exp": now - 120 }), secret),
            reason: "token expired",
        },
        Attack {
            name: "not yet valid (nbf in 10 minutes)",
            token: hmac_sign(&hs256(), &json!({ "sub": "mallory", "exp": now + 3600, "nbf": now + 600 }), secret),
            reason: "token not yet valid",
        },
        Attack {
            name: "missing sub (nor id, nor userId)",
            token: hmac_sign(&hs256(), &json!({ "exp": now + 3600, "name": "mallory" }), secret),
            reason: "token has no user id",
        },
        Attack { name: "1 MB token", token: huge, reason: "token too long" },
    ]
}

// --- the tests --------------------------------------------------------------------------

/// A refused handshake: CONNECT_ERROR `UNAUTHORIZED`, and the `n`-th refusal log line
/// names the reason and carries a correlation id.
fn assert_refused_and_logged(server: &Server, verdict: Handshake, n: usize, reason: &str, what: &str) {
    let Handshake::Refused(refusal) = verdict else { panic!("{what}: not refused: {verdict:?}") };
    assert_eq!(refusal["message"], "UNAUTHORIZED", "{what}: {refusal}");
    assert_eq!(refusal["data"]["code"], "UNAUTHORIZED", "{what}: err.data is {{ code, message, correlationId }}: {refusal}");
    let line = server.wait_log_line("refused: UNAUTHORIZED", n);
    assert!(line.contains(reason), "{what}: the log line does not give the reason {reason:?}: {line}");
    assert!(line.contains("correlation_id") && uuid_in(&line).is_some(), "{what}: no correlation id in {line}");
    let id = refusal["data"]["correlationId"].as_str().unwrap_or_else(|| panic!("{what}: no correlationId in {refusal}"));
    assert!(line.contains(id), "{what}: the client's correlation id {id} is not the logged one: {line}");
}

#[test]
fn hostile_tokens_are_refused_unauthorized_and_logged_with_a_correlation_id() {
    let server = start_server();
    // The harness itself: a good token connects, in each of the three places.
    let good = good_token("alice");
    assert_eq!(server.handshake("", &[], Some(&json!({ "token": good }).to_string())), Handshake::Connected);
    assert_eq!(server.handshake("", &[("Authorization", format!("Bearer {good}").as_bytes())], None), Handshake::Connected);
    assert_eq!(server.handshake(&format!("&token={good}"), &[], None), Handshake::Connected);

    let mut refusals = 0;
    for attack in token_attacks() {
        let started = Instant::now();
        let verdict = server.handshake("", &[], Some(&json!({ "token": attack.token }).to_string()));
        // A figure for docs/reliability.md (--nocapture), never asserted: the machine is shared.
        eprintln!("{:>60}: refused in {:?} (open + CONNECT + poll)", attack.name, started.elapsed());
        refusals += 1;
        assert_refused_and_logged(&server, verdict, refusals, attack.reason, attack.name);
        if attack.token.len() < 16 * 1024 {
            // The same token in the Authorization header and in the query parameter.
            let header = format!("Bearer {}", attack.token);
            let verdict = server.handshake("", &[("Authorization", header.as_bytes())], None);
            refusals += 1;
            assert_refused_and_logged(&server, verdict, refusals, attack.reason, attack.name);
            let verdict = server.handshake(&format!("&token={}", attack.token), &[], None);
            refusals += 1;
            assert_refused_and_logged(&server, verdict, refusals, attack.reason, attack.name);
        }
    }
    assert_eq!(server.log_lines("refused: UNAUTHORIZED").len(), refusals, "one log line per refusal");
}

#[test]
fn hostile_tokens_are_refused_over_http_with_the_logged_correlation_id() {
    let server = start_server();
    let ok = server.request("GET", "/api/v1/chats", &[("Authorization", format!("Bearer {}", good_token("alice")).as_bytes())], b"");
    assert_eq!(ok.status, 200, "{}", ok.text());
    for attack in token_attacks() {
        let header = format!("Bearer {}", attack.token);
        let answer = server.request("GET", "/api/v1/chats", &[("Authorization", header.as_bytes())], b"");
        if attack.token.len() > 64 * 1024 {
            // Larger than any header hyper reads: refused before the server looks at it.
            assert_eq!(answer.status, 431, "{}: {}", attack.name, answer.text());
            continue;
        }
        assert_eq!(answer.status, 401, "{}: {}", attack.name, answer.text());
        let body = answer.json();
        assert_eq!(body["error"], "UNAUTHORIZED", "{}", attack.name);
        let id = body["correlationId"].as_str().expect("a correlationId in the body");
        let line = server.wait_log_line(id, 1);
        assert!(line.contains("UNAUTHORIZED") && line.contains(attack.reason), "{}: {line}", attack.name);
    }
    assert_eq!(server.request("GET", "/healthz", &[], b"").status, 200);
}

#[test]
fn a_bad_token_in_the_first_present_place_is_not_rescued_by_a_good_one_later() {
    let server = start_server();
    let good = good_token("alice");
    let expired = hmac_sign(&hs256(), &json!({ "sub": "alice", "exp": now_secs() - 120 }), SECRET.as_bytes());
    let good_header = format!("Bearer {good}");
    let bad_header = format!("Bearer {expired}");
    // What, query, headers, auth, the reason logged.
    type Case<'a> = (&'a str, String, Vec<(&'a str, &'a [u8])>, Option<String>, &'a str);
    let cases: [Case; 4] = [
        (
            "expired auth.token, good header and query",
            format!("&token={good}"),
            vec![("Authorization", good_header.as_bytes())],
            Some(json!({ "token": expired }).to_string()),
            "token expired",
        ),
        ("non-string auth.token, good header", String::new(), vec![("Authorization", good_header.as_bytes())], Some(r#"{"token":42}"#.into()), "auth.token must be a string"),
        ("expired header, good query", format!("&token={good}"), vec![("Authorization", bad_header.as_bytes())], None, "token expired"),
        ("Basic header, good query", format!("&token={good}"), vec![("Authorization", b"Basic YWxpY2U6cHc=")], None, "expected a Bearer token"),
    ];
    for (n, (what, query, headers, auth, reason)) in cases.iter().enumerate() {
        let verdict = server.handshake(query, headers, auth.as_deref());
        assert_refused_and_logged(&server, verdict, n + 1, reason, what);
    }
}

#[test]
fn bytes_that_are_not_utf8_are_refused_and_never_skipped() {
    let server = start_server();
    let good = good_token("alice");
    let mut header = b"Bearer ".to_vec();
    header.extend_from_slice(good.as_bytes());
    header.extend_from_slice(&[0xff, 0xfe, 0x80]);
    // A header that is not UTF-8 is a present source: it decides, the good query does not.
    let verdict = server.handshake(&format!("&token={good}"), &[("Authorization", &header)], None);
    assert_refused_and_logged(&server, verdict, 1, "malformed token", "non-UTF-8 header, good query");
    // A query token that decodes to invalid UTF-8 decides too, even with a good one after it.
    let verdict = server.handshake(&format!("&token=%ff%fe&token={good}"), &[], None);
    assert_refused_and_logged(&server, verdict, 2, "malformed token", "non-UTF-8 query token, good second one");
    // Over HTTP: 401 with a correlation id that the log has.
    let answer = server.request("GET", "/api/v1/chats", &[("Authorization", b"Bearer \xc3\x28.\xff.\x80")], b"");
    assert_eq!(answer.status, 401, "{}", answer.text());
    let id = answer.json()["correlationId"].as_str().expect("correlationId").to_owned();
    assert!(server.wait_log_line(&id, 1).contains("malformed token"));
    // Invalid UTF-8 inside the CONNECT packet: the transport refuses the packet; no socket.
    let open = server.request("GET", "/socket.io/?EIO=4&transport=polling", &[], b"");
    let sid: Value = serde_json::from_str(open.text().trim_start_matches('0')).unwrap();
    let path = format!("/socket.io/?EIO=4&transport=polling&sid={}", sid["sid"].as_str().unwrap());
    let posted = server.request("POST", &path, &[], b"40{\"token\":\"\xff\xfe\"}");
    assert_ne!(posted.status, 200, "a CONNECT packet that is not UTF-8 was taken: {}", posted.text());
    assert_eq!(server.request("GET", "/healthz", &[], b"").status, 200);
}
