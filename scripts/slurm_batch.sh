#!/bin/bash
# Label a dataset with `stam batch` as a Slurm job array: task K of N labels shard K/N into
# OUTPUT_DIR/shard-K-of-N.jsonl. Everything after OUTPUT_DIR goes to `stam batch` as is.
#
#   sbatch --array=0-15 scripts/slurm_batch.sh results/ /data/kinetics --recursive
#   sbatch --array=0-15 scripts/slurm_batch.sh results/ --list clips.txt --batch-size 8
#   scripts/merge_outputs.sh labels.jsonl results/shard-*-of-16.jsonl
#
# The stam binary: `stam` on PATH, or STAM=/path/to/build/stam (exported to the job).
# Every task always runs with --resume, so resubmitting the same array after a time-out,
# preemption or node failure finishes only what is missing (finished shards exit at once,
# without loading the model). Keep N and the input set the same between submissions: a shard
# is "every N-th path of the sorted list". For millions of files, write the list once
# (`find /data -name '*.mp4' > clips.txt`) and pass --list, so tasks do not all walk the tree.
#
# Exit status: 0 when the shard is complete, also when some inputs failed (stam's code 6: they
# are error records in the output; set STAM_FAIL_ON_ERRORS=1 to keep 6); 130 when stopped by
# the time limit or preemption (resubmit); 2/4/5 for usage/model/device problems.
#
#SBATCH --job-name=stam-batch
#SBATCH --cpus-per-task=8
#SBATCH --mem=8G
#SBATCH --time=04:00:00
#SBATCH --requeue
#SBATCH --signal=B:USR1@120
#SBATCH --output=stam-batch-%A_%a.log
# --signal: SIGUSR1 to this script 2 minutes before the time limit; it passes SIGTERM on to
# stam, which finishes the videos in progress, flushes and exits 130. scancel, preemption and
# the time limit itself send SIGTERM to every process of the job, stam included: this script
# does not pass that one on (a second signal makes stam quit at once, without finishing).
set -euo pipefail

if [[ $# -lt 2 || -z "${SLURM_ARRAY_TASK_ID:-}" ]]; then
  echo "usage: sbatch --array=0-(N-1) $0 OUTPUT_DIR INPUT... [stam batch options]" >&2
  exit 2
fi
out_dir=$1
shift

# Without STAM_SHARDS, N is the number of tasks and the array may start at any index
# (--array=1-16): shards count from its minimum. With STAM_SHARDS=N the task index is the
# shard itself, to rerun a few of them: `STAM_SHARDS=16 sbatch --array=3,7 ...` runs shards
# 3/16 and 7/16.
if [[ -n "${STAM_SHARDS:-}" ]]; then
  n=$STAM_SHARDS
  k=$SLURM_ARRAY_TASK_ID
else
  n=${SLURM_ARRAY_TASK_COUNT:-$((SLURM_ARRAY_TASK_MAX - SLURM_ARRAY_TASK_MIN + 1))}
  k=$((SLURM_ARRAY_TASK_ID - ${SLURM_ARRAY_TASK_MIN:-0}))
fi
if ! [[ "$n" =~ ^[0-9]+$ && "$k" =~ ^[0-9]+$ ]] || ((k >= n)); then
  echo "stam-batch: task $SLURM_ARRAY_TASK_ID is no shard of $n (with STAM_SHARDS=N, use array indices 0 to N-1)" >&2
  exit 2
fi
# sbatch runs a copy of this script, so the binary is found on PATH (after `cmake --install`)
# or named: STAM=/path/to/build/stam.
stam=${STAM:-stam}
if ! command -v "$stam" >/dev/null; then
  echo "stam-batch: '$stam' not found; install stam (cmake --install build) or set STAM=/path/to/build/stam" >&2
  exit 2
fi
mkdir -p "$out_dir"

# Threads: stam splits the allocated cores between decoders and the model by itself (it reads
# the CPU affinity Slurm sets); pass -j / --threads to override. Where Slurm binds no CPUs
# (TaskPlugin=task/none) the affinity is the whole node: the model then gets --threads
# SLURM_CPUS_PER_TASK, unless -t / --threads is given.
threads=()
if [[ -n "${SLURM_CPUS_PER_TASK:-}" ]] && (($(nproc) > SLURM_CPUS_PER_TASK)); then
  threads=(--threads "$SLURM_CPUS_PER_TASK")
  for arg in "$@"; do
    [[ "$arg" == -t* || "$arg" == --threads* ]] && threads=()
  done
fi
"$stam" batch "$@" "${threads[@]}" --shard "$k/$n" --resume \
  --output "$out_dir/shard-$k-of-$n.jsonl" &
pid=$!
trap 'kill -TERM "$pid" 2>/dev/null || true' USR1
trap ':' TERM INT # stam has its own; keep waiting for its exit status
rc=0
wait "$pid" || rc=$?
# A trapped signal interrupts `wait`; wait again for stam's own exit status.
while kill -0 "$pid" 2>/dev/null; do
  rc=0
  wait "$pid" || rc=$?
done
if [[ $rc -eq 6 && "${STAM_FAIL_ON_ERRORS:-0}" != 1 ]]; then
  echo "stam-batch: shard $k/$n complete; some inputs failed (see \"error\" records)" >&2
  rc=0
fi
exit "$rc"
