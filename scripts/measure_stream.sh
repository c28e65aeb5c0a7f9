#!/usr/bin/env bash
# Does `stam stream`'s latency grow with the stream's length? Serves a live MPEG-TS stream over
# TCP at real time (ffmpeg -re, a test video looped) for SECONDS (default 120), runs
# `stam stream --format jsonl` against it at 1.6 fps, and prints the windows' latency p50/p99 for
# the first and the second half of the run, and the samples dropped. Run it on a quiet machine.
#
#   scripts/measure_stream.sh [--seconds N] [--weights W] [--labels L] [--video V] [--fps F]
#                             [--stam PATH] [-- extra stam stream options]
#
# Weights: models/stam_16.pth when present, else --weights. Writes its files to a temp folder
# (kept, and named at the end, with --keep).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
seconds=120
weights=""
labels=""
video="$here/tests/data/videos/arm_wrestling_340x256_28fps.mp4"
fps=1.6
stam="$here/build/stam"
keep=0
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds=$2; shift 2 ;;
    --weights) weights=$2; shift 2 ;;
    --labels) labels=$2; shift 2 ;;
    --video) video=$2; shift 2 ;;
    --fps) fps=$2; shift 2 ;;
    --stam) stam=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    --) shift; extra=("$@"); break ;;
    *) echo "measure_stream.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
if [ -z "$weights" ]; then
  if [ -f "$here/models/stam_16.pth" ]; then
    weights="$here/models/stam_16.pth"
  else
    echo "measure_stream.sh: no models/stam_16.pth; give --weights" >&2
    exit 2
  fi
fi
[ -x "$stam" ] || { echo "measure_stream.sh: no stam binary at $stam (--stam)" >&2; exit 2; }
py=$(command -v python3)

work=$(mktemp -d)
server=""
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null || true
  if [ "$keep" = 1 ]; then echo "files in $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

port=$("$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
ffmpeg -nostdin -loglevel error -re -stream_loop -1 -i "$video" -t "$seconds" -an \
  -c:v mpeg2video -q:v 4 -f mpegts "tcp://127.0.0.1:$port?listen" &
server=$!
hex=$(printf '%04X' "$port")
for _ in $(seq 200); do
  grep -qi ":$hex 00000000:0000 0A" /proc/net/tcp && break
  sleep 0.05
done

label_args=()
[ -n "$labels" ] && label_args=(--labels "$labels")
echo "streaming ${seconds} s at ${fps} fps from tcp://127.0.0.1:$port with $weights" >&2
"$stam" stream "tcp://127.0.0.1:$port" -w "$weights" "${label_args[@]}" --fps "$fps" \
  --format jsonl "${extra[@]}" > "$work/windows.jsonl" 2> "$work/stderr.txt" || {
  echo "stam stream failed:" >&2
  cat "$work/stderr.txt" >&2
  exit 1
}
wait "$server" 2>/dev/null || true
server=""

"$py" - "$work/windows.jsonl" "$seconds" <<'PY'
import json, sys

rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
half = float(sys.argv[2]) / 2
if not rows:
    sys.exit("no windows were written")

def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]

for name, part in (("first half", [r for r in rows if r["t_end_s"] <= half]),
                   ("second half", [r for r in rows if r["t_end_s"] > half])):
    lat = [r["latency_ms"] for r in part]
    if lat:
        print(f"{name}: {len(lat)} windows, latency p50 {pct(lat, 50):.1f} ms, "
              f"p99 {pct(lat, 99):.1f} ms")
    else:
        print(f"{name}: no windows")
print(f"dropped_frames: {rows[-1]['dropped_frames']} (windows: {len(rows)}, "
      f"stream time {rows[-1]['t_end_s']:.1f} s)")
PY
