#!/usr/bin/env python3
"""Time a `stam classify` from outside: what it spends outside its reported stages, and its peak
resident memory.

"Outside the stages" is the process's wall time minus the stage timings it prints in JSON
(decode + preprocess + spatial + temporal): process start, model load, output and exit. The peak
is the largest VmRSS seen while sampling /proc/PID/status every 10 ms.

    python3 scripts/measure_startup.py --stam build/stam --weights models/stam_16.pth [--runs 3]
"""
import argparse
import json
import os
import re
import subprocess
import time


def one_run(stam, video, weights, precision):
    env = dict(os.environ)
    env.pop("OPENBLAS_CORETYPE", None)  # as a user runs it
    cmd = [stam, "classify", video, "-w", weights, "--format", "json", "--precision", precision]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    peak = {"VmRSS": 0}
    while proc.poll() is None:
        try:
            with open(f"/proc/{proc.pid}/status") as f:
                status = f.read()
            fields = {k: int(v) for k, v in re.findall(r"^(VmRSS|RssAnon|RssFile):\s+(\d+)", status, re.M)}
            if fields.get("VmRSS", 0) > peak["VmRSS"]:
                peak = fields
        except (OSError, ValueError):
            pass
        time.sleep(0.01)
    out = proc.stdout.read()
    wall_ms = (time.perf_counter() - start) * 1000
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} exited with {proc.returncode}")
    stages_ms = json.loads(out)["timings_ms"]["total"]
    return wall_ms, stages_ms, peak


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--stam", default=os.path.join(here, "..", "build", "stam"))
    ap.add_argument("--weights", required=True)
    ap.add_argument("--video", default=os.path.join(
        here, "..", "tests", "data", "videos", "arm_wrestling_340x256_28fps.mp4"))
    ap.add_argument("--precision", default="fp32")
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    for _ in range(a.runs):
        wall, stages, peak = one_run(a.stam, a.video, a.weights, a.precision)
        print(f"wall {wall:.0f} ms, stages {stages:.0f} ms, outside the stages {wall - stages:.0f} ms, "
              f"peak RSS {peak['VmRSS'] / 1024:.0f} MB (anonymous {peak.get('RssAnon', 0) / 1024:.0f}, "
              f"file {peak.get('RssFile', 0) / 1024:.0f})")


if __name__ == "__main__":
    main()
