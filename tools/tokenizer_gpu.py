#!/usr/bin/env python3
"""Trains sim2real's video tokenizer on a CUDA machine with PyTorch.

The network is the one in nodes/tokenizer/src/model.rs, layer for layer, with
the same weight names and layouts, and checkpoints are written in the layout
`s2r train tokenizer` writes (weights + `config` + `trainer.step`), so that
the Rust side loads them (`s2r eval tokenizer`, tokenizer_node) and can
resume them on the CPU (`s2r train tokenizer --resume`). Keep the two in step:
`check` writes this network's output on a clip, and
`cargo run --release -p s2r-tokenizer --example forward CK IN OUT T S` the
candle network's on the same clip and weights; they agree to ~1e-6 relative.

  pack   BAG… -o frames.npz      frames of /sim/<camera>/image_raw, center-cropped
                                 and resampled like data.rs's square(), as uint8
  train  frames.npz --variant cv4x8x8|dv8x16x16 --seconds S -o ck.safetensors
  check  ck.safetensors in.f32 out.f32    forward of this network on a clip
"""

import argparse
import json
import lzma
import math
import os
import sys
import time

import numpy as np

LEVELS = [8, 8, 8, 5, 5, 5]
VARIANTS = {"cv4x8x8": (8, 4, 16), "dv8x16x16": (16, 8, 0)}


# ---------------------------------------------------------------- data


def square(rgb, size):
    """data.rs square(): center square, 2×2 bilinear samples per output pixel; uint8 HWC → float CHW 0..255."""
    h, w, _ = rgb.shape
    side = min(w, h)
    x0, y0 = (w - side) / 2.0, (h - side) / 2.0
    step = side / size
    img = rgb.astype(np.float32)

    def at(xs, ys):
        xs = np.clip(xs, 0.0, w - 1.001)
        ys = np.clip(ys, 0.0, h - 1.001)
        xi, yi = xs.astype(np.int64), ys.astype(np.int64)
        fx, fy = (xs - xi)[None, :, None], (ys - yi)[:, None, None]
        p = lambda yy, xx: img[yy][:, xx]
        top = p(yi, xi) * (1 - fx) + p(yi, xi + 1) * fx
        bot = p(yi + 1, xi) * (1 - fx) + p(yi + 1, xi + 1) * fx
        return top * (1 - fy) + bot * fy

    idx = np.arange(size, dtype=np.float32)
    sx, sy = x0 + (idx + 0.25) * step, y0 + (idx + 0.25) * step
    h2 = step * 0.5
    v = (at(sx, sy) + at(sx + h2, sy) + at(sx, sy + h2) + at(sx + h2, sy + h2)) / 4.0
    return v.transpose(2, 0, 1)


def pack(args):
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory

    frames, names, starts = [], [], []
    for bag in args.bags:
        files = sorted(os.path.join(bag, f) for f in os.listdir(bag) if f.endswith(".mcap")) if os.path.isdir(bag) else [bag]
        starts.append(len(frames))
        names.append(os.path.basename(bag.rstrip("/")))
        for f in files:
            with open(f, "rb") as fh:
                r = make_reader(fh, decoder_factories=[DecoderFactory()])
                for _, ch, _, msg in r.iter_decoded_messages(topics=[f"/sim/{args.camera}/image_raw"]):
                    if msg.encoding != "rgb8":
                        sys.exit(f"{f}: {ch.topic}: encoding {msg.encoding}, expected rgb8")
                    rgb = np.frombuffer(bytes(msg.data), np.uint8).reshape(msg.height, msg.step)[:, : msg.width * 3].reshape(msg.height, msg.width, 3)
                    frames.append(np.round(square(rgb, args.size)).clip(0, 255).astype(np.uint8))
        print(f"{bag}: {len(frames) - starts[-1]} frames", flush=True)
    arr = np.stack(frames)
    with lzma.open(args.output, "wb", preset=6) as fh:
        np.savez(fh, frames=arr, starts=np.array(starts + [len(frames)]), names=np.array(names))
    print(f"{args.output}: {arr.shape} {os.path.getsize(args.output) / 1e6:.1f} MB")


