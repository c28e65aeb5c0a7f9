#!/usr/bin/env bash
# Runs the cluster scripts under a real Slurm: starts a one-node cluster (munged, slurmctld,
# slurmd; no systemd) in a temporary folder, then
#   1. labels a tree of test videos (one of them damaged) with scripts/slurm_batch.sh as a
#      3-task job array and checks each shard against a single `stam batch` of the tree;
#   2. cancels one shard mid-run, resubmits it alone and checks it is complete, nothing lost
#      or doubled;
#   3. merges the shards with scripts/merge_outputs.sh and compares with the single run;
#   4. does the same for `stam eval --shard` (3 tasks through `sbatch --wrap`), merged records
#      and the report on them against a single `stam eval`.
#   STAM=/path/to/stam scripts/test_slurm.sh     (default: build/stam; run as root)
# Installs slurm-wlm and munge if they are missing (`STAM_DEV_DEPS=1 scripts/setup.sh` does).
# Nothing system-wide is used: munged gets its own key and socket, and Slurm its own slurm.conf
# (SLURM_CONF) and ports; every daemon is stopped and the folder removed on exit, whatever
# happens. Exit status: 0 when every check passed, 1 otherwise.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo=$PWD
started=$SECONDS

fail() {
  echo "test_slurm: FAIL: $*" >&2
  exit 1
}
pass() { echo "test_slurm: ok: $*"; }

[[ $(id -u) -eq 0 ]] || fail "needs root (it starts munged as the munge user and slurmd as root)"
stam=$(realpath -e "${STAM:-build/stam}" 2>/dev/null) ||
  fail "no stam binary at ${STAM:-build/stam}: build first, or set STAM=/path/to/stam"
export STAM=$stam # the jobs' environment: slurm_batch.sh runs $STAM

tools=(munged slurmctld slurmd sbatch squeue sinfo scancel scontrol)
missing=0
for t in "${tools[@]}"; do
  command -v "$t" >/dev/null || missing=1
done
if [[ $missing -eq 1 ]]; then
  echo "test_slurm: installing slurm-wlm and munge"
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends slurm-wlm munge
fi

work=$(mktemp -d /tmp/stam_slurm.XXXXXX)
chmod 711 "$work" # munged (user munge) reaches its own folder inside
munged_pid="" ctld_pid="" slurmd_pid=""

