#!/usr/bin/env bash
# Builds the edge host's Worker bundle into host-cloudflare/build/ (index.js + index_bg.wasm)
# with worker-build, using the tools of scripts/edge-tools.sh (installed when missing).
# wrangler runs this as the [build] command of wrangler.toml.
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(scripts/edge-tools.sh --env)"
cd host-cloudflare
# Release profile for this one crate only (the wasm module is far smaller and faster).
"$WORKER_BUILD_BIN" --release
