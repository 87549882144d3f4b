#!/usr/bin/env bash
# mitmd-shell runs programs that go through mitmd and trust its root with no flags of their own:
# curl and Python requests fetch an HTTPS server whose CA only mitmd trusts, and each fetch is a
# recorded flow. Also: every variable the shell sets, no_proxy not bypassing localhost, Java
# through the truststore when a JDK is installed, `mitmd-proxy on` setting the CA variables,
# and the errors for bad usage and a missing root.
source "$(dirname "$0")/common.sh"
skip_unless curl curl
S="$TOOLS/mitmd-shell"
export HOME="$SCRATCH/home"
mkdir -p "$HOME"

make_server_cert
echo "<p>through the shell</p>" >"$SCRATCH/body.html"
start_upstream "$SCRATCH/body.html"
start_mitmd m
SHELL_ARGS=(--proxy "127.0.0.1:$MITMD_PORT" --confdir "$MITMD_CONFDIR")

# Bad usage and a confdir without a root.
set +e
"$S" --frob >/dev/null 2>"$SCRATCH/e1"; r1=$?
"$S" --proxy nowhere -- true >/dev/null 2>"$SCRATCH/e2"; r2=$?
"$S" --confdir "$SCRATCH/empty" -- true >/dev/null 2>"$SCRATCH/e3"; r3=$?
set -e
[ $r1 = 2 ] && grep -q "unknown option or argument '--frob'" "$SCRATCH/e1" || fail "bad option: exit $r1 $(cat "$SCRATCH/e1")"
[ $r2 = 2 ] && grep -q "is not HOST:PORT" "$SCRATCH/e2" || fail "bad proxy: exit $r2 $(cat "$SCRATCH/e2")"
[ $r3 = 1 ] && grep -q "no root CA at $SCRATCH/empty/mitmd-ca.pem: start mitmd once" "$SCRATCH/e3" ||
  fail "missing root: exit $r3 $(cat "$SCRATCH/e3")"
pass "bad usage and a missing root are clear errors"

# The environment the command gets (a no_proxy from outside must not survive).
no_proxy=localhost NO_PROXY=127.0.0.1 "$S" "${SHELL_ARGS[@]}" -- env >"$SCRATCH/env" 2>"$SCRATCH/env.err"
BUNDLE="$MITMD_CONFDIR/shell/ca-bundle.pem"
for v in http_proxy https_proxy HTTP_PROXY HTTPS_PROXY; do
  grep -qx "$v=http://127.0.0.1:$MITMD_PORT" "$SCRATCH/env" || fail "$v not set: $(cat "$SCRATCH/env")"
done
for v in SSL_CERT_FILE CURL_CA_BUNDLE REQUESTS_CA_BUNDLE GIT_SSL_CAINFO PIP_CERT AWS_CA_BUNDLE DENO_CERT; do
  grep -qx "$v=$BUNDLE" "$SCRATCH/env" || fail "$v not set to the bundle"
done
grep -qx "NODE_EXTRA_CA_CERTS=$MITMD_CONFDIR/mitmd-ca.pem" "$SCRATCH/env" || fail "NODE_EXTRA_CA_CERTS"
grep -qx "NODE_USE_ENV_PROXY=1" "$SCRATCH/env" || fail "NODE_USE_ENV_PROXY"
grep -qx "MITMD_SHELL=127.0.0.1:$MITMD_PORT" "$SCRATCH/env" || fail "MITMD_SHELL"
! grep -qi "^no_proxy=" "$SCRATCH/env" || fail "no_proxy survived: localhost would bypass mitmd"
# The bundle is the system's CAs followed by mitmd's root, byte for byte.
tail -c "$(stat -c %s "$MITMD_CONFDIR/mitmd-ca.pem")" "$BUNDLE" | cmp -s - "$MITMD_CONFDIR/mitmd-ca.pem" ||
  fail "the bundle does not end with mitmd's root"
head -c "$(stat -c %s /etc/ssl/certs/ca-certificates.crt)" "$BUNDLE" | cmp -s - /etc/ssl/certs/ca-certificates.crt ||
  fail "the bundle does not start with the system's CAs"
"$S" "${SHELL_ARGS[@]}" --no-proxy example.internal -- env | grep -qx "no_proxy=example.internal" ||
  fail "--no-proxy not applied"
pass "proxy and CA variables, no_proxy cleared, bundle = system CAs + root"

# curl, with no flags of its own, over HTTPS to a server only mitmd trusts.
URL="https://localhost:$UPSTREAM_PORT/curl"
"$S" "${SHELL_ARGS[@]}" -- curl -sS --max-time 20 "$URL" >"$SCRATCH/curl.out" 2>"$SCRATCH/curl.err" ||
  fail "curl through mitmd-shell failed: $(cat "$SCRATCH/curl.err")"
