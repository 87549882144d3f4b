#!/usr/bin/env bash
# mitmd-trust without a browser: NSS profiles (Chromium and Firefox layouts, update to a new
# root), the system store in a private directory pair (never the machine's own), status, and
# the errors a user gets for bad input.
source "$(dirname "$0")/common.sh"
skip_unless certutil libnss3-tools
T="$TOOLS/mitmd-trust"
export HOME="$SCRATCH/home"
mkdir -p "$HOME"

make_root() {  # DIR: a self-signed CA at DIR/mitmd-ca.pem, as mitmd would write it
  mkdir -p "$1"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$1/mitmd-ca.key" -out "$1/mitmd-ca.pem" -days 2 -subj "/CN=test root $RANDOM" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
    >/dev/null 2>&1 || fail "openssl could not make a root"
}
fingerprint() { openssl x509 -in "$1" -noout -fingerprint -sha256 | cut -d= -f2 | tr -d : | tr A-F a-f; }
make_root "$SCRATCH/a"
make_root "$SCRATCH/b"

# Usage errors exit 2, missing roots exit 1, both say what to do.
set +e
"$T" frobnicate >/dev/null 2>"$SCRATCH/e1"; r1=$?
"$T" browser --confdir "$SCRATCH/a" >/dev/null 2>"$SCRATCH/e2"; r2=$?
"$T" status --confdir "$SCRATCH/none" >/dev/null 2>"$SCRATCH/e3"; r3=$?
"$T" browser --profile "$SCRATCH/p" --cert "$SCRATCH/a/mitmd-ca.key" >/dev/null 2>"$SCRATCH/e4"; r4=$?
"$T" launch-chromium --proxy nonsense >/dev/null 2>"$SCRATCH/e5"; r5=$?
set -e
[ $r1 = 2 ] && grep -q "unknown command 'frobnicate'" "$SCRATCH/e1" || fail "bad command: exit $r1, $(cat "$SCRATCH/e1")"
[ $r2 = 2 ] && grep -q "needs exactly one --profile" "$SCRATCH/e2" || fail "missing --profile: exit $r2"
[ $r3 = 1 ] && grep -q "run mitmd once" "$SCRATCH/e3" || fail "missing root: exit $r3, $(cat "$SCRATCH/e3")"
[ $r4 = 1 ] && grep -q "holds no PEM certificate" "$SCRATCH/e4" || fail "key as cert: exit $r4, $(cat "$SCRATCH/e4")"
[ $r5 = 2 ] && grep -q "is not HOST:PORT" "$SCRATCH/e5" || fail "bad --proxy: exit $r5, $(cat "$SCRATCH/e5")"
"$T" --help | grep >/dev/null "mitmd-trust browser --profile DIR" || fail "--help"
pass "bad input gives clear errors and exit codes"

# Chromium layout: DIR/.pki/nssdb; a new root replaces the old one.
P="$SCRATCH/profile"
"$T" browser --confdir "$SCRATCH/a" --profile "$P" >/dev/null
"$T" status --confdir "$SCRATCH/a" --profile "$P" >"$SCRATCH/s1"
grep -q "profile $P (.*nssdb): TRUSTED" "$SCRATCH/s1" || fail "status after browser: $(cat "$SCRATCH/s1")"
"$T" browser --confdir "$SCRATCH/b" --profile "$P" >"$SCRATCH/b2"
grep -q "removed an older mitmd root" "$SCRATCH/b2" || fail "old root not removed: $(cat "$SCRATCH/b2")"
"$T" status --confdir "$SCRATCH/a" --profile "$P" >"$SCRATCH/s2"
grep -q "profile $P .*: not trusted (holds an older mitmd root" "$SCRATCH/s2" || fail "status for the replaced root: $(cat "$SCRATCH/s2")"
"$T" status --cert "$SCRATCH/b/mitmd-ca.pem" --profile "$P" | grep >/dev/null "profile $P .*: TRUSTED" || fail "status for the new root"
pass "NSS profile: add, status, replace with a new root"

# Firefox layout: the database is the profile directory itself.
F="$SCRATCH/firefox"
"$T" browser --confdir "$SCRATCH/a" --profile "$F" --firefox >/dev/null
[ -f "$F/cert9.db" ] || fail "no cert9.db in the Firefox profile"
"$T" status --confdir "$SCRATCH/a" --firefox-profile "$F" | grep >/dev/null "Firefox profile $F .*: TRUSTED" || fail "Firefox status"
pass "Firefox profile layout"

# System store, in private directories: add, status, remove.
L="$SCRATCH/local-certs"; E="$SCRATCH/etc-certs"
mkdir -p "$L" "$E"
sys=(--local-certs-dir "$L" --etc-certs-dir "$E")
fa="$(fingerprint "$SCRATCH/a/mitmd-ca.pem")"
"$T" system --confdir "$SCRATCH/a" "${sys[@]}" >"$SCRATCH/sys1" || fail "system: $(cat "$SCRATCH/sys1")"
[ -f "$L/mitmd-$fa.crt" ] || fail "no $L/mitmd-$fa.crt"
openssl verify -CAfile "$E/ca-certificates.crt" "$SCRATCH/a/mitmd-ca.pem" >/dev/null ||
  fail "the rebuilt bundle does not trust the root"
"$T" status --confdir "$SCRATCH/a" "${sys[@]}" | grep >/dev/null "^system store ($E/ca-certificates.crt): TRUSTED" || fail "system status"
"$T" system --confdir "$SCRATCH/a" "${sys[@]}" >/dev/null  # again: still one file
[ "$(ls "$L" | grep -c '^mitmd-')" = 1 ] || fail "system added the root twice"
"$T" system --remove --confdir "$SCRATCH/a" "${sys[@]}" >"$SCRATCH/sys2" || fail "system --remove: $(cat "$SCRATCH/sys2")"
[ ! -e "$L/mitmd-$fa.crt" ] || fail "the root file was not removed"
if openssl verify -CAfile "$E/ca-certificates.crt" "$SCRATCH/a/mitmd-ca.pem" >/dev/null 2>&1; then
  fail "the bundle still trusts the root after --remove"
fi
"$T" status --confdir "$SCRATCH/a" "${sys[@]}" | grep >/dev/null "^system store .*: not trusted" || fail "status after remove"
pass "system store: add, idempotent, status, remove"
