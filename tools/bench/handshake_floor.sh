#!/usr/bin/env bash
# What one new TLS connection costs a server, in instructions (callgrind), for nginx (Debian's
# OpenSSL) and for mitmd (Debian's BoringSSL): the floor under the new-connection ratio of
# run.sh. Both serve the same P-256 certificate to the same client (curl, one new connection
# per request, TLS 1.3, X25519); mitmd's upstream connection comes from its pool, as in run.sh's
# newconn mode. Each server runs under callgrind twice, for FEW and for MANY connections, and the
# difference divided by MANY-FEW is the cost of one connection, start-up and shut-down excluded.
#
#   tools/bench/handshake_floor.sh              # 10 and 60 connections
#   FEW=10 MANY=110 tools/bench/handshake_floor.sh
#   BUILD_DIR=build-x tools/bench/handshake_floor.sh
#
# Prints one table: per connection, the whole process's instructions and the library's
# handshake (SSL_do_handshake, inclusive) for each server under callgrind, and the CPU time
# (user and system, from /proc) each server spends per connection when run natively, for NATIVE
# connections (default 300). Instruction counts do not depend on the load; CPU time does a little
# (caches shared with whatever else runs), so compare the two servers from the same run.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="${BUILD_DIR:-$root/build-bench}"
few="${FEW:-10}"
many="${MANY:-60}"
native="${NATIVE:-300}"
for tool in valgrind callgrind_annotate nginx openssl curl; do
  command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] ||
    { echo "handshake_floor: $tool is missing (scripts/deps.sh bench)" >&2; exit 1; }
done
nginx_bin="$(command -v nginx || echo /usr/sbin/nginx)"
if [ ! -x "$build/mitmd" ]; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$build" -j "$(nproc)" --target mitmd >&2
fi

work="$(mktemp -d /tmp/handshake_floor.XXXXXX)"
pids=()
cleanup() {
  # The servers run in the command substitutions' subshells: find them by their directory.
  pkill -f -- "$work" 2>/dev/null || true
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {  # port, pid: bounded wait for a listener (valgrind starts slowly)
  for _ in $(seq 1 600); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    kill -0 "$2" 2>/dev/null || { echo "handshake_floor: a server exited during start-up" >&2; return 1; }
    sleep 0.1
  done
  echo "handshake_floor: nothing listened on $1 within 60 s" >&2; return 1
}

# The origin's P-256 certificate for "localhost".
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
  -addext subjectAltName=DNS:localhost -keyout "$work/leaf.key" -out "$work/leaf.pem" 2>/dev/null

nginx_conf() {  # dir, port
  mkdir -p "$1/tmp"
  cat >"$1/nginx.conf" <<EOF
master_process off;
daemon off;
worker_processes 1;
pid $1/nginx.pid;
error_log $1/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $1/tmp;
  proxy_temp_path $1/tmp;
  fastcgi_temp_path $1/tmp;
  uwsgi_temp_path $1/tmp;
  scgi_temp_path $1/tmp;
  server {
    listen 127.0.0.1:$2 ssl;
    ssl_certificate $work/leaf.pem;
    ssl_certificate_key $work/leaf.key;
    ssl_protocols TLSv1.2 TLSv1.3;
    location = /bytes { default_type application/octet-stream; return 200 "xxxxx"; }
  }
}
EOF
}

total_of() { callgrind_annotate "$1" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",","",$1); print $1; exit}'; }
handshake_of() {  # inclusive instructions under SSL_do_handshake (first, i.e. outermost, entry)
  callgrind_annotate --inclusive=yes "$1" 2>/dev/null |
    awk '/[ :]SSL_do_handshake( |$|\[)/ {gsub(",","",$1); print $1; exit}'
}

# One run of nginx under callgrind answering $2 new connections; prints "total handshake".
run_nginx() {  # tag, connections
  local d="$work/nginx-$1" port
  port="$(free_port)"
  mkdir -p "$d"; nginx_conf "$d" "$port"
  valgrind --tool=callgrind --callgrind-out-file="$d/cg.out" \
    "$nginx_bin" -p "$d" -c "$d/nginx.conf" -e "$d/error.log" >"$d/out.txt" 2>&1 &
  local pid=$!; pids+=("$pid")
  wait_port "$port" "$pid"
  for _ in $(seq 1 "$2"); do
    curl -s -o /dev/null --cacert "$work/leaf.pem" "https://localhost:$port/bytes"
  done
  # TERM: nginx exits at once (QUIT's graceful exit can wait on a connection under valgrind).
  kill -TERM "$pid"; wait "$pid" || true
  echo "$(total_of "$d/cg.out") $(handshake_of "$d/cg.out")"
}

