#!/usr/bin/python3
"""Reference STAM in PyTorch, written from the paper (arXiv 2103.13915) and the reference
implementation (github.com/Alibaba-MIIL/STAM), and the test fixtures it produces for the C++
parity tests.

Run with Debian's python3-torch:  /usr/bin/python3 scripts/reference_stam.py [--out tests/fixtures]

The temporal encoder is PyTorch's own nn.TransformerEncoder, exactly as the official code builds
it, so the post-norm layer semantics come from PyTorch itself. The spatial ViT is written out
here from the spec. Module names follow the official checkpoint keys.
"""
import argparse
import json
import math
import os
from argparse import Namespace

import torch
import torch.nn.functional as F
from torch import nn


class PatchEmbed(nn.Module):
    def __init__(self, chans, dim, patch):
        super().__init__()
        self.proj = nn.Conv2d(chans, dim, kernel_size=patch, stride=patch)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=True)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, n, d = x.shape
        hd = d // self.heads
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, hd).unbind(2)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # (b, heads, n, hd)
        scores = (q @ k.transpose(-1, -2)) * hd ** -0.5
        out = scores.softmax(-1) @ v
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))  # exact (erf) GELU


class Block(nn.Module):
    def __init__(self, dim, heads, hidden):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-5)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-5)
        self.mlp = Mlp(dim, hidden)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class TAggregate(nn.Module):
    def __init__(self, frames, dim, layers, ffn):
        super().__init__()
        layer = nn.TransformerEncoderLayer(d_model=dim, nhead=8, dim_feedforward=ffn)
        self.transformer_enc = nn.TransformerEncoder(layer, num_layers=layers,
                                                     norm=nn.LayerNorm(dim))
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, frames + 1, dim))
        self.frames = frames

    def forward(self, x):  # (B*T, D) -> (B, D)
        x = x.view(-1, self.frames, x.shape[-1])
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], 1) + self.pos_embed
        return self.transformer_enc(x.transpose(0, 1))[0]  # sequence-first, CLS row


class Stam(nn.Module):
    def __init__(self, image=224, patch=16, dim=768, depth=12, heads=12, hidden=3072, frames=16,
                 t_layers=6, t_ffn=2048, classes=400):
        super().__init__()
        grid = image // patch
        self.patch_embed = PatchEmbed(3, dim, patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, grid * grid + 1, dim))
        self.blocks = nn.ModuleList([Block(dim, heads, hidden) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-5)
        self.aggregate = TAggregate(frames, dim, t_layers, t_ffn)
        self.head = nn.Linear(dim, classes)

    def encode_frames(self, x):
        x = self.patch_embed(x)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], 1) + self.pos_embed
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x)[:, 0]

    def forward(self, x):
        return self.head(self.aggregate(self.encode_frames(x)))


def randomize(model, seed):
    """Random weights with non-trivial norms and biases, so every parameter matters."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            scale = 0.5 if "norm" in name else (1.0 / math.sqrt(p.shape[-1]) if p.dim() > 1 else 0.1)
            base = 1.0 if "norm" in name and name.endswith("weight") else 0.0
            p.copy_(base + scale * torch.randn(p.shape, generator=g))


def pattern_frames(t, size):
    """Deterministic uint8 frames the C++ test rebuilds with the same integer formula."""
    ti = torch.arange(t).view(t, 1, 1, 1)
    c = torch.arange(3).view(1, 3, 1, 1)
    h = torch.arange(size).view(1, 1, size, 1)
    w = torch.arange(size).view(1, 1, 1, size)
    v = (ti * 37 + c * 101 + h * 7 + w * 3 + (h * w) % 11) % 256
    return v.to(torch.float32) / 255.0


def resample_pos(pos, frames):
    """Our documented resampling for running T' != T frames: CLS row kept, rows interpolated."""
    rows = F.interpolate(pos[:, 1:].transpose(1, 2), size=frames, mode="linear",
                         align_corners=False)
    return torch.cat([pos[:, :1], rows.transpose(1, 2)], 1)


# ---- the reference evaluation transform, with PIL doing the resampling ----

def resize_short(img, size):
    from PIL import Image
    w, h = img.size
    if (w <= h and w == size) or (h <= w and h == size):
        return img
    if w < h:
        return img.resize((size, int(size * h / w)), Image.BILINEAR)
    return img.resize((int(size * w / h), size), Image.BILINEAR)


def center_crop(img, size):
    w, h = img.size
    top, left = int(round((h - size) / 2.0)), int(round((w - size) / 2.0))
    return img.crop((left, top, left + size, top + size))


