#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite twice: a normal build, then
# one under AddressSanitizer + UndefinedBehaviorSanitizer, which fails on any report. A third
# stage builds only the tests that run threads (and mitmd) under ThreadSanitizer and fails on
# any data race it reports (no suppressions: none was needed).
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

echo "== build (ThreadSanitizer: mitmd and the threaded tests only)"
# Only these targets (see tests/CMakeLists.txt): the whole suite under TSan would not fit CI's time.
cmake -S "$root" -B "$root/build-tsan" -G Ninja -DMITMD_TSAN=ON >/dev/null
cmake --build "$root/build-tsan" -j "$jobs" --target mitmd tsan_unit_tests tsan_integration_tests
echo "== threaded tests under ThreadSanitizer"
# Reports go to files (mitmd's included: the integration tests start the TSan build of it), so a
# race in a child process fails the stage even when its test passed.
reports="$root/build-tsan/tsan-reports"
rm -rf "$reports" && mkdir -p "$reports"
TSAN_OPTIONS="log_path=$reports/race:second_deadlock_stack=1" \
  ctest --test-dir "$root/build-tsan" -L tsan --output-on-failure -j "$jobs" || status=1
if compgen -G "$reports/race*" >/dev/null; then
  echo "ThreadSanitizer reports:"
  cat "$reports"/race*
  status=1
fi

exit $status
