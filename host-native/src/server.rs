//! `chat-server serve`: storage, the core's driver, Socket.IO and HTTP on one port.

use crate::cluster::{self, wire::Naming};
use crate::config::ServeArgs;
use crate::driver::{Driver, HostInput};
use crate::http::{routes, HttpState};
use crate::metrics::Metrics;
use crate::secret;
use crate::socketio::{self, session::Frame, Transport};
use crate::store::Store;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

/// Opens (creating and migrating) the configured database.
pub async fn open_store(args: &crate::config::StorageArgs) -> anyhow_like::Result<Store> {
    if args.database_url.is_none() {
        std::fs::create_dir_all(&args.data_dir)
            .map_err(|error| format!("cannot create the data directory {}: {error}", args.data_dir.display()))?;
    }
    let url = args.database_url();
    let store = Store::connect(&url).await.map_err(|error| format!("cannot open the database: {error}"))?;
    store.migrate().await.map_err(|error| format!("cannot migrate the database: {error}"))?;
    Ok(store)
}

pub async fn serve(args: ServeArgs) -> anyhow_like::Result<()> {
    let mut limits = args.limits.to_limits();
    if args.cluster.redis_url.is_some() {
        // A chat's answer to a send is lost when its process dies: stop waiting after 10 s.
        limits.send_answer_timeout_ms = Some(10_000);
    }
    let namespace = normalise_namespace(&args.namespace);
    let demo = args.demo_mode();
    // The effective configuration, secrets redacted (the database password too).
    tracing::info!(
        bind = %args.bind,
        database = %args.storage.redacted_database_url(),
        data_dir = %args.storage.data_dir.display(),
        namespace = %namespace,
        demo = %demo,
        jwt_secret = if args.jwt_secret.as_deref().is_some_and(|s| !s.is_empty()) { "<redacted> (JWT_SECRET)" } else { "<redacted> (data directory)" },
        limits = ?limits,
        "starting chat-server"
    );
    let store = open_store(&args.storage).await?;
    let secret = secret::load_or_create(args.jwt_secret.as_deref(), &args.storage.data_dir)
        .map_err(|error| format!("cannot read or create the JWT secret: {error}"))?;
    tracing::info!(storage = store.backend(), "storage is ready");
    crate::demo::log_mode(demo, args.bind);
    let demo_routes = crate::demo::routes(demo, &namespace, secret.clone());

    let metrics = Arc::new(Metrics::default());
    let node = match &args.cluster.redis_url {
        Some(_) if store.backend() != "postgres" => {
            return Err("REDIS_URL (cluster mode) needs DATABASE_URL on Postgres: processes on several machines cannot share one SQLite file".into())
        }
        Some(_) => Some(cluster::new_node_id()?),
        None => None,
    };
    let naming = node.map_or_else(Naming::solo, Naming::cluster);
    let (mut driver, handle) =
        Driver::new(limits.clone(), secret, store.clone(), namespace.clone(), metrics.clone(), naming.clone());
    if let (Some(url), Some(node)) = (&args.cluster.redis_url, node) {
        let (link, live) = cluster::join(&args.cluster, url, node, handle.clone()).await?;
        driver.join_cluster(link, live);
    }
    let driver_task = tokio::spawn(driver.run());
    let settings = socketio::Settings {
        namespace: namespace.clone(),
        ping_interval: Duration::from_millis(args.ping_interval_ms),
        ping_timeout: Duration::from_millis(args.ping_timeout_ms),
        connect_timeout: Duration::from_millis(args.connect_timeout_ms),
        max_payload: limits.max_payload_bytes,
    };
    let transport = Transport::new(settings, handle.clone(), naming);
    let socket_io = axum::Router::new()
        .route(&format!("{}/", socketio::PATH), axum::routing::any(socketio::entry))
        .route(socketio::PATH, axum::routing::any(socketio::entry))
        .with_state(transport.clone());

    let router = routes(HttpState { driver: handle.clone(), store, metrics, max_payload_bytes: limits.max_payload_bytes })
        .merge(socket_io)
        .merge(demo_routes);
    let listener = listen(args.bind).map_err(|error| format!("cannot listen on {}: {error}", args.bind))?;
    tracing::info!(address = %args.bind, "listening");

    let disconnect = Frame::from(chat_sio_codec::SocketPacket::Disconnect { nsp: namespace }.to_frame());
    axum::serve(crate::write_stall::GuardedListener::new(listener, crate::write_stall::WRITE_STALL_LIMIT), router)
        .with_graceful_shutdown(async move {
            shutdown_signal().await;
            tracing::info!("shutting down: finishing in-flight commits, then closing sockets");
            let (done, drained) = oneshot::channel();
            handle.send(HostInput::Drain { done });
            let _ = tokio::time::timeout(Duration::from_secs(10), drained).await;
            transport.close_all(&disconnect, Duration::from_secs(2)).await;
        })
        .await
        .map_err(|error| format!("server error: {error}"))?;
    driver_task.abort();
    tracing::info!("stopped");
    Ok(())
}

/// `CHAT_NAMESPACE` with exactly one leading slash.
pub fn normalise_namespace(namespace: &str) -> String {
    format!("/{}", namespace.trim().trim_start_matches('/'))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

/// Errors at start-up are one readable line each.
pub mod anyhow_like {
    pub type Result<T> = std::result::Result<T, String>;
}

/// Connections the kernel holds for `accept`. std's default, 128, overflowed in a connect
/// storm of 256 concurrent handshakes, and each overflow cost that client a 1 s SYN
/// retransmission; Node.js and nginx ask for 511.
const LISTEN_BACKLOG: u32 = 1024;

fn listen(address: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if address.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    // As std does for a listener: a restart may bind while old connections linger.
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(LISTEN_BACKLOG)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_get_one_leading_slash() {
        assert_eq!(normalise_namespace("/"), "/");
        assert_eq!(normalise_namespace(""), "/");
        assert_eq!(normalise_namespace("api/v1/sockets"), "/api/v1/sockets");
        assert_eq!(normalise_namespace("/api/v1/sockets"), "/api/v1/sockets");
    }
}

