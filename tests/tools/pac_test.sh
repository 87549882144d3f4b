#!/usr/bin/env bash
# The PAC file mitmd's viewer serves at /proxy.pac names mitmd's proxy address, with the PAC
# media type; `mitmd-proxy status` finds it; and a client that follows the PAC (curl, with the
# address the PAC returns) gets through mitmd.
source "$(dirname "$0")/common.sh"
printf 'pac test body\n' >"$SCRATCH/body.txt"
make_server_cert
start_upstream "$SCRATCH/body.txt"
start_mitmd pac --web 127.0.0.1:0
VIEWER="$(wait_for_line "$MITMD_CONFDIR/stdout" '^viewer listening on ' 10 | sed -E 's|.*http://([^/]+)/.*|\1|')"

curl -sS --max-time 5 -D "$SCRATCH/pac.headers" -o "$SCRATCH/proxy.pac" "http://$VIEWER/proxy.pac" ||
  fail "GET http://$VIEWER/proxy.pac failed"
head -1 "$SCRATCH/pac.headers" | grep -q ' 200' || fail "status: $(head -1 "$SCRATCH/pac.headers")"
grep -qi '^content-type: application/x-ns-proxy-autoconfig' "$SCRATCH/pac.headers" ||
  fail "content type: $(grep -i content-type "$SCRATCH/pac.headers")"
grep -q 'function FindProxyForURL(url, host)' "$SCRATCH/proxy.pac" || fail "not a PAC file: $(cat "$SCRATCH/proxy.pac")"
ANSWER="$(sed -nE 's/.*return "([^"]*)";.*/\1/p' "$SCRATCH/proxy.pac")"
[ "$ANSWER" = "PROXY 127.0.0.1:$MITMD_PORT" ] || fail "the PAC answers '$ANSWER', not PROXY 127.0.0.1:$MITMD_PORT"
pass "the viewer serves /proxy.pac naming the proxy"

"$TOOLS/mitmd-proxy" status --proxy "127.0.0.1:$MITMD_PORT" --viewer "$VIEWER" >"$SCRATCH/status.out"
grep -q "^proxy 127.0.0.1:$MITMD_PORT: answering" "$SCRATCH/status.out" || fail "status: $(cat "$SCRATCH/status.out")"
grep -q "^PAC file http://$VIEWER/proxy.pac: served (PROXY 127.0.0.1:$MITMD_PORT)" "$SCRATCH/status.out" ||
  fail "status: $(cat "$SCRATCH/status.out")"
pass "mitmd-proxy status finds the proxy and the PAC file"

curl -sS --max-time 10 -x "http://${ANSWER#PROXY }" --cacert "$MITMD_CONFDIR/mitmd-ca.pem" \
  "https://localhost:$UPSTREAM_PORT/via-pac" >"$SCRATCH/via-pac.out" || fail "curl through the PAC's proxy"
grep -q "pac test body" "$SCRATCH/via-pac.out" || fail "wrong body"
wait_for_flow "$MITMD_FLOWS" '"url":"https://localhost:[0-9]+/via-pac"' 10
pass "a request through the PAC's proxy is recorded"
