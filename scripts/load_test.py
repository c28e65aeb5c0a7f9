#!/usr/bin/env python3
"""Load test for `stam serve` (standard library only).

N concurrent clients each send M requests (videos taken in turn) to POST /v1/classify and check
every answer against its own video's expected labels, so a server that mixed up requests fails.
The expected labels come from one request per video sent alone before the load, or from
`stam classify --format json` records given with --expect VIDEO=RECORD.json. Bounded in count
(clients x requests) and in time (--deadline-s).

  scripts/load_test.py --url http://127.0.0.1:8080 --clients 8 --requests 4 clip.mp4
  scripts/load_test.py --json ... a.mp4 b.mp4        # one JSON object on stdout

Prints throughput, latency p50/p99 and the errors by kind. Exit status: 0 when every request got
its own video's labels, 1 when any failed or mixed, 2 for bad arguments or an unreachable server.
"""
import argparse
import json
import math
import sys
import threading
import time
import urllib.error
import urllib.request

SCORE_TOLERANCE = 1e-3  # a batched forward's scores may differ from a lone one's in the last bits


def post(url, body, key, timeout):
    req = urllib.request.Request(url, data=body, method="POST",
                                 headers={"Content-Type": "application/octet-stream"})
    if key:
        req.add_header("Authorization", "Bearer " + key)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def labels_of(record):
    return [(p["index"], p["score"]) for p in record["top_k"]]


def same_labels(got, want):
    return len(got) == len(want) and all(
        g[0] == w[0] and abs(g[1] - w[1]) <= SCORE_TOLERANCE for g, w in zip(got, want))


def percentile(values, q):
    """The q-quantile (nearest rank), rounded to 0.1 ms; None without values."""
    if not values:
        return None
    s = sorted(values)
    return round(s[min(len(s) - 1, max(0, math.ceil(q * len(s)) - 1))], 4)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("videos", nargs="+", help="video files, sent in turn")
    p.add_argument("--url", default="http://127.0.0.1:8080", help="the server (default: %(default)s)")
    p.add_argument("--clients", type=int, default=8, help="concurrent clients (default: 8)")
    p.add_argument("--requests", type=int, default=4, help="requests per client (default: 4)")
    p.add_argument("--expect", action="append", default=[], metavar="VIDEO=RECORD.json",
                   help="expected labels: a `stam classify --format json` record for VIDEO")
    p.add_argument("--api-key", default="", help="sent as Authorization: Bearer KEY")
    p.add_argument("--timeout-s", type=float, default=300, help="per request (default: 300)")
    p.add_argument("--deadline-s", type=float, default=1800,
                   help="no request starts after this many seconds (default: 1800)")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    a = p.parse_args()
    if a.clients < 1 or a.requests < 1 or a.clients * a.requests > 100000:
        p.error("--clients and --requests must be >= 1, and at most 100000 requests in all")
    return a


def expected_labels(a, bodies, url):
    given = {}
    for item in a.expect:
        video, _, record = item.partition("=")
        with open(record, encoding="utf-8") as f:
            given[video] = labels_of(json.loads(f.readline()))
    expected = []
    for video, body in zip(a.videos, bodies):
        if video in given:
            expected.append(given[video])
            continue
        status, data = post(url, body, a.api_key, a.timeout_s)
        if status != 200:
            sys.exit(f"load_test: {video}: the request alone got HTTP {status}: {data[:300]!r}")
        expected.append(labels_of(json.loads(data)))
    return expected


def main():
    a = parse_args()
    url = a.url.rstrip("/") + "/v1/classify"
    bodies = []
    for v in a.videos:
        with open(v, "rb") as f:
            bodies.append(f.read())
    try:
        expected = expected_labels(a, bodies, url)
    except (urllib.error.URLError, OSError) as e:
        print(f"load_test: cannot reach {url}: {e}", file=sys.stderr)
        return 2
    latencies, errors, lock = [], {}, threading.Lock()
    start = time.monotonic()

    def client(c):
        for r in range(a.requests):
            if time.monotonic() - start > a.deadline_s:
                outcome = "deadline"
            else:
                i = (c + r) % len(bodies)
                t0 = time.monotonic()
                try:
                    status, data = post(url, bodies[i], a.api_key, a.timeout_s)
                except (urllib.error.URLError, OSError) as e:
                    status, data = None, str(e).encode()
                took = time.monotonic() - t0
                if status != 200:
                    outcome = f"http_{status}" if status else "connection"
                elif not same_labels(labels_of(json.loads(data)), expected[i]):
                    outcome = "mixed"  # an answer that is not this video's
                else:
                    outcome = None
            with lock:
                if outcome:
                    errors[outcome] = errors.get(outcome, 0) + 1
                else:
                    latencies.append(took)

    threads = [threading.Thread(target=client, args=(c,)) for c in range(a.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - start
    summary = {
        "clients": a.clients, "requests": a.clients * a.requests, "ok": len(latencies),
        "errors": errors, "wall_s": round(wall, 3),
        "throughput_per_s": round(len(latencies) / wall, 4) if wall > 0 else 0,
        "latency_p50_s": percentile(latencies, 0.50),
        "latency_p99_s": percentile(latencies, 0.99),
    }
    if a.json:
        print(json.dumps(summary))
    else:
        p50, p99 = summary["latency_p50_s"], summary["latency_p99_s"]
        latency = f", latency p50 {p50:.3f} s, p99 {p99:.3f} s" if latencies else ""
        print(f"{summary['ok']}/{summary['requests']} requests ok from {a.clients} clients in "
              f"{wall:.2f} s: {summary['throughput_per_s']:.3f} videos/s{latency}")
        print("errors: " + (", ".join(f"{k} {v}" for k, v in sorted(errors.items())) or "none"))
    return 0 if not errors else 1


if __name__ == "__main__":
    sys.exit(main())
