#!/usr/bin/env bash
# Runs the socket.io-client conformance suite (test-harness/conformance) against the Node
# baseline: installs both with `npm ci` when needed, starts the baseline on a free port
# (PORT=0, the port is read from its "listening" log line), runs the suite with the same
# limits the server got, and exits non-zero when any check fails.
# Usage: bench/baseline-node/conformance.sh [websocket|polling ...]   (default: both)
#   websocket: ordinary tests over WebSocket; polling: the whole suite over long-polling.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
SUITE="$ROOT/test-harness/conformance"
modes=("$@")
[ ${#modes[@]} -gt 0 ] || modes=(websocket polling)

if [ ! -d "$HERE/node_modules/socket.io" ]; then (cd "$HERE" && npm ci --no-audit --no-fund); fi
if [ ! -d "$SUITE/node_modules/socket.io-client" ]; then (cd "$SUITE" && npm ci --no-audit --no-fund); fi

# The suite reads the same settings the server gets (short timings keep it quick).
. "$ROOT/scripts/conformance-env.sh" baseline websocket,polling
unset EVENT_BURST EVENT_RATE_PER_SEC # the baseline has no event pace
export LOG_LEVEL="${LOG_LEVEL:-warn}"

log=$(mktemp)
server_pid=""
cleanup() {
    if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
    rm -f "$log"
}
trap cleanup EXIT

status=0
for mode in "${modes[@]}"; do
    case "$mode" in
        websocket|polling) ;;
        *) echo "unknown mode $mode (websocket or polling)" >&2; exit 2 ;;
    esac
    : >"$log"
    BIND=127.0.0.1:0 node "$HERE/src/server.js" >"$log" 2>&1 &
    server_pid=$!
    port=""
    for _ in $(seq 1 100); do
        port=$(sed -n 's/.*"msg":"listening".*"port":\([0-9]*\).*/\1/p' "$log" | head -n1)
        [ -n "$port" ] && break
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.1
    done
    if [ -z "$port" ]; then
        echo "the baseline did not start; its log:" >&2
        cat "$log" >&2
        exit 1
    fi
    printf '\n== conformance suite: Node baseline on port %s, client transport %s\n' "$port" "$mode"
    if ! (cd "$SUITE" && CHAT_URL="http://127.0.0.1:$port" CHAT_CLIENT_TRANSPORT="$mode" npm test --silent); then
        status=1
    fi
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
done
exit $status
