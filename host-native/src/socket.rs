//! Socket.IO wiring: handshakes, events and disconnects become driver inputs.

use crate::cluster::wire::Naming;
use crate::driver::{DriverHandle, HostInput};
use crate::query::query_param;
use chat_core::auth::Handshake;
use serde_json::Value;
use socketioxide::extract::{AckSender, Event, SocketRef, TryData};
use socketioxide::handler::ConnectHandler;
use socketioxide::SocketIo;
use tokio::sync::oneshot;

/// Serves the chat namespace on `io`.
pub fn attach(io: &SocketIo, namespace: String, driver: DriverHandle, naming: Naming) {
    let on_connected = {
        let driver = driver.clone();
        let naming = naming.clone();
        move |socket: SocketRef| {
            let driver = driver.clone();
            let naming = naming.clone();
            async move {
                driver.send(HostInput::Connected { socket: naming.socket(&socket.id.to_string()) });
            }
        }
    };
    let authenticate = move |socket: SocketRef, TryData(auth): TryData<Value>| {
        let driver = driver.clone();
        let naming = naming.clone();
        async move {
            // Handlers go on before the CONNECT packet leaves, so no early event is lost.
            register_handlers(&socket, driver.clone(), naming);
            let parts = socket.req_parts();
            let handshake = Handshake {
                auth: auth.ok().filter(|auth| !auth.is_null()),
                authorization_header: crate::http::authorization(&parts.headers),
                query_token: parts.uri.query().and_then(|query| query_param(query, "token")),
            };
            let (done, verdict) = oneshot::channel();
            driver.send(HostInput::Connect { socket: socket.clone(), handshake, done });
            match verdict.await {
                Ok(result) => result,
                Err(_) => Err(crate::driver::ConnectRefusal { code: "INTERNAL" }),
            }
        }
    };
    io.ns(namespace, on_connected.with(authenticate));
}

fn register_handlers(socket: &SocketRef, driver: DriverHandle, naming: Naming) {
    let events = driver.clone();
    let id = naming.socket(&socket.id.to_string());
    let event_id = id.clone();
    socket.on_fallback(move |Event(event): Event, TryData(payload): TryData<Value>, ack: AckSender| {
        let driver = events.clone();
        let socket = event_id.clone();
        async move {
            // A payload the parser cannot read is still an event: the core answers it.
            let payload = payload.unwrap_or(Value::Null);
            driver.send(HostInput::Event { socket, event, payload, ack });
        }
    });
    socket.on_disconnect(move || {
        let driver = driver.clone();
        let socket = id.clone();
        async move {
            driver.send(HostInput::Disconnect { socket });
        }
    });
}
