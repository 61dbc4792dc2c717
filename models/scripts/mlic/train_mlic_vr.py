"""Trains terse's variable-rate MLIC-style codec (one model, several rate points) on a packed photo
set, on a GPU when one is lent (bf16 autocast for the transforms, TF32 elsewhere) or on CPU.

The network is train_mlic.py's (hyperprior + channel context over slices + checkerboard spatial
context, integer entropy path at export) at a larger size, plus gain units (Cui et al., "Asymmetric
Gained Deep Image Compression"): rate point r scales the latents channel-wise, y' = g_a(x) * G[r],
before h_a and quantization, and the decoder multiplies y_hat' by the inverse gains IG[r] before
g_s. Every batch sample draws its own rate point and is weighted by that point's lambda, so one
set of transforms and one integer entropy model serve every rate. The entropy path (h_s, context,
entropy parameters) sees only y', so it stays exact in integers; the gains are float and touch only
the encoder's analysis and the decoder's synthesis input.

Training (time-boxed; checkpoints every --checkpoint-seconds, in shards under 14 MB each so they
come back from the device tool):
  python models/scripts/mlic/train_mlic_vr.py --data PACK.zip --device cuda --minutes 8 --out DIR

Export on CPU (ONNX graphs, integer networks, z prior, per-rate validation on McMaster):
  python models/scripts/mlic/train_mlic_vr.py --data PACK.zip --export-only --out DIR

Outputs of the export in --out:
  analysis.onnx     (image [1,3,H,W], gain [1,M,1,1]) -> y' [1,M,H/16,W/16], z [1,Z,H/64,W/64]
  synthesis.onnx    g_s: y_hat [1,M,h,w] (after the inverse gain) -> image
  entropy.json/bin  the integer networks (terse-mlic-entropy/1) plus "rates": lambda, gain and
                    inverse gain of every rate point
  prior.json        the factorized prior of z, fitted over all rate points
  training.json     settings, steps, loss curve, per-rate validation (integer entropy path)
"""

import argparse
import io
import json
import math
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
import train_mlic  # noqa: E402
from train_mlic import (  # noqa: E402
    Codec, anchor_mask, evaluate, export_onnx, gaussian_likelihood, pad64, ste_round,
    write_integer_networks, write_z_prior,
)

LAMBDAS = [0.0018, 0.0035, 0.0067, 0.013, 0.025, 0.0483]
SHARD_BYTES = 14 * 2**20


class VariableRateCodec(Codec):
    """Codec plus per-rate gain and inverse-gain vectors (kept positive through exp)."""

    def __init__(self, rates, **kwargs):
        super().__init__(**kwargs)
        init = torch.linspace(-0.7, 0.7, rates)[:, None].repeat(1, self.m)
        self.log_gain = nn.Parameter(init.clone())
        self.log_inverse_gain = nn.Parameter(-init.clone())

    def gains(self, r):
        return self.log_gain[r].exp(), self.log_inverse_gain[r].exp()

    def forward_rates(self, x, r, autocast):
        """x [B,3,H,W], r [B] rate indexes -> (x_hat, bits per sample [B])."""
        gain, inverse_gain = self.gains(r)
        with autocast():
            y = self.g_a(x)
        y = y.float() * gain[:, :, None, None]
        with autocast():
            z = self.h_a(y)
        z = z.float()
        z_hat = z + torch.rand_like(z) - 0.5
        hyper = self.h_s(z_hat)
        mask = anchor_mask(y.shape[2], y.shape[3]).to(y)
        bits = -torch.log2(self.z_likelihood(z_hat)).sum((1, 2, 3))
        earlier = []
        for s in range(self.slices):
            y_s = y[:, s * self.cs : (s + 1) * self.cs]
            mu, sigma = self.slice_params(s, hyper, earlier, None)
            anchor_hat = (ste_round(y_s - mu) + mu) * mask
            mu_n, sigma_n = self.slice_params(s, hyper, earlier, anchor_hat)
            mu = mu * mask + mu_n * (1 - mask)
            sigma = sigma * mask + sigma_n * (1 - mask)
            residual = y_s - mu
            noisy = residual + torch.rand_like(residual) - 0.5
            bits = bits - torch.log2(gaussian_likelihood(noisy, sigma)).sum((1, 2, 3))
            earlier.append(ste_round(residual) + mu)
        y_hat = torch.cat(earlier, 1) * inverse_gain[:, :, None, None]
        with autocast():
            x_hat = self.g_s(y_hat)
        return x_hat.float(), bits


