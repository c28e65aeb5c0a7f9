#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets in fuzz/ from the real producers of those files.

Run from the repository root with Debian's interpreter (it has python3-torch), after building
stam (the batch outputs come from a real `stam batch` run over tests/data/videos):

    /usr/bin/python3 scripts/make_fuzz_seeds.py --stam build/stam

  fuzz/corpus/checkpoint/    small torch.save files, zip and legacy, pickle protocols 2 to 5
  fuzz/corpus/labels/        label files (the shipped Kinetics list cut short, CRLF, blank line)
  fuzz/corpus/npy/           .npy arrays written by numpy: frames, other dtypes and ranks,
                             format versions 1.0 and 2.0, Fortran order
  fuzz/corpus/batch_output/  JSONL and CSV written by `stam batch`, complete and torn, each
                             behind the byte that makes fuzz/batch_output_fuzz.cpp read it with
                             that format and --top-k

After a fuzzing session, scripts/fuzz.sh merges what it found into these directories.
"""
import argparse
import collections
import os
import subprocess
import sys
import tempfile

import torch

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
CORPUS = os.path.join(ROOT, "fuzz", "corpus")


def write(kind, name, data):
    os.makedirs(os.path.join(CORPUS, kind), exist_ok=True)
    with open(os.path.join(CORPUS, kind, name), "wb") as f:
        f.write(data)


def checkpoints():
    g = torch.Generator().manual_seed(7)
    base = torch.randn(3, 4, generator=g)
    sd = collections.OrderedDict()
    sd["w"] = torch.randn(2, 3, generator=g)
    sd["p"] = torch.nn.Parameter(torch.randn(3, generator=g))  # _rebuild_parameter
    sd["h"] = torch.randn(2, generator=g).half()
    sd["t"] = base.t()  # strides (1, 4)
    sd["s"] = base[1:, 2:]  # storage offset 6
    sd["n"] = torch.tensor(5)  # 0-dim int64
    sd["e"] = torch.zeros(0, 3)  # no elements
    extras = {"epoch": 2, "notes": ("x", b"\x00b", None, True, 1.5, -(2**70)), "set": {1, 2}}
    cases = [
        ("top", sd),
        ("model", dict(model=sd, **extras)),
        ("state_dict", {"state_dict": collections.OrderedDict(("module." + k, v) for k, v in sd.items())}),
        ("nostate", extras),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for legacy in (False, True):
            for protocol in (2, 4 if legacy else 5):
                for label, obj in cases:
                    if protocol != 2 and label != "model":
                        continue
                    fmt = "legacy" if legacy else "zip"
                    path = os.path.join(tmp, "x.pth")
                    torch.save(obj, path, _use_new_zipfile_serialization=not legacy,
                               pickle_protocol=protocol)
                    with open(path, "rb") as f:
                        write("checkpoint", "%s_p%d_%s.pth" % (fmt, protocol, label), f.read())


def labels():
    with open(os.path.join(ROOT, "models", "kinetics400_labels.txt"), "rb") as f:
        lines = f.read().split(b"\n")[:12]
    write("labels", "kinetics_head.txt", b"\n".join(lines) + b"\n")
    write("labels", "crlf.txt", b"\r\n".join(lines[:4]) + b"\r\n")
    write("labels", "blank_line.txt", b"a\n\nb\n")
    write("labels", "no_final_newline.txt", b"a\nb")


def selector(csv, top_k):
    """The first byte of a batch_output input: bit 0 = CSV, the rest = top_k - 1."""
    return bytes([(1 if csv else 0) | ((top_k - 1) << 1)])


def batch_outputs(stam):
    videos = os.path.join(ROOT, "tests", "data", "videos")
    weights = os.path.join(ROOT, "tests", "fixtures", "tiny_stam.pth")
    with tempfile.TemporaryDirectory() as tmp:
        # A path in a --list that does not exist becomes an error record (and a quoted CSV field).
        inputs = os.path.join(tmp, "inputs.txt")
        with open(inputs, "w") as f:
            f.write(os.path.join(tmp, "missing video.mp4") + "\n")
        for ext, csv in (("jsonl", False), ("csv", True)):
            for top_k in (1, 3):
                out = os.path.join(tmp, "out_%d.%s" % (top_k, ext))
                args = [stam, "batch", videos, "--list", inputs, "-w", weights, "-f", "4",
                        "-k", str(top_k), "-o", out]
                # Exit 6: some inputs failed (the missing one), the others were labelled.
                if subprocess.run(args, capture_output=True).returncode not in (0, 6):
                    sys.exit("stam batch failed: " + " ".join(args))
                with open(out, "rb") as f:
                    data = f.read()
                data = data.replace(tmp.encode(), b"/d").replace(videos.encode(), b"/v")
                name = "%s_k%d" % (ext, top_k)
                write("batch_output", name, selector(csv, top_k) + data)
                # A run killed mid-write leaves a torn last record.
                write("batch_output", name + "_torn", selector(csv, top_k) + data[:-17])


def npy_arrays():
    import io

    import numpy as np
    rng = np.random.default_rng(3)
    arrays = {
        "frames_u1.npy": rng.integers(0, 256, (2, 4, 4, 3), dtype=np.uint8),
        "gray_u1.npy": rng.integers(0, 256, (3, 5), dtype=np.uint8),
        "f4.npy": rng.standard_normal((2, 3)).astype("<f4"),
        "f8_big_endian.npy": rng.standard_normal(4).astype(">f8"),
        "scalar_i8.npy": np.array(7, dtype=np.int64),
        "empty_u1.npy": np.zeros((0, 2, 2, 3), dtype=np.uint8),
        "fortran_u1.npy": np.asfortranarray(rng.integers(0, 256, (2, 3, 3), dtype=np.uint8)),
    }
    for name, a in arrays.items():
        buf = io.BytesIO()
        np.save(buf, a)
        write("npy", name, buf.getvalue())
    buf = io.BytesIO()
    np.lib.format.write_array(buf, arrays["frames_u1.npy"], version=(2, 0))
    write("npy", "frames_v2.npy", buf.getvalue())


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stam", default=os.path.join(ROOT, "build", "stam"))
    args = parser.parse_args()
    checkpoints()
    labels()
    npy_arrays()
    batch_outputs(os.path.abspath(args.stam))
    for kind in sorted(os.listdir(CORPUS)):
        d = os.path.join(CORPUS, kind)
        sizes = [os.path.getsize(os.path.join(d, n)) for n in os.listdir(d)]
        print("%s: %d files, %d bytes" % (kind, len(sizes), sum(sizes)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
