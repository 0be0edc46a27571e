//! The Workers glue (wasm32 only): the fetch handler and the three Durable Object classes.

mod chat_object;
mod conn_object;
mod courier;
mod directory_object;
mod sql;
mod user_object;

use crate::config::EdgeConfig;
use chat_core::command::HttpRequest;
use chat_core::error::ChatError;
use chat_core::ids::{IdMaker, IdSource, Millis, RequestId};
use chat_core::route::{Ctx, Outbox};
use chat_core::Effect;
use serde_json::{json, Value};
use worker::*;

pub use chat_object::ChatObject;
pub use conn_object::ConnObject;
pub use directory_object::DirectoryObject;
pub use user_object::UserObject;

/// Bindings of `wrangler.toml`.
pub(crate) const CONN_BINDING: &str = "CONN";
pub(crate) const USER_BINDING: &str = "USERS";
pub(crate) const CHAT_BINDING: &str = "CHATS";
pub(crate) const DIRECTORY_BINDING: &str = "DIRECTORY";

/// Keeps the object's one alarm at `deadline` (the partition's next timer), touching
/// storage only when it moves; `armed` remembers where it stands.
pub(crate) async fn arm_alarm(state: &State, armed: &std::cell::Cell<Option<u64>>, deadline: Option<Millis>) -> Result<()> {
    let deadline = deadline.map(|at| at.0);
    if deadline == armed.get() {
        return Ok(());
    }
    armed.set(deadline);
    match deadline {
        Some(at) => state.storage().set_alarm(ScheduledTime::from(at.saturating_sub(now().0).max(1) as i64)).await,
        None => state.storage().delete_alarm().await,
    }
}

/// Randomness from `crypto.getRandomValues`.
pub(crate) struct JsRandom;

impl IdSource for JsRandom {
    fn random_u128(&mut self) -> u128 {
        let mut bytes = [0u8; 16];
        if getrandom::getrandom(&mut bytes).is_err() {
            panic!("crypto.getRandomValues failed");
        }
        u128::from_le_bytes(bytes)
    }
}

pub(crate) fn random_u128() -> u128 {
    JsRandom.random_u128()
}

pub(crate) fn ids() -> IdMaker {
    IdMaker::new(Box::new(JsRandom))
}

pub(crate) fn now() -> Millis {
    Millis(Date::now().as_millis())
}

pub(crate) fn config(env: &Env) -> Result<EdgeConfig> {
    let get = |name: &str| -> Option<String> {
        env.var(name).ok().map(|v| v.to_string()).or_else(|| env.secret(name).ok().map(|v| v.to_string()))
    };
    EdgeConfig::from_lookup(get).map_err(Error::RustError)
}

pub(crate) fn log(level: chat_core::effect::LogLevel, correlation_id: Option<&str>, message: &str) {
    let line = json!({ "level": format!("{level:?}").to_lowercase(), "correlationId": correlation_id, "message": message }).to_string();
    match level {
        chat_core::effect::LogLevel::Error => console_error!("{line}"),
        chat_core::effect::LogLevel::Warn => console_warn!("{line}"),
        chat_core::effect::LogLevel::Info => console_log!("{line}"),
    }
}

/// A JSON body read exactly (JavaScript's JSON.parse would round integers above 2^53).
pub(crate) async fn read_json<T: serde::de::DeserializeOwned>(req: &mut Request) -> Result<T> {
    let text = req.text().await?;
    serde_json::from_str(&text).map_err(|e| Error::RustError(format!("bad request body: {e}")))
}

pub(crate) async fn response_json<T: serde::de::DeserializeOwned>(response: &mut Response) -> Result<T> {
    let text = response.text().await?;
    serde_json::from_str(&text).map_err(|e| Error::RustError(format!("bad response body ({}): {e}", response.status_code())))
}

pub(crate) fn json_response(status: u16, body: &Value) -> Result<Response> {
    Ok(Response::from_json(body)?.with_status(status))
}

/// An answer the core gives without any partition (a bad token, an unreadable body).
fn core_error(cfg: &EdgeConfig, error: ChatError) -> Result<Response> {
    let mut out = Outbox::default();
    let mut ids = ids();
    let mut next_op = 0;
    let mut ctx = Ctx { now: now(), limits: &cfg.limits, ids: &mut ids, out: &mut out, next_op: &mut next_op };
    ctx.reply_err(&chat_core::route::Reply::Http { request: RequestId(0) }, error);
    let mut answer = json_response(500, &json!({ "error": "INTERNAL", "message": "no answer" }));
    for effect in out.effects {
        match effect {
            Effect::HttpRespond { status, body, .. } => answer = json_response(status, &body),
            Effect::Log { level, correlation_id, message } => log(level, correlation_id.as_ref().map(|c| c.as_str()), &message),
            _ => {}
        }
    }
    answer
}

fn query_param(url: &Url, name: &str) -> Option<String> {
    url.query_pairs().find(|(key, _)| key == name).map(|(_, value)| value.into_owned())
}

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    let cfg = config(&env)?;
    let url = req.url()?;
    let path = url.path().to_string();
    if path == "/socket.io/" || path == "/socket.io" {
        return socket_io(req, &env, &url).await;
    }
    match (req.method(), path.as_str()) {
        (Method::Get, "/healthz") => json_response(200, &json!({ "status": "ok", "storage": "durable-objects" })),
        (Method::Get, "/metrics") => {
            let shard = directory(&env, &cfg).await?;
            let text = format!("# HELP chat_edge_up 1 while the Worker answers.\n# TYPE chat_edge_up gauge\nchat_edge_up 1\n{}", shard.metrics_text());
            let headers = Headers::new();
            headers.set("content-type", "text/plain; version=0.0.4")?;
            Ok(Response::ok(text)?.with_headers(headers))
        }
        _ if path.starts_with("/api/v1/") => api(req, &env, &cfg, &url, &path).await,
        _ => json_response(404, &json!({ "error": "NOT_FOUND", "message": "no such route" })),
    }
}

