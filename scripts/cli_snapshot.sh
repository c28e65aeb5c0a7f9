#!/usr/bin/env bash
# Record what the CLI prints for the test videos and fixtures, with the parts that change from run
# to run (times, speeds, temporary paths, log clock) masked, so that two builds can be compared:
#
#   scripts/cli_snapshot.sh OLD_STAM_BINARY /tmp/before
#   scripts/cli_snapshot.sh build/stam       /tmp/after
#   diff -r /tmp/before /tmp/after            # empty: the CLI's output is unchanged
#
# Each case writes CASE.out (stdout, plus any output file) and CASE.err (stderr, exit code last).
# Precision is named (fp32, bf16) wherever a model runs: `auto` measures and may choose either.
set -euo pipefail

if [[ $# -ne 2 || "$1" == -h || "$1" == --help ]]; then
  echo "usage: $0 STAM_BINARY OUTPUT_DIR" >&2
  exit 2
fi
stam=$(realpath "$1")
out=$(realpath -m "$2")
repo=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$repo"

videos=tests/data/videos
fixtures=tests/fixtures
tiny="-w $fixtures/tiny_stam.pth"
micro="-w $fixtures/micro_ok.pth --labels $fixtures/micro_labels.txt"

# Masks: the log clock, durations and rates, the temporary folder, the host's thread count.
mask() {
  sed -E \
    -e "s#$work#WORK#g" \
    -e 's/^\[[0-9:.]+\] /[T] /' \
    -e 's/[0-9]+(\.[0-9]+)? (ms|s)\b/N \2/g' \
    -e 's/\(([0-9.]+) videos\/s\)/(N videos\/s)/g' \
    -e 's/"(decode|preprocess|spatial|temporal|total|model_load|load|wall|encode|elapsed)(_ms|_s)?":[0-9.eE+-]+/"\1\2":N/g' \
    -e 's/"(seconds|videos_per_second|fps_processed|ms_per_video)":[0-9.eE+-]+/"\1":N/g'
}

# run NAME ARGS...: the CLI's stdout, stderr and exit code, masked.
run() {
  local name=$1
  shift
  local rc=0
  "$stam" "$@" >"$work/stdout" 2>"$work/stderr" </dev/null || rc=$?
  mask <"$work/stdout" >"$out/$name.out"
  { mask <"$work/stderr"; echo "exit $rc"; } >"$out/$name.err"
}

# A benchmark's figures are all measurements: mask every decimal and rate in its output.
mask_measured() {
  local f
  for f in "$out/$1.out" "$out/$1.err"; do
    sed -E -i -e 's/[0-9]+\.[0-9]+([eE][+-]?[0-9]+)?/N/g' \
      -e 's/[0-9]+ GFLOP\/s/N GFLOP\/s/g' -e 's/[0-9]+%/N%/g' -e 's/ +/ /g' "$f"
  done
}

# keep NAME FILE...: append output files a case wrote to its .out, masked.
keep() {
  local name=$1
  shift
  local f
  for f in "$@"; do
    echo "--- $(basename "$f")" >>"$out/$name.out"
    if [[ -f "$f" ]]; then mask <"$f" >>"$out/$name.out"; else echo "(missing)" >>"$out/$name.out"; fi
  done
}

# Help text: every command's options, defaults and exit codes.
run help --help
for cmd in classify batch bench eval timeline embed info; do
  run "help_$cmd" "$cmd" --help
done

# classify: each video, text and json, with and without logits; both CPU precisions.
for v in "$videos"/*.mp4 "$videos"/*.avi; do
  n=$(basename "$v" | tr . _)
  run "classify_${n}_text" classify "$v" $tiny --precision fp32
  run "classify_${n}_json" classify "$v" $tiny --precision fp32 --format json
done
run classify_all_logits classify "$videos"/*.mp4 $tiny --precision fp32 -k 3 --logits
run classify_all_logits_json classify "$videos"/*.mp4 $tiny --precision fp32 -k 3 --logits --format json
run classify_bf16 classify "$videos/short_32frames_30fps.mp4" $tiny --precision bf16 --format json
run classify_frames16 classify "$videos/arm_wrestling_340x256_28fps.mp4" $tiny --precision fp32 -f 16
run classify_reference classify "$videos/arm_wrestling_340x256_28fps.mp4" $tiny --precision fp32 --sampling reference
run classify_keyframe classify "$videos/hd_1920x1080_30fps.mp4" $tiny --precision fp32 --seek keyframe
run classify_micro classify "$videos/short_32frames_30fps.mp4" $micro --precision fp32 -k 2

# A frames folder, and the errors classify must name.
mkdir -p "$work/frames"
ffmpeg -v error -i "$videos/short_32frames_30fps.mp4" -frames:v 12 "$work/frames/%03d.png"
run classify_frames_folder classify "$work/frames" $tiny --precision fp32
: >"$work/empty.mp4"
head -c 5000 "$videos/short_32frames_30fps.mp4" >"$work/truncated.mp4"
run classify_missing classify "$work/nope.mp4" $tiny --precision fp32
run classify_empty classify "$work/empty.mp4" $tiny --precision fp32
run classify_truncated classify "$work/truncated.mp4" $tiny --precision fp32 --format json
run classify_mixed classify "$videos/short_32frames_30fps.mp4" "$work/nope.mp4" $tiny --precision fp32
run classify_bad_weights classify "$videos/short_32frames_30fps.mp4" -w "$fixtures/micro_badshape.pth" --labels "$fixtures/micro_labels.txt"
run classify_missing_weights classify "$videos/short_32frames_30fps.mp4" -w "$work/none.pth"
run classify_bad_topk classify "$videos/short_32frames_30fps.mp4" $micro -k 0
run classify_cuda classify "$videos/short_32frames_30fps.mp4" $tiny --device cuda
run classify_fp16_cpu classify "$videos/short_32frames_30fps.mp4" $tiny --device cpu --precision fp16

# batch: JSONL and CSV, a resume that finds everything done, a shard, a bad file among good ones.
mkdir -p "$work/set/sub"
cp "$videos"/*.mp4 "$work/set/"
cp "$videos"/*.avi "$work/set/sub/"
cp "$work/truncated.mp4" "$work/set/sub/"
run batch_jsonl batch "$work/set" -r $tiny --precision fp32 -o "$work/b.jsonl"
keep batch_jsonl "$work/b.jsonl" "$work/b.jsonl.meta.json"
run batch_resume batch "$work/set" -r $tiny --precision fp32 -o "$work/b.jsonl" --resume
run batch_csv batch "$work/set" -r $tiny --precision fp32 -o "$work/b.csv" -k 2 -b 2 -j 2
sort -o "$work/b.csv" "$work/b.csv" # decode workers finish in any order
keep batch_csv "$work/b.csv"
run batch_shard batch "$work/set" -r $tiny --precision fp32 -o "$work/s.jsonl" --shard 1/2 --logits
keep batch_shard "$work/s.jsonl"
run batch_exists batch "$work/set" $tiny --precision fp32 -o "$work/b.jsonl"
run batch_no_output batch "$work/set" $tiny

# eval: a labelled list.
{
  echo "$videos/arm_wrestling_340x256_28fps.mp4,skydiving"
  echo "$videos/short_32frames_30fps.mp4,tap dancing"
  echo "$work/truncated.mp4,parkour"
} >"$work/eval.csv"
run eval_text eval --list "$work/eval.csv" $tiny --precision fp32 -o "$work/e.jsonl"
run eval_json eval --list "$work/eval.csv" $tiny --precision fp32 -o "$work/e2.jsonl" --format json

# timeline, embed, info, bench.
run timeline_text timeline "$videos/arm_wrestling_340x256_28fps.mp4" $tiny --precision fp32 --window-seconds 4
run timeline_json timeline "$videos/arm_wrestling_340x256_28fps.mp4" $tiny --precision fp32 --window-seconds 4 --format json --logits
run timeline_csv timeline "$videos/arm_wrestling_340x256_28fps.mp4" $tiny --precision fp32 --fps 2 --format csv
run embed_jsonl embed "$videos"/*.mp4 $tiny --precision fp32 -o "$work/emb.jsonl"
keep embed_jsonl "$work/emb.jsonl"
run embed_npy embed "$videos"/*.mp4 $tiny --precision fp32 --per-frame -o "$work/emb.npy"
keep embed_npy "$work/emb.paths.txt"
cmp -s "$work/emb.npy" /dev/null || sha256sum <"$work/emb.npy" >>"$out/embed_npy.out"
run info_text info $tiny
run info_json info $tiny --format json
run info_micro info "$fixtures/micro_ok.pth"
run info_bad info "$fixtures/micro_missing.pth"
run bench_json bench $tiny --frames 4,8 --iters 1 --warmup 0 --precision fp32 --format json
mask_measured bench_json
run bench_text bench --frames 2 --iters 1 --warmup 0 --precision fp32
mask_measured bench_text
run bench_bad bench --frames 0
echo "snapshot of $stam in $out ($(ls "$out" | wc -l) files)"
