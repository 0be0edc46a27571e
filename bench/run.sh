#!/usr/bin/env bash
# Runs every benchmark scenario against the Node.js baseline, our chat-server (release,
# SQLite in a fresh data directory) and the echo server (the load generator's ceiling),
# a fresh server per measurement, the server pinned to one core and the load generator to
# the other; prints the figures side by side and records them in bench/README.md.
# SERVERS=edge adds the edge host under local `wrangler dev` (workerd; for reference only,
# no target): fan-out, DMs and the connect storm; not idle (see bench/README.md).
# Usage: bench/run.sh            (full scales, ~15-25 min)
#        QUICK=1 bench/run.sh    (small scales, a few minutes)
# Knobs (env): NODE_SERVER, SERVER_CORE, LOAD_CORE, IDLE_CONNS, IDLE_BIG, STORM_CONNS,
# FANOUT_MEMBERS, FANOUT_SENDERS, FANOUT_START, DM_PAIRS, DM_START, STEP_SECONDS,
# SERVERS (default "node native echo"; "edge" too), SCENARIOS (default "idle idle-big storm fanout dms").
# Edge knobs (it is far slower locally, so smaller scales): EDGE_FANOUT_START (1 send/s),
# EDGE_FANOUT_SMALL (10: a second fan-out with that many members; 0 skips), EDGE_DM_PAIRS
# (50), EDGE_DM_START (10), EDGE_STORM_CONNS (500), EDGE_MAX_P99_MS (100, the native bound;
# find-max's latency bound for the edge), EDGE_INSPECTOR (1: `wrangler dev` as
# scripts/edge.sh runs it; 0: wrangler's API with the devtools inspector off, bench/edge-dev.mjs).
# EDGE_SKIP_BUILD=1 uses the bundle already in host-cloudflare/build (scripts/edge.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

NODE_SERVER=${NODE_SERVER:-$ROOT/bench/baseline-node/server.mjs}
SERVER_CORE=${SERVER_CORE:-0}
LOAD_CORE=${LOAD_CORE:-1}
SERVERS=${SERVERS:-"node native echo"}
SCENARIOS=${SCENARIOS:-"idle idle-big storm fanout dms"}
if [ -n "${QUICK:-}" ]; then
    IDLE_CONNS=${IDLE_CONNS:-2000}; IDLE_BIG=${IDLE_BIG:-0}; STORM_CONNS=${STORM_CONNS:-2000}
    FANOUT_MEMBERS=${FANOUT_MEMBERS:-100}; DM_PAIRS=${DM_PAIRS:-500}; STEP_SECONDS=${STEP_SECONDS:-3}
fi
IDLE_CONNS=${IDLE_CONNS:-10000}
IDLE_BIG=${IDLE_BIG:-100000}          # ours only (the target is to hold it); 0 skips
STORM_CONNS=${STORM_CONNS:-5000}
FANOUT_MEMBERS=${FANOUT_MEMBERS:-100}
FANOUT_SENDERS=${FANOUT_SENDERS:-10}
FANOUT_START=${FANOUT_START:-100}     # first --find-max rate (sends/s)
DM_PAIRS=${DM_PAIRS:-500}
DM_START=${DM_START:-1000}
STEP_SECONDS=${STEP_SECONDS:-5}
IDLE_HOLD=${IDLE_HOLD:-10}
EDGE_FANOUT_START=${EDGE_FANOUT_START:-1}
EDGE_FANOUT_SMALL=${EDGE_FANOUT_SMALL:-10}
EDGE_DM_PAIRS=${EDGE_DM_PAIRS:-50}
EDGE_DM_START=${EDGE_DM_START:-10}
EDGE_STORM_CONNS=${EDGE_STORM_CONNS:-500}
EDGE_INSPECTOR=${EDGE_INSPECTOR:-1}
EDGE_MAX_P99_MS=${EDGE_MAX_P99_MS:-100}

export JWT_SECRET="bench-$RANDOM-$RANDOM-$RANDOM"
# Rate limits out of the way for both servers (the contract's limiter still runs).
export RATE_LIMIT_MESSAGES=1000000000 RATE_LIMIT_WINDOW_MS=1000 MAX_SOCKETS_PER_USER=5
export EVENT_BURST=1000000000 EVENT_RATE_PER_SEC=1000000000
export RUST_LOG=${RUST_LOG:-warn} LOG_LEVEL=${LOG_LEVEL:-warn} NODE_ENV=production
# 100k sockets need 100k descriptors on each side (root may raise the hard limit).
ulimit -Hn 1048576 2>/dev/null || true
ulimit -n "$(ulimit -Hn)"

