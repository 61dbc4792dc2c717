"""Trains terse's MLIC-style learned image codec and exports what the Rust side serves.

The codec (after MLIC/MLIC++, at a size that trains on a CPU):
  - g_a / g_s: 4 stride-2 convolutions with GDN / IGDN (x16 down / up), M latent channels;
  - h_a: hyper analysis to Z channels at 1/64 resolution; z coded with a factorized prior;
  - h_s: hyper synthesis with nearest upsampling + 3x3 convolutions -> hyper features H;
  - y split into S channel slices; each slice coded in two checkerboard passes:
      anchors     (i + j even): params = EP_a[s](H, y_hat of earlier slices)        channel context
      non-anchors (i + j odd):  params = EP_n[s](H, earlier slices, SC[s](anchors)) + spatial context
    Gaussian conditional coding of round(y - mu) with the scale-table index of sigma.

Determinism: everything that selects an entropy model (h_s, the context convolutions, the
entropy-parameter networks) runs at encode AND decode time in fixed-point integer arithmetic
(activations Q10, weights Q12, int64 accumulation, round-half-up shifts); the float networks are
only trained here. The Rust crate `terse-mlic` implements the same integer inference, and the
fixture written by --fixture pins it bit for bit. g_a, h_a (encoder only) and g_s (the
reconstruction, which feeds no entropy model) run in ONNX Runtime as float graphs.

Ablations (--context): "hyper" (hyperprior only: EP sees H alone, one pass), "channel" (+ channel
context over earlier slices), "full" (+ checkerboard spatial context).

Outputs in --out:
  analysis.onnx                    g_a + h_a: image [1,3,H,W] -> y [1,M,H/16,W/16], z [1,Z,H/64,W/64]
  synthesis.onnx                   g_s: y_hat -> image (float stages, ONNX Runtime)
  entropy.json + entropy.bin       integer networks (terse-mlic-entropy/1; weights as i32 LE)
  prior.json                       factorized prior of z (terse-cdf-table/1)
  training.json                    settings, losses, validation bpp/PSNR of the integer path
  checkpoint.pt                    resumable state (--resume)

  python models/scripts/mlic/train_mlic.py --lmbda 0.0067 --steps 3000 --out /tmp/mlic-q2
"""

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "walloc"))

ACT_BITS = 10  # fractional bits of integer activations
WEIGHT_BITS = 12  # fractional bits of integer weights
SCALE_MIN = 0.11
SCALES = np.exp(np.linspace(math.log(0.11), math.log(256.0), 64))  # CompressAI's table


class GDN(nn.Module):
    """y = x / sqrt(beta + gamma * x^2) (inverse: multiply), non-negative by squaring."""

    def __init__(self, channels, inverse=False):
        super().__init__()
        self.inverse = inverse
        self.beta = nn.Parameter(torch.ones(channels))
        self.gamma = nn.Parameter(0.1 * torch.eye(channels).view(channels, channels, 1, 1))

    def forward(self, x):
        norm = F.conv2d(x * x, self.gamma.abs(), self.beta.abs() + 1e-6)
        norm = torch.sqrt(norm)
        return x * norm if self.inverse else x / norm


