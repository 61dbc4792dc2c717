"""Trains a stereo WaLLoC audio codec (1-D wavelet packet + linear encoder + bounded scalar
latents + 1-D convolutional decoder) on CPU, and exports what terse serves — the same files as
train_walloc.py (encoder.json, model.onnx, prior.json, training.json), with `signal: audio`.

Data: Debian `singularity-music` (16 stereo OGG tracks at 48 kHz, CC BY-SA). "Through Space"
and "Awakening" are the validation split and are never trained on.

  python models/scripts/walloc/train_walloc_audio.py --latent-dim 27 --levels 8 --steps 3000 --out /tmp/walloc-stereo-19x
"""

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import soundfile
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))
import train_walloc as tw  # noqa: E402

torch.manual_seed(0)
np.random.seed(0)

MUSIC = Path("/usr/share/games/singularity/music")
VALIDATION = ("Through Space.ogg", "Awakening.ogg")
SAMPLE_RATE = 48000


def wpt1d(x, levels):
    """[B, C, T] -> [B, C*2^J, T/2^J]; band b of a level becomes 2b (low) and 2b + 1 (high)."""
    for _ in range(levels):
        lo, hi = tw._analysis_1d(x, 2)
        b, c, t = lo.shape
        x = torch.stack([lo, hi], dim=2).reshape(b, c * 2, t)
    return x


