#!/usr/bin/env bash
# Installs the Debian 12 packages stam needs and builds it into build/.
#   scripts/setup.sh            (as root, or with sudo available)
# clang-14, its sanitizer and libFuzzer runtimes and llvm-14 (llvm-symbolizer, for readable
# sanitizer reports) build build-asan/ for scripts/sanitize.sh and scripts/fuzz.sh.
# python3 (standard library only) runs scripts/merge_outputs.sh and the CSV round-trip test;
# python3-numpy reads back what `stam embed` writes.
# Set STAM_FIXTURE_DEPS=1 to also install what scripts/*.py need to regenerate test fixtures.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

packages=(build-essential cmake libtorch-dev libopencv-dev libcli11-dev libspdlog-dev libgtest-dev
          nlohmann-json3-dev libdnnl-dev libopenblas0-openmp ffmpeg ca-certificates curl python3
          python3-numpy pkg-config libavformat-dev libavcodec-dev libavutil-dev libswscale-dev
          clang-14 libclang-rt-14-dev llvm-14)
if [ "${STAM_FIXTURE_DEPS:-0}" = 1 ]; then
  packages+=(python3-torch python3-numpy python3-pil python3-av)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends "${missing[@]}"
fi

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"${STAM_JOBS:-2}"