def fp32_gdn(codec):
    """Runs every GDN in float32 under autocast (its sqrt of a sum of squares loses too much in bf16)."""
    from train_mlic import GDN

    def forward(self, x):
        with torch.autocast(x.device.type, enabled=False):
            x = x.float()
            norm = torch.sqrt(F.conv2d(x * x, self.gamma.abs(), self.beta.abs() + 1e-6))
            return x * norm if self.inverse else x / norm

    for module in codec.modules():
        if isinstance(module, GDN):
            module.forward = forward.__get__(module)


def load_pack(path):
    """The packed photos as uint8 arrays [H, W, 3], with the pack's index."""
    with zipfile.ZipFile(path) as pack:
        index = json.loads(pack.read("index.json"))
        images = [np.asarray(Image.open(io.BytesIO(pack.read(e["file"]))).convert("RGB")) for e in index["images"]]
    return images, index


class Batches:
    """Random crops with horizontal flips, cut on the training device from images held there."""

    def __init__(self, images, crop, device, seed):
        self.images = [torch.from_numpy(img.copy()).to(device).permute(2, 0, 1) for img in images
                       if min(img.shape[:2]) >= crop]
        self.crop = crop
        self.rng = np.random.default_rng(seed)

    def next(self, size):
        crops = []
        for _ in range(size):
            img = self.images[self.rng.integers(len(self.images))]
            y = self.rng.integers(img.shape[1] - self.crop + 1)
            x = self.rng.integers(img.shape[2] - self.crop + 1)
            patch = img[:, y : y + self.crop, x : x + self.crop]
            crops.append(patch.flip(2) if self.rng.random() < 0.5 else patch)
        return torch.stack(crops).float() / 255.0


def save_shards(state, out, prefix):
    """Writes a state dict as <prefix>-K.pt files of at most SHARD_BYTES each (atomically)."""
    shards, current, size = [], {}, 0
    for key, tensor in state.items():
        nbytes = tensor.numel() * tensor.element_size()
        if current and size + nbytes > SHARD_BYTES:
            shards.append(current)
            current, size = {}, 0
        current[key] = tensor.detach().cpu()
        size += nbytes
    shards.append(current)
    for k, shard in enumerate(shards):
        tmp = out / f"{prefix}-{k}.pt.tmp"
        torch.save(shard, tmp)
        tmp.replace(out / f"{prefix}-{k}.pt")
    for stale in out.glob(f"{prefix}-*.pt"):
        if int(stale.stem.split("-")[-1]) >= len(shards):
            stale.unlink()


def load_shards(out, prefix):
    state = {}
    for path in sorted(out.glob(f"{prefix}-*.pt")):
        state.update(torch.load(path, map_location="cpu"))
    return state


def build(args):
    return VariableRateCodec(len(args.lambdas), n=args.n, m=args.m, z=args.z, slices=args.slices,
                             ep_hidden=tuple(args.ep_hidden))