grep -q "through the shell" "$SCRATCH/curl.out" || fail "curl got: $(cat "$SCRATCH/curl.out")"
wait_for_flow "$MITMD_FLOWS" '"path":"/curl"' 10
pass "curl through mitmd-shell, recorded as a flow"

# Python requests, likewise.
"$S" "${SHELL_ARGS[@]}" -- /usr/bin/python3 -c '
import sys, requests
r = requests.get(sys.argv[1], timeout=20)
print(r.status_code, r.text.strip())' "https://localhost:$UPSTREAM_PORT/requests" \
  >"$SCRATCH/py.out" 2>"$SCRATCH/py.err" || fail "requests through mitmd-shell failed: $(cat "$SCRATCH/py.err")"
grep -q "^200 <p>through the shell</p>" "$SCRATCH/py.out" || fail "requests got: $(cat "$SCRATCH/py.out")"
wait_for_flow "$MITMD_FLOWS" '"path":"/requests"' 10
pass "Python requests through mitmd-shell, recorded as a flow"

# Java through the truststore and the proxy properties, where a JDK is installed.
if command -v java >/dev/null && command -v keytool >/dev/null; then
  cat >"$SCRATCH/Fetch.java" <<'EOF'
public class Fetch {
  public static void main(String[] a) throws Exception {
    var c = (javax.net.ssl.HttpsURLConnection) new java.net.URL(a[0]).openConnection();
    System.out.println(c.getResponseCode() + " " + new String(c.getInputStream().readAllBytes()).trim());
  }
}
EOF
  "$S" "${SHELL_ARGS[@]}" -- java "$SCRATCH/Fetch.java" "https://localhost:$UPSTREAM_PORT/java" \
    >"$SCRATCH/java.out" 2>"$SCRATCH/java.err" || fail "java through mitmd-shell failed: $(cat "$SCRATCH/java.err")"
  grep -q "^200 <p>through the shell</p>" "$SCRATCH/java.out" || fail "java got: $(cat "$SCRATCH/java.out")"
  wait_for_flow "$MITMD_FLOWS" '"path":"/java"' 10
  pass "Java (HttpsURLConnection) through mitmd-shell's truststore, recorded as a flow"
else
  echo "note: Java part skipped (no java/keytool)"
fi

# A new interactive shell is marked in its prompt.
echo 'echo "PS1=[$PS1]"; exit 0' | SHELL=/bin/bash "$S" "${SHELL_ARGS[@]}" >"$SCRATCH/sh.out" 2>"$SCRATCH/sh.err" || true
grep -q "PS1=\[(mitmd) " "$SCRATCH/sh.out" || fail "the shell's prompt is not marked: $(cat "$SCRATCH/sh.out" "$SCRATCH/sh.err")"
pass "a new shell's prompt starts with (mitmd)"

# mitmd-proxy on sets the CA variables as well.
(
  unset DBUS_SESSION_BUS_ADDRESS
  eval "$("$TOOLS/mitmd-proxy" on --no-gsettings --confdir "$MITMD_CONFDIR" --no-proxy "" \
    --proxy "127.0.0.1:$MITMD_PORT" 2>"$SCRATCH/on.err")"
  [ "${SSL_CERT_FILE:-}" = "$BUNDLE" ] && [ "${REQUESTS_CA_BUNDLE:-}" = "$BUNDLE" ] &&
    [ "${NODE_EXTRA_CA_CERTS:-}" = "$MITMD_CONFDIR/mitmd-ca.pem" ] ||
    fail "mitmd-proxy on did not set the CA variables: $(cat "$SCRATCH/on.err")"
  curl -sS --max-time 20 "https://localhost:$UPSTREAM_PORT/proxy-on" >"$SCRATCH/on.out" ||
    fail "curl after mitmd-proxy on failed"
  grep -q "through the shell" "$SCRATCH/on.out" || fail "curl after on got: $(cat "$SCRATCH/on.out")"
  eval "$("$TOOLS/mitmd-proxy" off --no-gsettings --confdir "$MITMD_CONFDIR" 2>/dev/null)"
  [ -z "${SSL_CERT_FILE+x}" ] && [ -z "${JAVA_TOOL_OPTIONS+x}" ] || fail "off did not unset the CA variables"
)
wait_for_flow "$MITMD_FLOWS" '"path":"/proxy-on"' 10
pass "mitmd-proxy on sets the CA variables too, off removes them"
