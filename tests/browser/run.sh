#!/usr/bin/env bash
# Browser tests of the viewer (ctest label "browser"):
#   tests/browser/run.sh MITMD_BINARY ARTIFACTS_DIR
# Installs what they need when it is missing (Debian's chromium and nodejs, the npm packages in
# package.json), then runs viewer_test.js, control_test.js and h2_test.js (HTTP/2 and WebSocket
# through mitmd) with node's test runner. Screenshots, the exported HAR
# and the 50,000-flow figures are left in ARTIFACTS_DIR.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
mitmd="$(realpath "$1")"
artifacts="${2:-$here/artifacts}"
mkdir -p "$artifacts"

need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v curl >/dev/null 2>&1 || need+=(curl)
# The copied snippets are run with the clients they are for.
command -v http >/dev/null 2>&1 || need+=(httpie)
/usr/bin/python3 -c 'import requests' >/dev/null 2>&1 || need+=(python3-requests)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "browser tests: installing ${need[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
fi
if [ ! -d "$here/node_modules/playwright-core" ] || [ ! -d "$here/node_modules/har-validator" ] ||
   [ ! -d "$here/node_modules/ws" ]; then
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
fi

# Tests pass CAs and proxies explicitly; nothing from the caller's environment.
unset SSL_CERT_FILE SSL_CERT_DIR CURL_CA_BUNDLE REQUESTS_CA_BUNDLE NODE_EXTRA_CA_CERTS
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY

cd "$here"
MITMD="$mitmd" ARTIFACTS="$artifacts" exec node --test --test-concurrency=1 --test-reporter=spec viewer_test.js control_test.js h2_test.js
