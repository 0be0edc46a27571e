#!/usr/bin/env bash
# The server's CPU cost per acked DM send: a fresh server pinned to SERVER_CORE, the load
# generator on LOAD_CORE, P pairs at a fixed rate; the server's utime+stime (from
# /proc/PID/stat) is read when setup is done and when the run ends, and divided by the
# acked sends. CPU time per message is far less sensitive to other load on the machine
# than a rate or a latency is (both still printed).
# Usage: bench/dm-cost.sh [RATE] [SECONDS] [PAIRS]     (KIND=native|echo|node, BIN=target/release)
# Extra server env (e.g. PERF=1 records a cpu-clock profile to $OUT/perf.data).
set -euo pipefail
cd "$(dirname "$0")/.."
RATE=${1:-3000}
SECONDS_=${2:-5}
PAIRS=${3:-500}
KIND=${KIND:-native}
BIN=${BIN:-target/release}
SERVER_CORE=${SERVER_CORE:-0}
LOAD_CORE=${LOAD_CORE:-1}
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"
export JWT_SECRET=x RATE_LIMIT_MESSAGES=1000000000 RATE_LIMIT_WINDOW_MS=1000 EVENT_BURST=1000000000 EVENT_RATE_PER_SEC=1000000000 RUST_LOG=${RUST_LOG:-warn}
PORT=$(( 10000 + RANDOM % 20000 ))
data=$(mktemp -d)
case $KIND in
    native) env -u DATABASE_URL CHAT_DATA_DIR="$data" BIND="127.0.0.1:$PORT" ${PRELOAD:+env LD_PRELOAD=$PRELOAD} taskset -c "$SERVER_CORE" "$BIN/chat-server" serve >"$OUT/server.log" 2>&1 & ;;
    echo) BIND="127.0.0.1:$PORT" taskset -c "$SERVER_CORE" "$BIN/chat-echo" >"$OUT/server.log" 2>&1 & ;;
    node) BIND="127.0.0.1:$PORT" NODE_ENV=production LOG_LEVEL=warn taskset -c "$SERVER_CORE" node bench/baseline-node/src/server.js >"$OUT/server.log" 2>&1 & ;;
esac
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$data"' EXIT
for _ in $(seq 1 300); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done
ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
kernel_ticks() { awk '{print $15}' "/proc/$pid/stat"; }
switches() { cat /proc/"$pid"/task/*/status 2>/dev/null | awk '/ctxt_switches/ {n += $2} END {print n}'; }
taskset -c "$LOAD_CORE" "$BIN/chat-load" --addr "127.0.0.1:$PORT" dms --pairs "$PAIRS" --rate "$RATE" --duration "$SECONDS_" --warmup 0 \
    >"$OUT/load.json" 2>"$OUT/load.log" &
load=$!
until grep -q "pairs joined" "$OUT/load.log" 2>/dev/null; do kill -0 $load 2>/dev/null || break; sleep 0.05; done
before=$(ticks); sw_before=$(switches); kernel_before=$(kernel_ticks)
if [ -n "${PERF:-}" ]; then
    perf record -e cpu-clock -F 999 -g --call-graph dwarf,16384 -p "$pid" -o "$OUT/perf.data" -- sleep "$SECONDS_" >/dev/null 2>&1 &
fi
wait $load || true
after=$(ticks); sw_after=$(switches); kernel_after=$(kernel_ticks)
hz=$(getconf CLK_TCK)
acked=$(jq -r '.best.acked // .acked' "$OUT/load.json")
jq -c '{acked_per_s: (.best.acked_per_s // .acked_per_s), lost: (.best.lost // .lost), p99: (.best.latency_ms.p99 // .latency_ms.p99), ack_p99: (.best.ack_ms.p99 // .ack_ms.p99), errors: (.best.errors // .errors)}' "$OUT/load.json"
awk -v b="$before" -v a="$after" -v hz="$hz" -v n="$acked" -v k="$KIND" \
    'BEGIN { cpu = (a - b) / hz; printf "%s: server CPU %.2f s for %d acked sends: %.1f CPU-us/send (%.0f sends per CPU-second)\n", k, cpu, n, cpu * 1e6 / n, n / cpu }'
awk -v b="$kernel_before" -v a="$kernel_after" -v t=$((after - before)) 'BEGIN { if (t > 0) printf "in the kernel: %.0f %% of that CPU\n", 100 * (a - b) / t }'
awk -v b="$sw_before" -v a="$sw_after" -v n="$acked" 'BEGIN { printf "context switches (live threads): %.2f per send\n", (a - b) / n }'
echo "out: $OUT"