# One run of mitmd under callgrind (one worker, no viewer, recording as usual) in front of a
# native nginx; every curl is a new client connection, the upstream one is pooled.
run_mitmd() {  # tag, connections, origin port
  local d="$work/mitmd-$1" port
  port="$(free_port)"
  mkdir -p "$d/conf"
  valgrind --tool=callgrind --callgrind-out-file="$d/cg.out" \
    "$build/mitmd" --confdir "$d/conf" --listen "127.0.0.1:$port" --workers 1 --no-web \
    --upstream-ca "$work/leaf.pem" >"$d/out.txt" 2>&1 &
  local pid=$!; pids+=("$pid")
  wait_port "$port" "$pid"
  # The first connection mints the leaf, verifies the origin and fills the pool: not counted.
  for _ in $(seq 1 "$2"); do
    curl -s -o /dev/null --proxy "http://127.0.0.1:$port" --cacert "$d/conf/mitmd-ca.pem" \
      "https://localhost:$3/bytes"
  done
  kill -INT "$pid"; wait "$pid" || true
  echo "$(total_of "$d/cg.out") $(handshake_of "$d/cg.out")"
}

cpu_ticks() { awk '{print $14, $15}' "/proc/$1/stat"; }  # utime stime, clock ticks

# The same servers without valgrind: CPU microseconds per connection over $native connections.
native_cpu() {  # server pid, curl arguments...
  local pid="$1"; shift
  curl -s -o /dev/null "$@"  # warm: the leaf, the pooled upstream connection, lazy binding
  local u0 s0 u1 s1 tick
  read -r u0 s0 < <(cpu_ticks "$pid")
  for _ in $(seq 1 "$native"); do curl -s -o /dev/null "$@"; done
  read -r u1 s1 < <(cpu_ticks "$pid")
  tick=$(( 1000000 / $(getconf CLK_TCK) ))
  echo "$(( (u1 - u0) * tick / native ))+$(( (s1 - s0) * tick / native ))"
}

origin="$work/origin"; origin_port="$(free_port)"
mkdir -p "$origin"; nginx_conf "$origin" "$origin_port"
"$nginx_bin" -p "$origin" -c "$origin/nginx.conf" -e "$origin/error.log" >/dev/null 2>&1 &
pids+=("$!"); wait_port "$origin_port" "$!"

read -r nf_total nf_hs < <(run_nginx few "$few")
read -r nm_total nm_hs < <(run_nginx many "$many")
read -r mf_total mf_hs < <(run_mitmd few "$few" "$origin_port")
read -r mm_total mm_hs < <(run_mitmd many "$many" "$origin_port")

# Native: nginx serving directly, and mitmd (one worker) in front of the origin.
nd="$work/nginx-native"; nport="$(free_port)"
mkdir -p "$nd"; nginx_conf "$nd" "$nport"
"$nginx_bin" -p "$nd" -c "$nd/nginx.conf" -e "$nd/error.log" >/dev/null 2>&1 &
npid=$!; pids+=("$npid"); wait_port "$nport" "$npid"
nginx_us="$(native_cpu "$npid" --cacert "$work/leaf.pem" "https://localhost:$nport/bytes")"
md="$work/mitmd-native"; mport="$(free_port)"
mkdir -p "$md/conf"
"$build/mitmd" --confdir "$md/conf" --listen "127.0.0.1:$mport" --workers 1 --no-web \
  --upstream-ca "$work/leaf.pem" >"$md/out.txt" 2>&1 &
mpid=$!; pids+=("$mpid"); wait_port "$mport" "$mpid"
mitmd_us="$(native_cpu "$mpid" --proxy "http://127.0.0.1:$mport" --cacert "$md/conf/mitmd-ca.pem" \
  "https://localhost:$origin_port/bytes")"

per() { echo $(( ($2 - $1) / (many - few) )); }
echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); callgrind: $((many - few))" \
  "connections counted ($few vs $many); CPU: $native connections, native"
printf '%-30s %16s %18s %16s\n' "per new connection" "instructions" "in SSL_do_handshake" "CPU us user+sys"
printf '%-30s %16s %18s %16s\n' "nginx ($("$nginx_bin" -v 2>&1 | sed 's/.*\///'), OpenSSL)" \
  "$(per "$nf_total" "$nm_total")" "$(per "${nf_hs:-0}" "${nm_hs:-0}")" "$nginx_us"
printf '%-30s %16s %18s %16s\n' "mitmd (BoringSSL)" \
  "$(per "$mf_total" "$mm_total")" "$(per "${mf_hs:-0}" "${mm_hs:-0}")" "$mitmd_us"
