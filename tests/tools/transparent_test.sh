#!/usr/bin/env bash
# Transparent mode end to end, inside a private network namespace (unshare -n) so the machine's
# own firewall is never touched: mitmd-transparent redirects one user's (uid 65534) connections
# to mitmd's transparent port; curl run as that user, with no proxy setting at all, reaches an
# HTTPS server through mitmd (recorded, SNI and original destination in the flow); root's own
# curl is not redirected; `off` removes the rules. Skipped (77) where namespaces or iptables
# are not available.
source "$(dirname "$0")/common.sh"
skip_unless curl curl
skip_unless iptables iptables
skip_unless setpriv util-linux
if [ "$(id -u)" != 0 ] || ! unshare -n true 2>/dev/null; then
  echo "SKIP: needs root and network namespaces (unshare -n)" >&2
  exit 77
fi
if ! unshare -n sh -c 'iptables -t nat -S OUTPUT' >/dev/null 2>&1; then
  echo "SKIP: iptables cannot use the nat table here (no nf_tables/ip_tables in this kernel)" >&2
  exit 77
fi
T="$TOOLS/mitmd-transparent"

# Bad usage needs no privileges.
set +e
"$T" sideways >/dev/null 2>"$SCRATCH/e1"; r1=$?
"$T" on --ports 80,http >/dev/null 2>"$SCRATCH/e2"; r2=$?
set -e
[ $r1 = 2 ] && grep -q "unknown command 'sideways'" "$SCRATCH/e1" || fail "bad command: exit $r1"
[ $r2 = 2 ] && grep -q "is not a comma-separated list" "$SCRATCH/e2" || fail "bad ports: exit $r2"
pass "bad usage"

chmod 755 "$SCRATCH"  # uid 65534 reads mitmd's root from here
make_server_cert
echo "<p>redirected</p>" >"$SCRATCH/body.html"
export T SCRATCH HERE MITMD
unshare -n bash -euo pipefail -c '
  fail() { echo "FAIL: $*" >&2; exit 1; }
  wait_line() {  # FILE REGEX SECONDS
    for _ in $(seq $((10 * $3))); do grep -m1 -E "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
    cat "$1" >&2; fail "timed out waiting for /$2/ in $1"
  }
  pids=()
  trap "kill \${pids[*]} 2>/dev/null || true" EXIT
  ip link set lo up
  python3 "$HERE/https_upstream.py" "$SCRATCH/pki/server.pem" "$SCRATCH/pki/server.key" "$SCRATCH/body.html" \
    >"$SCRATCH/up.out" 2>"$SCRATCH/up.err" & pids+=($!)
  UP=$(wait_line "$SCRATCH/up.out" "^port [0-9]+$" 10 | cut -d" " -f2)
  mkdir -p "$SCRATCH/m"
  "$MITMD" --listen 127.0.0.1:0 --mode transparent --confdir "$SCRATCH/m" --flows "$SCRATCH/m/flows.jsonl" \
    --no-web --upstream-allow 127.0.0.0/8,::1 --upstream-ca "$SCRATCH/pki/server-ca.pem" \
    >"$SCRATCH/m/stdout" 2>"$SCRATCH/m/stderr" & pids+=($!)
  PORT=$(wait_line "$SCRATCH/m/stdout" "^proxy listening on " 15 | sed "s/.*://")
  chmod 755 "$SCRATCH/m"; chmod 644 "$SCRATCH/m/mitmd-ca.pem"
  "$T" on --uid 65534 --port "$PORT" --ports "$UP" 2>"$SCRATCH/on.err" || fail "on: $(cat "$SCRATCH/on.err")"
  [ "$(iptables -t nat -S OUTPUT | grep -c mitmd-transparent)" = 1 ] || fail "rule not added: $(iptables -t nat -S OUTPUT)"
  # The redirected user: no proxy, only mitmd'"'"'s root to trust.
  setpriv --reuid=65534 --regid=65534 --clear-groups env -i PATH="$PATH" \
    curl -sS --max-time 20 --cacert "$SCRATCH/m/mitmd-ca.pem" "https://localhost:$UP/redirected" \
    >"$SCRATCH/curl.out" 2>"$SCRATCH/curl.err" || fail "redirected curl: $(cat "$SCRATCH/curl.err" "$SCRATCH/m/stderr")"
  grep -q redirected "$SCRATCH/curl.out" || fail "redirected curl got: $(cat "$SCRATCH/curl.out")"
  wait_line "$SCRATCH/m/flows.jsonl" "\"path\":\"/redirected\"" 10 >"$SCRATCH/flow.json"
  grep -q "\"entry\":\"transparent\"" "$SCRATCH/flow.json" || fail "flow: $(cat "$SCRATCH/flow.json")"
  grep -q "\"sni\":\"localhost\"" "$SCRATCH/flow.json" || fail "no SNI in the flow: $(cat "$SCRATCH/flow.json")"
  # root (mitmd'"'"'s own user) is not redirected: it sees the real server'"'"'s certificate.
  curl -sS --max-time 20 --cacert "$SCRATCH/pki/server-ca.pem" "https://localhost:$UP/direct" >/dev/null ||
    fail "root was redirected too"
  "$T" off 2>/dev/null || fail "off"
  [ "$(iptables -t nat -S OUTPUT | grep -c mitmd-transparent)" = 0 ] || fail "off left rules"
  ! grep -q "\"path\":\"/direct\"" "$SCRATCH/m/flows.jsonl" || fail "root'"'"'s request went through mitmd"
'
pass "transparent mode in a network namespace: one user's HTTPS redirected, intercepted and recorded; others untouched; off removes the rules"
