#!/usr/bin/env bash
# Builds (if needed) and runs the whole test suite with ctest.
#   scripts/test.sh [extra ctest arguments]
# The tests need python3-numpy (STAM_DEV_DEPS=1 scripts/setup.sh installs it).
# The suite is switched on whatever build/ was configured with before, and finding no test
# fails the run rather than passing it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
unity=()  # STAM_UNITY=1 (CI): a unity build, which compiles LibTorch's headers once per 16 sources
if [ "${STAM_UNITY:-0}" = 1 ]; then unity=(-DCMAKE_UNITY_BUILD=ON -DCMAKE_UNITY_BUILD_BATCH_SIZE=16); fi
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DSTAM_BUILD_TESTS=ON "${unity[@]}" \
  >/dev/null  # the status lines: warnings and errors go to stderr
cmake --build build -j"${STAM_JOBS:-2}"
ctest --test-dir build --output-on-failure --no-tests=error -j"${STAM_JOBS:-2}" "$@"
