#!/usr/bin/env bash
# Downloads the official STAM checkpoints (Kinetics-400, v2 weights) into models/.
#
#   scripts/download_models.sh [8|16|32|64|all] ...     (default: 16)
#
# Files that already exist are kept. Each download is checked by loading it fully with
# `stam info` when the stam binary is found (build/stam, PATH, or $STAM).
set -euo pipefail

BASE_URL="https://miil-public-eu.oss-eu-central-1.aliyuncs.com/model-zoo/STAM/v2"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# Run from the source tree (scripts/) or from an install (share/stam/models/).
if [ -d "$here/../models" ]; then dest="${STAM_MODELS_DIR:-$here/../models}"; else dest="${STAM_MODELS_DIR:-$here}"; fi
mkdir -p "$dest"

stam_bin="${STAM:-}"
for candidate in "$here/../build/stam" "$(command -v stam || true)"; do
  if [ -z "$stam_bin" ] && [ -n "$candidate" ] && [ -x "$candidate" ]; then stam_bin="$candidate"; fi
done

sizes=()
for t in "$@"; do  # `all` anywhere stands for every size
  if [ "$t" = all ]; then sizes+=(8 16 32 64); else sizes+=("$t"); fi
done
[ ${#sizes[@]} -eq 0 ] && sizes=(16)
for t in "${sizes[@]}"; do  # every size checked before anything is downloaded
  case "$t" in 8|16|32|64) ;; *) echo "error: unknown model size '$t' (8, 16, 32, 64 or all)" >&2; exit 2 ;; esac
done

fetch() {
  local url="$1" out="$2"
  if command -v curl >/dev/null; then
    curl -fL --retry 3 -o "$out" "$url"
  elif command -v wget >/dev/null; then
    wget -O "$out" "$url"
  else
    echo "error: neither curl nor wget is installed" >&2
    return 1
  fi
}

status=0
for t in "${sizes[@]}"; do
  file="$dest/stam_$t.pth"
  if [ -s "$file" ]; then
    echo "stam_$t.pth: already present, skipped"
  else
    echo "stam_$t.pth: downloading from $BASE_URL/stam_$t.pth"
    if ! fetch "$BASE_URL/stam_$t.pth" "$file.part"; then
      rm -f "$file.part"
      echo "error: download of stam_$t.pth failed" >&2
      status=1
      continue
    fi
    mv "$file.part" "$file"
  fi
  if [ -n "$stam_bin" ]; then
    if "$stam_bin" info -q --weights "$file" >/dev/null; then
      echo "stam_$t.pth: loads"
    else
      echo "error: $file does not load; delete it and download again" >&2
      status=1
    fi
  fi
done
exit $status
