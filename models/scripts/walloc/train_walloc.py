"""Trains a WaLLoC image codec (wavelet packet + linear encoder + bounded scalar latents +
convolutional decoder) on CPU, and exports what terse serves:

  <out>/encoder.json   linear encoder (runs in Rust: a matrix multiply on the WPT bands)
  <out>/model.onnx     decoder: integer latents [N, L, h, w] -> WPT bands [N, 3*4^J, h, w]
  <out>/prior.json     per-channel factorized prior (terse-cdf-table/1) fitted on training latents
  <out>/training.json  settings, loss curve and validation PSNR

The wavelet packet transform here is bior4.4 with periodization, channel order as
terse-wavelet / PyWavelets WaveletPacket2D natural order (checked against pywt at start-up).

Data: CBSD68 (../shared/datasets) and scikit-image photos for training; McMaster (18 photos)
is the validation split and is never trained on.

  python models/scripts/walloc/train_walloc.py --latent-dim 12 --steps 1500 --out /tmp/walloc-rgb-16x
"""

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import pywt
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

torch.manual_seed(0)
np.random.seed(0)

WAVELET = pywt.Wavelet("bior4.4")
DEC_LO = torch.tensor(WAVELET.dec_lo, dtype=torch.float32)
DEC_HI = torch.tensor(WAVELET.dec_hi, dtype=torch.float32)
REC_LO = torch.tensor(WAVELET.rec_lo, dtype=torch.float32)
REC_HI = torch.tensor(WAVELET.rec_hi, dtype=torch.float32)
TAPS = 10


