#!/usr/bin/env bash
# The CUDA path, checked in one run: builds stam's model core (-DSTAM_VIDEO=OFF -DSTAM_ONEDNN=OFF)
# against the machine's LibTorch, checks CUDA logits against the CPU's and the reference's, and
# times `stam bench --device cuda` at batch 1, 8 and 32 for 8, 16 and 64 frames.
#
#   scripts/gpu_check.sh --vendor-headers   (here) copy spdlog, fmt, CLI11 and nlohmann_json's
#                                           headers into third_party/include, for a machine
#                                           without their packages; carry third_party with it
#   scripts/gpu_check.sh [--cpu] [--tests] [--out DIR]
#
# --cpu: a machine without a GPU (CI, a dry run): the CUDA checks become checks that
# --device cuda is refused with exit 5 and a message, and bench runs on the CPU, once, briefly.
# --tests: also build the core's test suite and run it with ctest (needs GoogleTest).
# Results, as JSON, go to --out (default $OUT, else build-core/gpu_check): summary.json says
# what passed, with the errors measured; bench_b{1,8,32}.json are `stam bench`'s reports.
# Python: $STAM_PYTHON, else /opt/torch/.venv/bin/python (the GPU machines' PyTorch, whose
# LibTorch is built against), else python3. Exit 0 when every check passed, 1 otherwise.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

cpu=0
tests=0
out="${OUT:-}"
while [ $# -gt 0 ]; do
  case "$1" in
    --vendor-headers)
      mkdir -p third_party/include
      for d in spdlog fmt CLI nlohmann; do
        [ -d "/usr/include/$d" ] || { echo "error: /usr/include/$d missing (setup.sh installs it)" >&2; exit 1; }
        rm -rf "third_party/include/$d"
        cp -r "/usr/include/$d" third_party/include/
      done
      echo "third_party/include: $(du -sh third_party/include | cut -f1) of headers"
      exit 0 ;;
    --cpu) cpu=1 ;;
    --tests) tests=1 ;;
    --out) out="$2"; shift ;;
    *) echo "usage: $0 [--vendor-headers] [--cpu] [--tests] [--out DIR]" >&2; exit 2 ;;
  esac
  shift
done

python="${STAM_PYTHON:-}"
if [ -z "$python" ]; then
  if [ -x /opt/torch/.venv/bin/python ]; then python=/opt/torch/.venv/bin/python; else python=python3; fi
fi
build="build-core"
out="${out:-$build/gpu_check}"
mkdir -p "$out"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
t0=$(date +%s)
log() { echo "== gpu_check [$(( $(date +%s) - t0 )) s] $*"; }

# ---- build
cmake_args=(-DCMAKE_BUILD_TYPE=Release -DSTAM_VIDEO=OFF -DSTAM_ONEDNN=OFF
            -DSTAM_BUILD_TESTS="$([ $tests = 1 ] && echo ON || echo OFF)")
if "$python" -c 'import torch' 2>/dev/null; then
  prefix="$("$python" -c 'import torch; print(torch.utils.cmake_prefix_path)')"
  if [ -d "$prefix/Torch" ]; then
    cmake_args+=(-DCMAKE_PREFIX_PATH="$prefix")
    # The GPU's own architecture only: nothing here is compiled for CUDA, but Torch's CMake
    # config asks for a list.
    arch="$("$python" -c 'import torch; c = torch.cuda.get_device_capability() if torch.cuda.is_available() else None; print("%d.%d" % c if c else "")')"
    [ -n "$arch" ] && export TORCH_CUDA_ARCH_LIST="$arch"
  fi
fi
if [ -d third_party/include ]; then
  cmake_args+=(-DSTAM_HEADERS_DIR="$PWD/third_party/include")
fi
log "configure: ${cmake_args[*]}"
cmake -S . -B "$build" "${cmake_args[@]}" >"$out/configure.log" 2>&1 ||
  { tail -40 "$out/configure.log"; echo "gpu_check: configure failed ($out/configure.log)" >&2; exit 1; }
log "build"
cmake --build "$build" -j"$(nproc)" >"$out/build.log" 2>&1 ||
  { grep -m 20 -B2 -A8 'error' "$out/build.log" || tail -40 "$out/build.log"; echo "gpu_check: build failed" >&2; exit 1; }
stam="$build/stam"
if [ $tests = 1 ]; then
  log "ctest"
  ctest --test-dir "$build" --output-on-failure --no-tests=error -j"$(nproc)"
