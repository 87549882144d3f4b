#!/usr/bin/env bash
# Soak benchmark (not a test): steady load through mitmd for a while, with mitmd's RSS and open
# descriptor count sampled every second. Both should be flat after the warm-up.
#   tools/bench/soak.sh [MITMD [SECONDS [WORKERS]]]     defaults: build/mitmd, 590 (the most), 8
# Writes soak.csv (t, rss_kib, fds) to the current directory and prints a summary: the figures at
# the end of the warm-up (the first 60 s) and at the end, and the maxima after the warm-up.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
mitmd="${1:-$root/build/mitmd}"
seconds="${2:-590}"
workers="${3:-8}"
bench="$(dirname "$mitmd")/tools/mitmd_bench"
[[ -x "$bench" ]] || { echo "soak.sh: $bench is missing (build the mitmd_bench target)" >&2; exit 2; }
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY REQUESTS_CA_BUNDLE CURL_CA_BUNDLE SSL_CERT_FILE

out="$(mktemp)"
# mitmd_bench serves for at most 600 s: the load stops 10 s before that.
(( seconds > 590 )) && seconds=590
"$bench" --mitmd "$mitmd" --serve $((seconds + 10)) >"$out" 2>&1 &
bench_pid=$!
trap 'kill $bench_pid 2>/dev/null || true; rm -f "$out"' EXIT
for _ in $(seq 300); do grep -q "^serving" "$out" && break; sleep 0.1; done
origin="$(sed -n 's|^origin *\(https://[^/]*\)/bytes.*|\1|p' "$out")"
proxy="$(sed -n 's|^mitmd *\(http://[^ ]*\) .*|\1|p' "$out")"
pid="$(sed -n 's|^mitmd .* pid \([0-9]*\).*|\1|p' "$out")"
cacert="$(sed -n 's|^mitmd root *\(.*\)|\1|p' "$out")"
[[ -n "$pid" && -n "$origin" ]] || { cat "$out" >&2; exit 1; }
echo "soak: mitmd pid $pid, $workers workers, $seconds s"

echo "t,rss_kib,fds" > soak.csv
/usr/bin/python3 "$root/tools/bench/soak_load.py" --proxy "$proxy" --cacert "$cacert" \
  --origin "$origin" --seconds "$seconds" --workers "$workers" > soak-load.txt &
load_pid=$!
# Sampled by the clock, not by counting sleeps: on a busy machine one round takes longer than 1 s.
start=$(date +%s)
while kill -0 $load_pid 2>/dev/null; do
  t=$(( $(date +%s) - start ))
  rss="$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status" 2>/dev/null)" || break
  fds="$(ls "/proc/$pid/fd" 2>/dev/null | wc -l)"
  echo "$t,$rss,$fds" >> soak.csv
  sleep 1
done
wait $load_pid
cat soak-load.txt
awk -F, -v warm=60 'NR > 1 {
    if (rw == "" && $1 >= warm) { rw = $2; fw = $3 }
    if ($1 >= warm) { if ($2 > rmax) rmax = $2; if ($3 > fmax) fmax = $3; if (fmin == "" || $3 < fmin) fmin = $3 }
    rl = $2; fl = $3 }
  END { printf "rss KiB: %d at %d s, %d at the end, max %d after warm-up\n", rw, warm, rl, rmax;
        printf "fds: %d at %d s, %d at the end, %d..%d after warm-up\n", fw, warm, fl, fmin, fmax }' soak.csv
