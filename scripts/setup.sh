#!/usr/bin/env bash
# Installs the Debian 12 packages stam needs and builds it into build/.
#   scripts/setup.sh                    (as root, or with sudo installed)
#   STAM_DEV_DEPS=1 scripts/setup.sh    also what scripts/test.sh, sanitize.sh, fuzz.sh and
#                                       test_slurm.sh need
# libgtest-dev builds the test suite, which build/ includes; python3 (standard library only)
# runs scripts/merge_outputs.sh and the CSV round-trip test.
# STAM_DEV_DEPS=1 adds clang-14, its sanitizer and libFuzzer runtimes and llvm-14
# (llvm-symbolizer, for readable sanitizer reports), which build build-asan/ for
# scripts/sanitize.sh and scripts/fuzz.sh, python3-numpy, which reads back in the tests what
# `stam embed` writes, and slurm-wlm and munge, the one-node cluster of scripts/test_slurm.sh.
# Set STAM_FIXTURE_DEPS=1 to also install what scripts/*.py need to regenerate test fixtures.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

packages=(build-essential cmake libtorch-dev libopencv-dev libcli11-dev libspdlog-dev libgtest-dev
          nlohmann-json3-dev libcpp-httplib-dev libdnnl-dev libopenblas0-openmp ffmpeg
          ca-certificates curl python3 pkg-config
          libavformat-dev libavcodec-dev libavutil-dev libswscale-dev)
if [ "${STAM_DEV_DEPS:-0}" = 1 ]; then
  packages+=(clang-14 libclang-rt-14-dev llvm-14 python3-numpy slurm-wlm munge)
fi
if [ "${STAM_FIXTURE_DEPS:-0}" = 1 ]; then
  packages+=(python3-torch python3-numpy python3-pil python3-av)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  as_root=()
  if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null; then
      echo "error: installing ${missing[*]} needs root: run as root or install sudo" >&2
      exit 1
    fi
    as_root=(sudo)
  fi
  "${as_root[@]}" apt-get update
  # Through env: sudo does not pass the caller's environment on.
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y --no-install-recommends "${missing[@]}"
fi

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release  # STAM_UNITY=1: a unity build (CMakeLists.txt)
cmake --build build -j"${STAM_JOBS:-2}"