if [ ! -f "$NODE_SERVER" ] && [ -f "$ROOT/bench/baseline-node/src/server.js" ]; then
    NODE_SERVER=$ROOT/bench/baseline-node/src/server.js
fi
if [[ " $SERVERS " == *" node "* ]]; then
    if [ ! -f "$NODE_SERVER" ]; then
        echo "run.sh: SKIPPING the Node.js baseline: $NODE_SERVER is missing (set NODE_SERVER)" >&2
        SERVERS=${SERVERS//node/}
    else
        pkg=$(dirname "$NODE_SERVER")
        [ -f "$pkg/package.json" ] || pkg=$(dirname "$pkg")
        if [ ! -d "$pkg/node_modules" ]; then (cd "$pkg" && npm ci --no-audit --no-fund); fi
    fi
fi

# PROFILE=dev uses the test build (dependencies and the core at opt-level 2, the host's
# own glue unoptimised): quicker to get, and reported as such; release is the reference.
PROFILE=${PROFILE:-release}
# chat-server only when it is measured (SERVERS=edge needs the load generator alone).
NATIVE=""
[[ " $SERVERS " == *" native "* ]] && NATIVE=1
if [ "$PROFILE" = release ]; then
    echo "== building ${NATIVE:+chat-server and }the load generator (release)" >&2
    cargo build --release ${NATIVE:+-p chat-native} -p chat-loadgen >&2
    BIN=$ROOT/target/release
else
    echo "== building ${NATIVE:+chat-server and }the load generator (dev profile)" >&2
    if [ -n "$NATIVE" ]; then cargo build -p chat-native --bin chat-server >&2; fi
    cargo build -p chat-loadgen >&2
    BIN=$ROOT/target/debug
fi
LOAD=(taskset -c "$LOAD_CORE" "$BIN/chat-load")

# The edge host: the wasm bundle (release) and the wrangler dev config of scripts/edge.sh.
if [[ " $SERVERS " == *" edge "* ]]; then
    echo "== building the edge host's bundle (scripts/edge.sh config)" >&2
    eval "$(scripts/edge-tools.sh --env)"
    scripts/edge.sh config >&2
    EDGE_CONFIG=$ROOT/host-cloudflare/build/wrangler.dev.toml
fi

stamp=$(date -u +%Y%m%dT%H%M%SZ)
OUT=${OUT_DIR:-$ROOT/bench/results/$stamp}  # OUT_DIR adds to an earlier run
mkdir -p "$OUT"
work=$(mktemp -d)
# wrangler writes every message, debug level included, to a log file (by default under
# ~/.config/.wrangler/logs; tens of MB per run with the inspector on): keep it in the run's
# scratch directory, removed at the end.
export WRANGLER_LOG_PATH=$work/wrangler-logs
server_pid=""
server_kind=""
# The edge server is a process group (wrangler's node and workerd): signals go to the group.
signal_server() { # signal
    if [ "$server_kind" = edge ]; then kill "-$1" -- "-$server_pid" 2>/dev/null; else kill "-$1" "$server_pid" 2>/dev/null; fi
}
server_alive() {
    if [ "$server_kind" = edge ]; then pgrep -g "$server_pid" >/dev/null; else kill -0 "$server_pid" 2>/dev/null; fi
}
cleanup() { [ -n "$server_pid" ] && signal_server TERM; rm -rf "$work"; }
trap cleanup EXIT

start_server() { # kind → sets server_pid and PORT; retries on another port (in use)
    local kind=$1 attempt
    for attempt in 1 2 3; do
        # Below the ephemeral range (32768+), where the load generator's own ports live.
        PORT=$(( 10000 + RANDOM % 20000 ))
        local log="$OUT/$kind-server.log"
        case $kind in
            node) BIND="127.0.0.1:$PORT" taskset -c "$SERVER_CORE" node "$NODE_SERVER" >>"$log" 2>&1 & ;;
            native)
                local dir; dir=$(mktemp -d -p "$work")
                env -u DATABASE_URL CHAT_DATA_DIR="$dir" BIND="127.0.0.1:$PORT" \
                    taskset -c "$SERVER_CORE" "$BIN/chat-server" serve >>"$log" 2>&1 & ;;
            echo) BIND="127.0.0.1:$PORT" taskset -c "$SERVER_CORE" "$BIN/chat-echo" >>"$log" 2>&1 & ;;
            edge)
                # As scripts/edge.sh starts it: its own process group (setsid), so stopping
                # the group stops workerd too; a fresh --persist-to (the objects' SQLite)
                # per measurement; the limits as --var. taskset before setsid: wrangler's
                # node and the workerd it spawns inherit the affinity, the group is pinned.
                local persist; persist=$(mktemp -d -p "$work")
                if [ "$EDGE_INSPECTOR" = 0 ]; then
                    # Same config, bundle and vars through wrangler's API, the inspector off.
                    WRANGLER_PKG=$ROOT/host-cloudflare/node_modules/wrangler setsid taskset -c "$SERVER_CORE" \
                        node "$ROOT/bench/edge-dev.mjs" "$EDGE_CONFIG" "$PORT" "$persist" >>"$log" 2>&1 </dev/null &
                else
                    setsid taskset -c "$SERVER_CORE" "$WRANGLER_BIN" dev --config "$EDGE_CONFIG" --ip 127.0.0.1 --port "$PORT" \
                        --persist-to "$persist" --inspector-port 0 --show-interactive-dev-session=false --log-level warn \
                        --var "JWT_SECRET:$JWT_SECRET" --var "RATE_LIMIT_MESSAGES:$RATE_LIMIT_MESSAGES" \
                        --var "RATE_LIMIT_WINDOW_MS:$RATE_LIMIT_WINDOW_MS" --var "MAX_SOCKETS_PER_USER:$MAX_SOCKETS_PER_USER" \
                        --var "EVENT_BURST:$EVENT_BURST" --var "EVENT_RATE_PER_SEC:$EVENT_RATE_PER_SEC" \
                        >>"$log" 2>&1 </dev/null &
                fi ;;
        esac
        server_pid=$!
        server_kind=$kind
        for _ in $(seq 1 600); do
            if [ "$kind" = edge ]; then
                # wrangler listens before workerd answers: wait for the Worker itself.
                if curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1; then
                    echo "run.sh: edge processes (pid, CPU affinity, command):" >>"$log"
                    for pid in $(pgrep -g "$server_pid"); do
                        echo "  $pid $(taskset -cp "$pid" 2>/dev/null | sed 's/.*: //') $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | cut -c1-120)" >>"$log"
                    done
                    sleep 0.5; return 0
                fi
            elif (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then sleep 0.5; return 0; fi
            server_alive || break
            sleep 0.1
        done
        signal_server TERM || true
        wait "$server_pid" 2>/dev/null || true
        server_pid=""
    done
    echo "run.sh: $kind server did not start; see $log" >&2
    return 1
}