def _analysis_1d(x, dim):
    """Periodized one-level analysis along `dim`: lo[i] = sum_j f[j] x[(2i + 5 - j) mod N]."""
    x = x.movedim(dim, -1)
    shape = x.shape
    flat = x.reshape(-1, 1, shape[-1])
    padded = torch.cat([flat[..., -4:], flat, flat[..., :5]], dim=-1)
    weight = torch.stack([DEC_LO.flip(0), DEC_HI.flip(0)]).unsqueeze(1).to(padded)
    out = F.conv1d(padded, weight, stride=2)
    lo = out[:, 0].reshape(*shape[:-1], shape[-1] // 2).movedim(-1, dim)
    hi = out[:, 1].reshape(*shape[:-1], shape[-1] // 2).movedim(-1, dim)
    return lo, hi


def _synthesis_1d(lo, hi, dim):
    """Inverse of _analysis_1d: x[m] = sum_k g[k] up[(m - k + 4) mod N]."""
    lo, hi = lo.movedim(dim, -1), hi.movedim(dim, -1)
    shape = lo.shape
    n = shape[-1] * 2
    up = torch.zeros(*shape[:-1], 2, n, dtype=lo.dtype, device=lo.device)
    up[..., 0, 0::2] = lo
    up[..., 1, 0::2] = hi
    flat = up.reshape(-1, 2, n)
    padded = torch.cat([flat[..., -5:], flat, flat[..., :4]], dim=-1)
    weight = torch.stack([REC_LO.flip(0), REC_HI.flip(0)]).unsqueeze(0).to(padded)
    out = F.conv1d(padded, weight)
    return out.reshape(*shape[:-1], n).movedim(-1, dim)


def wpt2d(x, levels):
    """[B, C, H, W] -> [B, C*4^J, H/2^J, W/2^J]; band b of a level becomes 4b + (a, h, v, d)."""
    for _ in range(levels):
        lo_h, hi_h = _analysis_1d(x, 2)
        a, v = _analysis_1d(lo_h, 3)
        h, d = _analysis_1d(hi_h, 3)
        b, c, hh, ww = a.shape
        x = torch.stack([a, h, v, d], dim=2).reshape(b, c * 4, hh, ww)
    return x


def iwpt2d(x, levels):
    for _ in range(levels):
        b, c4, hh, ww = x.shape
        parts = x.reshape(b, c4 // 4, 4, hh, ww)
        a, h, v, d = parts[:, :, 0], parts[:, :, 1], parts[:, :, 2], parts[:, :, 3]
        lo_h = _synthesis_1d(a, v, 3)
        hi_h = _synthesis_1d(h, d, 3)
        x = _synthesis_1d(lo_h, hi_h, 2)
    return x


def check_against_pywt():
    img = np.random.default_rng(3).normal(size=(16, 24))
    wp = pywt.WaveletPacket2D(img, "bior4.4", mode="periodization", maxlevel=2)
    expected = np.stack([n.data for n in wp.get_level(2, order="natural")])
    got = wpt2d(torch.tensor(img, dtype=torch.float32)[None, None], 2)[0].numpy()
    assert np.abs(got - expected).max() < 1e-4, np.abs(got - expected).max()
    back = iwpt2d(torch.tensor(got)[None], 2)[0, 0].numpy()
    assert np.abs(back - img).max() < 1e-4


class ToUniform(nn.Module):
    """x / scale -> Phi(x) - 0.5 -> * 2 * latent_max: bounded to +-latent_max."""

    def __init__(self, bits, scale):
        super().__init__()
        self.latent_max = 2 ** (bits - 1) - 1 + 0.5
        self.scale = scale

    def forward(self, x):
        return (0.5 * torch.erfc(-x / self.scale / math.sqrt(2)) - 0.5) * 2 * self.latent_max


class ToNormal(nn.Module):
    def __init__(self, bits, scale):
        super().__init__()
        self.latent_max = 2 ** (bits - 1) - 1 + 0.5
        self.scale = scale

    def forward(self, u):
        p = (u / (2 * self.latent_max) + 0.5).clamp(1e-6, 1 - 1e-6)
        return self.scale * math.sqrt(2) * torch.erfinv(2 * p - 1)


class Block(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.conv1 = nn.Conv2d(width, width, 3, padding=1)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1)

    def forward(self, x):
        return x + self.conv2(F.gelu(self.conv1(F.gelu(x))))


class Decoder(nn.Module):
    """Convolutional decoder from normal-domain latents to WPT bands. The ToNormal mapping of the
    integer latents runs outside (in Rust, as a 2^b - 1 entry table), so it is not exported."""

    def __init__(self, latent_dim, bands, width, blocks):
        super().__init__()
        self.inp = nn.Conv2d(latent_dim, width, 1)
        self.blocks = nn.Sequential(*[Block(width) for _ in range(blocks)])
        self.out = nn.Conv2d(width, bands, 1)

    def forward(self, normal_latent):
        return self.out(self.blocks(self.inp(normal_latent)))


def load_images(paths, min_side=128):
    images = []
    for path in paths:
        img = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255.0
        if min(img.shape[:2]) >= min_side:
            images.append(img)
    return images


def training_images():
    import skimage.data as data

    shared = Path(__file__).resolve().parents[3] / ".." / "shared" / "datasets" / "images"
    paths = sorted((shared / "cbsd68").glob("*.png"))
    images = load_images(paths)
    for name in ["astronaut", "chelsea", "coffee", "rocket", "motorcycle_left", "motorcycle_right"]:
        try:
            img = getattr(data, name)()
        except Exception:
            continue
        if img.ndim == 3 and img.shape[2] == 3:
            images.append(img.astype(np.float32) / 255.0)
    return images, [str(p) for p in paths]


def pack_images(path):
    """The photos of a pack (models/scripts/image_data/build_pack.py) as float arrays in [0, 1]."""
    import io
    import zipfile

    with zipfile.ZipFile(path) as pack:
        index = json.loads(pack.read("index.json"))
        images = [np.asarray(Image.open(io.BytesIO(pack.read(e["file"]))).convert("RGB"), dtype=np.float32) / 255.0
                  for e in index["images"]]
    return images, [f"{e['repo']}@{e['commit'][:12]}:{e['path']}" for e in index["images"]]


def validation_images():
    shared = Path(__file__).resolve().parents[3] / ".." / "shared" / "datasets" / "images"
    paths = sorted((shared / "mcmaster").glob("*.tif"))
    return load_images(paths), [str(p) for p in paths]


def batch(images, size, crop, rng):
    out = np.empty((size, 3, crop, crop), dtype=np.float32)
    for i in range(size):
        img = images[rng.integers(len(images))]
        y = rng.integers(img.shape[0] - crop + 1)
        x = rng.integers(img.shape[1] - crop + 1)
        patch = img[y : y + crop, x : x + crop]
        if rng.random() < 0.5:
            patch = patch[:, ::-1]
        out[i] = patch.transpose(2, 0, 1)
    return torch.from_numpy(out)


def train(encoder, decoder, to_uniform, to_normal, next_batch, analysis, synthesis, args):
    """The WaLLoC training loop: MSE through the transform, uniform noise in place of rounding,
    AdamW with a one-cycle schedule over --steps, or, with --minutes, a warm-up then cosine decay
    over that time budget (steps as many as fit). Returns the losses and the start time."""
    params = list(encoder.parameters()) + list(decoder.parameters())
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.0)
    budget = getattr(args, "minutes", None)
    sched = None if budget else torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=args.steps, pct_start=0.1)
    losses = []
    start = time.time()
    step = 0
    while (time.time() - start < budget * 60) if budget else step < args.steps:
        if budget:
            t = (time.time() - start) / (budget * 60)
            for group in opt.param_groups:
                group["lr"] = args.lr * min(1.0, (step + 1) / 500) * max(0.02, 0.5 * (1 + math.cos(math.pi * t)))
        x = next_batch()
        u = to_uniform(encoder(analysis(x, args.levels)))
        u = u + torch.rand_like(u) - 0.5
        y = synthesis(decoder(to_normal(u)), args.levels)
        loss = F.mse_loss(y, x)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if sched:
            sched.step()
        losses.append(loss.detach())
        if step % 100 == 0:
            losses[-100:] = [float(v) for v in losses[-100:]]
            recent = np.mean(losses[-100:])
            print(f"step {step} loss {recent:.3e} psnr {10 * math.log10(1 / recent):.2f} dB {time.time() - start:.0f}s", flush=True)
        step += 1
    return [float(v) for v in losses], start


def export(out, args, weight, bias, to_normal, counts, input_offset, extra=None):
    """Writes encoder.json (linear encoder [L, bands], bias, integer->normal table) and
    prior.json (per-channel factorized prior fitted on the `counts` histograms, terse-cdf-table/1)."""
    encoder = {
        "format": "terse-walloc-encoder/1",
        "wavelet": "bior4.4",
        "levels": args.levels,
        "bits": args.bits,
        "scale": args.scale,
        "latent_dim": args.latent_dim,
        "input_offset": input_offset,
        "weight": weight.tolist(),
        # Decoder input for each integer latent value -(2^(b-1)-1) ..= 2^(b-1)-1.
        "to_normal": to_normal(torch.arange(-(2 ** (args.bits - 1) - 1), 2 ** (args.bits - 1), dtype=torch.float32)).tolist(),
        "bias": bias.tolist(),
    }
    encoder.update(extra or {})
    (out / "encoder.json").write_text(json.dumps(encoder))
    symbols = 2 ** args.bits - 1  # values -(2^(b-1)-1) ..= 2^(b-1)-1
    lo = -(2 ** (args.bits - 1) - 1)
    cdfs, lengths, offsets = [], [], []
    for c in range(args.latent_dim):
        hist = counts[c][1:].astype(np.float64) + 0.5  # index 0 is -128, never produced
        pmf = hist / hist.sum()
        tail = 1e-6
        freqs = np.floor(np.append(pmf * (1 - tail), tail) * (65536 - symbols - 1)).astype(np.int64) + 1
        freqs[np.argmax(freqs)] += 65536 - freqs.sum()
        cdf = np.concatenate([[0], np.cumsum(freqs)]).tolist()
        cdfs.append(cdf)
        lengths.append(len(cdf))
        offsets.append(lo)
    (out / "prior.json").write_text(json.dumps({
        "format": "terse-cdf-table/1",
        "precision": 16,
        "quantized_cdf": cdfs,
        "cdf_length": lengths,
        "offset": offsets,
        "medians": [0.0] * args.latent_dim,
    }))


def entropy_bits(counts):
    """Sum over channels of the empirical entropy of the rounded latents, in bits."""
    total = 0.0
    for row in counts:
        p = row / row.sum()
        total += -(p[p > 0] * np.log2(p[p > 0])).sum()
    return total


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--latent-dim", type=int, default=12)
    parser.add_argument("--levels", type=int, default=3)
    parser.add_argument("--bits", type=int, default=8)
    parser.add_argument("--scale", type=float, default=2.0)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--blocks", type=int, default=4)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--crop", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--out", required=True)
    parser.add_argument("--data", type=Path, help="photo pack (models/scripts/image_data/build_pack.py) instead of CBSD68 + scikit-image")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--minutes", type=float, help="train for this long instead of --steps")
    parser.add_argument("--export-only", action="store_true", help="validate and export --out/checkpoint.pt")
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    check_against_pywt()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    train_images, train_paths = pack_images(args.data) if args.data else training_images()
    val, val_paths = validation_images()
    bands = 3 * 4 ** args.levels
    encoder = nn.Conv2d(bands, args.latent_dim, 1)
    to_uniform = ToUniform(args.bits, args.scale)
    decoder = Decoder(args.latent_dim, bands, args.width, args.blocks)
    to_normal = ToNormal(args.bits, args.scale)
    checkpoint = out / "checkpoint.pt"
    if args.export_only:
        state = torch.load(checkpoint, map_location="cpu")
        encoder.load_state_dict(state["encoder"])
        decoder.load_state_dict(state["decoder"])
        losses, start, trained = state["losses"], time.time() - state["seconds"], state["run"]
    else:
        device = torch.device(args.device)
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        encoder.to(device)
        decoder.to(device)
        rng = np.random.default_rng(0)
        losses, start = train(encoder, decoder, to_uniform, to_normal, lambda: (batch(train_images, args.batch, args.crop, rng) - 0.5).to(device, non_blocking=True), wpt2d, iwpt2d, args)
        encoder.cpu()
        decoder.cpu()
        trained = {"steps": len(losses), "seconds": time.time() - start, "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu"}
        torch.save({"encoder": encoder.state_dict(), "decoder": decoder.state_dict(), "losses": losses,
                    "seconds": time.time() - start, "run": trained}, checkpoint)
        print(f"{trained['steps']} steps in {trained['seconds']:.0f} s", flush=True)
        if args.device != "cpu":
            return  # validation and export run on CPU (--export-only)

    encoder.eval()
    decoder.eval()
    # Validation: whole images, padded to a multiple of 2^J by edge replication, rounded latents.
    block = 2 ** args.levels
    psnrs, bpps_raw, counts = [], [], np.zeros((args.latent_dim, 2 ** args.bits), dtype=np.int64)
    with torch.no_grad():
        for img in val:
            h, w = img.shape[:2]
            ph, pw = -h % block, -w % block
            x = torch.from_numpy(np.pad(img, ((0, ph), (0, pw), (0, 0)), mode="edge").transpose(2, 0, 1).copy())[None] - 0.5
            q = torch.round(to_uniform(encoder(wpt2d(x, args.levels))))
            y = iwpt2d(decoder(to_normal(q)), args.levels)[..., :h, :w] + 0.5
            y = (y.clamp(0, 1) * 255).round() / 255
            mse = float(((y - torch.from_numpy(img.transpose(2, 0, 1))[None]) ** 2).mean())
            psnrs.append(10 * math.log10(1 / mse))
        # Prior: histogram of rounded latents over the training images (whole images).
        for img in train_images:
            h, w = img.shape[:2]
            h, w = h - h % block, w - w % block
            x = torch.from_numpy(img[:h, :w].transpose(2, 0, 1).copy())[None] - 0.5
            q = torch.round(to_uniform(encoder(wpt2d(x, args.levels))))[0].long() + 2 ** (args.bits - 1)
            for c in range(args.latent_dim):
                counts[c] += np.bincount(q[c].flatten().numpy(), minlength=2 ** args.bits)[: 2 ** args.bits]
    print(f"validation PSNR {np.mean(psnrs):.2f} dB over {len(val)} McMaster images")

    # Export the encoder (for Rust), the decoder (ONNX) and the prior (terse-cdf-table/1).
    export(out, args, encoder.weight.detach()[:, :, 0, 0], encoder.bias.detach(), to_normal, counts, input_offset=-0.5)
    dummy = torch.zeros(1, args.latent_dim, 4, 4)
    torch.onnx.export(decoder, (dummy,), str(out / "model.onnx"), input_names=["normal_latent"], output_names=["bands"],
                      dynamic_axes={"normal_latent": {0: "batch", 2: "height", 3: "width"}, "bands": {0: "batch", 2: "height", 3: "width"}},
                      opset_version=17, dynamo=False)
    entropy = entropy_bits(counts)
    (out / "training.json").write_text(json.dumps({
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "train_images": len(train_images),
        "train_data": str(args.data) if args.data else "CBSD68 + scikit-image",
        "run": trained,
        "validation_images": val_paths,
        "validation_psnr_db": float(np.mean(psnrs)),
        "validation_psnr_per_image": psnrs,
        "latent_entropy_bits_per_latent_pixel": float(entropy),
        "bpp_estimate": float(entropy / 4 ** args.levels),
        "loss_curve_every_100": [float(np.mean(losses[i:i + 100])) for i in range(0, len(losses), 100)],
        "seconds": trained["seconds"],
        "decoder_parameters": sum(p.numel() for p in decoder.parameters()),
    }, indent=1))
    print(json.loads((out / "training.json").read_text())["bpp_estimate"], "bpp estimate")


if __name__ == "__main__":
    main()