def iwpt1d(x, levels):
    for _ in range(levels):
        b, c2, t = x.shape
        parts = x.reshape(b, c2 // 2, 2, t)
        x = tw._synthesis_1d(parts[:, :, 0], parts[:, :, 1], 2)
    return x


def check_against_pywt():
    import pywt

    sig = np.random.default_rng(3).normal(size=(64,))
    wp = pywt.WaveletPacket(sig, "bior4.4", mode="periodization", maxlevel=3)
    expected = np.stack([n.data for n in wp.get_level(3, order="natural")])
    got = wpt1d(torch.tensor(sig, dtype=torch.float32)[None, None], 3)[0].numpy()
    assert np.abs(got - expected).max() < 1e-4, np.abs(got - expected).max()
    back = iwpt1d(torch.tensor(got)[None], 3)[0, 0].numpy()
    assert np.abs(back - sig).max() < 1e-4


class Block(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.conv1 = nn.Conv1d(width, width, 3, padding=1)
        self.conv2 = nn.Conv1d(width, width, 3, padding=1)

    def forward(self, x):
        return x + self.conv2(F.gelu(self.conv1(F.gelu(x))))


class Decoder(nn.Module):
    """Normal-domain latents [N, L, t] -> wavelet bands [N, 2*2^J, t]."""

    def __init__(self, latent_dim, bands, width, blocks):
        super().__init__()
        self.inp = nn.Conv1d(latent_dim, width, 1)
        self.blocks = nn.Sequential(*[Block(width) for _ in range(blocks)])
        self.out = nn.Conv1d(width, bands, 1)

    def forward(self, normal_latent):
        return self.out(self.blocks(self.inp(normal_latent)))


def load_tracks(names):
    tracks = []
    for name in names:
        data, rate = soundfile.read(str(MUSIC / name), dtype="float32", always_2d=True)
        assert rate == SAMPLE_RATE and data.shape[1] == 2, (name, rate, data.shape)
        tracks.append(np.ascontiguousarray(data.T))
    return tracks


def split():
    every = sorted(str(p.relative_to(MUSIC)) for p in MUSIC.rglob("*.ogg"))
    train = [n for n in every if Path(n).name not in VALIDATION]
    return train, list(VALIDATION)


def batch(tracks, size, crop, rng):
    out = np.empty((size, 2, crop), dtype=np.float32)
    lengths = np.array([t.shape[1] for t in tracks], dtype=np.float64)
    for i in range(size):
        track = tracks[rng.choice(len(tracks), p=lengths / lengths.sum())]
        start = rng.integers(track.shape[1] - crop + 1)
        out[i] = track[:, start : start + crop]
        if rng.random() < 0.5:
            out[i] = out[i, ::-1]  # swap left and right
    return torch.from_numpy(out)


def codec_latents(encoder, to_uniform, x, levels):
    return torch.round(to_uniform(encoder(wpt1d(x, levels))))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--latent-dim", type=int, default=27)
    parser.add_argument("--levels", type=int, default=8)
    parser.add_argument("--bits", type=int, default=8)
    parser.add_argument("--scale", type=float, default=2.0)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--blocks", type=int, default=4)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--crop", type=int, default=32768)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--validation-seconds", type=float, default=60.0)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    check_against_pywt()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    train_names, val_names = split()
    train = load_tracks(train_names)
    val = [t[:, : int(args.validation_seconds * SAMPLE_RATE)] for t in load_tracks(val_names)]
    bands = 2 * 2 ** args.levels
    encoder = nn.Conv1d(bands, args.latent_dim, 1)
    to_uniform = tw.ToUniform(args.bits, args.scale)
    decoder = Decoder(args.latent_dim, bands, args.width, args.blocks)
    to_normal = tw.ToNormal(args.bits, args.scale)
    rng = np.random.default_rng(0)
    losses, start = tw.train(encoder, decoder, to_uniform, to_normal, lambda: batch(train, args.batch, args.crop, rng), wpt1d, iwpt1d, args)

    encoder.eval()
    decoder.eval()
    block = 2 ** args.levels
    results, counts = [], np.zeros((args.latent_dim, 2 ** args.bits), dtype=np.int64)
    with torch.no_grad():
        for name, track in zip(val_names, val):
            n = track.shape[1]
            x = torch.from_numpy(np.pad(track, ((0, 0), (0, -n % block)), mode="edge"))[None]
            y = iwpt1d(decoder(to_normal(codec_latents(encoder, to_uniform, x, args.levels))), args.levels)
            y = (y[0, :, :n].clamp(-1, 32767 / 32768) * 32768).round() / 32768
            ref = torch.from_numpy(track)
            mse = float(((y - ref) ** 2).mean())
            snr = 10 * math.log10(float((ref ** 2).mean()) / mse)
            results.append({"track": name, "seconds": n / SAMPLE_RATE, "psnr_db": 10 * math.log10(1 / mse), "snr_db": snr})
        for track in train:
            n = track.shape[1] - track.shape[1] % block
            for s in range(0, n, 2 ** 20):
                x = torch.from_numpy(track[:, s : min(n, s + 2 ** 20)].copy())[None]
                q = codec_latents(encoder, to_uniform, x, args.levels)[0].long() + 2 ** (args.bits - 1)
                for c in range(args.latent_dim):
                    counts[c] += np.bincount(q[c].numpy(), minlength=2 ** args.bits)[: 2 ** args.bits]
    for r in results:
        print(f"validation {r['track']}: PSNR {r['psnr_db']:.2f} dB, SNR {r['snr_db']:.2f} dB")

    tw.export(out, args, encoder.weight.detach()[:, :, 0], encoder.bias.detach(), to_normal, counts, input_offset=0.0, extra={"signal": "audio", "channels": 2, "sample_rate": SAMPLE_RATE})
    dummy = torch.zeros(1, args.latent_dim, 16)
    torch.onnx.export(decoder, (dummy,), str(out / "model.onnx"), input_names=["normal_latent"], output_names=["bands"],
                      dynamic_axes={"normal_latent": {0: "batch", 2: "time"}, "bands": {0: "batch", 2: "time"}},
                      opset_version=17, dynamo=False)
    entropy_bits = tw.entropy_bits(counts)
    latent_rate = SAMPLE_RATE / block
    (out / "training.json").write_text(json.dumps({
        "args": vars(args),
        "train_tracks": train_names,
        "validation_tracks": val_names,
        "validation": results,
        "validation_psnr_db": float(np.mean([r["psnr_db"] for r in results])),
        "validation_snr_db": float(np.mean([r["snr_db"] for r in results])),
        "latent_entropy_bits_per_step": float(entropy_bits),
        "kbps_estimate": float(entropy_bits * latent_rate / 1000),
        "loss_curve_every_100": [float(np.mean(losses[i:i + 100])) for i in range(0, len(losses), 100)],
        "seconds": time.time() - start,
        "decoder_parameters": sum(p.numel() for p in decoder.parameters()),
    }, indent=1))
    print(json.loads((out / "training.json").read_text())["kbps_estimate"], "kbps estimate")


if __name__ == "__main__":
    main()
