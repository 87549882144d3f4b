#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite twice: a normal build, then
# one under AddressSanitizer + UndefinedBehaviorSanitizer, which fails on any report.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/deps.sh" test

# Tests pass CAs to every client explicitly; do not let the caller's environment leak in.
unset SSL_CERT_FILE SSL_CERT_DIR CURL_CA_BUNDLE REQUESTS_CA_BUNDLE NODE_EXTRA_CA_CERTS
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY

jobs="$(nproc)"
status=0

echo "== build (RelWithDebInfo)"
"$root/scripts/build.sh" "$root/build-test"
echo "== tests"
ctest --test-dir "$root/build-test" --output-on-failure -j "$jobs" || status=1

echo "== build (ASan + UBSan)"
"$root/scripts/build.sh" "$root/build-asan" -DMITMD_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
echo "== tests under ASan + UBSan"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir "$root/build-asan" --output-on-failure -j "$jobs" || status=1

exit $status
