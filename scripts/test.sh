#!/usr/bin/env bash
# Runs every test of the project. The one command the README names; .ci/run calls it.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step "toolchain: wasm32 target for the core"
if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
    rustup target add wasm32-unknown-unknown
fi

step "core builds for wasm32-unknown-unknown (no IO, no clock, no randomness)"
cargo build -p chat-core --target wasm32-unknown-unknown

step "workspace tests: core contract, simulation, hosts"
cargo test --workspace

step "core contract tests again, against a cluster of three engines (partitions spread, mail between them)"
WORLD_NODES=3 cargo test -p chat-core --tests

step "fuzz smoke: validation, Socket.IO codec, JWT/handshake (8 s each on the seed corpora)"
./scripts/fuzz.sh 8

step "native host: conformance suite (socket.io-client) and kill -9 durability, on SQLite and Postgres"
./scripts/conformance.sh sqlite postgres

step "cluster mode: three native processes on Postgres + Redis: conformance spread over them, kill -9 failover"
./scripts/cluster.sh

step "demo web client in a real browser, and the code samples of docs/client.md"
./scripts/web.sh

step "load generator smoke (bench/smoke.sh): every scenario briefly, nothing lost or errored"
./bench/smoke.sh

# Tools (wasm-bindgen-cli, worker-build, wrangler) install once into a cache
# (scripts/edge-tools.sh); warm, this step is the wasm build plus about two minutes.
step "edge host: conformance suite under wrangler dev (websocket) and restart durability"
./scripts/edge.sh test
