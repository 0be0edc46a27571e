#!/usr/bin/env bash
# Fuzzes the untrusted-input parsers with cargo-fuzz (libFuzzer), one target at a time:
#   validate   the core's validation of every client event payload and HTTP call
#   sio_codec  the Engine.IO/Socket.IO codec of the edge host
#   auth       JWT verification and the handshake's choice of token source
# Usage: scripts/fuzz.sh [seconds per target, default 8] [target…]
# Each target starts from its committed seed corpus (fuzz/corpus/<target>, left
# untouched: new inputs go to a scratch corpus) and stops after the given time; a crash
# fails the script, with its input saved under fuzz/artifacts/<target>/ (reproduce:
# scripts/fuzz.sh repro <target> <file>). cargo-fuzz is installed once, when missing,
# into $FUZZ_TOOLS (default ~/.cache/chat-fuzz). libFuzzer needs nightly flags: on the
# stable toolchain RUSTC_BOOTSTRAP=1 allows them. Built without a sanitizer: the code
# under test is safe Rust (the core forbids unsafe), and ASan would halve the speed.
set -euo pipefail
cd "$(dirname "$0")/.."
CARGO_FUZZ_VERSION=0.13.2
TOOLS=${FUZZ_TOOLS:-$HOME/.cache/chat-fuzz}
TARGETS=(validate sio_codec auth)
export RUSTC_BOOTSTRAP=1

if [ ! -x "$TOOLS/bin/cargo-fuzz" ]; then
    echo "fuzz: cargo install cargo-fuzz $CARGO_FUZZ_VERSION into $TOOLS (once)" >&2
    cargo install --quiet --locked cargo-fuzz --version "=$CARGO_FUZZ_VERSION" --root "$TOOLS"
fi
export PATH="$TOOLS/bin:$PATH"
FLAGS=(--sanitizer none --fuzz-dir fuzz)

if [ "${1:-}" = "repro" ]; then
    exec cargo fuzz run "${FLAGS[@]}" "$2" "$3"
fi

SECONDS_EACH=${1:-8}
shift || true
[ $# -gt 0 ] && TARGETS=("$@")

start=$(date +%s)
cargo fuzz build "${FLAGS[@]}"
echo "fuzz: build took $(( $(date +%s) - start )) s"

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
for target in "${TARGETS[@]}"; do
    mkdir -p "$scratch/$target"
    echo "fuzz: $target for ${SECONDS_EACH} s"
    # The first corpus directory receives new inputs: the scratch one, never the seeds.
    cargo fuzz run "${FLAGS[@]}" "$target" "$scratch/$target" "fuzz/corpus/$target" -- \
        -max_total_time="$SECONDS_EACH" -max_len=16384 -print_final_stats=1 2> "$scratch/$target.log" || {
        tail -40 "$scratch/$target.log"
        echo "fuzz: $target FAILED; the input is under fuzz/artifacts/$target/" >&2
        exit 1
    }
    grep -E '^(Done|stat::number_of_executed_units|stat::new_units_added)|cov: ' "$scratch/$target.log" | tail -4
done
echo "fuzz: all targets clean in $(( $(date +%s) - start )) s"