def conv(cin, cout, k=5, stride=2):
    return nn.Conv2d(cin, cout, k, stride, k // 2)


def deconv(cin, cout, k=5, stride=2):
    return nn.ConvTranspose2d(cin, cout, k, stride, k // 2, output_padding=stride - 1)


class Upsample(nn.Module):
    def forward(self, x):
        return F.interpolate(x, scale_factor=2, mode="nearest")


def entropy_parameters(cin, out, hidden=(96, 64)):
    return nn.Sequential(
        nn.Conv2d(cin, hidden[0], 1), nn.ReLU(), nn.Conv2d(hidden[0], hidden[1], 1), nn.ReLU(),
        nn.Conv2d(hidden[1], 2 * out, 1),
    )


def anchor_mask(h, w):
    ii, jj = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    return torch.from_numpy(((ii + jj) % 2 == 0).astype(np.float32))


def ste_round(x):
    return (torch.round(x) - x).detach() + x


def gaussian_likelihood(residual, sigma):
    sigma = sigma.clamp(min=SCALE_MIN)
    normal = torch.distributions.Normal(0.0, 1.0)
    upper = normal.cdf((0.5 - residual.abs()) / sigma)
    lower = normal.cdf((-0.5 - residual.abs()) / sigma)
    return (upper - lower).clamp(min=1e-9)


class Codec(nn.Module):
    def __init__(self, n=64, m=64, z=32, slices=4, context="full", ep_hidden=(96, 64)):
        super().__init__()
        self.n, self.m, self.z, self.slices, self.context = n, m, z, slices, context
        self.cs = m // slices
        self.g_a = nn.Sequential(conv(3, n), GDN(n), conv(n, n), GDN(n), conv(n, n), GDN(n), conv(n, m))
        self.g_s = nn.Sequential(
            deconv(m, n), GDN(n, True), deconv(n, n), GDN(n, True), deconv(n, n), GDN(n, True), deconv(n, 3)
        )
        self.h_a = nn.Sequential(conv(m, n, 3, 1), nn.LeakyReLU(), conv(n, n), nn.LeakyReLU(), conv(n, z))
        self.h_s = nn.Sequential(
            Upsample(), nn.Conv2d(z, n, 3, 1, 1), nn.ReLU(),
            Upsample(), nn.Conv2d(n, n, 3, 1, 1), nn.ReLU(),
            nn.Conv2d(n, 2 * m, 3, 1, 1),
        )
        channel = context in ("channel", "full")
        self.ep_anchor = nn.ModuleList(
            entropy_parameters(2 * m + (self.cs * s if channel else 0), self.cs, ep_hidden) for s in range(slices)
        )
        if context == "full":
            self.spatial = nn.ModuleList(nn.Conv2d(self.cs, 2 * self.cs, 5, 1, 2) for _ in range(slices))
            self.ep_other = nn.ModuleList(
                entropy_parameters(2 * m + self.cs * s + 2 * self.cs, self.cs, ep_hidden) for s in range(slices)
            )
        # z: per-channel discretized Laplace for training (the shipped prior is a fitted table).
        self.z_loc = nn.Parameter(torch.zeros(z))
        self.z_log_scale = nn.Parameter(torch.zeros(z))

    def z_likelihood(self, z_hat):
        loc = self.z_loc.view(1, -1, 1, 1)
        scale = self.z_log_scale.exp().view(1, -1, 1, 1)
        dist = torch.distributions.Laplace(loc, scale)
        return (dist.cdf(z_hat + 0.5) - dist.cdf(z_hat - 0.5)).clamp(min=1e-9)

    def slice_params(self, s, hyper, earlier, anchors):
        """(mu, sigma) for slice s; `anchors` None: the anchor pass."""
        inputs = [hyper] + (earlier if self.context != "hyper" else [])
        if anchors is None or self.context != "full":
            out = self.ep_anchor[s](torch.cat(inputs, 1))
        else:
            out = self.ep_other[s](torch.cat(inputs + [self.spatial[s](anchors)], 1))
        return out[:, : self.cs], out[:, self.cs :]

    def forward(self, x, noise=True):
        y = self.g_a(x)
        z = self.h_a(y)
        z_hat = z + torch.rand_like(z) - 0.5 if noise else torch.round(z)
        hyper = self.h_s(z_hat)
        mask = anchor_mask(y.shape[2], y.shape[3]).to(y)
        earlier, bits = [], -torch.log2(self.z_likelihood(z_hat)).sum()
        for s in range(self.slices):
            y_s = y[:, s * self.cs : (s + 1) * self.cs]
            mu, sigma = self.slice_params(s, hyper, earlier, None)
            if self.context == "full":
                anchor_hat = (ste_round(y_s - mu) + mu) * mask
                mu_n, sigma_n = self.slice_params(s, hyper, earlier, anchor_hat)
                mu = mu * mask + mu_n * (1 - mask)
                sigma = sigma * mask + sigma_n * (1 - mask)
            residual = y_s - mu
            noisy = residual + torch.rand_like(residual) - 0.5 if noise else torch.round(residual)
            bits = bits - torch.log2(gaussian_likelihood(noisy, sigma)).sum()
            earlier.append(ste_round(residual) + mu)
        y_hat = torch.cat(earlier, 1)
        return self.g_s(y_hat), bits


# ---------------------------------------------------------------- integer entropy networks


def quantize_layer(conv_layer):
    w = np.round(conv_layer.weight.detach().numpy().astype(np.float64) * 2**WEIGHT_BITS).astype(np.int64)
    b = np.round(conv_layer.bias.detach().numpy().astype(np.float64) * 2 ** (WEIGHT_BITS + ACT_BITS)).astype(np.int64)
    return w, b


def int_conv(x, w, b):
    """x [C, H, W] int64 (Q_ACT), w [O, C, k, k] (Q_W), b [O] (Q_ACT+W): zero padding, stride 1,
    out = (acc + 2^(W-1)) >> W (arithmetic shift: round half up)."""
    c, h, wd = x.shape
    o, _, k, _ = w.shape
    p = k // 2
    padded = np.zeros((c, h + 2 * p, wd + 2 * p), dtype=np.int64)
    padded[:, p : p + h, p : p + wd] = x
    acc = np.repeat(b[:, None, None], h, 1).repeat(wd, 2).astype(np.int64)
    for dy in range(k):
        for dx in range(k):
            patch = padded[:, dy : dy + h, dx : dx + wd].reshape(c, -1)
            acc += (w[:, :, dy, dx] @ patch).reshape(o, h, wd)
    return (acc + (1 << (WEIGHT_BITS - 1))) >> WEIGHT_BITS


def int_sequential(x, layers):
    for kind, params in layers:
        if kind == "conv":
            x = int_conv(x, *params)
        elif kind == "relu":
            x = np.maximum(x, 0)
        elif kind == "up":
            x = x.repeat(2, 1).repeat(2, 2)
    return x


def integer_layers(module):
    out = []
    for layer in module:
        if isinstance(layer, nn.Conv2d):
            out.append(("conv", quantize_layer(layer)))
        elif isinstance(layer, nn.ReLU):
            out.append(("relu", None))
        elif isinstance(layer, Upsample):
            out.append(("up", None))
        else:
            raise TypeError(layer)
    return out


SCALE_TABLE_Q = np.round(SCALES * 2**ACT_BITS).astype(np.int64)


def scale_index(sigma_q):
    """First table entry >= sigma (the lower bound 0.11 is entry 0), in integers."""
    return np.minimum(np.searchsorted(SCALE_TABLE_Q, sigma_q, side="left"), len(SCALES) - 1)


class IntegerModel:
    """The integer entropy path, exactly as terse-mlic computes it."""

    def __init__(self, codec):
        self.codec = codec
        self.h_s = integer_layers(codec.h_s)
        self.ep_anchor = [integer_layers(m) for m in codec.ep_anchor]
        self.spatial = [quantize_layer(m) for m in codec.spatial] if codec.context == "full" else []
        self.ep_other = [integer_layers(m) for m in codec.ep_other] if codec.context == "full" else []

    def code(self, y, z_hat):
        """y [M, h, w] float, z_hat [Z, h/4, w/4] int -> (symbols, indexes, y_hat_q) per slice."""
        codec = self.codec
        cs = codec.cs
        hyper = int_sequential(z_hat.astype(np.int64) << ACT_BITS, self.h_s)
        h, w = y.shape[1:]
        mask = (np.add.outer(np.arange(h), np.arange(w)) % 2 == 0)
        earlier, symbols, indexes = [], [], []
        for s in range(codec.slices):
            inputs = [hyper] + (earlier if codec.context != "hyper" else [])
            out = int_sequential(np.concatenate(inputs), self.ep_anchor[s])
            mu, sigma = out[:cs], out[cs:]
            y_s = y[s * cs : (s + 1) * cs].astype(np.float64)
            sym = np.floor(y_s - mu / 2**ACT_BITS + 0.5).astype(np.int64)
            if codec.context == "full":
                anchors = np.where(mask, sym * 2**ACT_BITS + mu, 0)
                sc = int_conv(anchors, *self.spatial[s])
                out_n = int_sequential(np.concatenate(inputs + [sc]), self.ep_other[s])
                mu = np.where(mask, mu, out_n[:cs])
                sigma = np.where(mask, sigma, out_n[cs:])
                sym = np.floor(y_s - mu / 2**ACT_BITS + 0.5).astype(np.int64)
            symbols.append(sym)
            indexes.append(scale_index(sigma))
            earlier.append(sym * 2**ACT_BITS + mu)
        return symbols, indexes, np.concatenate(earlier)


def gaussian_bits(symbols, indexes):
    from math import erf, sqrt

    cdf = np.vectorize(lambda v: 0.5 * (1 + erf(v / sqrt(2))))
    total = 0.0
    for sym, idx in zip(symbols, indexes):
        sigma = SCALES[idx]
        a = np.abs(sym)
        p = cdf((0.5 - a) / sigma) - cdf((-0.5 - a) / sigma)
        total += -np.log2(np.maximum(p, 1e-9)).sum()
    return total


# ---------------------------------------------------------------- data, training, export


def pad64(x):
    h, w = x.shape[2:]
    ph, pw = (-h) % 64, (-w) % 64
    return F.pad(x, (0, pw, 0, ph), mode="replicate"), (h, w)


def evaluate(codec, images, gain=None, inverse_gain=None):
    """bpp (z by the training Laplace prior, y by the integer path's Gaussian bits) and PSNR
    of the reconstruction from the integer path's y_hat, over `images`. A variable-rate model
    passes the rate point's `gain` and `inverse_gain` ([M] tensors)."""
    integer = IntegerModel(codec)
    total_bits = total_pixels = 0
    psnrs = []
    with torch.no_grad():
        for img in images:
            x, (h, w) = pad64(torch.from_numpy(img.transpose(2, 0, 1)[None].copy()))
            y = codec.g_a(x)
            if gain is not None:
                y = y * gain.view(1, -1, 1, 1)
            z_hat = torch.round(codec.h_a(y))[0].numpy().astype(np.int64)
            symbols, indexes, y_hat_q = integer.code(y[0].numpy(), z_hat)
            y_hat = torch.from_numpy((y_hat_q / 2**ACT_BITS).astype(np.float32))[None]
            if inverse_gain is not None:
                y_hat = y_hat * inverse_gain.view(1, -1, 1, 1)
            x_hat = codec.g_s(y_hat).clamp(0, 1)[:, :, :h, :w]
            mse = F.mse_loss(x_hat, x[:, :, :h, :w]).item()
            psnrs.append(10 * math.log10(1 / mse))
            z_bits = -torch.log2(codec.z_likelihood(torch.from_numpy(z_hat[None].astype(np.float32)))).sum().item()
            total_bits += gaussian_bits(symbols, indexes) + z_bits
            total_pixels += h * w
    return total_bits / total_pixels, float(np.mean(psnrs))


class Analysis(nn.Module):
    """g_a then h_a in one graph: image -> (y, z)."""

    def __init__(self, codec):
        super().__init__()
        self.g_a, self.h_a = codec.g_a, codec.h_a

    def forward(self, x):
        y = self.g_a(x)
        return y, self.h_a(y)


def export_onnx(module, example, path, in_name, out_names):
    axes = {name: {2: "h", 3: "w"} for name in [in_name] + out_names}
    torch.onnx.export(
        module, example, str(path), input_names=[in_name], output_names=out_names,
        dynamic_axes=axes, opset_version=17, dynamo=False,
    )


def write_integer_networks(codec, out, extra=None):
    """entropy.bin (i32 LE weights and biases) and entropy.json (layer-by-layer description)."""
    blob = []

    def put(array):
        flat = np.asarray(array, dtype=np.int64).ravel()
        if np.abs(flat).max(initial=0) >= 2**31:
            raise OverflowError("integer parameter does not fit in i32")
        offset = sum(len(b) for b in blob)
        blob.append(flat)
        return offset

    def describe(layers):
        described = []
        for kind, params in layers:
            if kind == "conv":
                w, b = params
                described.append({"op": "conv", "cout": int(w.shape[0]), "cin": int(w.shape[1]),
                                  "kernel": int(w.shape[2]), "weight": put(w), "bias": put(b)})
            else:
                described.append({"op": kind})
        return described

    integer = IntegerModel(codec)
    networks = {
        "h_s": describe(integer.h_s),
        "ep_anchor": [describe(n) for n in integer.ep_anchor],
        "spatial": [describe([("conv", p)]) for p in integer.spatial],
        "ep_other": [describe(n) for n in integer.ep_other],
    }
    (out / "entropy.bin").write_bytes(np.concatenate(blob).astype("<i4").tobytes())
    description = {
        "format": "terse-mlic-entropy/1",
        "context": codec.context,
        "latent_channels": codec.m,
        "hyper_channels": codec.z,
        "slices": codec.slices,
        "activation_bits": ACT_BITS,
        "weight_bits": WEIGHT_BITS,
        "scale_table": SCALES.tolist(),
        "networks": networks,
    }
    description.update(extra or {})
    (out / "entropy.json").write_text(json.dumps(description, indent=1))


def write_z_prior(z_hats, channels, out):
    """prior.json (terse-cdf-table/1): per-channel histograms of the rounded hyper-latents
    `z_hats` (arrays [Z, h, w]), smoothed, with an escape tail."""
    lo, hi = -64, 64
    counts = np.zeros((channels, hi - lo + 1))
    for z_hat in z_hats:
        for c in range(channels):
            vals = np.clip(z_hat[c].ravel(), lo, hi) - lo
            counts[c] += np.bincount(vals, minlength=hi - lo + 1)
    cdfs = []
    symbols = hi - lo + 1
    for c in range(channels):
        pmf = (counts[c] + 0.05) / (counts[c] + 0.05).sum()
        tail = 1e-6
        freqs = np.floor(np.append(pmf * (1 - tail), tail) * (65536 - symbols - 1)).astype(np.int64) + 1
        freqs[np.argmax(freqs)] += 65536 - freqs.sum()
        cdfs.append(np.concatenate([[0], np.cumsum(freqs)]).tolist())
    (out / "prior.json").write_text(json.dumps({
        "format": "terse-cdf-table/1", "precision": 16, "quantized_cdf": cdfs,
        "cdf_length": [len(c) for c in cdfs], "offset": [lo] * channels, "medians": [0.0] * channels,
    }))


def export(codec, out, train_images, args, record):
    codec.eval()
    x = torch.rand(1, 3, 128, 128)
    with torch.no_grad():
        y = codec.g_a(x)
    export_onnx(Analysis(codec), x, out / "analysis.onnx", "image", ["y", "z"])
    export_onnx(codec.g_s, y, out / "synthesis.onnx", "y_hat", ["image"])
    write_integer_networks(codec, out)

    def z_hats():
        with torch.no_grad():
            for img in train_images:
                xx, _ = pad64(torch.from_numpy(img.transpose(2, 0, 1)[None].copy()))
                yield torch.round(codec.h_a(codec.g_a(xx)))[0].numpy().astype(np.int64)

    write_z_prior(z_hats(), codec.z, out)
    (out / "training.json").write_text(json.dumps(record, indent=1))


def write_fixture(codec, image, path, gain=None, extra=None):
    """Integer-path fixture for terse-mlic's tests: z_hat, y (float; times `gain` [M] for a
    variable-rate model), and the expected symbols, scale indexes and y_hat (Q10) of every slice;
    `extra` fields are added (e.g. the rate point)."""
    x, _ = pad64(torch.from_numpy(image.transpose(2, 0, 1)[None].copy()))
    with torch.no_grad():
        y = codec.g_a(x)
        if gain is not None:
            y = y * gain.view(1, -1, 1, 1)
        y = y[0].numpy()
        z_hat = torch.round(codec.h_a(torch.from_numpy(y)[None]))[0].numpy().astype(np.int64)
    symbols, indexes, y_hat_q = IntegerModel(codec).code(y, z_hat)
    path.write_text(json.dumps({
        **(extra or {}),
        "y_shape": list(y.shape), "y": y.ravel().tolist(),
        "z_shape": list(z_hat.shape), "z_hat": z_hat.ravel().tolist(),
        "symbols": np.concatenate(symbols).ravel().tolist(),
        "indexes": np.concatenate(indexes).ravel().tolist(),
        "y_hat_q": y_hat_q.ravel().tolist(),
    }))


def main():
    from train_walloc import batch, training_images, validation_images

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lmbda", type=float, default=0.0067, help="rate-distortion weight (x 255^2 MSE)")
    parser.add_argument("--context", choices=["hyper", "channel", "full"], default="full")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--crop", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--init", type=Path, help="start from another rate point's checkpoint.pt")
    parser.add_argument("--resume", action="store_true", help="continue from --out/checkpoint.pt")
    parser.add_argument("--fixture", type=Path, help="also write the integer-path test fixture here")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--export-only", action="store_true", help="evaluate and export --out/checkpoint.pt")
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)

    checkpoint = args.out / "checkpoint.pt"
    if args.export_only:
        saved = torch.load(checkpoint, weights_only=False)["args"]
        for key in ("lmbda", "context", "batch", "crop", "lr", "seed", "init"):
            setattr(args, key, saved[key])
    train_images, train_paths = training_images()
    val_images, val_paths = validation_images()
    codec = Codec(context=args.context)
    opt = torch.optim.Adam(codec.parameters(), lr=args.lr)
    start_step, losses = 0, []
    if args.resume and checkpoint.exists():
        state = torch.load(checkpoint, weights_only=False)
        codec.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        start_step, losses = state["step"], state["losses"]
        rng = np.random.default_rng(args.seed + start_step)
        print(f"resumed at step {start_step}", flush=True)
    elif args.init:
        # An ablation (fewer context networks) starts from a full model's transforms: parameters
        # the two models do not share by name and shape keep their fresh initialisation.
        source = torch.load(args.init, weights_only=False)["model"]
        own = codec.state_dict()
        shared = {k: v for k, v in source.items() if k in own and own[k].shape == v.shape}
        codec.load_state_dict(shared, strict=False)
        fresh = sorted(k for k in own if k not in shared)
        if fresh:
            print(f"fresh (not in --init by name and shape): {fresh}", flush=True)
        print(f"initialised from {args.init}", flush=True)

    if args.export_only:
        state = torch.load(checkpoint, weights_only=False)
        codec.load_state_dict(state["model"])
        losses = state["losses"]
        start_step = args.steps = state["step"]
    start = time.time()
    for step in range(start_step, args.steps):
        lr = args.lr if step < 0.8 * args.steps else args.lr / 10
        for group in opt.param_groups:
            group["lr"] = lr
        x = batch(train_images, args.batch, args.crop, rng)
        x_hat, bits = codec(x)
        mse = F.mse_loss(x_hat, x)
        bpp = bits / (x.shape[0] * x.shape[2] * x.shape[3])
        loss = args.lmbda * 255**2 * mse + bpp
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(codec.parameters(), 1.0)
        opt.step()
        losses.append([float(loss), float(bpp), 10 * math.log10(1 / max(float(mse), 1e-10))])
        if step % 100 == 0 or step == args.steps - 1:
            recent = np.mean(losses[-100:], axis=0)
            print(f"step {step} loss {recent[0]:.4f} bpp {recent[1]:.3f} psnr {recent[2]:.2f} {time.time() - start:.0f}s", flush=True)
        if (step + 1) % 500 == 0 or step == args.steps - 1:
            torch.save({"model": codec.state_dict(), "optimizer": opt.state_dict(), "step": step + 1,
                        "losses": losses, "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}}, checkpoint)

    codec.eval()
    bpp, psnr = evaluate(codec, val_images)
    print(f"validation (McMaster, integer entropy path): {bpp:.3f} bpp, {psnr:.2f} dB", flush=True)
    record = {
        "lmbda": args.lmbda, "context": args.context, "steps": args.steps, "batch": args.batch,
        "crop": args.crop, "lr": args.lr, "seed": args.seed, "init": str(args.init) if args.init else None,
        "train_images": train_paths + ["skimage: astronaut, chelsea, coffee, rocket, motorcycle_left/right"],
        "validation_images": val_paths, "validation_bpp_estimate": bpp, "validation_psnr": psnr,
        "loss_every_100": [losses[i] for i in range(0, len(losses), 100)],
        "seconds": time.time() - start,
    }
    export(codec, args.out, train_images, args, record)
    if args.fixture:
        write_fixture(codec, val_images[0][:128, :192], args.fixture)


if __name__ == "__main__":
    main()
