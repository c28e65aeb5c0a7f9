#!/usr/bin/env bash
# Builds the library, the tests and the fuzz targets with clang under ASan + UBSan into
# build-asan/, then runs the fast tests there and replays every committed fuzz corpus.
#   scripts/sanitize.sh [extra ctest arguments]
# Needs clang-14, libclang-rt-14-dev, llvm-14 and python3-numpy: STAM_DEV_DEPS=1 scripts/setup.sh.
# The slow suites (the CLI end to end, long decodes, parity and benchmarks) are left to the
# normal build: under ASan they would take several times as long and cover no other reader code.
# BatchRunDeathTest limits the address space to make a thread fail to start; ASan reserves
# terabytes of it for its shadow memory, so there the limit does not model that failure.
# A sanitizer report fails the test that triggered it; fuzz/lsan.supp lists the leaks inside
# LibTorch that are not ours, each with its reason.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
CXX="${CXX:-clang++-14}" cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Release -DSTAM_FUZZ=ON \
  >/dev/null
cmake --build build-asan -j"${STAM_JOBS:-2}"
export LSAN_OPTIONS="suppressions=$PWD/fuzz/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="print_stacktrace=1"
ctest --test-dir build-asan --output-on-failure -j"${STAM_JOBS:-2}" \
  -E '(^|/)(BatchCli|Cli|DecodeLong|VideoParity|Bench|BatchRunDeathTest)\.' "$@"
