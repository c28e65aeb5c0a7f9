#!/usr/bin/env bash
# Downloads the official STAM checkpoints (Kinetics-400, v2 weights) into models/.
#
#   scripts/download_models.sh [8|16|32|64|all] ...     (default: 16)
#
# The folder: $STAM_MODELS_DIR, else models/ in the source tree, or the script's own folder
# when installed (share/stam/models). When that one cannot be written (an installed folder owned
# by root), the files go to ${XDG_DATA_HOME:-$HOME/.local/share}/stam/models instead.
# Files that already exist are kept. A download is saved as NAME.part and checked by loading it
# fully with `stam info` when the stam binary is found (build/stam, PATH, or $STAM); only then is
# it renamed to NAME, so a failed or damaged download never passes for a present file.
set -euo pipefail

BASE_URL="https://miil-public-eu.oss-eu-central-1.aliyuncs.com/model-zoo/STAM/v2"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

sizes=()
for t in "$@"; do
  case "$t" in
    -h|--help)
      echo "usage: $0 [8|16|32|64|all] ...   (default: 16)"
      echo "Downloads the official STAM checkpoints stam_SIZE.pth (Kinetics-400, v2 weights) into"
      echo "\$STAM_MODELS_DIR, models/ in the source tree or share/stam/models (if not writable:"
      echo "${XDG_DATA_HOME:-\$HOME/.local/share}/stam/models); files already there are kept."
      exit 0 ;;
    all) sizes+=(8 16 32 64) ;;  # `all` anywhere stands for every size
    *) sizes+=("$t") ;;
  esac
done
[ ${#sizes[@]} -eq 0 ] && sizes=(16)
for t in "${sizes[@]}"; do  # every size checked before anything is downloaded
  case "$t" in 8|16|32|64) ;; *) echo "error: unknown model size '$t' (8, 16, 32, 64 or all)" >&2; exit 2 ;; esac
done

# Run from the source tree (scripts/) or from an install (share/stam/models/).
if [ -n "${STAM_MODELS_DIR:-}" ]; then
  dest="$STAM_MODELS_DIR"
elif [ -d "$here/../models" ]; then
  dest="$(cd "$here/../models" && pwd)"
else
  dest="$here"
fi
shared=""  # the folder that could not be written, still searched for files already there
if ! { mkdir -p "$dest" 2>/dev/null && [ -w "$dest" ]; }; then
  if [ -n "${STAM_MODELS_DIR:-}" ]; then
    echo "error: cannot write to STAM_MODELS_DIR=$dest" >&2
    exit 1
  fi
  shared="$dest"
  dest="${XDG_DATA_HOME:-$HOME/.local/share}/stam/models"
  mkdir -p "$dest"
  echo "$shared is not writable: downloading into $dest"
fi

stam_bin="${STAM:-}"
for candidate in "$here/../build/stam" "$(command -v stam || true)"; do
  if [ -z "$stam_bin" ] && [ -n "$candidate" ] && [ -x "$candidate" ]; then stam_bin="$candidate"; fi
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

loads() {
  "$stam_bin" info -q --weights "$1" >/dev/null
}

status=0
for t in "${sizes[@]}"; do
  name="stam_$t.pth"
  file="$dest/$name"
  if [ -n "$shared" ] && [ -s "$shared/$name" ]; then file="$shared/$name"; fi
  if [ -s "$file" ]; then
    echo "$name: already present, skipped"
    if [ -n "$stam_bin" ]; then
      if loads "$file"; then
        echo "$name: loads"
      else
        echo "error: $file does not load; delete it and download again" >&2
        status=1
      fi
    fi
    continue
  fi
  url="$BASE_URL/$name"
  echo "$name: downloading from $url"
  if ! fetch "$url" "$file.part"; then
    rm -f "$file.part"
    echo "error: download of $url failed; download it by hand and save it as $file" >&2
    status=1
    continue
  fi
  if [ -n "$stam_bin" ]; then
    if ! loads "$file.part"; then
      rm -f "$file.part"
      echo "error: what $url sent does not load (deleted); try again, or download it by" \
        "hand and save it as $file" >&2
      status=1
      continue
    fi
    echo "$name: loads"
  fi
  mv "$file.part" "$file"
  echo "$name: saved as $file"
done
exit $status
