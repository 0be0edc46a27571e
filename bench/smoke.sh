#!/usr/bin/env bash
# CI smoke of the load generator: every scenario for a couple of seconds at tiny scale
# against the debug chat-server (fresh SQLite directory) and against chat-echo; each run
# must exit 0, which chat-load does only when nothing was lost or errored. Not a benchmark.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
# The whole workspace, so features unify as in `cargo test --workspace` and nothing rebuilds.
[ -n "${SMOKE_NO_BUILD:-}" ] || cargo build --workspace --bins
export JWT_SECRET="smoke-$RANDOM-$RANDOM" RATE_LIMIT_MESSAGES=1000000 RATE_LIMIT_WINDOW_MS=1000 EVENT_BURST=1000000000 EVENT_RATE_PER_SEC=1000000000 RUST_LOG=warn
work=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

start() { # kind
    PORT=$(( 10000 + RANDOM % 20000 ))
    if [ "$1" = native ]; then
        env -u DATABASE_URL CHAT_DATA_DIR="$work/data-$PORT" BIND="127.0.0.1:$PORT" "$ROOT/target/debug/chat-server" serve >"$work/$1.log" 2>&1 &
    else
        BIND="127.0.0.1:$PORT" "$ROOT/target/debug/chat-echo" >"$work/$1.log" 2>&1 &
    fi
    pid=$!
    for _ in $(seq 1 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then return 0; fi
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    echo "smoke: $1 did not start:" >&2; cat "$work/$1.log" >&2; exit 1
}

load() { "$ROOT/target/debug/chat-load" --addr "127.0.0.1:$PORT" --server-pid "$pid" "$@"; }

for kind in native echo; do
    start "$kind"
    echo "== load generator smoke against $kind"
    load fanout --members 5 --senders 2 --rate 50 --duration 2 --warmup 1
    load dms --pairs 5 --rate 50 --duration 2 --warmup 1
    load idle --conns 20 --hold 1
    load connect-storm --conns 100 --concurrency 16
    kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
done
