#!/usr/bin/env bash
# The demo web client in headless Chromium (test-harness/browser), and the code samples of
# docs/client.md type-checked and run against a live server (docs/client-samples). Each
# starts its own chat-server (target/debug/chat-server) in demo mode on a free port with a
# temporary data directory.
# UPDATE_SCREENSHOT=1 scripts/web.sh also writes docs/demo.png (the README's screenshot).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

# The whole workspace, so features unify as in `cargo test --workspace` and nothing rebuilds.
cargo build --workspace --bins
./scripts/browser-deps.sh

# npm ci when node_modules is missing or older than the lockfile.
npm_ci() {
    local dir=$1
    if [ ! -f "$dir/node_modules/.package-lock.json" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
        (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
    fi
}
npm_ci test-harness/browser
npm_ci docs/client-samples

export CHAT_SERVER_BIN="$ROOT/target/debug/chat-server"
if [ "${UPDATE_SCREENSHOT:-}" = 1 ]; then
    export SCREENSHOT="$ROOT/docs/demo.png"
fi

printf '\n== demo web client in headless Chromium (two users, DM, typing, read receipt, catch-up)\n'
(cd test-harness/browser && node --test demo.test.mjs)

printf '\n== docs/client.md samples: tsc --strict, then run against a live server\n'
(cd docs/client-samples && npx --no-install tsc -p . && node --test check.test.mjs)
