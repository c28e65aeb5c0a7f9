#!/usr/bin/env python3
"""Writes the small checkpoints that tests/test_checkpoint.cpp reads, using real PyTorch.

Run from the repository root with Debian's interpreter (it has python3-torch and numpy):

    /usr/bin/python3 scripts/make_checkpoint_fixtures.py

Every file goes to tests/fixtures/ckpt_*. ckpt_manifest.json lists, for each checkpoint, the
expected format, state-dict location and every tensor entry (key, dtype, shape and its values as
a flat float64 list in row-major order), so the C++ test needs no Python.
"""
import argparse
import collections
import json
import os
import sys
import zipfile

import numpy as np
import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures")
# Where the hostile fixture's os.system call would leave its trace if a reader ran it.
PWNED_MARKER = "/tmp/stam_ckpt_pwned_marker"


def state_dict():
    """A tiny state dict with STAM-style dotted keys covering dtypes, views and shared storage."""
    g = torch.Generator().manual_seed(1234)

    def rnd(*shape, dtype=torch.float32):
        return torch.randn(*shape, generator=g).to(dtype)

    sd = collections.OrderedDict()
    sd["cls_token"] = rnd(1, 1, 8)
    sd["patch_embed.proj.weight"] = rnd(4, 3, 2, 2)
    sd["blocks.0.norm1.weight"] = torch.nn.Parameter(rnd(8))  # pickled via _rebuild_parameter
    sd["blocks.0.attn.qkv.weight"] = rnd(6, 8, dtype=torch.float16)
    sd["norm.bias"] = rnd(8, dtype=torch.bfloat16)
    sd["head.weight"] = rnd(3, 8, dtype=torch.float64)
    base = rnd(4, 5)
    sd["view.transposed"] = base.t()  # strides (1, 5)
    sd["view.slice"] = base[1:3, 2:]  # storage offset 7, strides (5, 1)
    shared = rnd(12)
    sd["shared.a"] = shared[:6].view(2, 3)
    sd["shared.b"] = shared[6:].view(3, 2)
    sd["bn.num_batches_tracked"] = torch.tensor(42, dtype=torch.int64)  # 0-dim
    sd["aggregate.pos_embed"] = rnd(1, 3, 8)
    return sd


def training_extras():
    """What a training script typically saves beside the weights."""
    net = torch.nn.Linear(4, 3)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    net(torch.ones(2, 4)).sum().backward()
    opt.step()
    args = argparse.Namespace(lr=1e-3, batch_size=16, model_name="stam_16", frames=[16, 32])
    return {
        "epoch": 7,
        "args": args,
        "best_acc": np.float64(79.25),
        "step": np.int64(123456),
        "optimizer": opt.state_dict(),
        "notes": ("text", b"raw\x00bytes", None, True, 2.5, -(2**70)),
    }


class Evil:
    """Pickles as a call to os.system; a reader that executes pickles would create the marker."""

    def __reduce__(self):
        return (os.system, ("touch " + PWNED_MARKER,))


def expected(sd):
    entries = []
    for key, t in sd.items():
        t = t.detach()
        entries.append({
            "key": key,
            "dtype": str(t.dtype).replace("torch.", ""),
            "shape": list(t.shape),
            "values": t.to(torch.float64).reshape(-1).tolist(),
        })
    return entries


def save(name, obj, legacy, protocol=2):
    path = os.path.join(OUT, name)
    torch.save(obj, path, _use_new_zipfile_serialization=not legacy, pickle_protocol=protocol)
    return path


def main():
    os.makedirs(OUT, exist_ok=True)
    sd = state_dict()
    module_sd = collections.OrderedDict(("module." + k, v) for k, v in sd.items())
    variants = [
        ("top", lambda: sd, ""),
        ("model", lambda: dict(model=sd, **training_extras()), "model"),
        ("state_dict", lambda: {"state_dict": module_sd, "epoch": 3}, "state_dict"),
    ]
    manifest = {}
    for fmt in ("zip", "legacy"):
        for label, make, location in variants:
            name = "ckpt_%s_%s.pth" % (fmt, label)
            save(name, make(), legacy=(fmt == "legacy"))
            manifest[name] = {"format": fmt, "location": location}
        # Newer pickle protocols (FRAME, MEMOIZE, STACK_GLOBAL, SHORT_BINUNICODE...).
        protocol = 5 if fmt == "zip" else 4
        name = "ckpt_%s_proto%d.pth" % (fmt, protocol)
        save(name, dict(model=sd, **training_extras()), legacy=(fmt == "legacy"), protocol=protocol)
        manifest[name] = {"format": fmt, "location": "model"}
        # Files that parse but hold no state dict.
        save("ckpt_%s_nostate.pth" % fmt, training_extras(), legacy=(fmt == "legacy"))
        save("ckpt_%s_list.pth" % fmt, [1, 2, 3], legacy=(fmt == "legacy"))
        # A hostile extra next to a real state dict: must be ignored, never executed.
        name = "ckpt_%s_evil.pth" % fmt
        save(name, {"model": sd, "evil": Evil()}, legacy=(fmt == "legacy"))
        manifest[name] = {"format": fmt, "location": "model"}
    with open(os.path.join(OUT, "ckpt_manifest.json"), "w") as f:
        # Every state-dict fixture holds the same tensors (module. prefix stripped).
        doc = {"pwned_marker": PWNED_MARKER, "files": manifest, "entries": expected(sd)}
        json.dump(doc, f, indent=1, sort_keys=True)
        f.write("\n")
    total = sum(os.path.getsize(os.path.join(OUT, n)) for n in os.listdir(OUT) if n.startswith("ckpt_"))
    print("wrote %d checkpoint fixtures, %d bytes in all" % (len(manifest) + 4, total))
    return 0


if __name__ == "__main__":
    sys.exit(main())
