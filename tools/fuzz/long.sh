#!/usr/bin/env bash
# The long fuzz runs:  tools/fuzz/long.sh [RUNS [TARGET...]]
# Runs every target (or the ones named) one after the other through run.sh, each for RUNS
# executions (default 10 million) at the lowest CPU priority, and prints one Markdown table row
# per target: executions, executions per second, coverage (libFuzzer's cov and ft), corpus size,
# crashes. Logs go to build-fuzz/long/TARGET.log; a crash stops that target's run (its input is
# in build-fuzz/crashes/TARGET/) and the next target starts.
set -uo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
runs="${1:-10000000}"
shift || true
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || mapfile -t targets < <("$root/tools/fuzz/run.sh" list)
dir="${MITMD_FUZZ_BUILD:-$root/build-fuzz}"
mkdir -p "$dir/long"
echo "| target | executions | exec/s | cov | ft | corpus (files) | seconds | crashes |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
for t in "${targets[@]}"; do
  log="$dir/long/$t.log"
  start=$SECONDS
  nice -n 19 "$root/tools/fuzz/run.sh" "$t" 86400 -runs="$runs" >"$log" 2>&1
  rc=$?
  seconds=$((SECONDS - start))
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
  ft=$(grep -o 'ft: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
  files=$(find "$dir/corpus/$t" -type f | wc -l)
  crashes=$(find "$dir/crashes/$t" -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | wc -l)
  echo "| $t | ${execs:-?} | ${rate:-?} | ${cov:-?} | ${ft:-?} | $files | $seconds | $crashes (exit $rc) |"
done
