#!/usr/bin/python3
"""Issue #6's pipeline figure: how far `stam batch` and `stam classify` of four videos are from
four model-only forwards, for two builds of stam alternated in one run of a noisy machine.

    scripts/pipeline_figure.py --base OLD/stam --new build/stam --weights stam_16.pth
        --clips DIR [--rounds 2] [--precision auto|fp32|bf16]

DIR holds the four videos (batch reads the folder; classify gets them in name order). The
issue's clips are 10 s 1280x720 H.264 with a key frame every 250 frames, e.g.

    ffmpeg -stream_loop -1 -i tests/data/videos/hd_1920x1080_30fps.mp4 -t 10 -vf scale=1280:720
        -c:v libx264 -g 250 -keyint_min 250 -sc_threshold 0 -pix_fmt yuv420p -an DIR/a.mp4

Each round times, each in a fresh process: process start (`stam --version`, best of 3), the
model-only median (`stam bench --frames 16 --iters 4 --warmup 1`), then batch and classify with
each build, and classify of the new build again with OMP_WAIT_POLICY=passive. For each it prints
the wall time over four model-only medians, and the same without process start and model load
(the `loaded ... in N ms` log line), with the per-video model time the results report. The new
build's classify runs must agree; where the base's results differ (a change of numerics, as bf16
changes do), it says so."""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time


def run(cmd, env=None):
    t0 = time.monotonic()
    p = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, **(env or {})))
    wall = time.monotonic() - t0
    if p.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({p.returncode}): {p.stderr[-2000:]}")
    return wall, p.stdout, p.stderr


def load_s(stderr):
    return float(re.search(r"loaded .* in (\d+) ms", stderr).group(1)) / 1000


def model_s(records):
    return statistics.mean(
        r["timings_ms"]["spatial"] + r["timings_ms"]["temporal"] for r in records) / 1000


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", required=True)
    ap.add_argument("--new", required=True)
    ap.add_argument("--weights", required=True)
    ap.add_argument("--clips", required=True)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--precision", default="auto", help="passed to every stam command")
    a = ap.parse_args()
    clips = sorted(os.path.join(a.clips, f) for f in os.listdir(a.clips))
    out = os.path.join(tempfile.mkdtemp(), "out.jsonl")

    def batch(stam, env=None):
        wall, _, err = run([stam, "batch", a.clips, "-w", a.weights, "-o", out, "--overwrite",
                            "--precision", a.precision], env)
        records = [json.loads(line) for line in open(out)]
        assert len(records) == len(clips) and all("top_k" in r for r in records), records
        return wall, load_s(err), model_s(records), None

    def classify(stam, env=None):
        wall, stdout, err = run([stam, "classify", *clips, "-w", a.weights, "--format", "json",
                                 "--precision", a.precision], env)
        records = [json.loads(line) for line in stdout.splitlines()]
        assert [r["input"] for r in records] == clips
        return wall, load_s(err), model_s(records), [r["top_k"] for r in records]

    for round_ in range(1, a.rounds + 1):
        start = min(run([a.new, "--version"])[0] for _ in range(3))
        _, stdout, _ = run([a.new, "bench", "--frames", "16", "--iters", "4", "--warmup", "1",
                            "--precision", a.precision, "--format", "json", "-q"])
        four = 4 * json.loads(stdout)["results"][0]["median_ms"] / 1000
        rows = {"batch, base": batch(a.base), "batch, new": batch(a.new),
                "classify, base": classify(a.base), "classify, new": classify(a.new),
                "classify, new, OMP passive": classify(a.new, {"OMP_WAIT_POLICY": "passive"})}
        new_tops = [r[3] for name, r in rows.items() if name.startswith("classify, new")]
        assert all(t == new_tops[0] for t in new_tops), "the new build's classify results differ"
        print(f"round {round_}: process start {start:.2f} s, 4 x model-only median {four:.2f} s")
        if rows["classify, base"][3] != new_tops[0]:
            print("  (the builds' results differ: the new one changed the numerics)")
        for name, (wall, load, per_video, _) in rows.items():
            net = wall - start - load
            print(f"  {name:27s} wall {wall:6.2f} s = {wall / four:.3f}x | without start and "
                  f"load ({load:.2f} s) {net:6.2f} s = {net / four:.3f}x | model {per_video:.2f} "
                  f"s a video", flush=True)


if __name__ == "__main__":
    main()
