#!/usr/bin/env bash
# HTTP/2 benchmark: h2load (many streams over few connections) straight to nghttpd, and through
# mitmd. h2load speaks to no proxy, so mitmd runs a reverse-mode listener in front of nghttpd:
# TLS with ALPN h2 on both sides, every stream intercepted and recorded as a flow. Each figure
# is the median of three runs; the number of upstream connections mitmd opened is reported too
# (one shared HTTP/2 connection serves every stream).
#
#   tools/bench/h2load.sh                       # builds build-bench (Release) first
#   MITMD=build/mitmd tools/bench/h2load.sh     # an existing binary
#   BASELINE=/tmp/before/build/mitmd tools/bench/h2load.sh   # before/after in the same run
#   REQUESTS=20000 CLIENTS=1 STREAMS=100 SIZE=1024 tools/bench/h2load.sh
#
# Results: a table, then one JSON line starting with {"h2load_bench":.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
requests="${REQUESTS:-20000}"
clients="${CLIENTS:-1}"
streams="${STREAMS:-100}"
size="${SIZE:-1024}"
for tool in h2load nghttpd openssl; do
  command -v "$tool" >/dev/null || { echo "h2load.sh: $tool is missing (apt-get install nghttp2-client nghttp2-server openssl)" >&2; exit 1; }
done
if [ -z "${MITMD:-}" ]; then
  build="${BUILD_DIR:-$root/build-bench}"
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$build" -j "$(nproc)" --target mitmd >&2
  MITMD="$build/mitmd"
fi

tmp="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

free_port() {
  /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
wait_port() {
  for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "h2load.sh: nothing listens on port $1" >&2
  exit 1
}
# "16260.16" from h2load's "finished in 1.23s, 16260.16 req/s, ..." line.
rate() { sed -n 's/^finished in [^,]*, \([0-9.]*\) req\/s.*/\1/p'; }
median() { sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$tmp/key.pem" \
  -out "$tmp/cert.pem" -subj /CN=localhost -days 2 \
  -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" 2>/dev/null
mkdir -p "$tmp/htdocs"
head -c "$size" /dev/urandom >"$tmp/htdocs/body.bin"
origin_port="$(free_port)"
nghttpd -a 127.0.0.1 -d "$tmp/htdocs" "$origin_port" "$tmp/key.pem" "$tmp/cert.pem" \
  >/dev/null 2>&1 &
pids+=($!)
wait_port "$origin_port"

h2run() {  # PORT: one h2load run, its req/s
  h2load -n "$requests" -c "$clients" -m "$streams" "https://127.0.0.1:$1/body.bin" 2>&1 | rate
}

# mitmd in reverse mode in front of nghttpd; prints "REQ_PER_S UPSTREAM_CONNECTIONS".
through() {
  local binary="$1" name="$2" port conf log pid rates
  port="$(free_port)"
  conf="$tmp/conf-$name"
  log="$tmp/mitmd-$name.log"
  "$binary" --confdir "$conf" --no-web --listen "127.0.0.1:$(free_port)" \
    --flows "$tmp/flows-$name.jsonl" \
    --upstream-ca "$tmp/cert.pem" --upstream-allow 127.0.0.0/8 \
    --mode "reverse:https://127.0.0.1:$origin_port@127.0.0.1:$port" >"$log" 2>&1 &
  pid=$!
  pids+=("$pid")
  wait_port "$port"
  rates="$(for _ in 1 2 3; do h2run "$port"; done | median)"
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  # Distinct upstream connections over every recorded flow.
  local upstreams
  upstreams="$(/usr/bin/python3 -c '
import json, sys
conns = set()
for line in open(sys.argv[1]):
    conns.add(json.loads(line).get("server", {}).get("conn"))
print(len(conns))' "$tmp/flows-$name.jsonl")"
  echo "$rates $upstreams"
}

direct="$(for _ in 1 2 3; do h2run "$origin_port"; done | median)"
read -r mitmd_rate mitmd_upstreams <<<"$(through "$MITMD" mitmd)"
baseline_rate=""
baseline_upstreams=""
if [ -n "${BASELINE:-}" ]; then
  read -r baseline_rate baseline_upstreams <<<"$(through "$BASELINE" baseline)"
fi

echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "h2load -n $requests -c $clients -m $streams, $size-byte bodies, median of 3 (req/s):"
printf '  %-28s %12s\n' "direct to nghttpd" "$direct"
printf '  %-28s %12s   (%s upstream connections)\n' "through mitmd" "$mitmd_rate" "$mitmd_upstreams"
if [ -n "$baseline_rate" ]; then
  printf '  %-28s %12s   (%s upstream connections)\n' "through baseline mitmd" "$baseline_rate" \
    "$baseline_upstreams"
fi
printf '{"h2load_bench":{"requests":%s,"clients":%s,"streams":%s,"size":%s,"direct":%s,"mitmd":%s,"mitmd_upstreams":%s%s}}\n' \
  "$requests" "$clients" "$streams" "$size" "$direct" "$mitmd_rate" "$mitmd_upstreams" \
  "${baseline_rate:+,\"baseline\":$baseline_rate,\"baseline_upstreams\":$baseline_upstreams}"