def decode_rgb(path):
    import av
    with av.open(path) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def uniform_indices(n, t):
    return [min(n - 1, (2 * i + 1) * n // (2 * t)) for i in range(t)]


def video_tensor(frames, indices, crop):
    import numpy as np  # here, not at the top: gpu_check.sh imports this file without numpy
    from PIL import Image
    resize = int(crop / 0.875)
    out = []
    for i in indices:
        img = center_crop(resize_short(Image.fromarray(frames[i]), resize), crop)
        out.append(torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1).float() / 255.0)
    return torch.stack(out)


TINY = dict(image=224, patch=16, dim=128, depth=2, heads=2, hidden=256, frames=8, t_layers=2,
            t_ffn=256, classes=400)

MICRO = dict(image=8, patch=4, dim=32, depth=1, heads=1, hidden=64, frames=4, t_layers=1,
             t_ffn=32, classes=5)


def main():
    import numpy as np

    ap = argparse.ArgumentParser()
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--out", default=os.path.join(here, "..", "tests", "fixtures"))
    ap.add_argument("--videos", default=os.path.join(here, "..", "tests", "data", "videos"))
    args = ap.parse_args()
    torch.manual_seed(0)
    model = Stam(**TINY).eval()
    randomize(model, 1234)
    sd = model.state_dict()

    # Official layout: torch.save({'model': state_dict, ...training extras...}).
    torch.save({"model": sd, "epoch": 42, "args": Namespace(frames_per_clip=8, input_size=224),
                "best_top1": np.float64(0.5)}, os.path.join(args.out, "tiny_stam.pth"))
    # Legacy (pre-1.6) container, DataParallel-style keys under 'state_dict'.
    torch.save({"state_dict": {"module." + k: v for k, v in sd.items()}},
               os.path.join(args.out, "tiny_stam_legacy.pth"), _use_new_zipfile_serialization=False)

    # Broken checkpoints for the error paths, from a micro model to keep them small.
    micro = Stam(**MICRO).state_dict()

    def with_values(name, values):  # a copy of micro[name] starting with `values`
        t = micro[name].clone()
        t.view(-1)[:len(values)] = torch.tensor(values)
        return t

    nan, inf = float("nan"), float("inf")
    broken = {
        "micro_missing.pth": {k: v for k, v in micro.items() if k != "blocks.0.attn.proj.bias"},
        "micro_badshape.pth": dict(micro, **{"blocks.0.mlp.fc2.weight": torch.zeros(32, 100)}),
        "micro_extra.pth": dict(micro, **{"blocks.0.attn.extra": torch.zeros(3)}),
        "micro_ok.pth": micro,
        # Loads, but NaN and infinities in two tensors: `stam info` names the first.
        "micro_nonfinite.pth": dict(micro, **{
            "blocks.0.attn.qkv.weight": with_values("blocks.0.attn.qkv.weight", [nan, inf, -inf]),
            "head.weight": with_values("head.weight", [nan]),
        }),
    }
    for name, state in broken.items():
        torch.save({"model": state}, os.path.join(args.out, name))
    # retrained/micro_ok.pth: micro_ok.pth with another head, changed in place, under the same
    # name (which torch.save writes into the zip): the same size, other weights, as a retrained
    # model that keeps its file name (batch's settings fingerprints tell them apart).
    retrained = torch.load(os.path.join(args.out, "micro_ok.pth"))
    retrained["model"]["head.bias"] += 0.5
    os.makedirs(os.path.join(args.out, "retrained"), exist_ok=True)
    torch.save(retrained, os.path.join(args.out, "retrained", "micro_ok.pth"))

    expected = {"config": TINY}
    with torch.no_grad():
        x = pattern_frames(TINY["frames"], TINY["image"])
        expected["pattern_frame_embeddings"] = model.encode_frames(x).flatten().tolist()
        expected["pattern_logits"] = model(x)[0].tolist()
        # The same weights run at 16 frames (temporal position embedding resampled).
        m16 = Stam(**dict(TINY, frames=16)).eval()
        sd16 = dict(sd)
        sd16["aggregate.pos_embed"] = resample_pos(sd["aggregate.pos_embed"], 16)
        m16.load_state_dict(sd16)
        expected["pattern16_logits"] = m16(pattern_frames(16, TINY["image"]))[0].tolist()
        videos = {}
        for name in sorted(os.listdir(args.videos)):
            if not name.lower().endswith((".mp4", ".avi", ".mkv", ".webm", ".mov")):
                continue  # the licence text beside the videos
            frames = decode_rgb(os.path.join(args.videos, name))
            idx = uniform_indices(len(frames), TINY["frames"])
            logits = model(video_tensor(frames, idx, TINY["image"]))[0]
            videos[name] = {"frame_count": len(frames), "indices": idx, "logits": logits.tolist()}
        expected["videos"] = videos
    with open(os.path.join(args.out, "tiny_stam_expected.json"), "w") as f:
        json.dump(expected, f)


if __name__ == "__main__":
    main()
