#!/usr/bin/env bash
# mitmd's key log (--keylog FILE, and $SSLKEYLOGFILE) decrypts both legs of an intercepted
# exchange: a loopback capture of curl -> mitmd (inside the CONNECT tunnel) and mitmd -> upstream,
# read by tshark with tls.keylog_file, shows the HTTP request on both. curl writes no key log of
# its own here, so every key tshark uses came from mitmd.
source "$(dirname "$0")/common.sh"
skip_unless tshark tshark
skip_unless dumpcap tshark
if ! dumpcap -D 2>/dev/null | grep -q '\blo\b'; then
  echo "SKIP: dumpcap cannot capture on lo here (needs root or the wireshark group)" >&2
  exit 77
fi

printf 'keylog test body\n' >"$SCRATCH/body.txt"
make_server_cert
start_upstream "$SCRATCH/body.txt"

# capture_run NAME PATH_SEGMENT [mitmd args...]: one curl through a fresh mitmd, captured.
capture_run() {
  local name="$1" path="$2"; shift 2
  start_mitmd "$name" --no-web "$@"
  local cap="$SCRATCH/$name.pcapng"
  dumpcap -q -i lo -f "tcp port $MITMD_PORT or tcp port $UPSTREAM_PORT" -w "$cap" \
    >"$SCRATCH/$name-dumpcap.log" 2>&1 &
  local dumpcap_pid=$!
  STARTED_PIDS+=("$dumpcap_pid")
  # dumpcap reports nothing when it is ready under -q; wait for the file it writes.
  local deadline=$((SECONDS + 10))
  until [ -s "$cap" ]; do
    [ $SECONDS -lt $deadline ] || { cat "$SCRATCH/$name-dumpcap.log" >&2; fail "dumpcap did not start"; }
    kill -0 "$dumpcap_pid" 2>/dev/null || { cat "$SCRATCH/$name-dumpcap.log" >&2; fail "dumpcap exited"; }
    sleep 0.1
  done
  sleep 0.5
  env -u SSLKEYLOGFILE curl -sS --max-time 10 -x "http://127.0.0.1:$MITMD_PORT" --cacert "$MITMD_CONFDIR/mitmd-ca.pem" \
    "https://localhost:$UPSTREAM_PORT/$path" >"$SCRATCH/$name-curl.out" ||
    fail "curl through mitmd failed"
  grep -q "keylog test body" "$SCRATCH/$name-curl.out" || fail "wrong body through mitmd"
  wait_for_flow "$MITMD_FLOWS" "/$path\"" 10
  sleep 0.5
  kill -INT "$dumpcap_pid"
  wait "$dumpcap_pid" 2>/dev/null || true
}

# decrypted_requests NAME KEYLOG: "tcp.dstport uri" of every HTTP request tshark can decrypt.
decrypted_requests() {
  tshark -r "$SCRATCH/$1.pcapng" -o "tls.keylog_file:$2" \
    -d "tcp.port==$MITMD_PORT,http" -d "tcp.port==$UPSTREAM_PORT,tls" \
    -Y 'http.request && tls' -T fields -e tcp.dstport -e http.request.uri 2>"$SCRATCH/$1-tshark.err"
}

check_both_legs() {  # NAME KEYLOG PATH_SEGMENT
  local name="$1" keylog="$2" path="$3"
  [ -s "$keylog" ] || fail "$name: the key log $keylog is empty"
  grep -Eq '^(CLIENT_TRAFFIC_SECRET_0|CLIENT_RANDOM) [0-9a-f]{64} [0-9a-f]+$' "$keylog" ||
    fail "$name: $keylog has no NSS key log lines"
  # Two TLS connections (client side and upstream side): at least two distinct client randoms.
  [ "$(awk '{print $2}' "$keylog" | sort -u | wc -l)" -ge 2 ] || fail "$name: keys for only one side"
  decrypted_requests "$name" "$keylog" >"$SCRATCH/$name-requests.txt"
  grep -Eq "^$MITMD_PORT[[:space:]]/$path\$" "$SCRATCH/$name-requests.txt" ||
    { cat "$SCRATCH/$name-requests.txt" "$SCRATCH/$name-tshark.err" >&2; fail "$name: client leg not decrypted"; }
  grep -Eq "^$UPSTREAM_PORT[[:space:]]/$path\$" "$SCRATCH/$name-requests.txt" ||
    { cat "$SCRATCH/$name-requests.txt" "$SCRATCH/$name-tshark.err" >&2; fail "$name: upstream leg not decrypted"; }
  # And without the keys, neither leg is readable: the check above proves the key log, not luck.
  decrypted_requests "$name" /dev/null >"$SCRATCH/$name-nokeys.txt"
  [ ! -s "$SCRATCH/$name-nokeys.txt" ] || fail "$name: requests readable without keys?"
}

capture_run flag keylog-flag --keylog "$SCRATCH/flag.keys"
check_both_legs flag "$SCRATCH/flag.keys" keylog-flag
pass "--keylog: tshark decrypts the request on the client leg and the upstream leg"

SSLKEYLOGFILE="$SCRATCH/env.keys" capture_run env keylog-env
check_both_legs env "$SCRATCH/env.keys" keylog-env
pass "SSLKEYLOGFILE: the same, from the environment"