fi

# ---- checks
if [ $cpu = 1 ]; then fixtures=(--tiny); else fixtures=(); fi
"$python" scripts/gpu_fixtures.py "$work" "${fixtures[@]}"
labels=models/kinetics400_labels.txt
"$stam" info "$work/model.pth" --format json >"$out/info.json"
classify() {  # DEVICE PRECISION -> logits JSON on stdout; the exit code is stam's
  "$stam" -q classify "$work/frames.npy" -w "$work/model.pth" --labels "$labels" --device "$1" \
    --precision "$2" --format json --logits
}
log "classify on the CPU, fp32"
classify cpu fp32 >"$work/cpu_fp32.json"
results=("cpu_fp32=$work/cpu_fp32.json")
if [ $cpu = 1 ]; then
  set +e
  classify cuda fp32 >"$work/cuda.json" 2>"$work/cuda.err"
  echo "$?" >"$work/cuda.rc"
  set -e
  log "--device cuda without a GPU: exit $(cat "$work/cuda.rc"): $(head -c 300 "$work/cuda.err")"
  log "bench on the CPU (one brief run)"
  "$stam" bench --device cpu --frames 8 --batch 1 --iters 1 --warmup 0 --format json \
    >"$out/bench_b1.json"
else
  for p in fp32 fp16 bf16; do
    log "classify on CUDA, $p"
    classify cuda "$p" >"$work/cuda_$p.json"
    results+=("cuda_$p=$work/cuda_$p.json")
  done
  for b in 1 8 32; do
    log "bench on CUDA, batch $b"
    "$stam" bench --device cuda --frames 8,16,64 --batch "$b" --iters 5 --warmup 2 \
      --format json >"$out/bench_b$b.json"
  done
fi

log "compare"
"$python" - "$work" "$out" "$cpu" "${results[@]}" <<'EOF'
import json, os, sys

work, out, cpu = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
runs = {k: v for k, v in (a.split("=", 1) for a in sys.argv[4:])}

def logits(path):
    with open(path) as f:
        record = json.load(f)
    return (record[0] if isinstance(record, list) else record)["logits"]

def rel_error(got, want):  # max |got - want| / max |want|, as the test suite measures
    return max(abs(g - w) for g, w in zip(got, want)) / max(abs(w) for w in want)

with open(os.path.join(work, "reference.json")) as f:
    reference = json.load(f)
cpu_fp32 = logits(runs["cpu_fp32"])
checks = [{"check": "CPU fp32 against the reference (PyTorch)", "error":
           rel_error(cpu_fp32, reference["logits"]), "limit": 1e-4}]
limits = {"fp32": 1e-3, "fp16": 2e-2, "bf16": 2e-2}
for name, path in runs.items():
    if name.startswith("cuda_"):
        p = name[5:]
        checks.append({"check": f"CUDA {p} against CPU fp32", "error":
                       rel_error(logits(path), cpu_fp32), "limit": limits[p]})
for c in checks:
    c["pass"] = c["error"] <= c["limit"]
if cpu:
    rc = int(open(os.path.join(work, "cuda.rc")).read())
    err = open(os.path.join(work, "cuda.err")).read()
    checks.append({"check": "--device cuda refused without a GPU (exit 5, says why)",
                   "exit_code": rc, "message": err.strip()[-300:],
                   "pass": rc == 5 and "CUDA" in err})
bench = {}
for b in (1, 8, 32):
    path = os.path.join(out, f"bench_b{b}.json")
    if os.path.exists(path):
        with open(path) as f:
            report = json.load(f)
        bench[b] = {str(r["frames"]): round(r["videos_per_s"], 2) for r in report["results"]}
summary = {"model": reference["model"], "checks": checks, "videos_per_s_by_batch": bench,
           "paper": "20 videos/s for STAM-16 on a V100",
           "pass": all(c["pass"] for c in checks)}
with open(os.path.join(out, "summary.json"), "w") as f:
    json.dump(summary, f, indent=2)
for c in checks:
    detail = f'{c["error"]:.3g} (limit {c["limit"]:g})' if "error" in c else f'exit {c["exit_code"]}'
    print(f'{"PASS" if c["pass"] else "FAIL"}  {c["check"]}: {detail}')
for b, rows in bench.items():
    print(f"videos/s at batch {b}: " + ", ".join(f"{t} frames {v}" for t, v in rows.items()))
sys.exit(0 if summary["pass"] else 1)
EOF
