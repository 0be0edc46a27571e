//! The HTTP API of PROTOCOL.md §9: each call becomes a driver input and waits for its answer.

use crate::driver::{DriverHandle, HostInput, HttpAnswer};
use crate::metrics::Metrics;
use crate::query::query_param;
use crate::store::Store;
use axum::body::{to_bytes, Body};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post};
use axum::{Json, Router};
use chat_core::command::HttpRequest;
use serde_json::{json, Value};
use std::sync::Arc;
use tokio::sync::oneshot;

#[derive(Clone)]
pub struct HttpState {
    pub driver: DriverHandle,
    pub store: Store,
    pub metrics: Arc<Metrics>,
    pub max_payload_bytes: usize,
}

pub fn routes(state: HttpState) -> Router {
    Router::new()
        .route("/api/v1/chats", get(list_chats).post(create_chat))
        .route("/api/v1/chats/{chat_id}", patch(rename_chat))
        .route("/api/v1/chats/{chat_id}/messages", get(history))
        .route("/api/v1/chats/{chat_id}/members", post(add_member))
        .route("/api/v1/chats/{chat_id}/members/{user_id}", delete(remove_member))
        .route("/api/v1/admin/sockets", get(admin_sockets))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// The `Authorization` header as text. Bytes that are not UTF-8 are replaced (U+FFFD), so
/// such a header is present and refused as a malformed token, never mistaken for an
/// absent one (which would let the next token source decide, PROTOCOL.md §1).
pub fn authorization(headers: &HeaderMap) -> Option<String> {
    headers.get("authorization").map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
}

async fn ask(state: &HttpState, headers: &HeaderMap, call: HttpRequest) -> Response {
    let (respond, answer) = oneshot::channel();
    state.driver.send(HostInput::Http { authorization: authorization(headers), call, respond });
    answer_response(answer.await)
}

fn answer_response(answer: Result<HttpAnswer, oneshot::error::RecvError>) -> Response {
    match answer {
        Ok((status, body)) => (StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), Json(body)).into_response(),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "error": "INTERNAL", "message": "server is shutting down" }))).into_response(),
    }
}

/// Reads a JSON body within the payload limit; anything else is answered by the core.
async fn json_body(state: &HttpState, body: Body) -> Result<Value, Response> {
    let rejection = match to_bytes(body, state.max_payload_bytes).await {
        Ok(bytes) if bytes.is_empty() => return Ok(Value::Null),
        Ok(bytes) => match serde_json::from_slice::<Value>(&bytes) {
            Ok(value) => return Ok(value),
            Err(error) => chat_core::error::ChatError::validation(format!("request body is not valid JSON: {error}")),
        },
        Err(_) => chat_core::error::ChatError::PayloadTooLarge(format!("request body is larger than {} bytes", state.max_payload_bytes)),
    };
    let (respond, answer) = oneshot::channel();
    state.driver.send(HostInput::HttpRejected { error: rejection, respond });
    Err(answer_response(answer.await))
}

async fn list_chats(State(state): State<HttpState>, headers: HeaderMap) -> Response {
    ask(&state, &headers, HttpRequest::ListChats).await
}

async fn create_chat(State(state): State<HttpState>, headers: HeaderMap, body: Body) -> Response {
    match json_body(&state, body).await {
        Ok(body) => ask(&state, &headers, HttpRequest::CreateChat { body }).await,
        Err(response) => response,
    }
}

async fn rename_chat(State(state): State<HttpState>, Path(chat_id): Path<String>, headers: HeaderMap, body: Body) -> Response {
    match json_body(&state, body).await {
        Ok(body) => ask(&state, &headers, HttpRequest::RenameChat { chat_id, body }).await,
        Err(response) => response,
    }
}

async fn history(State(state): State<HttpState>, Path(chat_id): Path<String>, RawQuery(query): RawQuery, headers: HeaderMap) -> Response {
    let query = query.unwrap_or_default();
    let call = HttpRequest::History {
        chat_id,
        after_seq: query_param(&query, "afterSeq"),
        before_seq: query_param(&query, "beforeSeq"),
        limit: query_param(&query, "limit"),
    };
    ask(&state, &headers, call).await
}

async fn add_member(State(state): State<HttpState>, Path(chat_id): Path<String>, headers: HeaderMap, body: Body) -> Response {
    match json_body(&state, body).await {
        Ok(body) => ask(&state, &headers, HttpRequest::AddMember { chat_id, body }).await,
        Err(response) => response,
    }
}

async fn remove_member(State(state): State<HttpState>, Path((chat_id, user_id)): Path<(String, String)>, headers: HeaderMap) -> Response {
    ask(&state, &headers, HttpRequest::RemoveMember { chat_id, user_id }).await
}

async fn admin_sockets(State(state): State<HttpState>, headers: HeaderMap) -> Response {
    let (respond, answer) = oneshot::channel();
    state.driver.send(HostInput::AdminSockets { authorization: authorization(&headers), respond });
    answer_response(answer.await)
}

async fn healthz(State(state): State<HttpState>) -> Response {
    if state.store.healthy().await {
        (StatusCode::OK, Json(json!({ "status": "ok", "storage": state.store.backend() }))).into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "status": "unhealthy", "storage": state.store.backend() }))).into_response()
    }
}

async fn metrics(State(state): State<HttpState>) -> Response {
    ([("content-type", "text/plain; version=0.0.4")], state.metrics.render()).into_response()
}
