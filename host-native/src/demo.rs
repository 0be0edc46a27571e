//! The demo web client: plain HTML, CSS and JavaScript from `host-native/web/`, embedded in
//! the binary and served at `/`, with the browser bundle of `socket.io-client`. The page
//! uses only the public contract (PROTOCOL.md).
//!
//! In demo mode only (`--demo`, `CHAT_DEMO=true`), `POST /api/demo/token` signs a token for
//! any user name it is given: there is NO real authentication then. Otherwise the route
//! does not exist (404) and the page asks for a token made by `chat-server token <user>`.

use crate::config::DemoMode;
use axum::body::{to_bytes, Body};
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chat_core::auth::sign_token;
use chat_core::ids::UserId;
use serde_json::{json, Value};
use std::sync::Arc;

const INDEX_HTML: &str = include_str!("../web/index.html");
const APP_JS: &str = include_str!("../web/app.js");
const STYLE_CSS: &str = include_str!("../web/style.css");
/// `socket.io-client` 4.8.4's browser bundle, unchanged (MIT; its licence header is kept).
const SOCKET_IO_JS: &str = include_str!("../web/socket.io.min.js");

/// Lifetime of a demo token.
pub const DEMO_TOKEN_TTL_SECS: u64 = 24 * 3600;
/// Longest user name the demo endpoint signs for, in characters.
pub const MAX_NAME_CHARS: usize = 64;

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

#[derive(Clone)]
struct DemoState {
    index: Arc<str>,
    secret: Arc<Vec<u8>>,
}

/// The page and its assets (unless `Off`), and the token endpoint (only when `Open`).
pub fn routes(mode: DemoMode, namespace: &str, secret: Vec<u8>) -> Router {
    if mode == DemoMode::Off {
        return Router::new();
    }
    let open = mode == DemoMode::Open;
    let index = INDEX_HTML
        .replace("{{CHAT_DEMO}}", if open { "true" } else { "false" })
        .replace("{{CHAT_NAMESPACE}}", &html_attribute(namespace));
    let state = DemoState { index: index.into(), secret: Arc::new(secret) };
    let mut router = Router::new()
        .route("/", get(index_page))
        .route("/assets/app.js", get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }))
        .route("/assets/style.css", get(|| async { asset("text/css; charset=utf-8", STYLE_CSS) }))
        .route("/assets/socket.io.min.js", get(|| async { asset("text/javascript; charset=utf-8", SOCKET_IO_JS) }));
    if open {
        router = router.route("/api/demo/token", post(demo_token));
    }
    router.with_state(state)
}

/// The loud warnings of demo mode, for the start-up log.
pub fn log_mode(mode: DemoMode, bind: std::net::SocketAddr) {
    match mode {
        DemoMode::Off => tracing::info!("demo web client is off (CHAT_DEMO=false)"),
        DemoMode::Page => tracing::info!(url = %format!("http://{bind}/"), "demo web client at / (sign in with a token from `chat-server token <user>`)"),
        DemoMode::Open => {
            tracing::warn!(
                url = %format!("http://{bind}/"),
                "DEMO MODE: POST /api/demo/token signs a token for ANY user name. There is NO REAL AUTHENTICATION: \
                 anyone who can reach this server can act as any user. For local trials only; never in production."
            );
            if !bind.ip().is_loopback() {
                tracing::warn!(bind = %bind, "DEMO MODE on a non-loopback address: everyone on the network can act as any user");
            }
        }
    }
}

async fn index_page(State(state): State<DemoState>) -> Response {
    let mut response = asset("text/html; charset=utf-8", "").into_response();
    *response.body_mut() = Body::from(state.index.to_string());
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            // The files change with the binary: always revalidate (they are small).
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

/// `POST /api/demo/token` `{ "name": "alice" }` → `{ token, userId, expiresAt }`.
async fn demo_token(State(state): State<DemoState>, body: Body) -> Response {
    let name = match to_bytes(body, 4096).await {
        Ok(bytes) => serde_json::from_slice::<Value>(&bytes).ok().and_then(|v| v.get("name").and_then(Value::as_str).map(str::to_string)),
        Err(_) => None,
    };
    let user = match name.as_deref().map(validate_name) {
        Some(Ok(user)) => user,
        Some(Err(message)) => return refuse(message),
        None => return refuse("the body must be JSON like {\"name\": \"alice\"}"),
    };
    let expires = crate::driver::now().plus(DEMO_TOKEN_TTL_SECS * 1000);
    let token = sign_token(&state.secret, &UserId::new(user.as_str()), false, expires);
    tracing::info!(user = %user, "demo mode: signed a token with no authentication");
    Json(json!({ "token": token, "userId": user, "expiresAt": expires.0 })).into_response()
}

/// A user name: 1..=64 letters, digits, `.`, `_` or `-` (surrounding spaces are trimmed).
pub fn validate_name(name: &str) -> Result<String, &'static str> {
    let name = name.trim();
    let count = name.chars().count();
    if count == 0 || count > MAX_NAME_CHARS || !name.chars().all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-')) {
        return Err("name must be 1 to 64 letters, digits, '.', '_' or '-'");
    }
    Ok(name.to_string())
}

