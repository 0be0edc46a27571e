#!/usr/bin/env bash
# Installs (only when missing) what building and running the edge host needs, into a cache
# that survives between CI runs on the same machine:
#   - the wasm32-unknown-unknown target
#   - wasm-bindgen-cli at exactly the wasm-bindgen version of Cargo.lock, and worker-build
#     (cargo install into $EDGE_TOOLS, default ~/.cache/chat-edge-tools)
#   - wrangler and binaryen (wasm-opt) from npm (host-cloudflare/package.json)
# worker-build would download wasm-bindgen and wasm-opt from GitHub, which is unreachable
# here: WASM_BINDGEN_BIN and WASM_OPT_BIN point it at these instead.
# Prints the environment to export (eval "$(scripts/edge-tools.sh --env)").
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
TOOLS=${EDGE_TOOLS:-$HOME/.cache/chat-edge-tools}
want_env=0
[ "${1:-}" = "--env" ] && want_env=1
log() { echo "$*" >&2; }

lock_version() { # crate name -> version in Cargo.lock
    awk -v name="$1" '$0 == "name = \"" name "\"" { getline; gsub(/version = |"/, ""); print; exit }' "$ROOT/Cargo.lock"
}
WB_VERSION=$(lock_version wasm-bindgen)
WORKER_VERSION=$(lock_version worker)
[ -n "$WB_VERSION" ] || { echo "no wasm-bindgen in Cargo.lock" >&2; exit 1; }

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
    log "edge-tools: adding the wasm32-unknown-unknown target"
    rustup target add wasm32-unknown-unknown >&2
fi

install_crate() { # crate version binary
    local crate=$1 version=$2 bin=$3 dir="$TOOLS/$1-$2"
    if [ ! -x "$dir/bin/$bin" ]; then
        log "edge-tools: cargo install $crate $version (once; several minutes)"
        cargo install --quiet "$crate" --version "=$version" --root "$dir" >&2
    fi
    echo "$dir/bin/$bin"
}
WASM_BINDGEN_BIN=$(install_crate wasm-bindgen-cli "$WB_VERSION" wasm-bindgen)
WORKER_BUILD_BIN=$(install_crate worker-build "$WORKER_VERSION" worker-build)

NPM_DIR="$ROOT/host-cloudflare"
if [ ! -x "$NPM_DIR/node_modules/.bin/wrangler" ] || [ ! -x "$NPM_DIR/node_modules/.bin/wasm-opt" ]; then
    log "edge-tools: npm install (wrangler, binaryen)"
    # npm's own cache keeps the tarballs between runs. The tools are devDependencies, which
    # npm leaves out under NODE_ENV=production (bench/run.sh sets it for the Node baseline):
    # --include=dev installs them whatever the caller's environment.
    (cd "$NPM_DIR" && if [ -f package-lock.json ]; then npm ci --include=dev --no-audit --no-fund --loglevel=error; else npm install --include=dev --no-audit --no-fund --loglevel=error; fi) >&2
    for tool in wrangler wasm-opt; do
        [ -x "$NPM_DIR/node_modules/.bin/$tool" ] || { echo "edge-tools: npm installed no $tool in $NPM_DIR/node_modules/.bin" >&2; exit 1; }
    done
fi

if [ $want_env = 1 ]; then
    echo "export WASM_BINDGEN_BIN='$WASM_BINDGEN_BIN'"
    echo "export WORKER_BUILD_BIN='$WORKER_BUILD_BIN'"
    echo "export WASM_OPT_BIN='$NPM_DIR/node_modules/.bin/wasm-opt'"
    echo "export WRANGLER_BIN='$NPM_DIR/node_modules/.bin/wrangler'"
    echo "export ESBUILD_BIN='$NPM_DIR/node_modules/.bin/esbuild'"
    echo "export WRANGLER_SEND_METRICS=false"
else
    log "edge-tools: wasm-bindgen $WB_VERSION at $WASM_BINDGEN_BIN"
    log "edge-tools: worker-build $WORKER_VERSION at $WORKER_BUILD_BIN"
    log "edge-tools: wrangler $("$NPM_DIR/node_modules/.bin/wrangler" --version 2>&1 | tail -1)"
fi
