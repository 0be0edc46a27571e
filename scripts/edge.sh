#!/usr/bin/env bash
# The edge host under local `wrangler dev` (workerd, no network needed).
#   scripts/edge.sh serve        build, then serve on 127.0.0.1:${PORT:-8787} (state in ${PERSIST:-.wrangler/state})
#   scripts/edge.sh test         build, then the conformance suite (websocket) and the restart durability check
#   scripts/edge.sh durability   build, then only the durability check
#   scripts/edge.sh config       build, then write the wrangler dev config (for bench/run.sh)
# Tools come from scripts/edge-tools.sh (installed once into a cache).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
mode=${1:-serve}
eval "$(scripts/edge-tools.sh --env)"
if [ "${EDGE_SKIP_BUILD:-0}" != 1 ]; then
    bash scripts/edge-build.sh
fi

# wrangler dev from the prebuilt bundle: the same config without its [build] step
# (a start then takes a second or two instead of a rebuild).
DEV_CONFIG="$ROOT/host-cloudflare/build/wrangler.dev.toml"
awk '
    /^\[build\]/ { skip = 1; next }
    /^\[/ { skip = 0 }
    skip { next }
    /^main = / { print "main = \"index.js\""; next }
    { print }
' wrangler.toml > "$DEV_CONFIG"

wrangler_pid=""
start_wrangler() { # port persist-dir log
    local port=$1 persist=$2 logfile=$3
    shift 3
    # Its own process group, so that stopping it stops workerd too.
    setsid "$WRANGLER_BIN" dev --config "$DEV_CONFIG" --ip 127.0.0.1 --port "$port" --persist-to "$persist" \
        --inspector-port 0 --show-interactive-dev-session=false --log-level "${WRANGLER_LOG:-warn}" "$@" >"$logfile" 2>&1 </dev/null &
    wrangler_pid=$!
    for _ in $(seq 1 300); do
        if curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then return 0; fi
        if ! kill -0 "$wrangler_pid" 2>/dev/null; then break; fi
        sleep 0.1
    done
    echo "wrangler dev did not start; its log:" >&2
    cat "$logfile" >&2
    return 1
}
stop_wrangler() {
    if [ -n "$wrangler_pid" ]; then
        kill -TERM -- "-$wrangler_pid" 2>/dev/null || true
        wait "$wrangler_pid" 2>/dev/null || true
        wrangler_pid=""
    fi
}

limit_vars() {
    local args=()
    for name in JWT_SECRET CHAT_NAMESPACE MAX_SOCKETS_PER_USER RATE_LIMIT_MESSAGES RATE_LIMIT_WINDOW_MS TYPING_TIMEOUT_MS PRESENCE_THROTTLE_MS MAX_PAYLOAD_BYTES EVENT_BURST EVENT_RATE_PER_SEC; do
        if [ -n "${!name:-}" ]; then args+=(--var "$name:${!name}"); fi
    done
    printf '%s\n' "${args[@]}"
}

case "$mode" in
config)
    # The bundle and $DEV_CONFIG are written above; bench/run.sh starts wrangler dev itself.
    echo "edge dev config: $DEV_CONFIG" >&2
    ;;
serve)
    export JWT_SECRET=${JWT_SECRET:-dev-secret-change-me}
    mapfile -t vars < <(limit_vars)
    echo "edge host on http://127.0.0.1:${PORT:-8787} (JWT_SECRET=$JWT_SECRET)"
    exec "$WRANGLER_BIN" dev --config "$DEV_CONFIG" --ip 127.0.0.1 --port "${PORT:-8787}" --persist-to "${PERSIST:-$ROOT/.wrangler/state}" "${vars[@]}"
    ;;
test | durability)
    SUITE="$ROOT/test-harness/conformance"
    if [ ! -d "$SUITE/node_modules/socket.io-client" ]; then
        (cd "$SUITE" && npm ci --no-audit --no-fund)
    fi
    . "$ROOT/scripts/conformance-env.sh" edge-conformance websocket
    mapfile -t vars < <(limit_vars)
    work=$(mktemp -d)
    trap 'stop_wrangler; rm -rf "$work"' EXIT
    # A port nobody holds now (other people's servers run on this machine too).
    port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
    status=0
    if [ "$mode" = test ]; then
        printf '\n== conformance suite: edge host under wrangler dev (websocket)\n'
        start_wrangler "$port" "$work/state" "$work/wrangler.log" "${vars[@]}"
        (cd "$SUITE" && CHAT_URL="http://127.0.0.1:$port" npm test --silent) || status=$?
        stop_wrangler
    fi
    printf '\n== durability: acked messages survive a wrangler dev restart (same --persist-to)\n'
    RATE_LIMIT_WINDOW_MS=10000 DEV_CONFIG="$DEV_CONFIG" PERSIST="$work/state-durable" \
        node "$ROOT/test-harness/edge/durability.mjs" || status=$?
    exit $status
    ;;
*)
    echo "usage: scripts/edge.sh [serve|test|durability|config]" >&2
    exit 2
    ;;
esac
