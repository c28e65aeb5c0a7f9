#!/usr/bin/env bash
# Compiles the model core (-DSTAM_VIDEO=OFF -DSTAM_ONEDNN=OFF) and its tests against LibTorch 2,
# on a Debian 12 machine whose own LibTorch is 1.13: Debian 13's libtorch-dev and libtorch2.6 are
# downloaded (not installed) and unpacked into a work folder, and CMake finds Torch there.
# Every object file is compiled; nothing is linked, since that LibTorch's own libraries need
# Debian 13's (glibc 2.41, oneDNN 3.6, ...). It shows here that the code builds with a LibTorch
# 2, as the GPU machines' PyTorch has (scripts/gpu_check.sh builds and runs against that one).
#   scripts/check_libtorch2.sh [WORK_DIR]   (default /tmp/stam-libtorch2; needs network for apt)
# Needs STAM_DEV_DEPS=1 scripts/setup.sh's packages, and the headers of
# `scripts/gpu_check.sh --vendor-headers`. Exit 0 when every object compiled.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
work="${1:-/tmp/stam-libtorch2}"
apt_dir="$work/apt"
root="$work/root"
build="$work/build"
mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$root"
echo "deb http://deb.debian.org/debian trixie main" >"$apt_dir/sources.list"
apt_opts=(-o Dir::Etc::sourcelist="$apt_dir/sources.list" -o Dir::Etc::sourceparts=/dev/null
          -o Dir::State::Lists="$apt_dir/lists" -o Dir::Cache="$apt_dir/cache"
          -o APT::Sandbox::User=root)
if ! ls "$apt_dir"/libtorch2.*.deb >/dev/null 2>&1; then
  apt-get "${apt_opts[@]}" update >/dev/null
  (cd "$apt_dir" && apt-get "${apt_opts[@]}" download libtorch-dev 'libtorch2.*' >/dev/null)
fi
for deb in "$apt_dir"/libtorch-dev_*.deb "$apt_dir"/libtorch2.*.deb; do dpkg-deb -x "$deb" "$root"; done
torch_dir="$(dirname "$(find "$root" -name TorchConfig.cmake | head -1)")"
version="$(sed -n 's/^ *"\([0-9][0-9.]*\)"$/\1/p' \
  "$root/usr/include/torch/csrc/api/include/torch/version.h" | head -1)"
echo "LibTorch $version from Debian 13, CMake files in $torch_dir"
[ -d third_party/include ] || scripts/gpu_check.sh --vendor-headers
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DSTAM_VIDEO=OFF -DSTAM_ONEDNN=OFF \
  -DSTAM_BUILD_TESTS=ON -DSTAM_HEADERS_DIR="$PWD/third_party/include" -DTorch_DIR="$torch_dir" \
  >"$work/configure.log" 2>&1 || { tail -30 "$work/configure.log"; exit 1; }
objects() { make -C "$1" help | sed -n 's/^\.\.\. \(.*\.o\)$/\1/p'; }
mapfile -t core < <(objects "$build")
mapfile -t tests < <(objects "$build/tests")
echo "compiling ${#core[@]} core and CLI sources and ${#tests[@]} test sources"
if ! { make -C "$build" -j"${STAM_JOBS:-2}" "${core[@]}" >"$work/build.log" 2>&1 &&
        make -C "$build/tests" -j"${STAM_JOBS:-2}" "${tests[@]}" >>"$work/build.log" 2>&1; }; then
  grep -m 20 -A6 'error' "$work/build.log"
  echo "check_libtorch2: compile failed ($work/build.log)" >&2
  exit 1
fi
warnings="$(grep -c 'warning:' "$work/build.log" || true)"
echo "every object compiled against LibTorch $version, $warnings warnings ($work/build.log)"
