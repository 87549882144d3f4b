#!/usr/bin/env bash
# Builds mitmd and mitmd_bench (Release) and runs the standard benchmark set on loopback:
# keep-alive requests/s and new connections/s against Debian's nginx-light (started by the bench
# with its own certificate), the first connection to a host through a freshly started mitmd, a
# Python client that leaves Nagle on (tools/bench/nagle_client.py), and a 1 GiB streamed
# download (with mitmd's peak RSS); each through mitmd and straight to the origin, three runs
# each (medians reported), plus Debian's mitmdump and hey when they are installed
# (apt-get install mitmproxy hey).
#
#   tools/bench/run.sh                 # the standard set
#   tools/bench/run.sh --duration 10   # extra options go to mitmd_bench (see --help)
#   BUILD_DIR=build-x tools/bench/run.sh
#   BASELINE=/path/to/old/mitmd tools/bench/run.sh   # before/after in the same run, e.g. from
#       git worktree add /tmp/before <commit> && cmake -S /tmp/before -B /tmp/before/build \
#         -G Ninja -DCMAKE_BUILD_TYPE=Release && cmake --build /tmp/before/build --target mitmd
#
# Results go to stdout: a table, then one JSON line starting with {"mitmd_bench":.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="${BUILD_DIR:-$root/build-bench}"

"$root/scripts/deps.sh" bench
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j "$(nproc)" --target mitmd mitmd_bench >&2

baseline=()
if [ -n "${BASELINE:-}" ]; then baseline=(--baseline "$BASELINE"); fi
hey_mode=""
if command -v hey >/dev/null; then hey_mode=",hey"; fi

echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
# Small bodies against nginx, with SNI (host localhost) as browsers send it.
"$build/tools/mitmd_bench" --mitmd "$build/mitmd" "${baseline[@]}" --origin nginx \
  --host localhost --mode "keepalive,newconn,firstconn,nagle$hey_mode" --repeat 3 "$@"
# The same new-connection load from a client that resumes TLS sessions, as browsers do.
"$build/tools/mitmd_bench" --mitmd "$build/mitmd" "${baseline[@]}" --origin nginx \
  --host localhost --mode newconn --client-resume --repeat 3 "$@"
"$build/tools/mitmd_bench" --mitmd "$build/mitmd" "${baseline[@]}" --mode download \
  --download-gib 1 --repeat 3 --compare-mitmproxy "$@"
echo "machine: load average after the run $(cut -d' ' -f1-3 /proc/loadavg)"
