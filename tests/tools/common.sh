# Shared by the tests/tools/*_test.sh scripts (sourced, not run). Each test gets a scratch
# directory, starts its own loopback servers and mitmd, and a trap stops them all.
# Needs MITMD (the binary) and MITMD_SOURCE_DIR in the environment (ctest passes both).

set -euo pipefail

: "${MITMD:?set MITMD to the mitmd binary}"
: "${MITMD_SOURCE_DIR:?set MITMD_SOURCE_DIR to the repository}"
TOOLS="$MITMD_SOURCE_DIR/tools"
HERE="$MITMD_SOURCE_DIR/tests/tools"

# Clients must not pick up the machine's proxy or CA settings.
unset http_proxy https_proxy all_proxy no_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY NO_PROXY \
  SSL_CERT_FILE SSL_CERT_DIR CURL_CA_BUNDLE REQUESTS_CA_BUNDLE NODE_EXTRA_CA_CERTS SSLKEYLOGFILE

SCRATCH="$(mktemp -d "${TMPDIR:-/tmp}/mitmd-tools-test.XXXXXX")"
STARTED_PIDS=()

cleanup() {
  local pid
  for pid in "${STARTED_PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${STARTED_PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  if [ -n "${KEEP_SCRATCH:-}" ]; then echo "kept $SCRATCH" >&2; else rm -rf "$SCRATCH"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

pass() {
  echo "ok: $*"
}

# skip_unless CMD PACKAGE: exit 77 (ctest SKIP_RETURN_CODE) when CMD is missing.
skip_unless() {
  command -v "$1" >/dev/null 2>&1 && return 0
  echo "SKIP: '$1' is not installed (apt-get install $2; scripts/deps.sh test)" >&2
  exit 77
}

# wait_for_line FILE REGEX SECONDS: prints the first matching line, fails after SECONDS.
wait_for_line() {
  local file="$1" regex="$2" deadline=$((SECONDS + $3)) line
  while [ $SECONDS -lt $deadline ]; do
    line="$(grep -m1 -E "$regex" "$file" 2>/dev/null || true)"
    if [ -n "$line" ]; then echo "$line"; return 0; fi
    sleep 0.1
  done
  echo "--- $file:" >&2; cat "$file" >&2 || true
  fail "timed out waiting for /$regex/ in $file"
}

# make_server_cert: a demo CA and a localhost leaf in $SCRATCH/pki (server-ca.pem, server.pem,
# server.key).
make_server_cert() {
  local d="$SCRATCH/pki"
  mkdir -p "$d"
  (
    cd "$d"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
      -keyout server-ca.key -out server-ca.pem -days 2 -subj "/CN=tools test upstream CA" \
      -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
      -keyout server.key -out server.csr -subj /CN=localhost
    printf 'basicConstraints=CA:FALSE\nsubjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\nextendedKeyUsage=serverAuth\n' > server.ext
    openssl x509 -req -in server.csr -CA server-ca.pem -CAkey server-ca.key -set_serial 4242 \
      -days 2 -extfile server.ext -out server.pem
  ) >"$d/openssl.log" 2>&1 || { cat "$d/openssl.log" >&2; fail "openssl could not make the test certificates"; }
}

# start_upstream BODY_FILE: an HTTPS server on 127.0.0.1 serving BODY_FILE as text/html; sets
# UPSTREAM_PORT.
start_upstream() {
  python3 "$HERE/https_upstream.py" "$SCRATCH/pki/server.pem" "$SCRATCH/pki/server.key" "$1" \
    >"$SCRATCH/upstream.out" 2>"$SCRATCH/upstream.err" &
  STARTED_PIDS+=($!)
  UPSTREAM_PORT="$(wait_for_line "$SCRATCH/upstream.out" '^port [0-9]+$' 10 | cut -d' ' -f2)"
}

# start_mitmd NAME [ARGS...]: mitmd with confdir $SCRATCH/NAME, loopback upstreams only,
# trusting the test CA; sets MITMD_PORT, MITMD_FLOWS, MITMD_CONFDIR.
start_mitmd() {
  local name="$1"; shift
  MITMD_CONFDIR="$SCRATCH/$name"
  MITMD_FLOWS="$MITMD_CONFDIR/flows.jsonl"
  mkdir -p "$MITMD_CONFDIR"
  "$MITMD" --listen 127.0.0.1:0 --confdir "$MITMD_CONFDIR" --flows "$MITMD_FLOWS" \
    --upstream-allow 127.0.0.0/8,::1 --upstream-ca "$SCRATCH/pki/server-ca.pem" "$@" \
    >"$MITMD_CONFDIR/stdout" 2>"$MITMD_CONFDIR/stderr" &
  STARTED_PIDS+=($!)
  MITMD_PORT="$(wait_for_line "$MITMD_CONFDIR/stdout" '^proxy listening on ' 15 | sed 's/.*://')"
}

# wait_for_flow FILE REGEX SECONDS: waits until a flow line matches.
wait_for_flow() {
  wait_for_line "$1" "$2" "$3" >/dev/null
}
