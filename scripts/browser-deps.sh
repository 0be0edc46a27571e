#!/usr/bin/env bash
# Makes sure Debian's Chromium is installed for the browser test (playwright-core drives
# /usr/bin/chromium; it cannot download a browser of its own here). Fails loudly if it
# cannot install it: the browser test must never be skipped silently.
set -euo pipefail

if command -v chromium >/dev/null 2>&1 && [ -x /usr/bin/chromium ]; then
    exit 0
fi
echo "browser-deps: /usr/bin/chromium is missing; installing Debian's chromium package"
if [ "$(id -u)" -eq 0 ]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1; then
    as_root=(sudo -n)
else
    echo "browser-deps: not root and no sudo: install Chromium with 'apt-get install -y chromium'" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" apt-get install -y -qq --no-install-recommends chromium >/dev/null
if ! [ -x /usr/bin/chromium ]; then
    echo "browser-deps: apt-get installed chromium but /usr/bin/chromium is not there" >&2
    exit 1
fi
/usr/bin/chromium --version 2>/dev/null || true
