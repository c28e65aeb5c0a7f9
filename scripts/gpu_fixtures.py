#!/usr/bin/env python3
"""The inputs of scripts/gpu_check.sh: a checkpoint, a .npy array of frames and the reference's
logits for them, written into OUT_DIR.

    gpu_fixtures.py OUT_DIR [--tiny]

With PyTorch (the GPU machines' /opt/torch/.venv): STAM-16 (ViT-B/16, 16 frames) with random
weights in the official layout, and its logits from scripts/reference_stam.py on the CPU.
With --tiny, or without PyTorch (CI): tests/fixtures/tiny_stam.pth and the logits the reference
wrote for the same frames (tiny_stam_expected.json). The frames are reference_stam.py's integer
pattern, written with the standard library alone (no numpy on the GPU machines).
"""
import argparse
import json
import os
import shutil
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def pattern_bytes(t, size):
    """reference_stam.pattern_frames(t, size) as uint8 (T, H, W, 3), row-major."""
    out = bytearray(t * size * size * 3)
    at = 0
    for ti in range(t):
        for h in range(size):
            for w in range(size):
                base = ti * 37 + h * 7 + w * 3 + (h * w) % 11
                for c in range(3):
                    out[at] = (base + c * 101) % 256
                    at += 1
    return bytes(out)


def write_npy(path, shape, data):
    dims = ", ".join(str(d) for d in shape)
    header = "{'descr': '|u1', 'fortran_order': False, 'shape': (%s), }" % dims
    header += " " * ((64 - (10 + len(header) + 1) % 64) % 64) + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode("ascii"))
        f.write(data)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--tiny", action="store_true", help="the test suite's tiny model")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    try:
        import torch
    except ImportError:
        torch = None
    tiny = args.tiny or torch is None

    if tiny:
        fixtures = os.path.join(HERE, "..", "tests", "fixtures")
        with open(os.path.join(fixtures, "tiny_stam_expected.json")) as f:
            expected = json.load(f)
        t, size = expected["config"]["frames"], expected["config"]["image"]
        shutil.copy(os.path.join(fixtures, "tiny_stam.pth"), os.path.join(args.out, "model.pth"))
        logits, model = expected["pattern_logits"], "tiny_stam (tests/fixtures)"
    else:
        sys.path.insert(0, HERE)
        import reference_stam as ref
        t, size = 16, 224
        torch.manual_seed(0)
        net = ref.Stam().eval()  # STAM-16's defaults
        ref.randomize(net, 1234)
        torch.save({"model": net.state_dict(), "epoch": 0},  # the official container
                   os.path.join(args.out, "model.pth"))
        with torch.no_grad():
            logits = net(ref.pattern_frames(t, size))[0].tolist()
        model = "STAM-16, random weights (reference_stam.py)"
    write_npy(os.path.join(args.out, "frames.npy"), (t, size, size, 3), pattern_bytes(t, size))
    with open(os.path.join(args.out, "reference.json"), "w") as f:
        json.dump({"model": model, "frames": t, "image": size, "logits": logits}, f)
    print(f"{args.out}: model.pth ({model}), frames.npy ({t}x{size}x{size}x3), reference.json")


if __name__ == "__main__":
    main()
