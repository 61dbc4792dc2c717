"""Fits the starting counts of the WaLLoC context models (terse-walloc `context.rs`) on the
training photos (image models) or training tracks (audio models), and writes
<model_dir>/context.json.

The predictor and contexts here mirror context.rs exactly (integer arithmetic). Images
(Layout::Plane): prediction
floor((2*(left + up) + up_right - up_left) / 4); context = activity bucket (bit length of
|l-ul| + |u-ul| + |u-ur|, capped at 9) * 4 + bit length of the left residual (capped at 3);
residual coded as class (bit length of |r|), sign, and the bit below the leading one. Audio
(Layout::Sequence): prediction 0, activity |x[-1]| + |x[-2]|, the same residual coding.

  python models/scripts/walloc/fit_context_prior.py models/repository/walloc-rgb-16x/1
"""

import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
import train_walloc as tw  # noqa: E402

ACTIVITY, LEFT, CLASSES = 10, 4, 18
STRENGTH = 2048  # total count of each context's prior: learned, yet still adapting


def bit_length(x):
    x = np.abs(x).astype(np.int64)
    out = np.zeros_like(x)
    while (x > 0).any():
        out += x > 0
        x >>= 1
    return out


def latents(encoder, image):
    w = torch.tensor(encoder["weight"])
    b = torch.tensor(encoder["bias"])
    to_uniform = tw.ToUniform(encoder["bits"], encoder["scale"])
    block = 2 ** encoder["levels"]
    h, wd = image.shape[:2]
    h, wd = h - h % block, wd - wd % block
    x = torch.from_numpy(image[:h, :wd].transpose(2, 0, 1).copy())[None] + encoder["input_offset"]
    with torch.no_grad():
        z = torch.einsum("lb,nbhw->nlhw", w, tw.wpt2d(x, encoder["levels"])) + b[None, :, None, None]
        return torch.round(to_uniform(z))[0].numpy().astype(np.int64)


def audio_latents(encoder, seconds=30):
    """Latents [L, 1, t] of the first `seconds` of every training track (audio models)."""
    import train_walloc_audio as ta

    w = torch.tensor(encoder["weight"])
    b = torch.tensor(encoder["bias"])
    to_uniform = tw.ToUniform(encoder["bits"], encoder["scale"])
    block = 2 ** encoder["levels"]
    out = []
    for track in ta.load_tracks(ta.split()[0]):
        n = min(track.shape[1], seconds * ta.SAMPLE_RATE)
        n -= n % block
        x = torch.from_numpy(track[:, :n].copy())[None] + encoder["input_offset"]
        with torch.no_grad():
            z = torch.einsum("lb,nbt->nlt", w, ta.wpt1d(x, encoder["levels"])) + b[None, :, None]
            out.append(torch.round(to_uniform(z))[0].numpy().astype(np.int64)[:, None, :])
    return out


def plane_stats(plane, class_counts, sign_counts, top_counts, sequence=False):
    h, w = plane.shape
    left_residual = 0
    for y in range(h):
        for x in range(w):
            if sequence:  # Layout::Sequence: coded directly, activity from |x[-1]| + |x[-2]|
                prediction = 0
                activity = (abs(plane[y, x - 1]) if x > 0 else 0) + (abs(plane[y, x - 2]) if x > 1 else 0)
            else:  # Layout::Plane
                left = plane[y, x - 1] if x > 0 else (plane[y - 1, x] if y > 0 else 0)
                up = plane[y - 1, x] if y > 0 else left
                up_left = plane[y - 1, x - 1] if (x > 0 and y > 0) else up
                up_right = plane[y - 1, x + 1] if (y > 0 and x + 1 < w) else up
                prediction = (2 * (left + up) + up_right - up_left) // 4
                activity = abs(left - up_left) + abs(up - up_left) + abs(up - up_right)
            residual = int(plane[y, x] - prediction)
            a = min(int(activity).bit_length(), ACTIVITY - 1)
            lc = min(abs(left_residual).bit_length(), LEFT - 1)
            magnitude = abs(residual)
            cls = magnitude.bit_length()
            class_counts[a * LEFT + lc, cls] += 1
            if cls > 0:
                sign_counts[cls, int(residual < 0)] += 1
            if cls >= 2:
                top_counts[cls, (magnitude >> (cls - 2)) & 1] += 1
            left_residual = residual if x + 1 < w else 0


def scaled(counts):
    out = []
    for row in counts:
        total = row.sum()
        if total == 0:
            out.append([1] * len(row))
        else:
            out.append([max(1, int(round(c * STRENGTH / total))) for c in row])
    return out


def main():
    model_dir = Path(sys.argv[1])
    encoder = json.loads((model_dir / "encoder.json").read_text())
    sequence = encoder.get("signal") == "audio"
    if sequence:
        samples = audio_latents(encoder)
    else:
        samples = [latents(encoder, image) for image in tw.training_images()[0]]
    channels = encoder["latent_dim"]
    class_counts = np.zeros((channels, ACTIVITY * LEFT, CLASSES), dtype=np.int64)
    sign_counts = np.zeros((channels, CLASSES, 2), dtype=np.int64)
    top_counts = np.zeros((channels, CLASSES, 2), dtype=np.int64)
    for q in samples:
        for c in range(channels):
            plane_stats(np.array(q[c]), class_counts[c], sign_counts[c], top_counts[c], sequence)
    prior = {
        "format": "terse-walloc-context/1",
        "activity": ACTIVITY,
        "left": LEFT,
        "classes": CLASSES,
        "class_counts": scaled(class_counts.reshape(-1, CLASSES)),
        "sign_counts": scaled(sign_counts.reshape(-1, 2)),
        "top_counts": scaled(top_counts.reshape(-1, 2)),
    }
    (model_dir / "context.json").write_text(json.dumps(prior))
    print(f"wrote {model_dir / 'context.json'} from {len(samples)} images or clips")


if __name__ == "__main__":
    main()
