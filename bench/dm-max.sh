#!/usr/bin/env bash
# DM find-max against a fresh server pinned to SERVER_CORE (the load generator on
# LOAD_CORE), with the server's CPU time over the whole run. Usage: bench/dm-max.sh [START] [PAIRS]
set -euo pipefail
cd "$(dirname "$0")/.."
START=${1:-3000}; PAIRS=${2:-500}; KIND=${KIND:-native}; BIN=${BIN:-target/release}
export JWT_SECRET=x RATE_LIMIT_MESSAGES=1000000000 RATE_LIMIT_WINDOW_MS=1000 EVENT_BURST=1000000000 EVENT_RATE_PER_SEC=1000000000 RUST_LOG=${RUST_LOG:-warn}
PORT=$(( 10000 + RANDOM % 20000 )); data=$(mktemp -d)
case $KIND in
    native) env -u DATABASE_URL CHAT_DATA_DIR="$data" BIND="127.0.0.1:$PORT" taskset -c "${SERVER_CORE:-0}" "$BIN/chat-server" serve >/dev/null 2>&1 & ;;
    echo) BIND="127.0.0.1:$PORT" taskset -c "${SERVER_CORE:-0}" "$BIN/chat-echo" >/dev/null 2>&1 & ;;
    node) BIND="127.0.0.1:$PORT" NODE_ENV=production LOG_LEVEL=warn taskset -c "${SERVER_CORE:-0}" node bench/baseline-node/src/server.js >/dev/null 2>&1 & ;;
esac
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$data"' EXIT
for _ in $(seq 1 300); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done
taskset -c "${LOAD_CORE:-1}" "$BIN/chat-load" --addr "127.0.0.1:$PORT" dms --pairs "$PAIRS" --rate "$START" --duration "${STEP_SECONDS:-5}" --find-max 2>/dev/null \
  | jq -c '{max_rate, best_p99: .best.latency_ms.p99, steps: [.steps[] | "\(.rate|floor):\(if .held then "ok" else "x" end)"]}'
