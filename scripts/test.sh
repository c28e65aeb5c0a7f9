#!/usr/bin/env bash
# Builds (if needed) and runs the whole test suite with ctest.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"${STAM_JOBS:-2}"
ctest --test-dir build --output-on-failure -j"${STAM_JOBS:-2}" "$@"