stop() { # PID: SIGTERM, up to 15 s to exit, then SIGKILL
  local pid=$1 i
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 150; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
}
cleanup() {
  local rc=$? i
  trap - EXIT INT TERM
  if [[ -n "$ctld_pid" ]] && kill -0 "$ctld_pid" 2>/dev/null; then
    # Jobs first: their slurmstepd outlive slurmd.
    scancel --partition=ci 2>/dev/null || true
    for ((i = 0; i < 300; i++)); do
      [[ -z "$(squeue -h -o %i 2>/dev/null)" ]] && break
      sleep 0.1
    done
  fi
  stop "$slurmd_pid"
  stop "$ctld_pid"
  stop "$munged_pid"
  if [[ $rc -ne 0 && -d "$work" ]]; then
    for log in "$work"/slurm/*.log "$work"/jobs/*.log; do
      [[ -f "$log" ]] || continue
      echo "--- $log (last lines)" >&2
      tail -n 15 "$log" >&2
    done
  fi
  rm -rf "$work"
  if [[ $rc -eq 0 ]]; then
    echo "test_slurm: PASS ($((SECONDS - started)) s)"
  else
    echo "test_slurm: FAIL (exit $rc, $((SECONDS - started)) s)" >&2
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- munged: its own key, socket, pid, log and seed files under $work/munge
mdir=$work/munge
install -d -o munge -g munge -m 755 "$mdir"           # the socket: reachable by all
install -d -o munge -g munge -m 700 "$mdir/private" # the key, log and seed
if command -v mungekey >/dev/null; then
  mungekey --create --keyfile="$mdir/private/munge.key"
else
  dd if=/dev/urandom of="$mdir/private/munge.key" bs=1 count=1024 status=none
fi
chown munge:munge "$mdir/private/munge.key"
chmod 400 "$mdir/private/munge.key"
socket=$mdir/munge.socket
setpriv --reuid=munge --regid=munge --init-groups /usr/sbin/munged --foreground \
  --socket="$socket" --key-file="$mdir/private/munge.key" --pid-file="$mdir/munged.pid" \
  --log-file="$mdir/private/munged.log" --seed-file="$mdir/private/munged.seed" \
  </dev/null >"$work/munged.out" 2>&1 &
munged_pid=$!
for ((i = 0; i < 100; i++)); do
  [[ -S "$socket" ]] && break
  kill -0 "$munged_pid" 2>/dev/null || { cat "$work/munged.out" >&2; fail "munged did not start"; }
  sleep 0.1
done
munge --socket="$socket" --no-input | unmunge --socket="$socket" >/dev/null ||
  { cat "$work/munged.out" >&2; fail "munged does not answer on $socket"; }
pass "munged (pid $munged_pid) on $socket"

# --- slurmctld and slurmd, one node with every CPU of this machine
sdir=$work/slurm
mkdir -p "$sdir/state" "$sdir/spool"
host=$(hostname -s)
cpus=$(nproc)
avail_mb=$(awk '/^MemAvailable:/ {print int($2 / 1024)}' /proc/meminfo)
real_mb=$((avail_mb / 2 > 1024 ? avail_mb / 2 : avail_mb))
export SLURM_CONF=$sdir/slurm.conf
cat >"$SLURM_CONF" <<EOF
ClusterName=stamci
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=16817
SlurmdPort=16818
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$socket
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$sdir/state
SlurmdSpoolDir=$sdir/spool
SlurmctldPidFile=$sdir/slurmctld.pid
SlurmdPidFile=$sdir/slurmd.pid
SlurmctldLogFile=$sdir/slurmctld.log
SlurmdLogFile=$sdir/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SlurmdParameters=config_overrides
MpiDefault=none
ReturnToService=2
KillWait=30
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$real_mb State=UNKNOWN
PartitionName=ci Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
slurmctld -D -i </dev/null >"$sdir/slurmctld.out" 2>&1 &
ctld_pid=$!
slurmd -D </dev/null >"$sdir/slurmd.out" 2>&1 &
slurmd_pid=$!
state=""
for ((i = 0; i < 600; i++)); do
  kill -0 "$ctld_pid" 2>/dev/null || { cat "$sdir/slurmctld.out" >&2; fail "slurmctld exited"; }
  kill -0 "$slurmd_pid" 2>/dev/null || { cat "$sdir/slurmd.out" >&2; fail "slurmd exited"; }
  state=$(sinfo -h -N -o %t 2>/dev/null || true)
  [[ "$state" == idle ]] && break
  sleep 0.1
done
[[ "$state" == idle ]] || fail "node $host not idle after 60 s (sinfo: '${state}')"
pass "cluster stamci: node $host idle, $cpus CPUs, ${real_mb} MB"

# --- the tree: 3 class folders of Kinetics-400 names, 8 videos each, one damaged file
tree=$work/videos
for class in arm_wrestling skydiving tap_dancing; do
  mkdir -p "$tree/$class"
  for v in "$repo"/tests/data/videos/*.{mp4,avi}; do
    base=$(basename "$v")
    cp "$v" "$tree/$class/a_$base"
    cp "$v" "$tree/$class/b_$base"
  done
done
head -c 30000 "$repo/tests/data/videos/arm_wrestling_340x256_28fps.mp4" >"$tree/skydiving/damaged.mp4"
n_inputs=$(find "$tree" -type f | wc -l)
model=(-w "$repo/tests/fixtures/tiny_stam.pth" --labels "$repo/models/kinetics400_labels.txt"
  --device cpu --precision fp32) # fp32: `auto` measures, and might choose otherwise per task
# Each task gets one CPU (and little memory) in place of slurm_batch.sh's #SBATCH lines.
resources=(--cpus-per-task=1 --mem=256M)
jobdir=$work/jobs # the submit folder: slurm_batch.sh's log files land here
mkdir -p "$jobdir"
cd "$jobdir"

py() { python3 - "$@"; }

# Checks JSONL records against a reference output: the same inputs, each once, with the same
# labels and scores (or both an error). Scores within 1e-5: the tasks run on 1 thread, the
# reference on all. ARGS: REFERENCE OUTPUT [EXPECTED_INPUTS_FILE]
same_records() {
  py "$@" <<'PY'
import json, sys

def load(path):
    recs = {}
    for n, line in enumerate(open(path, encoding="utf-8"), 1):
        r = json.loads(line)
        if r["input"] in recs:
            sys.exit(f"{path}:{n}: {r['input']} recorded twice")
        recs[r["input"]] = r
    return recs

ref, out = load(sys.argv[1]), load(sys.argv[2])
if len(sys.argv) > 3:
    want = set(open(sys.argv[3], encoding="utf-8").read().split("\n")) - {""}
    ref = {k: v for k, v in ref.items() if k in want}
    if set(ref) != want:
        sys.exit(f"{sys.argv[1]} lacks expected inputs")
if set(ref) != set(out):
    sys.exit(f"{sys.argv[2]}: {len(set(ref) - set(out))} input(s) missing, "
             f"{len(set(out) - set(ref))} unexpected")
worst = 0.0
for k, a in ref.items():
    b = out[k]
    if ("error" in a) != ("error" in b) or a.get("error") != b.get("error"):
        sys.exit(f"{k}: error {a.get('error')!r} in {sys.argv[1]}, {b.get('error')!r} in {sys.argv[2]}")
    if "error" in a:
        continue
    if [t["label"] for t in a["top_k"]] != [t["label"] for t in b["top_k"]]:
        sys.exit(f"{k}: other labels in {sys.argv[2]}")
    worst = max([worst] + [abs(x["score"] - y["score"]) for x, y in zip(a["top_k"], b["top_k"])])
if worst > 1e-5:
    sys.exit(f"{sys.argv[2]}: scores differ by up to {worst}")
errors = sum("error" in r for r in out.values())
print(f"{len(out)} inputs ({errors} error records), scores within {worst:.1e}")
PY
}

# Writes the inputs of shard K of N of REFERENCE (every N-th of the sorted inputs) to FILE.
# ARGS: REFERENCE K N FILE
shard_inputs() {
  py "$@" <<'PY'
import json, sys
ref, k, n, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
inputs = sorted(json.loads(line)["input"] for line in open(ref, encoding="utf-8"))
open(out, "w", encoding="utf-8").write("".join(p + "\n" for p in inputs[k::n]))
PY
}

# ExitCode of every task of job ID, as `scontrol show job` keeps them (MinJobAge, 300 s).
task_exit_codes() {
  scontrol -o show job "$1" | grep -o 'ExitCode=[0-9]*:[0-9]*' | sort | uniq -c | tr '\n' ' '
}
all_tasks_ok() { # JOB_ID TASKS
  local codes
  codes=$(scontrol -o show job "$1" | grep -o 'ExitCode=[0-9]*:[0-9]*' || true)
  [[ $(grep -c . <<<"$codes") -eq $2 ]] && ! grep -qv 'ExitCode=0:0' <<<"$codes"
}
complete_lines() { # FILE: its complete records (a torn last line is not one)
  if [[ -f "$1" ]]; then tr -cd '\n' <"$1" | wc -c; else echo 0; fi
}

# --- 1. single-machine reference, then the 3-task array
"$stam" -q batch "$tree" -r "${model[@]}" -o "$work/single.jsonl" || [[ $? -eq 6 ]] ||
  fail "single-machine stam batch failed"
[[ $(complete_lines "$work/single.jsonl") -eq $n_inputs ]] ||
  fail "single-machine stam batch: not $n_inputs records"

out=$work/out
submit() { timeout 240 sbatch --parsable --wait "${resources[@]}" "$@"; }
job=$(submit --array=0-2 "$repo/scripts/slurm_batch.sh" "$out" "$tree" -r "${model[@]}") ||
  fail "sbatch --array=0-2 slurm_batch.sh: exit $? (tasks: $(task_exit_codes "${job%%;*}"))"
job=${job%%;*}
all_tasks_ok "$job" 3 || fail "job $job: task exit codes $(task_exit_codes "$job")"
for k in 0 1 2; do
  f=$out/shard-$k-of-3.jsonl
  [[ -f "$f" && -f "$f.meta.json" ]] || fail "no $f (or its .meta.json)"
  log=$jobdir/stam-batch-${job}_$k.log
  [[ -f "$log" ]] || fail "no log file $log"
  grep -q "labelled" "$log" || fail "$log has no summary line of stam batch"
  grep -q ", 1 threads$" "$log" || fail "$log: the model did not run on the task's 1 CPU"
  shard_inputs "$work/single.jsonl" "$k" 3 "$work/expect-$k.txt"
  r=$(same_records "$work/single.jsonl" "$f" "$work/expect-$k.txt") || fail "shard $k: $r"
  pass "array task $k (exit 0, log $(basename "$log")): shard $k/3 = its part of the single run: $r"
done

# --- 2. a shard again, stopped once it has a record, then resubmitted alone. HOW: `scancel`
# (Slurm sends SIGTERM to every process of the job, as at the time limit and on preemption) or
# `warn` (SIGUSR1 to the batch script only, as --signal=B:USR1@120 before the time limit).
# Either way stam finishes the videos in progress, and the task ends as Slurm reports it:
# STATE EXIT_CODE. ARGS: K HOW STATE EXIT_CODE
stop_and_resume() {
  local k=$1 how=$2 state=$3 code=$4 f=$out/shard-$1-of-3.jsonl expected at_stop kept i
  local sjob rjob log r
  expected=$(grep -c . "$work/expect-$k.txt")
  rm "$f" "$f.meta.json"
  sjob=$(STAM_SHARDS=3 sbatch --parsable "${resources[@]}" --array="$k" \
    "$repo/scripts/slurm_batch.sh" "$out" "$tree" -r "${model[@]}")
  sjob=${sjob%%;*}
  for ((i = 0; i < 1200; i++)); do
    [[ $(complete_lines "$f") -ge 1 ]] && break
    sleep 0.1
  done
  if [[ $how == scancel ]]; then
    scancel "$sjob"
  else
    scancel --batch --signal=USR1 "$sjob"
  fi
  at_stop=$(complete_lines "$f")
  for ((i = 0; i < 600; i++)); do
    [[ -z "$(squeue -h -j "$sjob" -o %i 2>/dev/null)" ]] && break
    sleep 0.1
  done
  [[ -z "$(squeue -h -j "$sjob" -o %i 2>/dev/null)" ]] || fail "job $sjob still queued 60 s after $how"
  kept=$(complete_lines "$f")
  [[ $at_stop -ge 1 && $kept -lt $expected ]] ||
    fail "shard $k not cut mid-run by $how: $at_stop record(s) then, $kept of $expected after"
  scontrol -o show job "$sjob" | grep -q "JobState=$state .*ExitCode=$code " ||
    fail "job $sjob after $how: $(scontrol -o show job "$sjob" | grep -o '\(JobState\|ExitCode\)=[^ ]*' | tr '\n' ' ')(expected $state, $code)"
  log=$jobdir/stam-batch-${sjob}_$k.log
  grep -q "interrupted: $((expected - kept)) input(s) not done" "$log" ||
    fail "$log: stam did not stop after the videos in progress"
  pass "shard $k stopped by $how (job $sjob, $state $code) with $kept of $expected records"
  rjob=$(STAM_SHARDS=3 submit --array="$k" "$repo/scripts/slurm_batch.sh" "$out" "$tree" -r \
    "${model[@]}") || fail "resubmitted shard $k: exit $?"
  rjob=${rjob%%;*}
  all_tasks_ok "$rjob" 1 || fail "job $rjob: task exit codes $(task_exit_codes "$rjob")"
  r=$(same_records "$work/single.jsonl" "$f" "$work/expect-$k.txt") || fail "resumed shard $k: $r"
  grep -q "$kept already in" "$jobdir/stam-batch-${rjob}_$k.log" ||
    fail "the resubmitted task did not resume from the $kept records kept"
  pass "shard $k resumed (job $rjob): $r"
}
stop_and_resume 1 scancel CANCELLED 130:0
stop_and_resume 2 warn FAILED 130:0

# --- 3. the merge equals the single run
"$repo/scripts/merge_outputs.sh" "$work/merged.jsonl" "$out"/shard-{0,1,2}-of-3.jsonl 2>"$work/merge.err" ||
  fail "merge_outputs.sh: $(cat "$work/merge.err")"
[[ -f "$work/merged.jsonl.meta.json" ]] || fail "merge_outputs.sh wrote no merged.jsonl.meta.json"
r=$(same_records "$work/single.jsonl" "$work/merged.jsonl") || fail "merged batch shards: $r"
pass "merged batch shards = single run: $r"

# --- 4. stam eval: 3 shards through sbatch --wrap, merged; report = a single stam eval
"$stam" -q eval "$tree" "${model[@]}" -o "$work/eval-single.jsonl" --format json \
  >"$work/eval-single.json" || [[ $? -eq 6 ]] || fail "single-machine stam eval failed"
# Exit 6 (some inputs failed, the shard is done) counts as done, as in slurm_batch.sh.
printf -v wrap '%q ' "$stam" -q eval "$tree" "${model[@]}" --format json
task=\$SLURM_ARRAY_TASK_ID # expanded in the job
wrap+="--shard $task/3 -o $(printf %q "$work/eval")/part-$task.jsonl"
mkdir -p "$work/eval"
ejob=$(submit --array=0-2 --output="$jobdir/eval-%A_%a.log" \
  --wrap "$wrap >/dev/null; rc=\$?; [ \$rc -eq 0 ] || [ \$rc -eq 6 ]") ||
  fail "eval array: exit $? (tasks: $(task_exit_codes "${ejob%%;*}"))"
ejob=${ejob%%;*}
all_tasks_ok "$ejob" 3 || fail "eval job $ejob: task exit codes $(task_exit_codes "$ejob")"
"$repo/scripts/merge_outputs.sh" "$work/eval-merged.jsonl" "$work"/eval/part-{0,1,2}.jsonl \
  2>"$work/merge.err" || fail "merge_outputs.sh (eval): $(cat "$work/merge.err")"
r=$(same_records "$work/eval-single.jsonl" "$work/eval-merged.jsonl") || fail "merged eval shards: $r"
"$stam" -q eval "$tree" "${model[@]}" -o "$work/eval-merged.jsonl" --resume --format json \
  >"$work/eval-merged.json" || [[ $? -eq 6 ]] || fail "stam eval --resume on the merged records failed"
cmp -s "$work/eval-single.json" "$work/eval-merged.json" ||
  fail "eval report on the merged shards differs from the single run's: $(diff "$work/eval-single.json" "$work/eval-merged.json" | head -c 600)"
pass "eval: 3 shards merged ($r), report = single run's"