stop_server() { # SIGTERM; SIGKILL if it has not stopped within 10 s (noted in the log)
    signal_server TERM || true
    for _ in $(seq 1 100); do server_alive || break; sleep 0.1; done
    if server_alive; then
        echo "run.sh: server $server_pid still running 10 s after SIGTERM: SIGKILL" >&2
        signal_server KILL || true
    fi
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
    sleep 1 # let the kernel release the ports
}

measure() { # kind name args… → $OUT/<kind>-<name>.json
    local kind=$1 name=$2; shift 2
    if ! start_server "$kind"; then echo "{\"error\":\"$kind server did not start\"}" >"$OUT/$kind-$name.json"; return 0; fi
    echo "== $kind: $name: chat-load $*" >&2
    # The edge server's CPU and memory: every process of its group (wrangler's node, workerd).
    local pids=$server_pid
    if [ "$kind" = edge ]; then pids=$(pgrep -g "$server_pid" | paste -sd, -); fi
    "${LOAD[@]}" --addr "127.0.0.1:$PORT" ${pids:+--server-pid "$pids"} --label "$kind" "$@" \
        >"$OUT/$kind-$name.json" 2>>"$OUT/$kind-$name.log" || true
    cat "$OUT/$kind-$name.json" >&2
    if [ "$kind" = edge ]; then # who used the CPU, per process (the JSON has the group's sum per step)
        ps -o pid=,rss=,time=,args= -p "$pids" | cut -c1-160 >"$OUT/$kind-$name.ps" 2>/dev/null || true
    fi
    stop_server
}

