#!/usr/bin/python3
"""Times the official STAM code (github.com/Alibaba-MIIL/STAM, a checkout given by path) on this
machine the way `stam bench` times stam: model forward only, random weights, per frame count.

    /usr/bin/python3 scripts/compare_official.py --official PATH [--stam build/stam]
        [--frames 8,16,32,64] [--threads 2] [--iters 5] [--warmup 1] [--precision fp32|bf16]
        [--format text|json] [--write-checkpoint FILE]

Without --stam it times the official code in this process, with the environment as it is.
With --stam it makes the side-by-side table of docs/PERFORMANCE.md: for each frame count, in
turn, the official code as installed (OPENBLAS_CORETYPE unset: OpenBLAS picks its kernels from
the CPU model), the official code with OpenBLAS forced to the best kernels for this CPU's
features (its best configuration), and `stam bench` (OPENBLAS_CORETYPE unset), each in a fresh
process, so that all three share one run of a noisy machine.

Needs Debian's python3-torch (run it as /usr/bin/python3). The official package imports
torchvision only for its data loader, so a stand-in module is registered when torchvision is not
installed; the model code itself runs unmodified. --write-checkpoint saves a STAM-16 state dict
with random weights in the official layout ({'model': state_dict}), for `stam bench --weights`
and `stam classify --weights` to read the same tensors.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import types

import torch


def import_official(path):
    if "torchvision" not in sys.modules:
        try:
            import torchvision  # noqa: F401
        except ImportError:
            stub = types.ModuleType("torchvision")
            stub.datasets = types.ModuleType("torchvision.datasets")
            stub.datasets.Kinetics400 = object
            stub.transforms = types.ModuleType("torchvision.transforms")
            stub.transforms.transforms = types.SimpleNamespace()
            sys.modules.update({"torchvision": stub, "torchvision.datasets": stub.datasets,
                                "torchvision.transforms": stub.transforms})
    sys.path.insert(0, os.path.abspath(path))
    from stam.models.transformer_model import STAM_224
    return STAM_224


def build(STAM_224, frames):
    args = argparse.Namespace(input_size=224, frames_per_clip=frames)
    return STAM_224({"args": args, "num_classes": 400}).eval()


def time_forward(model, frames, iters, warmup, precision):
    x = torch.rand(frames, 3, 224, 224)
    times = []
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16,
                                         enabled=precision == "bf16"):
        for i in range(warmup + iters):
            start = time.perf_counter()
            model(x)
            if i >= warmup:
                times.append(time.perf_counter() - start)
    return times


def best_openblas_core():
    """OpenBLAS's best kernels for this CPU's features (as stam chooses them)."""
    flags = set()
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    if {"avx512f", "avx512dq", "avx512cd", "avx512bw", "avx512vl"} <= flags:
        return "SkylakeX"
    if {"avx2", "fma"} <= flags:
        return "Haswell"
    return ""


def run_json(cmd, coretype):
    env = dict(os.environ)
    env.pop("OPENBLAS_CORETYPE", None)
    if coretype:
        env["OPENBLAS_CORETYPE"] = coretype
    out = subprocess.run(cmd, env=env, check=True, stdout=subprocess.PIPE, text=True).stdout
    return json.loads(out)


def side_by_side(args):
    me = [sys.executable, os.path.abspath(__file__), "--official", args.official,
          "--threads", str(args.threads), "--iters", str(args.iters), "--warmup",
          str(args.warmup), "--precision", args.precision, "--format", "json"]
    stam = [args.stam, "bench", "-q", "--threads", str(args.threads), "--iters", str(args.iters),
            "--warmup", str(args.warmup), "--precision", args.precision, "--format", "json"]
    core = best_openblas_core()
    rows = []
    for frames in args.frames.split(","):
        installed = run_json(me + ["--frames", frames], "")["results"][0]
        best = run_json(me + ["--frames", frames], core)["results"][0]
        ours = run_json(stam + ["--frames", frames], "")
        r = ours["results"][0]
        rows.append({"frames": int(frames), "official_installed_ms": installed["median_ms"],
                     "official_best_ms": best["median_ms"], "stam_ms": r["median_ms"],
                     "floor_ms": r["floor_ms"], "speedup_vs_best": best["median_ms"] / r["median_ms"],
                     "stam_over_floor": r["median_ms"] / r["floor_ms"]})
        system = ours["system"]
    if args.format == "json":
        print(json.dumps({"system": system, "official_best_coretype": core, "results": rows}))
        return
    print(f"{system['cpu']}, {system['threads']} threads, {args.precision}; stam's products: "
          f"{system['gemm_backend']}; floor {system['floor_gflop_per_s']:.0f} GFLOP/s")
    print(f"official best = OPENBLAS_CORETYPE={core}; stam and 'installed' run with it unset")
    print(f"{'frames':>6} {'official ms':>12} {'official best':>14} {'stam ms':>9} "
          f"{'floor ms':>9} {'stam vs best':>13} {'stam/floor':>11}")
    for r in rows:
        print(f"{r['frames']:>6} {r['official_installed_ms']:>12.0f} {r['official_best_ms']:>14.0f} "
              f"{r['stam_ms']:>9.0f} {r['floor_ms']:>9.0f} {r['speedup_vs_best']:>12.2f}x "
              f"{r['stam_over_floor']:>10.2f}x")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--official", required=True, help="checkout of Alibaba-MIIL/STAM")
    ap.add_argument("--frames", default="8,16,32,64")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    ap.add_argument("--format", choices=["text", "json"], default="text")
    ap.add_argument("--write-checkpoint", metavar="FILE")
    ap.add_argument("--stam", metavar="BINARY", help="compare with `BINARY bench`, side by side")
    args = ap.parse_args()
    if args.stam:
        side_by_side(args)
        return

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    STAM_224 = import_official(args.official)
    if args.write_checkpoint:
        torch.save({"model": build(STAM_224, 16).state_dict()}, args.write_checkpoint)

    rows = []
    for frames in (int(f) for f in args.frames.split(",")):
        times = time_forward(build(STAM_224, frames), frames, args.iters, args.warmup,
                             args.precision)
        rows.append({"frames": frames, "median_ms": 1e3 * statistics.median(times),
                     "min_ms": 1e3 * min(times)})
    system = {"torch": torch.__version__, "threads": torch.get_num_threads(),
              "precision": args.precision,
              "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE", "")}
    if args.format == "json":
        print(json.dumps({"system": system, "results": rows}))
    else:
        print(f"official STAM, torch {system['torch']}, {system['threads']} threads, "
              f"{args.precision}, OPENBLAS_CORETYPE={system['OPENBLAS_CORETYPE'] or '(unset)'}")
        print(f"{'frames':>6} {'median ms':>10} {'min ms':>10}")
        for r in rows:
            print(f"{r['frames']:>6} {r['median_ms']:>10.1f} {r['min_ms']:>10.1f}")


if __name__ == "__main__":
    main()