def load_frames(path):
    with lzma.open(path, "rb") as fh:
        d = np.load(fh)
        return d["frames"], d["starts"], [str(n) for n in d["names"]]


# ---------------------------------------------------------------- the network (model.rs)

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402


def haar(x):
    n, c, h, w = x.shape
    x = x.reshape(n, c, h // 2, 2, w // 2, 2)
    a, b, cc, d = x[:, :, :, 0, :, 0], x[:, :, :, 0, :, 1], x[:, :, :, 1, :, 0], x[:, :, :, 1, :, 1]
    return torch.cat([(a + b + cc + d) * 0.5, (a - b + cc - d) * 0.5, (a + b - cc - d) * 0.5, (a - b - cc + d) * 0.5], 1)


def haar_inv(y):
    n, c4, h, w = y.shape
    c = c4 // 4
    ll, lh, hl, hh = (y[:, i * c : (i + 1) * c] for i in range(4))
    a, b = (ll + lh + hl + hh) * 0.5, (ll - lh + hl - hh) * 0.5
    cc, d = (ll + lh - hl - hh) * 0.5, (ll - lh - hl + hh) * 0.5
    top = torch.stack([a, b], -1)  # n c h w 2
    bot = torch.stack([cc, d], -1)
    return torch.stack([top, bot], 3).reshape(n, c, 2 * h, 2 * w)


def fsq(z):
    outs = []
    for i, l in enumerate(LEVELS):
        zi = z[:, i : i + 1]
        half = (l - 1) / 2.0
        off = 0.5 if l % 2 == 0 else 0.0
        bounded = torch.tanh(zi) * (half - 1e-3) - off
        st = bounded + (torch.round(bounded) - bounded).detach()
        outs.append((st + off) / half)
    return torch.cat(outs, 1)


def conv(i, o, k, s=1):
    return nn.Conv2d(i, o, k, stride=s, padding=k // 2)


class Named(nn.Module):
    def add(self, name, m):
        self.add_module(name, m)
        return m


class CausalTime(Named):
    def __init__(self, c):
        super().__init__()
        self.taps = [self.add(f"tap{k}", conv(c, c, 1)) for k in range(3)]

    def forward(self, frames):
        out = []
        for t in range(len(frames)):
            mixed = sum(tap(frames[max(t - k, 0)]) for k, tap in enumerate(self.taps))
            out.append(frames[t] + F.silu(mixed))
        return out


class Block(nn.Module):
    def __init__(self, w):
        super().__init__()
        self.c1, self.c2 = conv(w, w, 3), conv(w, w, 3)
        nn.init.zeros_(self.c2.weight)
        nn.init.zeros_(self.c2.bias)

    def forward(self, x):
        return x + self.c2(F.silu(self.c1(F.silu(x))))


class Encoder(Named):
    def __init__(self, spatial, temporal, latent, width, blocks):
        super().__init__()
        self.temporal, self.continuous = temporal, latent > 0
        w = width
        self.stem = conv(48, w, 3, 2)
        self.down = [self.add(f"down{i}", conv(w, w, 3, 2)) for i in range(int(math.log2(spatial // 8)))]
        self.time = CausalTime(w)
        self.first = conv(w, w, 1)
        self.group = [self.add(f"group{k}", conv(w, w, 1)) for k in range(temporal)]
        self.blocks = [self.add(f"block{i}", Block(w)) for i in range(blocks)]
        self.out = conv(w, latent if latent > 0 else len(LEVELS), 1)

    def forward(self, video):
        b, t, c, h, w = video.shape
        k = self.temporal
        x = F.silu(self.stem(haar(haar(video.reshape(b * t, c, h, w)))))
        for d in self.down:
            x = F.silu(d(x))
        _, ch, hh, ww = x.shape
        x = x.reshape(b, t, ch, hh, ww)
        frames = self.time([x[:, i] for i in range(t)])
        lat = [self.first(frames[0])]
        for j in range((t - 1) // k):
            lat.append(sum(g(frames[1 + j * k + i]) for i, g in enumerate(self.group)))
        n = len(lat)
        z = torch.stack(lat, 1).reshape(b * n, ch, hh, ww)
        for blk in self.blocks:
            z = blk(z)
        z = self.out(F.silu(z))
        if not self.continuous:
            z = fsq(z)
        return z.reshape(b, n, z.shape[1], hh, ww)


class Decoder(Named):
    def __init__(self, spatial, temporal, latent, width, blocks):
        super().__init__()
        w = self.width = width
        self.input = conv(latent if latent > 0 else len(LEVELS), w, 1)
        self.blocks = [self.add(f"block{i}", Block(w)) for i in range(blocks)]
        self.first = conv(w, w, 1)
        self.group = [self.add(f"group{k}", conv(w, w, 1)) for k in range(temporal)]
        self.time = CausalTime(w)
        self.up = [self.add(f"up{i}", conv(w, 4 * w, 3)) for i in range(int(math.log2(spatial // 8)))]
        self.out = conv(w, 192, 3)

    def forward(self, z):
        b, n, c, h, w = z.shape
        z = self.input(z.reshape(b * n, c, h, w))
        for blk in self.blocks:
            z = blk(z)
        z = F.silu(z).reshape(b, n, self.width, h, w)
        frames = []
        for j in range(n):
            if j == 0:
                frames.append(self.first(z[:, 0]))
            else:
                frames.extend(g(z[:, j]) for g in self.group)
        frames = self.time(frames)
        t = len(frames)
        x = torch.stack(frames, 1).reshape(b * t, self.width, h, w)
        for u in self.up:
            x = F.silu(haar_inv(u(x)))
        x = haar_inv(haar_inv(haar_inv(self.out(x))))
        return x.reshape(b, t, 3, x.shape[2], x.shape[3])


class Tokenizer(nn.Module):
    def __init__(self, spatial, temporal, latent, width, blocks):
        super().__init__()
        self.config = [spatial, temporal, latent, width, blocks]
        self.encoder = Encoder(*self.config)
        self.decoder = Decoder(*self.config)

    def forward(self, video):
        return self.decoder(self.encoder(video))


# ---------------------------------------------------------------- checkpoints (safetensors, as train.rs)


def save(model, step, path):
    tensors = {k: v.detach().float().cpu().numpy() for k, v in model.state_dict().items()}
    tensors["config"] = np.array(model.config, np.uint32)
    tensors["trainer.step"] = np.array([step], np.uint32)
    header, blobs, off = {}, [], 0
    for k in sorted(tensors):
        a = np.ascontiguousarray(tensors[k])
        dt = {np.dtype(np.float32): "F32", np.dtype(np.uint32): "U32"}[a.dtype]
        header[k] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [off, off + a.nbytes]}
        blobs.append(a.tobytes())
        off += a.nbytes
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(len(h).to_bytes(8, "little"))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def load(path):
    from safetensors.numpy import load_file

    t = load_file(path)
    cfg = [int(v) for v in t.pop("config")]
    step = int(t.pop("trainer.step")[0])
    m = Tokenizer(*cfg)
    m.load_state_dict({k: torch.from_numpy(v) for k, v in t.items()})
    return m, step


# ---------------------------------------------------------------- training


def psnr(a, b):
    return 10 * math.log10(4.0 / max(F.mse_loss(a, b).item(), 1e-12))


def train(args):
    torch.manual_seed(args.seed)
    dev = torch.device(args.device)
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    spatial, temporal, latent = VARIANTS[args.variant]
    frames, starts, names = load_frames(args.frames)
    held = [i for i, n in enumerate(names) if any(n.endswith(h) for h in args.held_out)]
    train_recs = [i for i in range(len(names)) if i not in held]
    data = torch.from_numpy(frames).to(dev)
    length = 1 + temporal
    spans = [(int(starts[i]), int(starts[i + 1])) for i in range(len(names))]
    if args.max_frames:
        # Only the first N frames of each recording (say, before a scenario's world runs out).
        spans = [(a, min(b, a + args.max_frames)) for a, b in spans]
    train_starts = [s for r in train_recs for s in range(spans[r][0], spans[r][1] - length + 1)]
    held_clips = [s for r in held for s in range(spans[r][0], spans[r][1] - length + 1, length)]
    print(f"{args.variant}: {len(train_recs)} training recordings ({len(train_starts)} clip starts), "
          f"{len(held)} held out ({len(held_clips)} clips): {[names[i] for i in held]}", flush=True)
    model = Tokenizer(spatial, temporal, latent, args.width, args.blocks).to(dev)
    step = 0
    if args.resume and os.path.exists(args.output):
        model, step = load(args.output)
        model = model.to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.0)
    step0 = step
    print(f"{sum(p.numel() for p in model.parameters())} parameters", flush=True)
    ts = torch.tensor(train_starts, device=dev)
    offs = torch.arange(length, device=dev)

    def to_video(idx):
        return data[idx].float() / 127.5 - 1.0

    def evaluate():
        model.eval()
        vals = []
        with torch.no_grad():
            for i in range(0, len(held_clips), 16):
                idx = torch.tensor(held_clips[i : i + 16], device=dev)[:, None] + offs
                v = to_video(idx)
                vals.append(F.mse_loss(model(v), v, reduction="none").mean(dim=(1, 2, 3, 4)))
        model.train()
        mse = torch.cat(vals)
        return float((10 * torch.log10(4.0 / mse)).mean())

    best = -1.0
    if step > 0:
        # Resuming: the checkpoint is only replaced by a better one.
        best = evaluate()
        print(f"resumed at step {step}: held-out PSNR {best:.2f} dB", flush=True)
    t0, last_eval = time.time(), time.time()
    losses = []
    while True:
        frac = (time.time() - t0) / args.seconds
        if frac >= 1.0:
            break
        lr = args.lr * min(1.0, (step - step0 + 1) / 200) * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * frac)))
        for g in opt.param_groups:
            g["lr"] = lr
        pick = ts[torch.randint(len(ts), (args.batch,), device=dev)]
        v = to_video(pick[:, None] + offs)
        flip = torch.rand(args.batch, device=dev) < 0.5
        v = torch.where(flip[:, None, None, None, None], v.flip(-1), v)
        loss = F.mse_loss(model(v), v)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        losses.append(loss.item() if step % 50 == 0 else None)
        if time.time() - last_eval > args.eval_seconds:
            last_eval = time.time()
            p = evaluate()
            rec = [x for x in losses[-500:] if x is not None]
            train_db = 10 * math.log10(4.0 / (sum(rec) / max(len(rec), 1))) if rec else float("nan")
            print(f"{time.time() - t0:6.0f} s step {step}: lr {lr:.2e} train {train_db:.2f} dB held-out {p:.2f} dB", flush=True)
            if p > best:
                best = p
                save(model, step, args.output)
    p = evaluate()
    print(f"done: step {step}, held-out PSNR {p:.2f} dB (best {max(p, best):.2f})", flush=True)
    if p >= best:
        save(model, step, args.output)


def check(args):
    model, _ = load(args.checkpoint)
    t, s = args.frames, args.size
    v = torch.from_numpy(np.fromfile(args.input, np.float32).reshape(1, t, 3, s, s))
    with torch.no_grad():
        model(v).numpy().astype(np.float32).tofile(args.output)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pack")
    p.add_argument("bags", nargs="+")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--camera", default="front")
    p = sub.add_parser("train")
    p.add_argument("frames")
    p.add_argument("--variant", choices=sorted(VARIANTS), required=True)
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--blocks", type=int, default=2)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seconds", type=float, default=300)
    p.add_argument("--eval-seconds", type=float, default=30)
    p.add_argument("--held-out", nargs="+", default=["_5"], help="recordings whose name ends so are never trained on")
    p.add_argument("--device", default="cuda")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--max-frames", type=int, default=0, help="use only the first N frames of each recording")
    p = sub.add_parser("check")
    p.add_argument("checkpoint")
    p.add_argument("input")
    p.add_argument("output")
    p.add_argument("--frames", type=int, required=True)
    p.add_argument("--size", type=int, required=True)
    args = ap.parse_args()
    {"pack": pack, "train": train, "check": check}[args.cmd](args)


if __name__ == "__main__":
    main()
