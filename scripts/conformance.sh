#!/usr/bin/env bash
# Runs the socket.io-client conformance suite against the native host, once on SQLite and
# once on Postgres (a fresh database per run), with short timings so it stays quick; then,
# on the same backend, the kill -9 durability test (test-harness/native/durability.mjs), and
# on Postgres the storage-fault test (test-harness/native/storage-faults.mjs).
# Usage: scripts/conformance.sh [sqlite|postgres ...]   (default: both)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
SUITE="$ROOT/test-harness/conformance"
BIN="$ROOT/target/debug/chat-server"
backends=("$@")
[ ${#backends[@]} -gt 0 ] || backends=(sqlite postgres)

# The whole workspace, so features unify as in `cargo test --workspace` and nothing rebuilds.
cargo build --workspace --bins
if [ ! -d "$SUITE/node_modules/socket.io-client" ]; then
    (cd "$SUITE" && npm ci --no-audit --no-fund)
fi

# The suite reads the same settings the server gets.
. "$ROOT/scripts/conformance-env.sh" conformance websocket,polling
export RUST_LOG="${RUST_LOG:-warn}"

work=$(mktemp -d)
server_pid=""
pg_db=""
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
    [ -n "$pg_db" ] && psql -q -h 127.0.0.1 -U postgres -d test -c "DROP DATABASE IF EXISTS $pg_db WITH (FORCE)" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

start_server() { # port, data dir, database url or ""
    local port=$1 dir=$2 url=$3
    if [ -n "$url" ]; then
        DATABASE_URL="$url" CHAT_DATA_DIR="$dir" BIND="127.0.0.1:$port" "$BIN" serve >"$dir.log" 2>&1 &
    else
        env -u DATABASE_URL CHAT_DATA_DIR="$dir" BIND="127.0.0.1:$port" "$BIN" serve >"$dir.log" 2>&1 &
    fi
    server_pid=$!
    for _ in $(seq 1 100); do
        if curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then return 0; fi
        if ! kill -0 "$server_pid" 2>/dev/null; then break; fi
        sleep 0.1
    done
    echo "chat-server did not start; its log:" >&2
    cat "$dir.log" >&2
    exit 1
}

stop_server() {
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
}

port=39$((RANDOM % 90 + 10))
for backend in "${backends[@]}"; do
    url=""
    if [ "$backend" = postgres ]; then
        pg_db="chat_conformance_$$_$(date +%s)"
        psql -q -h 127.0.0.1 -U postgres -d test -c "CREATE DATABASE $pg_db" >/dev/null
        url="postgres://postgres@127.0.0.1:5432/$pg_db"
    fi
    printf '\n== conformance suite: native host on %s\n' "$backend"
    start_server "$port" "$work/$backend" "$url"
    (cd "$SUITE" && CHAT_URL="http://127.0.0.1:$port" npm test --silent)
    stop_server
    printf '\n== durability (kill -9 under load): native host on %s\n' "$backend"
    if [ -n "$url" ]; then
        CHAT_SERVER_BIN="$BIN" DATABASE_URL="$url" node "$ROOT/test-harness/native/durability.mjs"
    else
        env -u DATABASE_URL CHAT_SERVER_BIN="$BIN" node "$ROOT/test-harness/native/durability.mjs"
    fi
    if [ "$backend" = postgres ]; then
        printf '\n== storage faults (database unreachable, then read-only): native host on postgres\n'
        CHAT_SERVER_BIN="$BIN" node "$ROOT/test-harness/native/storage-faults.mjs"
    fi
    if [ -n "$pg_db" ]; then
        psql -q -h 127.0.0.1 -U postgres -d test -c "DROP DATABASE IF EXISTS $pg_db WITH (FORCE)" >/dev/null
        pg_db=""
    fi
    port=$((port + 1))
done