fn refuse(message: &str) -> Response {
    let correlation_id = uuid_v4();
    tracing::info!(correlation_id = %correlation_id, reason = message, "demo token refused");
    (StatusCode::BAD_REQUEST, Json(json!({ "error": "VALIDATION_ERROR", "message": message, "correlationId": correlation_id })))
        .into_response()
}

fn uuid_v4() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        return "00000000-0000-4000-8000-000000000000".to_string();
    }
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..])
}

/// Escapes a value for a double-quoted HTML attribute.
fn html_attribute(value: &str) -> String {
    value.replace('&', "&amp;").replace('"', "&quot;").replace('<', "&lt;").replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request;
    use tower::ServiceExt;

    const SECRET: &[u8] = b"demo-test-secret";

    async fn call(router: &Router, method: &str, uri: &str, body: &str) -> (StatusCode, String) {
        let request = Request::builder().method(method).uri(uri).header("content-type", "application/json").body(Body::from(body.to_string())).unwrap();
        let response = router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = to_bytes(response.into_body(), 1 << 20).await.unwrap();
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }

    #[tokio::test]
    async fn by_default_the_page_is_served_and_the_token_endpoint_is_absent() {
        let router = routes(DemoMode::Page, "/", SECRET.to_vec());
        let (status, html) = call(&router, "GET", "/", "").await;
        assert_eq!(status, StatusCode::OK);
        assert!(html.contains(r#"<meta name="chat-demo" content="false">"#), "{html}");
        assert!(html.contains(r#"<meta name="chat-namespace" content="/">"#), "{html}");
        for asset in ["/assets/app.js", "/assets/style.css", "/assets/socket.io.min.js"] {
            assert_eq!(call(&router, "GET", asset, "").await.0, StatusCode::OK, "{asset}");
        }
        assert_eq!(call(&router, "POST", "/api/demo/token", r#"{"name":"alice"}"#).await.0, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn chat_demo_false_serves_nothing() {
        let router = routes(DemoMode::Off, "/", SECRET.to_vec());
        assert_eq!(call(&router, "GET", "/", "").await.0, StatusCode::NOT_FOUND);
        assert_eq!(call(&router, "GET", "/assets/app.js", "").await.0, StatusCode::NOT_FOUND);
        assert_eq!(call(&router, "POST", "/api/demo/token", r#"{"name":"alice"}"#).await.0, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn demo_mode_signs_a_token_for_a_valid_name() {
        let router = routes(DemoMode::Open, "/api/v1/sockets", SECRET.to_vec());
        let (_, html) = call(&router, "GET", "/", "").await;
        assert!(html.contains(r#"<meta name="chat-demo" content="true">"#));
        assert!(html.contains(r#"<meta name="chat-namespace" content="/api/v1/sockets">"#));
        let (status, body) = call(&router, "POST", "/api/demo/token", r#"{"name":"  alice "}"#).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["userId"], "alice");
        let principal = chat_core::auth::verify_token(body["token"].as_str().unwrap(), SECRET, crate::driver::now(), 30).unwrap();
        assert_eq!(principal.user.as_str(), "alice");
        assert!(!principal.admin);
    }

    #[tokio::test]
    async fn demo_mode_refuses_bad_names() {
        let router = routes(DemoMode::Open, "/", SECRET.to_vec());
        let long = "a".repeat(MAX_NAME_CHARS + 1);
        for body in [r#"{"name":""}"#, r#"{"name":"   "}"#, r#"{"name":"a b"}"#, r#"{"name":"<b>"}"#, r#"{"name":42}"#, r#"{}"#, "not json"] {
            let (status, answer) = call(&router, "POST", "/api/demo/token", body).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
            let answer: Value = serde_json::from_str(&answer).unwrap();
            assert_eq!(answer["error"], "VALIDATION_ERROR");
            assert_eq!(answer["correlationId"].as_str().unwrap().len(), 36);
        }
        let (status, _) = call(&router, "POST", "/api/demo/token", &format!(r#"{{"name":"{long}"}}"#)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let (status, _) = call(&router, "POST", "/api/demo/token", &format!(r#"{{"name":"{}"}}"#, "é".repeat(MAX_NAME_CHARS))).await;
        assert_eq!(status, StatusCode::OK);
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(validate_name(" bob.smith-2_x "), Ok("bob.smith-2_x".to_string()));
        assert!(validate_name("").is_err());
        assert!(validate_name("tab\there").is_err());
    }
}
