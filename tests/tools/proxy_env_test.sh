#!/usr/bin/env bash
# mitmd-proxy on/off/status with a fake HOME: the printed lines set and restore the shell's
# variables, the state file keeps what was there before (also across a second `on`), and GNOME's
# settings are applied, checked and restored inside a private session bus (dbus-run-session with
# dconf writing under the fake HOME). Without a session bus GNOME is skipped, and said so.
source "$(dirname "$0")/common.sh"
P="$TOOLS/mitmd-proxy"
export HOME="$SCRATCH/home" XDG_CONFIG_HOME="$SCRATCH/home/.config" XDG_RUNTIME_DIR="$SCRATCH/run"
mkdir -p "$HOME" "$XDG_RUNTIME_DIR"
chmod 700 "$XDG_RUNTIME_DIR"
STATE="$HOME/.mitmd/proxy-state.json"

# Bad input.
set +e
"$P" sideways >/dev/null 2>"$SCRATCH/e1"; r1=$?
"$P" on --proxy 127.0.0.1:99999 >/dev/null 2>"$SCRATCH/e2"; r2=$?
"$P" on --frob >/dev/null 2>"$SCRATCH/e3"; r3=$?
set -e
[ $r1 = 2 ] && grep -q "unknown command 'sideways'" "$SCRATCH/e1" || fail "bad command: exit $r1"
[ $r2 = 2 ] && grep -q "port 99999 is not in 1-65535" "$SCRATCH/e2" || fail "bad port: exit $r2 $(cat "$SCRATCH/e2")"
[ $r3 = 2 ] && grep -q "unknown option" "$SCRATCH/e3" || fail "bad option: exit $r3"
[ ! -e "$STATE" ] || fail "a failed command wrote the state file"
pass "bad input"

# Shell round trip without a session bus.
(
  unset DBUS_SESSION_BUS_ADDRESS
  export http_proxy=http://corp.example:3128 NO_PROXY=intranet.example
  eval "$("$P" on --proxy 127.0.0.1:18080 2>"$SCRATCH/on.err")"
  [ "$https_proxy" = http://127.0.0.1:18080 ] && [ "$HTTP_PROXY" = http://127.0.0.1:18080 ] &&
    [ "$HTTPS_PROXY" = http://127.0.0.1:18080 ] && [ "$http_proxy" = http://127.0.0.1:18080 ] ||
    fail "on did not set the proxy variables"
  [ "$no_proxy" = "localhost,127.0.0.1,::1" ] || fail "no_proxy is '$no_proxy'"
  grep -q "GNOME settings: not changed (no desktop session" "$SCRATCH/on.err" || fail "GNOME skip not reported: $(cat "$SCRATCH/on.err")"
  grep -q "PAC file: http://127.0.0.1:8081/proxy.pac" "$SCRATCH/on.err" || fail "no PAC URL printed"
  [ -f "$STATE" ] || fail "no state file"
  # A second `on` must keep the first saved state, not save mitmd's own settings as "before".
  eval "$("$P" on --proxy 127.0.0.1:18081 --no-proxy '' 2>/dev/null)"
  [ "$https_proxy" = http://127.0.0.1:18081 ] && [ -z "$no_proxy" ] || fail "second on"
  "$P" status >"$SCRATCH/status.out"
  grep -q "^mitmd-proxy: on since .* proxy 127.0.0.1:18081" "$SCRATCH/status.out" || fail "status: $(cat "$SCRATCH/status.out")"
  grep -q "^  https_proxy=http://127.0.0.1:18081" "$SCRATCH/status.out" || fail "status shows the variables"
  eval "$("$P" off 2>/dev/null)"
  [ "$http_proxy" = http://corp.example:3128 ] || fail "http_proxy not restored: '${http_proxy-unset}'"
  [ "$NO_PROXY" = intranet.example ] || fail "NO_PROXY not restored"
  [ -z "${https_proxy+x}" ] && [ -z "${HTTPS_PROXY+x}" ] && [ -z "${no_proxy+x}" ] || fail "variables not unset"
  [ ! -e "$STATE" ] || fail "off left the state file"
  "$P" status | grep >/dev/null "^mitmd-proxy: off" || fail "status after off"
)
pass "shell variables: on, on again, status, off restores the originals"

# GNOME settings in a private session bus.
if command -v dbus-run-session >/dev/null && command -v gsettings >/dev/null &&
   gsettings list-keys org.gnome.system.proxy >/dev/null 2>&1; then
  dbus-run-session -- bash -euo pipefail -c '
    P="$1"; SCRATCH="$2"
    fail() { echo "FAIL: $*" >&2; exit 1; }
    gsettings set org.gnome.system.proxy.http host "corp.example"
    "$P" on --proxy 127.0.0.1:18080 >/dev/null 2>"$SCRATCH/g-on.err" || fail "on: $(cat "$SCRATCH/g-on.err")"
    grep -q "GNOME settings: manual, 127.0.0.1:18080" "$SCRATCH/g-on.err" || fail "on: $(cat "$SCRATCH/g-on.err")"
    [ "$(gsettings get org.gnome.system.proxy mode)" = "'"'manual'"'" ] || fail "mode not manual"
    [ "$(gsettings get org.gnome.system.proxy.https host)" = "'"'127.0.0.1'"'" ] || fail "https host"
    [ "$(gsettings get org.gnome.system.proxy.https port)" = 18080 ] || fail "https port"
    "$P" status >"$SCRATCH/g-status.out"
    grep -q "GNOME proxy: mode=.manual." "$SCRATCH/g-status.out" || fail "status: $(cat "$SCRATCH/g-status.out")"
    "$P" off >/dev/null 2>"$SCRATCH/g-off.err" || fail "off: $(cat "$SCRATCH/g-off.err")"
    [ "$(gsettings get org.gnome.system.proxy mode)" = "'"'none'"'" ] || fail "mode not restored"
    [ "$(gsettings get org.gnome.system.proxy.http host)" = "'"'corp.example'"'" ] || fail "http host not restored"
    "$P" on --pac --viewer 127.0.0.1:18081 >/dev/null 2>/dev/null || fail "on --pac"
    [ "$(gsettings get org.gnome.system.proxy mode)" = "'"'auto'"'" ] || fail "mode not auto"
    [ "$(gsettings get org.gnome.system.proxy autoconfig-url)" = "'"'http://127.0.0.1:18081/proxy.pac'"'" ] || fail "autoconfig-url"
    "$P" off >/dev/null 2>&1 || fail "off after --pac"
    [ "$(gsettings get org.gnome.system.proxy mode)" = "'"'none'"'" ] || fail "mode not restored after --pac"
  ' _ "$P" "$SCRATCH" 2> >(grep -v "^dbus-daemon" >&2)
  pass "GNOME settings applied, checked and restored (manual and PAC modes)"
else
  echo "note: GNOME part skipped (dbus-run-session, gsettings or the proxy schema missing)"
fi
