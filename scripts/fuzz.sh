#!/usr/bin/env bash
# Fuzzes the readers of untrusted files with libFuzzer under ASan + UBSan.
#   scripts/fuzz.sh [SECONDS] [TARGET...]
# Needs clang-14, libclang-rt-14-dev and llvm-14: STAM_DEV_DEPS=1 scripts/setup.sh.
# Builds the fuzz targets into build-asan/ with clang++-14 (-DSTAM_FUZZ=ON), then runs each
# TARGET (default: all of checkpoint, labels, batch_output) for SECONDS (default 60), all at once,
# starting from its committed corpus in fuzz/corpus/TARGET. New inputs go to
# build-asan/fuzz/TARGET/corpus, never into the committed corpus; a crash, leak or UB report is
# saved as build-asan/fuzz/TARGET/crash-* (or leak-*, timeout-*, oom-*) and makes the script exit 1.
# With STAM_FUZZ_MERGE=1 the committed corpus is then replaced by a minimal one (libFuzzer's
# -merge=1) that keeps the coverage of the old corpus plus what this run found.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
seconds="${1:-60}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(checkpoint labels batch_output npy)

CXX="${CXX:-clang++-14}" cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Release -DSTAM_FUZZ=ON \
  >/dev/null
for t in "${targets[@]}"; do  # one at a time: make races on the library they share
  cmake --build build-asan -j"${STAM_JOBS:-2}" --target "fuzz_$t"
done

export LSAN_OPTIONS="suppressions=$PWD/fuzz/lsan.supp:print_suppressions=0"
export ASAN_OPTIONS="fast_unwind_on_malloc=0"  # see fuzz/lsan.supp
export UBSAN_OPTIONS="print_stacktrace=1"
pids=()
for t in "${targets[@]}"; do
  work="build-asan/fuzz/$t"
  mkdir -p "$work/corpus"
  # -rss_limit_mb: LibTorch alone maps ~1 GB; -timeout: any single input over 10 s is a hang.
  build-asan/fuzz/fuzz_"$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 \
    -print_final_stats=1 -artifact_prefix="$work/" "$work/corpus" "fuzz/corpus/$t" \
    >"$work/log" 2>&1 &
  pids+=($!)
done
status=0
for k in "${!targets[@]}"; do
  t="${targets[$k]}"
  if wait "${pids[$k]}"; then result=ok; else result="FAILED (see build-asan/fuzz/$t/log)"; status=1; fi
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "build-asan/fuzz/$t/log" | grep -o '[0-9]*$' || echo "?")
  echo "fuzz $t: $result, $runs executions in ${seconds}s, corpus $(ls "build-asan/fuzz/$t/corpus" | wc -l) new inputs"
done

if [ "${STAM_FUZZ_MERGE:-0}" = 1 ] && [ $status = 0 ]; then
  for t in "${targets[@]}"; do
    merged="build-asan/fuzz/$t/merged"
    rm -rf "$merged" && mkdir -p "$merged"
    build-asan/fuzz/fuzz_"$t" -merge=1 -timeout=10 -rss_limit_mb=4096 "$merged" \
      "fuzz/corpus/$t" "build-asan/fuzz/$t/corpus" >"build-asan/fuzz/$t/merge.log" 2>&1
    rm -rf "fuzz/corpus/$t" && cp -r "$merged" "fuzz/corpus/$t"
    echo "fuzz $t: corpus merged to $(ls "fuzz/corpus/$t" | wc -l) inputs, $(du -sk "fuzz/corpus/$t" | cut -f1) KB"
  done
fi
exit $status
