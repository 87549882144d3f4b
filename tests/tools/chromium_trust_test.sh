#!/usr/bin/env bash
# Headless Chromium through mitmd, started by `mitmd-trust launch-chromium` (no
# --ignore-certificate-errors): with the root put in its NSS profile by `mitmd-trust browser`
# the page loads and the flow is recorded; with a profile that lacks the root, Chromium shows a
# certificate error and the page content never arrives.
source "$(dirname "$0")/common.sh"
skip_unless chromium chromium
skip_unless certutil libnss3-tools

MARKER="mitmd-tools-chromium-$RANDOM$RANDOM"
printf '<!doctype html><title>tools test</title><h1 id="m">%s</h1>\n' "$MARKER" >"$SCRATCH/page.html"
make_server_cert
start_upstream "$SCRATCH/page.html"
start_mitmd proxy --no-web
URL="https://localhost:$UPSTREAM_PORT/chromium-page"

# Chromium exits 0 even when a page fails to load: the content and stderr are what count.
run_chromium() {  # PROFILE OUT [mitmd-trust options...]
  local profile="$1" out="$2"; shift 2
  timeout 60 "$TOOLS/mitmd-trust" launch-chromium --confdir "$MITMD_CONFDIR" \
    --profile "$profile" --proxy "127.0.0.1:$MITMD_PORT" --headless "$@" "$URL" \
    -- --dump-dom --virtual-time-budget=5000 >"$out.dom" 2>"$out.err" || true
}

# 1. The profile trusts the root: no certificate error, the page is there, the flow recorded.
"$TOOLS/mitmd-trust" browser --confdir "$MITMD_CONFDIR" --profile "$SCRATCH/trusted" \
  >"$SCRATCH/browser.out" || fail "mitmd-trust browser failed: $(cat "$SCRATCH/browser.out")"
grep -q "added 'mitmd root" "$SCRATCH/browser.out" || fail "browser did not add the root: $(cat "$SCRATCH/browser.out")"
certutil -L -d "sql:$SCRATCH/trusted/.pki/nssdb" | grep -E >/dev/null '^mitmd root [0-9a-f]{16} +C,,' ||
  fail "the NSS database lacks the root with trust C,,"
run_chromium "$SCRATCH/trusted" "$SCRATCH/trusted-run"
grep -q -- "--ignore-certificate-errors" "$SCRATCH/trusted-run.err" &&
  fail "launch-chromium must not pass --ignore-certificate-errors"
grep -q -- "--proxy-bypass-list=<-loopback>" "$SCRATCH/trusted-run.err" ||
  fail "launch-chromium did not keep loopback on the proxy"
grep -q "ERR_CERT" "$SCRATCH/trusted-run.err" && fail "certificate error with the root trusted: $(grep ERR_ "$SCRATCH/trusted-run.err")"
grep -q "$MARKER" "$SCRATCH/trusted-run.dom" ||
  { cat "$SCRATCH/trusted-run.err" >&2; fail "the page content did not load with the root trusted"; }
wait_for_flow "$MITMD_FLOWS" "\"url\":\"https://localhost:$UPSTREAM_PORT/chromium-page\"" 10
grep -F "\"url\":\"https://localhost:$UPSTREAM_PORT/chromium-page\"" "$MITMD_FLOWS" | grep >/dev/null '"status":200' ||
  fail "the flow of the page is not a 200"
pass "Chromium trusted mitmd's root from the NSS profile and the flow was recorded"

# 2. Running `browser` again changes nothing.
"$TOOLS/mitmd-trust" browser --confdir "$MITMD_CONFDIR" --profile "$SCRATCH/trusted" >"$SCRATCH/browser2.out"
grep -q "nothing to change" "$SCRATCH/browser2.out" || fail "second run was not a no-op: $(cat "$SCRATCH/browser2.out")"
[ "$(certutil -L -d "sql:$SCRATCH/trusted/.pki/nssdb" | grep -c '^mitmd root')" = 1 ] || fail "the root was added twice"
pass "mitmd-trust browser is idempotent"

# 3. A profile without the root: certificate error, no content.
before="$(grep -c chromium-page "$MITMD_FLOWS" || true)"
run_chromium "$SCRATCH/untrusted" "$SCRATCH/untrusted-run" --no-update
grep -q "ERR_CERT_AUTHORITY_INVALID" "$SCRATCH/untrusted-run.err" ||
  { cat "$SCRATCH/untrusted-run.err" >&2; fail "no certificate error without the root"; }
grep -q "$MARKER" "$SCRATCH/untrusted-run.dom" && fail "the page loaded without the root"
after="$(grep -c chromium-page "$MITMD_FLOWS" || true)"
[ "$before" = "$after" ] || fail "a request reached mitmd although Chromium rejected the certificate"
pass "without the root Chromium reports ERR_CERT_AUTHORITY_INVALID and sends no request"
# The store's writer thread appends the failed flow a batch later: wait for it (a loaded machine
# can take seconds), then say what is missing if it never comes.
wait_for_flow "$MITMD_FLOWS" 'certificate unknown[^}]*"phase":"client_tls"' 30
pass "mitmd recorded the rejection with the alert Chromium sent"
