#!/usr/bin/env bash
# How close does `stam serve` come to the model's own speed? On one machine, one run, this
# measures the same 32 classifications three ways and prints their throughput side by side:
#   1. `stam serve` with CLIENTS x REQUESTS concurrent requests (scripts/load_test.py; default 8 x 4),
#   2. 32 `stam classify` processes one after another (each loads the model and decodes),
#   3. 32 model forwards alone (`stam bench --iters 32`, median times 32: no decoding, no HTTP),
# then the server's peak RSS (VmHWM). Run it on a quiet machine.
#
#   scripts/measure_serve.sh --weights W [--labels L] [--video V] [--clients N] [--requests M]
#                            [--stam PATH] [-- extra stam serve options]
#
# The video defaults to 10 s of 1280x720 H.264 made from a test clip with ffmpeg.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
weights=""
labels="$here/models/kinetics400_labels.txt"
video=""
clients=8
requests=4
stam="$here/build/stam"
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --weights) weights=$2; shift 2 ;;
    --labels) labels=$2; shift 2 ;;
    --video) video=$2; shift 2 ;;
    --clients) clients=$2; shift 2 ;;
    --requests) requests=$2; shift 2 ;;
    --stam) stam=$2; shift 2 ;;
    --) shift; extra=("$@"); break ;;
    *) echo "measure_serve.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ -n "$weights" ] || { echo "measure_serve.sh: give --weights (e.g. models/stam_16.pth)" >&2; exit 2; }
[ -x "$stam" ] || { echo "measure_serve.sh: no stam binary at $stam (--stam)" >&2; exit 2; }
n=$((clients * requests))

work=$(mktemp -d)
server=""
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

if [ -z "$video" ]; then
  video="$work/clip720_10s.mp4"
  ffmpeg -nostdin -loglevel error -stream_loop -1 \
    -i "$here/tests/data/videos/arm_wrestling_340x256_28fps.mp4" -t 10 -an \
    -vf scale=1280:720 -c:v libx264 -preset fast -pix_fmt yuv420p "$video"
fi
now() { date +%s.%N; }

echo "== 1. stam serve, $clients clients x $requests requests" >&2
"$stam" serve --port 0 -w "$weights" --labels "$labels" --queue "$n" "${extra[@]}" \
  2>"$work/serve.log" &
server=$!
# Succeeds once the server at port $1 answers /health with 200 (the model is loaded).
healthy() {
  python3 -c "import sys, urllib.request
try: sys.exit(urllib.request.urlopen('http://127.0.0.1:$1/health').status != 200)
except Exception: sys.exit(1)"
}
port=""
up=0
for _ in $(seq 600); do
  port=$(sed -n 's|.*listening on http://127.0.0.1:\([0-9]*\).*|\1|p' "$work/serve.log" | head -1)
  if [ -n "$port" ] && healthy "$port"; then up=1; break; fi
  sleep 0.2
done
[ "$up" = 1 ] || { cat "$work/serve.log" >&2; exit 1; }
python3 "$here/scripts/load_test.py" --url "http://127.0.0.1:$port" --clients "$clients" \
  --requests "$requests" --json "$video" >"$work/load.json"
serve_s=$(python3 -c "import json; print(json.load(open('$work/load.json'))['wall_s'])")
rss_kb=$(awk '/VmHWM/ {print $2}' "/proc/$server/status")
kill -TERM "$server"
wait "$server" || true
server=""

echo "== 2. $n stam classify processes" >&2
t0=$(now)
for _ in $(seq "$n"); do
  "$stam" classify "$video" -w "$weights" --labels "$labels" -q >/dev/null
done
classify_s=$(python3 -c "print($(now) - $t0)")

echo "== 3. $n model forwards" >&2
"$stam" bench --frames "$("$stam" info "$weights" --format json | python3 -c 'import json,sys; print(json.load(sys.stdin)["model"]["frames"])')" \
  -w "$weights" --iters "$n" --warmup 1 --format json >"$work/bench.json"
forward_s=$(python3 -c "import json; r = json.load(open('$work/bench.json'))['results'][0]; print(r['median_ms'] * $n / 1000)")

python3 - "$work/load.json" "$serve_s" "$classify_s" "$forward_s" "$rss_kb" "$n" <<'PY'
import json, sys
load = json.load(open(sys.argv[1]))
serve, classify, forward, rss, n = map(float, sys.argv[2:7])
print(f"| way ({int(n)} classifications) | seconds | videos/s | / forwards |")
print("| --- | --- | --- | --- |")
for name, s in (("stam serve", serve), ("stam classify processes", classify), ("model forwards", forward)):
    print(f"| {name} | {s:.1f} | {n / s:.3f} | {s / forward:.2f}x |")
print(f"serve: latency p50 {load['latency_p50_s']:.2f} s, p99 {load['latency_p99_s']:.2f} s, "
      f"errors {load['errors'] or 'none'}; peak RSS {rss / 1024:.0f} MiB")
PY
