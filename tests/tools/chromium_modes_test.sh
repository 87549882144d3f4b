#!/usr/bin/env bash
# Chromium through mitmd's other ways in (issue 13): --proxy-server=socks5://… to the proxy
# port, and straight to a reverse-mode port as if mitmd were the server. The profile trusts
# mitmd's root (mitmd-trust browser); each page loads and its flow says how it came in.
source "$(dirname "$0")/common.sh"
skip_unless chromium chromium
skip_unless certutil libnss3-tools

MARKER="mitmd-modes-$RANDOM$RANDOM"
printf '<!doctype html><title>modes</title><h1>%s</h1>\n' "$MARKER" >"$SCRATCH/page.html"
make_server_cert
start_upstream "$SCRATCH/page.html"
start_mitmd m --no-web --mode regular --mode "reverse:https://localhost:$UPSTREAM_PORT@0"
REVERSE_PORT="$(wait_for_line "$MITMD_CONFDIR/stdout" '^mode +reverse:' 10 | sed 's/.*://')"
"$TOOLS/mitmd-trust" browser --confdir "$MITMD_CONFDIR" --profile "$SCRATCH/profile" >/dev/null ||
  fail "mitmd-trust browser failed"

chromium_get() {  # OUT URL [ARGS...]
  local out="$1" url="$2"; shift 2
  mkdir -p "$SCRATCH/udd-$out/Default"
  echo '{"alternate_error_pages":{"enabled":false}}' >"$SCRATCH/udd-$out/Default/Preferences"
  HOME="$SCRATCH/profile" timeout 60 chromium --headless --no-sandbox --disable-gpu --disable-quic \
    --no-first-run --disable-background-networking --disable-component-update --disable-sync \
    --disable-features=NetworkTimeServiceQuerying --component-updater=url-source=http://127.0.0.1:9/ \
    --gaia-url=http://127.0.0.1:9/ --user-data-dir="$SCRATCH/udd-$out" "$@" \
    --dump-dom --virtual-time-budget=5000 "$url" >"$SCRATCH/$out.dom" 2>"$SCRATCH/$out.err" || true
}

chromium_get socks "https://localhost:$UPSTREAM_PORT/via-socks5" \
  --proxy-server="socks5://127.0.0.1:$MITMD_PORT" --proxy-bypass-list='<-loopback>'
grep -q "$MARKER" "$SCRATCH/socks.dom" || { cat "$SCRATCH/socks.err" >&2; fail "no page through SOCKS5"; }
wait_for_flow "$MITMD_FLOWS" '"path":"/via-socks5"' 10
grep -F '"path":"/via-socks5"' "$MITMD_FLOWS" | grep -q '"entry":"socks5"' || fail "the flow does not say socks5"
pass "Chromium with --proxy-server=socks5:// loads the page through mitmd, recorded as socks5"

chromium_get reverse "https://localhost:$REVERSE_PORT/via-reverse" --no-proxy-server
grep -q "$MARKER" "$SCRATCH/reverse.dom" || { cat "$SCRATCH/reverse.err" >&2; fail "no page through reverse mode"; }
wait_for_flow "$MITMD_FLOWS" '"path":"/via-reverse"' 10
grep -F '"path":"/via-reverse"' "$MITMD_FLOWS" | grep -q '"entry":"reverse"' || fail "the flow does not say reverse"
pass "Chromium to a reverse-mode port loads the server's page, recorded as reverse"
