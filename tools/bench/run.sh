#!/usr/bin/env bash
# Builds mitmd and mitmd_bench (Release) and runs the standard benchmark set on loopback:
# keep-alive requests/s, new connections/s, a 1 GiB streamed download (with mitmd's peak RSS),
# each through mitmd and straight to the origin, three runs each (medians reported), plus
# Debian's mitmdump and hey when they are installed (apt-get install mitmproxy hey).
#
#   tools/bench/run.sh                 # the standard set
#   tools/bench/run.sh --duration 10   # extra options go to mitmd_bench (see --help)
#   BUILD_DIR=build-x tools/bench/run.sh
#
# Results go to stdout: a table, then one JSON line starting with {"mitmd_bench":.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="${BUILD_DIR:-$root/build-bench}"

cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j "$(nproc)" --target mitmd mitmd_bench >&2

modes=keepalive,newconn,download
if command -v hey >/dev/null; then modes="$modes,hey"; fi

echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
"$build/tools/mitmd_bench" --mitmd "$build/mitmd" --mode "$modes" --repeat 3 \
  --download-gib 1 --compare-mitmproxy "$@"
echo "machine: load average after the run $(cut -d' ' -f1-3 /proc/loadavg)"