def train(args, codec, batches, device):
    codec.to(device).train()
    fp32_gdn(codec)
    lambdas = torch.tensor(args.lambdas, device=device)
    opt = torch.optim.Adam(codec.parameters(), lr=args.lr)
    bf16 = device.type == "cuda"

    def autocast():
        return torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)

    log = open(args.out / "train.log", "a")
    budget = args.minutes * 60
    start = last_save = time.time()
    losses, step, skipped = [], 0, 0
    while True:
        elapsed = time.time() - start
        if elapsed >= budget:
            break
        t = elapsed / budget
        warm = min(1.0, (step + 1) / 200)
        lr = args.lr * warm * max(0.02, 0.5 * (1 + math.cos(math.pi * t)))
        for group in opt.param_groups:
            group["lr"] = lr
        x = batches.next(args.batch)
        r = torch.randint(len(args.lambdas), (args.batch,), device=device)
        x_hat, bits = codec.forward_rates(x, r, autocast)
        mse = ((x_hat - x) ** 2).mean((1, 2, 3))
        pixels = x.shape[2] * x.shape[3]
        loss = (lambdas[r] * 255**2 * mse).mean() + bits.sum() / (args.batch * pixels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(codec.parameters(), 1.0)
        if not (torch.isfinite(loss) and torch.isfinite(norm)):
            skipped += 1  # a non-finite batch is dropped, not applied
            if skipped > 100:
                print("training diverged: stopping", flush=True)
                break
            continue
        opt.step()
        step += 1
        if step % 50 == 0:
            losses.append([step, round(elapsed, 1), float(loss), float(bits.sum() / (args.batch * pixels)),
                           10 * math.log10(1 / max(float(mse.mean()), 1e-10))])
        if step % 200 == 0:
            line = f"step {step} {elapsed:.0f}s lr {lr:.2e} loss {losses[-1][2]:.4f} bpp {losses[-1][3]:.3f} psnr {losses[-1][4]:.2f}"
            print(line, flush=True)
            log.write(line + "\n")
            log.flush()
        if time.time() - last_save > args.checkpoint_seconds:
            save_shards(codec.state_dict(), args.out, "model")
            last_save = time.time()
    save_shards(codec.state_dict(), args.out, "model")
    seconds = time.time() - start
    # A continued run (--init) keeps the record of the runs it continues.
    previous = json.loads((args.out / "run.json").read_text()) if args.init and (args.out / "run.json").exists() else None
    stages = [] if previous is None else previous.pop("previous_stages", []) + [previous]
    (args.out / "run.json").write_text(json.dumps({
        "previous_stages": stages,
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
        "steps": step, "skipped_batches": skipped, "seconds": seconds, "steps_per_second": step / seconds, "loss_every_50": losses,
    }, indent=1))
    print(f"{step} steps in {seconds:.0f} s ({step / seconds:.2f} steps/s)", flush=True)


class AnalysisWithGain(nn.Module):
    """g_a, the gain, then h_a in one graph: (image, gain) -> (y', z)."""

    def __init__(self, codec):
        super().__init__()
        self.g_a, self.h_a = codec.g_a, codec.h_a

    def forward(self, x, gain):
        y = self.g_a(x) * gain
        return y, self.h_a(y)


def export(args, codec, images, index):
    codec.eval()
    out = args.out
    x = torch.rand(1, 3, 128, 128)
    gain, _ = codec.gains(torch.tensor([0]))
    gain = gain.view(1, -1, 1, 1).detach()
    with torch.no_grad():
        y = codec.g_a(x)
    torch.onnx.export(
        AnalysisWithGain(codec), (x, gain), str(out / "analysis.onnx"), input_names=["image", "gain"],
        output_names=["y", "z"], dynamic_axes={n: {2: "h", 3: "w"} for n in ["image", "y", "z"]},
        opset_version=17, dynamo=False,
    )
    export_onnx(codec.g_s, y, out / "synthesis.onnx", "y_hat", ["image"])
    rates = []
    for r, lmbda in enumerate(args.lambdas):
        g, ig = codec.gains(torch.tensor([r]))
        rates.append({"lambda": lmbda, "gain": g[0].tolist(), "inverse_gain": ig[0].tolist()})
    write_integer_networks(codec, out, {"rates": rates})

    # z prior over every rate point, from full training photos (a sample keeps this quick).
    sample = images[:: max(1, len(images) // 200)]

    def z_hats():
        with torch.no_grad():
            for img in sample:
                xx, _ = pad64(torch.from_numpy(img.transpose(2, 0, 1)[None].astype(np.float32) / 255.0))
                y0 = codec.g_a(xx)
                for r in range(len(args.lambdas)):
                    g, _ = codec.gains(torch.tensor([r]))
                    yield torch.round(codec.h_a(y0 * g.view(1, -1, 1, 1)))[0].numpy().astype(np.int64)

    write_z_prior(z_hats(), codec.z, out)

    shared = Path(__file__).resolve().parents[3] / ".." / "shared" / "datasets" / "images" / "mcmaster"
    val_paths = sorted(shared.glob("*.tif"))
    val = [np.asarray(Image.open(p).convert("RGB"), dtype=np.float32) / 255.0 for p in val_paths]
    validation = []
    for r, lmbda in enumerate(args.lambdas):
        g, ig = codec.gains(torch.tensor([r]))
        with torch.no_grad():
            bpp, psnr = evaluate(codec, val, g[0], ig[0])
        validation.append({"rate": r, "lambda": lmbda, "bpp_estimate": bpp, "psnr": psnr})
        print(f"rate {r} (lambda {lmbda}): McMaster {bpp:.3f} bpp, {psnr:.2f} dB", flush=True)
    run = json.loads((out / "run.json").read_text()) if (out / "run.json").exists() else {}
    (out / "training.json").write_text(json.dumps({
        **run,
        "data": {"pack": str(args.data), "images": len(images), "sources": sorted({(e["repo"], e["commit"], e["licence"]) for e in index["images"]}),
                 "excluded_evaluation_sets": index.get("evaluation_sets_excluded")},
        "validation_mcmaster": validation,
        "validation_images": [p.name for p in val_paths],
    }, indent=1))


def write_fixture(codec, image, rate, path):
    """train_mlic.py's parity fixture at one rate point (the gained latents y')."""
    gain, _ = codec.gains(torch.tensor([rate]))
    with torch.no_grad():
        train_mlic.write_fixture(codec, image, path, gain[0], {"rate": rate})


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="pack from models/scripts/image_data/build_pack.py")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--minutes", type=float, default=8.0, help="training time budget")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--crop", type=int, default=256)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--lambdas", type=float, nargs="+", default=LAMBDAS)
    parser.add_argument("--n", type=int, default=128)
    parser.add_argument("--m", type=int, default=192)
    parser.add_argument("--z", type=int, default=64)
    parser.add_argument("--slices", type=int, default=6)
    parser.add_argument("--ep-hidden", type=int, nargs=2, default=[128, 96])
    parser.add_argument("--checkpoint-seconds", type=float, default=90)
    parser.add_argument("--init", action="store_true", help="start from the model shards in --out")
    parser.add_argument("--export-only", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fixture", type=Path, help="with --export-only: write the parity fixture here")
    parser.add_argument("--fixture-rate", type=int, default=3)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    torch.backends.cudnn.benchmark = True

    images, index = load_pack(args.data)
    print(f"{len(images)} training photos", flush=True)
    codec = build(args)
    if args.init or args.export_only:
        codec.load_state_dict(load_shards(args.out, "model"))
    if args.export_only and args.fixture:
        codec.eval()
        shared = Path(__file__).resolve().parents[3] / ".." / "shared" / "datasets" / "images" / "mcmaster"
        photo = np.asarray(Image.open(sorted(shared.glob("*.tif"))[0]).convert("RGB"), dtype=np.float32) / 255.0
        write_fixture(codec, photo[:128, :192], args.fixture_rate, args.fixture)
        return
    if args.export_only:
        export(args, codec, images, index)
        return
    device = torch.device(args.device)
    train(args, codec, Batches(images, args.crop, device, args.seed), device)


if __name__ == "__main__":
    main()
