#!/usr/bin/env bash
# 100k idle connections on one machine whose processes may hold only 20,000 descriptors
# each (RLIMIT_NOFILE's hard limit here, with no CAP_SYS_RESOURCE to raise it): the native
# server runs as a cluster of NODES processes (cluster mode: Postgres + Redis), all pinned
# to one core, and NODES load generators (pinned to the other) each hold CONNS/NODES idle
# sockets on one of them. Prints one JSON line per process and a total: connections held,
# the servers' RSS growth summed, bytes per connection. See bench/README.md.
# Usage: bench/idle-cluster.sh    Knobs (env): CONNS (100000), NODES (6), HOLD (10 s),
# CONCURRENCY (64 handshakes at once per generator), SERVER_CORE (0), LOAD_CORE (1),
# REDIS_URL (redis://127.0.0.1:6379), KEEP_LOGS (a directory to copy the servers' logs to).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
CONNS=${CONNS:-100000}
NODES=${NODES:-6}
HOLD=${HOLD:-10}
CONCURRENCY=${CONCURRENCY:-64}
SERVER_CORE=${SERVER_CORE:-0}
LOAD_CORE=${LOAD_CORE:-1}
export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
export JWT_SECRET="bench-$RANDOM-$RANDOM-$RANDOM"
export RUST_LOG=${RUST_LOG:-warn}
ulimit -n "$(ulimit -Hn)"

echo "== building chat-server and the load generator (release)" >&2
cargo build --release -q -p chat-native -p chat-loadgen
BIN=$ROOT/target/release/chat-server
LOAD=$ROOT/target/release/chat-load

work=$(mktemp -d)
db="chat_idle_$$_$RANDOM"
export CHAT_CLUSTER_PREFIX="chat-idle-$$-$RANDOM"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [ -n "${KEEP_LOGS:-}" ]; then mkdir -p "$KEEP_LOGS" && cp "$work"/*.log "$work"/*.json "$KEEP_LOGS"/ 2>/dev/null || true; fi
    psql -q -h 127.0.0.1 -U postgres -d test -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
    redis-cli -u "$REDIS_URL" --scan --pattern "$CHAT_CLUSTER_PREFIX:*" 2>/dev/null | xargs -r redis-cli -u "$REDIS_URL" del >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
psql -q -h 127.0.0.1 -U postgres -d test -c "CREATE DATABASE $db" >/dev/null
export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$db"
"$BIN" migrate >/dev/null

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
base=$((20000 + RANDOM % 10000))
while ! port_free "$base"; do base=$((base + NODES)); done
for i in $(seq 0 $((NODES - 1))); do
    BIND="127.0.0.1:$((base + i))" CHAT_DATA_DIR="$work/$i" taskset -c "$SERVER_CORE" "$BIN" serve >"$work/server-$i.log" 2>&1 &
    pids+=($!)
done
for i in $(seq 0 $((NODES - 1))); do
    for _ in $(seq 1 150); do
        curl -sf "http://127.0.0.1:$((base + i))/healthz" >/dev/null 2>&1 && break
        sleep 0.1
    done
done
sleep 2 # every process sees the others

per=$((CONNS / NODES))
loads=()
for i in $(seq 0 $((NODES - 1))); do
    taskset -c "$LOAD_CORE" "$LOAD" --addr "127.0.0.1:$((base + i))" --server-pid "${pids[$i]}" --label "node-$i" \
        --concurrency "$CONCURRENCY" idle --conns "$per" --hold "$HOLD" >"$work/load-$i.json" 2>"$work/load-$i.log" &
    loads+=($!)
done
failed=0
for pid in "${loads[@]}"; do wait "$pid" || failed=1; done
for i in $(seq 0 $((NODES - 1))); do cat "$work/load-$i.json"; done
python3 - "$work" "$NODES" <<'EOF'
import json, sys
work, nodes = sys.argv[1], int(sys.argv[2])
runs = [json.load(open(f"{work}/load-{i}.json")) for i in range(nodes)]
held = sum(r["held"] for r in runs)
conns = sum(r["conns"] for r in runs)
growth_kb = sum(r["server_rss_after_kb"] - r["server_rss_before_kb"] for r in runs)
rss_kb = sum(r["server_rss_after_kb"] for r in runs)
print(json.dumps({"scenario": "idle-cluster", "processes": nodes, "conns": conns, "held": held,
                  "server_rss_after_kb": rss_kb, "server_rss_growth_kb": growth_kb,
                  "bytes_per_conn": round(growth_kb * 1024 / max(held, 1)),
                  "passed": held == conns and all(r["passed"] for r in runs)}))
EOF
exit $failed
