#!/usr/bin/env bash
# Installs the Debian packages mitmd needs that are not installed yet.
#   scripts/deps.sh build   what building and running mitmd needs
#   scripts/deps.sh test    that, plus what the test suite drives (curl, openssl, chromium, ...)
#   scripts/deps.sh bench   the build list, plus the benchmark's origin and clients
#   scripts/deps.sh fuzz    the build list, plus clang 16 and libc++ for tools/fuzz/run.sh
set -euo pipefail

build_pkgs=(cmake ninja-build g++ pkg-config android-libboringssl-dev libevent-dev
  nlohmann-json3-dev libnghttp2-dev zlib1g-dev libbrotli-dev libzstd-dev libsqlite3-dev
  libre2-dev libqrencode-dev)
test_pkgs=(libgtest-dev libgmock-dev curl openssl ca-certificates python3
  # tools tests: Chromium + certutil, tshark/dumpcap for the key log, GNOME settings in a
  # private session bus for mitmd-proxy
  chromium libnss3-tools tshark dbus-daemon libglib2.0-bin gsettings-desktop-schemas
  dconf-gsettings-backend
  # browser tests run the viewer's copied snippets with the clients they are for
  httpie python3-requests
  # SOCKS5 for Python requests (socks5h://); transparent mode's test in a network namespace
  # (iptables REDIRECT)
  python3-socks iptables
  # HTTP/2, WebSocket and gRPC peers (issue 9)
  nghttp2-server nghttp2-client python3-h2 python3-websockets python3-grpcio)

# tools/bench/run.sh: nginx as the direct origin, Python for the Nagle client.
bench_pkgs=(nginx-light python3)
# tools/fuzz/run.sh: libFuzzer needs clang; clang 14 cannot compile libstdc++'s <expected>.
fuzz_pkgs=(clang-16 libc++-16-dev libc++abi-16-dev libclang-rt-16-dev)

want=("${build_pkgs[@]}")
if [ "${1:-build}" = test ]; then want+=("${test_pkgs[@]}"); fi
if [ "${1:-build}" = bench ]; then want+=("${bench_pkgs[@]}"); fi
if [ "${1:-build}" = fuzz ]; then want+=("${fuzz_pkgs[@]}"); fi

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
echo "deps: installing ${missing[*]}" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
