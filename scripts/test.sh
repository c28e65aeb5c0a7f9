#!/usr/bin/env bash
# Builds (if needed) and runs the whole test suite with ctest.
#   scripts/test.sh [extra ctest arguments]
# The tests need python3-numpy (STAM_DEV_DEPS=1 scripts/setup.sh installs it).
# The suite is switched on whatever build/ was configured with before, and finding no test
# fails the run rather than passing it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DSTAM_BUILD_TESTS=ON \
  >/dev/null  # the status lines: warnings and errors go to stderr
cmake --build build -j"${STAM_JOBS:-2}"
ctest --test-dir build --output-on-failure --no-tests=error -j"${STAM_JOBS:-2}" "$@"
