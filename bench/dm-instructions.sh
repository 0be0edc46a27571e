#!/usr/bin/env bash
# User-space instructions per acked DM send, counted by valgrind's callgrind: the same
# count for the same binary and load whatever else the machine is doing (CPU time per
# send is not: a virtual machine's steal time and a busy neighbour move it by 10-50 %).
# The server runs under callgrind (far slower: keep the rate low), its counters are zeroed
# once the pairs have joined and read when the load ends. Kernel work is not counted.
# Usage: bench/dm-instructions.sh [RATE] [SECONDS] [PAIRS]     (BIN=target/release, OUT=dir)
set -euo pipefail
cd "$(dirname "$0")/.."
RATE=${1:-50}
SECONDS_=${2:-10}
PAIRS=${3:-50}
BIN=${BIN:-target/release}
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"
export JWT_SECRET=x RATE_LIMIT_MESSAGES=1000000000 RATE_LIMIT_WINDOW_MS=1000 EVENT_BURST=1000000000 EVENT_RATE_PER_SEC=1000000000 RUST_LOG=${RUST_LOG:-warn}
PORT=$(( 10000 + RANDOM % 20000 ))
data=$(mktemp -d)
env -u DATABASE_URL CHAT_DATA_DIR="$data" BIND="127.0.0.1:$PORT" \
    valgrind --tool=callgrind --callgrind-out-file="$OUT/callgrind.out" "$BIN/chat-server" serve >"$OUT/server.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$data"' EXIT
for _ in $(seq 1 600); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done
"$BIN/chat-load" --addr "127.0.0.1:$PORT" dms --pairs "$PAIRS" --rate "$RATE" --duration "$SECONDS_" --warmup 0 --drain-ms 20000 \
    >"$OUT/load.json" 2>"$OUT/load.log" &
load=$!
until grep -q "pairs joined" "$OUT/load.log" 2>/dev/null; do kill -0 $load 2>/dev/null || break; sleep 0.05; done
callgrind_control -z "$pid" >/dev/null
wait $load || true
callgrind_control -d "$pid" >/dev/null
sleep 1
acked=$(jq -r '.acked' "$OUT/load.json")
jq -c '{acked, lost, errors}' "$OUT/load.json"
# The dump after the zeroing is the last file callgrind wrote (one per dump, numbered).
dump=$(ls -t "$OUT"/callgrind.out* | head -1)
total=$(awk '/^(summary|totals):/ {print $2; exit}' "$dump")
awk -v t="$total" -v n="$acked" 'BEGIN { printf "instructions: %d for %d acked sends: %.0f per send\n", t, n, t / n }'
echo "profile: $dump (callgrind_annotate it)"