for scenario in $SCENARIOS; do
    for kind in $SERVERS; do
        if [ "$kind" = edge ] && [[ "$scenario" == idle || "$scenario" == idle-big ]]; then
            # Locally every object of every socket lives in one workerd: its RSS says nothing
            # of the edge, where hibernated sockets are held by the runtime, not by us.
            echo "run.sh: SKIPPING $scenario for edge: workerd's local memory is not the edge's (bench/README.md)" >&2
            continue
        fi
        if [ "$kind" = edge ]; then
            case $scenario in
                storm) measure edge storm connect-storm --conns "$EDGE_STORM_CONNS" ;;
                fanout)
                    measure edge fanout fanout --members "$FANOUT_MEMBERS" --senders "$FANOUT_SENDERS" \
                        --rate "$EDGE_FANOUT_START" --find-max --max-p99-ms "$EDGE_MAX_P99_MS" --duration "$STEP_SECONDS"
                    if [ "$EDGE_FANOUT_SMALL" -gt 0 ] && [ "$EDGE_FANOUT_SMALL" != "$FANOUT_MEMBERS" ]; then
                        small_senders=$(( FANOUT_SENDERS < EDGE_FANOUT_SMALL ? FANOUT_SENDERS : EDGE_FANOUT_SMALL ))
                        measure edge fanout-small fanout --members "$EDGE_FANOUT_SMALL" --senders "$small_senders" \
                            --rate "$EDGE_FANOUT_START" --find-max --max-p99-ms "$EDGE_MAX_P99_MS" --duration "$STEP_SECONDS"
                    fi ;;
                dms) measure edge dms dms --pairs "$EDGE_DM_PAIRS" --rate "$EDGE_DM_START" --find-max --max-p99-ms "$EDGE_MAX_P99_MS" --duration "$STEP_SECONDS" ;;
            esac
            continue
        fi
        case $scenario in
            idle) measure "$kind" idle idle --conns "$IDLE_CONNS" --hold "$IDLE_HOLD" ;;
            idle-big) if [ "$IDLE_BIG" -gt 0 ] && [ "$kind" = native ] && [ "$(ulimit -n)" -lt $((IDLE_BIG + 1000)) ]; then
                          echo "run.sh: SKIPPING idle-big: the descriptor limit is $(ulimit -n), $IDLE_BIG sockets need more (raise the hard limit: root with CAP_SYS_RESOURCE, or limits.conf)" >&2
                      elif [ "$IDLE_BIG" -gt 0 ] && [ "$kind" = native ]; then
                          measure "$kind" idle-big idle --conns "$IDLE_BIG" --hold "$IDLE_HOLD" --concurrency 512; fi ;;
            storm) measure "$kind" storm connect-storm --conns "$STORM_CONNS" ;;
            fanout) measure "$kind" fanout fanout --members "$FANOUT_MEMBERS" --senders "$FANOUT_SENDERS" \
                        --rate "$FANOUT_START" --find-max --duration "$STEP_SECONDS" ;;
            dms) measure "$kind" dms dms --pairs "$DM_PAIRS" --rate "$DM_START" --find-max --duration "$STEP_SECONDS" ;;
        esac
    done
    # Latency of everyone at the baseline's own highest rate.
    if [[ "$scenario" == fanout || "$scenario" == dms ]] && [ -s "$OUT/node-$scenario.json" ]; then
        rate=$(jq -r '.max_rate // empty' "$OUT/node-$scenario.json")
        if [ -n "$rate" ]; then
            for kind in $SERVERS; do
                [ "$kind" = node ] && continue
                if [ "$scenario" = fanout ]; then
                    measure "$kind" fanout-at-node fanout --members "$FANOUT_MEMBERS" --senders "$FANOUT_SENDERS" --rate "$rate" --duration $((STEP_SECONDS * 2))
                else
                    measure "$kind" dms-at-node dms --pairs "$DM_PAIRS" --rate "$rate" --duration $((STEP_SECONDS * 2))
                fi
            done
        fi
    fi
done

machine="$(nproc) cores, load average $(cut -d" " -f1-3 /proc/loadavg) at the end ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(free -g | awk '/Mem:/{print $2}') GiB"
command="${QUICK:+QUICK=1 }PROFILE=$PROFILE SERVERS=\"$SERVERS\" SCENARIOS=\"$SCENARIOS\" bench/run.sh: IDLE_CONNS=$IDLE_CONNS IDLE_BIG=$IDLE_BIG STORM_CONNS=$STORM_CONNS FANOUT_MEMBERS=$FANOUT_MEMBERS FANOUT_SENDERS=$FANOUT_SENDERS DM_PAIRS=$DM_PAIRS STEP_SECONDS=$STEP_SECONDS"
if [[ " $SERVERS " == *" edge "* ]]; then
    command+=" EDGE_FANOUT_START=$EDGE_FANOUT_START EDGE_FANOUT_SMALL=$EDGE_FANOUT_SMALL EDGE_DM_PAIRS=$EDGE_DM_PAIRS EDGE_DM_START=$EDGE_DM_START EDGE_STORM_CONNS=$EDGE_STORM_CONNS EDGE_MAX_P99_MS=$EDGE_MAX_P99_MS EDGE_INSPECTOR=$EDGE_INSPECTOR (edge bundle: release wasm)"
fi
python3 "$ROOT/bench/report.py" "$OUT" --machine "$machine" --command "$command" --readme "$ROOT/bench/README.md"
