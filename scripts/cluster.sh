#!/usr/bin/env bash
# Cluster mode (issue 5): three chat-server processes on the machine's Postgres (a fresh
# database) and Redis (a fresh key prefix), then
#   1. the conformance suite with each test's sockets and HTTP calls spread over the three
#      (CHAT_URLS: sender and receivers on different processes);
#   2. the failure test (test-harness/cluster/failover.mjs): kill -9 of one process under
#      load, reconnects and catch-up, restart; nothing lost, nothing duplicated.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
SUITE="$ROOT/test-harness/conformance"
BIN="$ROOT/target/debug/chat-server"
REDIS_BASE="${CLUSTER_REDIS_URL:-redis://127.0.0.1:6379}"

cargo build --workspace --bins
if [ ! -d "$SUITE/node_modules/socket.io-client" ]; then
    (cd "$SUITE" && npm ci --no-audit --no-fund)
fi

. "$ROOT/scripts/conformance-env.sh" cluster websocket,polling
export RUST_LOG="${RUST_LOG:-warn}"

work=$(mktemp -d)
pids=()
dbs=()
prefixes=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for db in "${dbs[@]}"; do
        psql -q -h 127.0.0.1 -U postgres -d test -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
    done
    for prefix in "${prefixes[@]}"; do
        redis-cli -h 127.0.0.1 --scan --pattern "$prefix:*" 2>/dev/null | xargs -r redis-cli -h 127.0.0.1 del >/dev/null 2>&1 || true
    done
    rm -rf "$work"
}
trap cleanup EXIT

fresh() { # sets DATABASE_URL and CHAT_CLUSTER_PREFIX for one run
    local name="chat_cluster_$$_$RANDOM"
    psql -q -h 127.0.0.1 -U postgres -d test -c "CREATE DATABASE $name" >/dev/null
    dbs+=("$name")
    export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$name"
    export CHAT_CLUSTER_PREFIX="chat-ci-$$-$RANDOM"
    prefixes+=("$CHAT_CLUSTER_PREFIX")
    export REDIS_URL="$REDIS_BASE"
}

printf '\n== cluster: conformance suite over three processes (Postgres + Redis)\n'
fresh
"$BIN" migrate >/dev/null
# Three ports nothing listens on, below the ephemeral range (32768+), where client
# sockets (ours, Postgres', Redis') could already hold a port.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
while :; do
    base=$((20000 + RANDOM % 10000))
    port_free "$base" && port_free $((base + 1)) && port_free $((base + 2)) && break
done
urls=()
for i in 0 1 2; do
    port=$((base + i))
    BIND="127.0.0.1:$port" CHAT_DATA_DIR="$work/$i" "$BIN" serve >"$work/server-$i.log" 2>&1 &
    pids+=($!)
    urls+=("http://127.0.0.1:$port")
done
for i in 0 1 2; do
    for _ in $(seq 1 150); do
        if curl -sf "${urls[$i]}/healthz" >/dev/null 2>&1; then break; fi
        if ! kill -0 "${pids[$i]}" 2>/dev/null; then break; fi
        sleep 0.1
    done
    if ! curl -sf "${urls[$i]}/healthz" >/dev/null 2>&1; then
        echo "chat-server $i did not start; its log:" >&2
        cat "$work/server-$i.log" >&2
        exit 1
    fi
done
sleep 1.5 # every process sees the other two
if ! (cd "$SUITE" && CHAT_URLS="$(IFS=,; echo "${urls[*]}")" npm test --silent); then
    for i in 0 1 2; do echo "--- server $i log (tail)" >&2; tail -n 40 "$work/server-$i.log" >&2; done
    exit 1
fi
for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
pids=()

printf '\n== cluster: kill -9 of one of three processes under load\n'
fresh
"$BIN" migrate >/dev/null
CHAT_SERVER_BIN="$BIN" node "$ROOT/test-harness/cluster/failover.mjs"
