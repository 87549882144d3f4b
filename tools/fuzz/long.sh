#!/usr/bin/env bash
# The long fuzz runs:  tools/fuzz/long.sh [RUNS [TARGET...]]
# For every target (or the ones named), one after the other at the lowest CPU priority:
#  1. RUNS executions (default 10 million) in the fast build (MITMD_FUZZ_SANITIZE=0: no ASan or
#     UBSan, several times more executions per second on this machine's 2 cores), growing
#     build-fuzz-fast/corpus/TARGET/ from the seeds;
#  2. every input of that grown corpus run once under ASan+UBSan (build-fuzz/), so a memory error
#     that did not crash the fast build is still caught on each input that reached new coverage.
# Prints one Markdown table row per target; logs go to build-fuzz-fast/long/TARGET{,.replay}.log.
# A crash stops that target's run (its input is in build-fuzz-fast/crashes/TARGET/ or
# build-fuzz/crashes/TARGET/) and the next target starts.
set -uo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
runs="${1:-10000000}"
shift || true
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || mapfile -t targets < <("$root/tools/fuzz/run.sh" list)
fast="$root/build-fuzz-fast"
sanitized="$root/build-fuzz"
mkdir -p "$fast/long"
# One of libFuzzer's -print_final_stats values (stat::NAME) from a log, or "?".
final_stat() { local v; v=$(sed -n "s/^stat::$2: *//p" "$1" | tail -1); echo "${v:-?}"; }
count() { find "$1" -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) 2>/dev/null | wc -l; }
echo "| target | executions | exec/s | cov | ft | corpus (files) | fuzzing seconds | crashes | corpus under ASan+UBSan |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
for t in "${targets[@]}"; do
  log="$fast/long/$t.log"
  MITMD_FUZZ_SANITIZE=0 MITMD_FUZZ_BUILD="$fast" nice -n 19 "$root/tools/fuzz/run.sh" "$t" 86400 \
    -runs="$runs" >"$log" 2>&1
  rc=$?
  execs=$(final_stat "$log" number_of_executed_units)
  rate=$(final_stat "$log" average_exec_per_sec)
  # The fuzzing time alone (run.sh's build before it is not counted): executions / rate.
  seconds="?"
  if [[ $execs =~ ^[0-9]+$ && $rate =~ ^[0-9]+$ && $rate -gt 0 ]]; then seconds=$((execs / rate)); fi
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
  ft=$(grep -o 'ft: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
  files=$(find "$fast/corpus/$t" -type f | wc -l)
  # -runs=0: each input of both corpora is executed once and nothing new is generated.
  MITMD_FUZZ_BUILD="$sanitized" nice -n 19 "$root/tools/fuzz/run.sh" "$t" 3600 -runs=0 \
    "$fast/corpus/$t" >"$fast/long/$t.replay.log" 2>&1
  replay=$?
  if [[ $replay == 0 ]]; then replayed="$files inputs, clean"; else replayed="failed (exit $replay)"; fi
  crashes=$(( $(count "$fast/crashes/$t") + $(count "$sanitized/crashes/$t") ))
  echo "| $t | $execs | $rate | ${cov:-?} | ${ft:-?} | $files | $seconds | $crashes (exit $rc) | $replayed |"
done