/// Every directory shard's content, merged (one request per shard, in parallel).
async fn directory(env: &Env, cfg: &EdgeConfig) -> Result<crate::directory::Shard> {
    let asks = (0..cfg.directory_shards).map(|n| async move {
        let stub = courier::stub(env, &crate::glue::Dest::Directory(n))?;
        let mut response = stub.fetch_with_request(courier::post("https://directory/list", &json!({}))?).await?;
        response_json::<crate::directory::Shard>(&mut response).await
    });
    let shards = futures_util::future::join_all(asks).await.into_iter().collect::<Result<Vec<_>>>()?;
    Ok(crate::directory::Shard::merge(shards))
}

/// `/socket.io/?EIO=4&transport=websocket`: a fresh connection object takes the socket.
async fn socket_io(req: Request, env: &Env, url: &Url) -> Result<Response> {
    let transport = query_param(url, "transport").unwrap_or_default();
    if query_param(url, "EIO").as_deref() != Some("4") {
        return json_response(400, &json!({ "code": 5, "message": "Unsupported protocol version" }));
    }
    if transport != "websocket" {
        // Long-polling is not served at the edge (see NOTES.md).
        return json_response(400, &json!({ "code": 0, "message": "Transport unknown" }));
    }
    if !req.headers().get("upgrade")?.is_some_and(|u| u.eq_ignore_ascii_case("websocket")) {
        return json_response(400, &json!({ "code": 3, "message": "Bad request" }));
    }
    let sid = crate::addr::make_sid(random_u128());
    let stub = env.durable_object(CONN_BINDING)?.id_from_name(&sid)?.get_stub()?;
    let mut forwarded = Request::new_with_init(&format!("https://conn/connect?{}", url.query().unwrap_or("")), &{
        let mut init = RequestInit::new();
        init.with_headers(req.headers().clone());
        init
    })?;
    forwarded.headers_mut()?.set("x-chat-sid", &sid)?;
    stub.fetch_with_request(forwarded).await
}

/// The HTTP API (§9): read and check here, then the caller's user object carries it out.
async fn api(mut req: Request, env: &Env, cfg: &EdgeConfig, url: &Url, path: &str) -> Result<Response> {
    let authorization = req.headers().get("authorization")?;
    let segments: Vec<&str> = path.trim_start_matches("/api/v1/").split('/').collect();
    let method = req.method();
    let decode = |s: &str| percent_decode(s);
    // The body first: too large or not JSON is answered whoever asks (as natively).
    let needs_body = matches!(method, Method::Post | Method::Patch);
    let body = if needs_body {
        let bytes = req.bytes().await.unwrap_or_default();
        if bytes.len() > cfg.limits.max_payload_bytes {
            return core_error(cfg, ChatError::PayloadTooLarge(format!("request body is larger than {} bytes", cfg.limits.max_payload_bytes)));
        }
        if bytes.is_empty() {
            Value::Null
        } else {
            match serde_json::from_slice::<Value>(&bytes) {
                Ok(value) => value,
                Err(error) => return core_error(cfg, ChatError::validation(format!("request body is not valid JSON: {error}"))),
            }
        }
    } else {
        Value::Null
    };
    let call = match (method, segments.as_slice()) {
        (Method::Get, ["chats"]) => HttpRequest::ListChats,
        (Method::Post, ["chats"]) => HttpRequest::CreateChat { body },
        (Method::Patch, ["chats", chat]) => HttpRequest::RenameChat { chat_id: decode(chat), body },
        (Method::Get, ["chats", chat, "messages"]) => HttpRequest::History {
            chat_id: decode(chat),
            after_seq: query_param(url, "afterSeq"),
            before_seq: query_param(url, "beforeSeq"),
            limit: query_param(url, "limit"),
        },
        (Method::Post, ["chats", chat, "members"]) => HttpRequest::AddMember { chat_id: decode(chat), body },
        (Method::Delete, ["chats", chat, "members", user]) => HttpRequest::RemoveMember { chat_id: decode(chat), user_id: decode(user) },
        (Method::Get, ["admin", "sockets"]) => {
            let principal = chat_core::auth::authenticate_bearer(authorization.as_deref(), &cfg.secret, now(), cfg.limits.jwt_leeway_secs);
            return match principal {
                Err(error) => core_error(cfg, error),
                Ok(p) if !p.admin => core_error(cfg, ChatError::forbidden("admin only")),
                Ok(_) => json_response(200, &directory(env, cfg).await?.admin_view()),
            };
        }
        _ => return json_response(404, &json!({ "error": "NOT_FOUND", "message": "no such route" })),
    };
    let principal = match chat_core::auth::authenticate_bearer(authorization.as_deref(), &cfg.secret, now(), cfg.limits.jwt_leeway_secs) {
        Ok(principal) => principal,
        Err(error) => return core_error(cfg, error),
    };
    let stub = env.durable_object(USER_BINDING)?.id_from_name(principal.user.as_str())?.get_stub()?;
    let body = crate::wire::HttpCall { user: principal.user.to_string(), call };
    stub.fetch_with_request(courier::post("https://user/http", &body)?).await
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
