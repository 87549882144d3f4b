#!/usr/bin/env bash
# Installs what is missing, builds mitmd and starts it with the defaults (proxy on
# 127.0.0.1:8080, root CA in ~/.mitmd created on first run). Extra arguments go to mitmd.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/deps.sh" build
"$root/scripts/build.sh" "$root/build" -DCMAKE_BUILD_TYPE=Release -DMITMD_TESTS=OFF
exec "$root/build/mitmd" "$@"
