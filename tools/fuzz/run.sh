#!/usr/bin/env bash
# Runs one libFuzzer target for a while:  tools/fuzz/run.sh TARGET SECONDS [libFuzzer flags...]
#   TARGET   a tests/fuzz/*_fuzz.cc name, e.g. h1_parser_fuzz (or "list")
# Builds the targets with clang 16 and libc++ (Debian's clang 14 cannot compile libstdc++'s
# <expected>) under ASan+UBSan into build-fuzz/, then fuzzes starting from a copy of the seed
# corpus tests/fuzz/corpus/TARGET (new inputs go to build-fuzz/corpus/TARGET; crashes to
# build-fuzz/crashes/TARGET). Add a crash worth keeping to the seed corpus once it is fixed: the
# ordinary test suite replays every seed.
#   MITMD_FUZZ_SANITIZE=0  builds without ASan/UBSan into build-fuzz-fast/ (several times more
#                          executions per second; tools/fuzz/long.sh then replays what it found
#                          under the sanitizers)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
target="${1:?usage: run.sh TARGET SECONDS [libFuzzer flags]}"
if [[ "$target" == list ]]; then
  ls "$root/tests/fuzz" | sed -n 's/\(.*_fuzz\)\.cc$/\1/p'
  exit 0
fi
seconds="${2:?usage: run.sh TARGET SECONDS [libFuzzer flags]}"
shift 2
[[ -f "$root/tests/fuzz/$target.cc" ]] || { echo "run.sh: no tests/fuzz/$target.cc" >&2; exit 2; }
"$root/scripts/deps.sh" fuzz >/dev/null
command -v clang++-16 >/dev/null || {
  echo "run.sh: clang++-16 is missing: apt-get install clang-16 libc++-16-dev libc++abi-16-dev libclang-rt-16-dev" >&2
  exit 2
}
sanitize="${MITMD_FUZZ_SANITIZE:-1}"
if [[ "$sanitize" == 0 ]]; then
  dir="${MITMD_FUZZ_BUILD:-$root/build-fuzz-fast}"
  sanitize_flag=OFF
else
  dir="${MITMD_FUZZ_BUILD:-$root/build-fuzz}"
  sanitize_flag=ON
fi
cmake -S "$root" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMITMD_FUZZ=ON \
  -DMITMD_FUZZ_SANITIZE="$sanitize_flag" \
  -DCMAKE_C_COMPILER=clang-16 -DCMAKE_CXX_COMPILER=clang++-16 \
  -DCMAKE_CXX_FLAGS="-stdlib=libc++" -DCMAKE_EXE_LINKER_FLAGS="-stdlib=libc++" >/dev/null
cmake --build "$dir" --target "$target"
mkdir -p "$dir/corpus/$target" "$dir/crashes/$target"
cp -n "$root/tests/fuzz/corpus/$target/"* "$dir/corpus/$target/" 2>/dev/null || true
cd "$dir/crashes/$target"
exec "$dir/tests/$target" -max_total_time="$seconds" -print_final_stats=1 -timeout=10 \
  -rss_limit_mb=2048 "$@" "$dir/corpus/$target"
