#!/usr/bin/env bash
# Two builds of the server, A and B, compared by `dm-cost.sh` runs taken in turn (A, B,
# A, B, ...): CPU time per acked DM send and send latency p99 of each run, then the
# medians. One run apart from the other build's says little on a shared machine (the same
# build spreads over ±10-15 % in CPU per send and 2-3× in p99); runs interleaved share
# whatever the machine was doing, and their medians say which build is cheaper.
# Usage: bench/ab.sh A_DIR B_DIR [RATE=4500] [SECONDS=15] [ROUNDS=3] [PAIRS=500]
#   A_DIR, B_DIR: directories holding chat-server and chat-load (e.g. copies of
#   target/release made before and after a change). Extra env reaches both servers.
set -euo pipefail
cd "$(dirname "$0")/.."
A=${1:?usage: bench/ab.sh A_DIR B_DIR [RATE] [SECONDS] [ROUNDS] [PAIRS]}
B=${2:?usage: bench/ab.sh A_DIR B_DIR [RATE] [SECONDS] [ROUNDS] [PAIRS]}
RATE=${3:-4500}
SECONDS_=${4:-15}
ROUNDS=${5:-3}
PAIRS=${6:-500}
for dir in "$A" "$B"; do
    for bin in chat-server chat-load; do
        [ -x "$dir/$bin" ] || { echo "$dir/$bin: not an executable" >&2; exit 2; }
    done
done
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
table=$scratch/table
for round in $(seq 1 "$ROUNDS"); do
    for side in A B; do
        dir=$A; [ "$side" = B ] && dir=$B
        out=$(BIN="$dir" OUT="$scratch/$round-$side" bench/dm-cost.sh "$RATE" "$SECONDS_" "$PAIRS" 2>&1)
        cpu=$(sed -n 's/.*: \([0-9.]*\) CPU-us\/send.*/\1/p' <<<"$out")
        p99=$(grep -o '"p99":[0-9.]*' <<<"$out" | head -1 | cut -d: -f2)
        lost=$(grep -o '"lost":[0-9]*' <<<"$out" | head -1 | cut -d: -f2)
        if [ -z "$cpu" ] || [ -z "$p99" ]; then
            echo "round $round $side: no figures from dm-cost.sh:" >&2
            echo "$out" >&2
            exit 1
        fi
        echo "$side $cpu $p99 ${lost:-?}" >>"$table"
        echo "round $round $side ($dir): $cpu CPU-us/send, p99 $p99 ms, lost ${lost:-?}"
    done
done
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
for side in A B; do
    cpu=$(awk -v s="$side" '$1 == s { print $2 }' "$table" | median)
    p99=$(awk -v s="$side" '$1 == s { print $3 }' "$table" | median)
    echo "$side median of $ROUNDS: $cpu CPU-us/send, p99 $p99 ms"
done
awk '$1 == "A" { a[++na] = $2 } $1 == "B" { b[++nb] = $2 }
     END { wins = 0; for (i = 1; i <= na; i++) if (b[i] < a[i]) wins++; printf "B cheaper than A in %d of %d rounds\n", wins, na }' "$table"
