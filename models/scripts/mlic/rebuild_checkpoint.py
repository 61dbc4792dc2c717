"""Rebuilds a `train_mlic_vr.py --init` checkpoint from a shipped variable-rate MLIC model, so a
lent GPU (or a CPU run) continues from the shipped weights instead of starting over: the PyTorch
checkpoints of the GPU runs do not survive their machine, the model repository does.

Where each parameter comes from:
  g_a, h_a              mlic-analysis/N/model.onnx initializers (exact, fp32)
  g_s                   mlic/N/model.onnx initializers (exact, fp32)
  h_s, context, EP nets mlic/N/entropy.bin: the integer weights (Q12) and biases (Q22) divided
                        back (exact where a bias has at most 24 significant bits; re-quantizing
                        gives the shipped integers back, which this script checks)
  gains                 entropy.json "rates": log of every gain and inverse gain
  z_loc, z_log_scale    the training-time Laplace of z, refitted to prior.json's histograms
                        (median and mean absolute deviation per channel): the shipped prior is
                        a fitted table, the Laplace itself is not shipped

Checks (exit status 1 when one fails): ONNX Runtime's analysis and synthesis against the rebuilt
PyTorch modules on a McMaster crop (max |difference|), and the re-quantized integer networks
against entropy.bin (count of differing integers, which must be 0).

  python models/scripts/mlic/rebuild_checkpoint.py --model models/repository/mlic/2 \\
      --analysis models/repository/mlic-analysis/2 --out .data/mlic-init --half

--half stores the shards as fp16 (half the bytes, for the device call's 64 MiB cap; training
loads them back into fp32). The run record (run.json) is carried over from training.json, so
the continued run's record lists every stage before it.
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import numpy_helper
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_mlic import ACT_BITS, WEIGHT_BITS, IntegerModel  # noqa: E402
from train_mlic_vr import VariableRateCodec, save_shards  # noqa: E402


def initializers(path):
    return {i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in onnx.load(str(path)).graph.initializer}


def conv_layers(module):
    return [layer for layer in module if isinstance(layer, torch.nn.Conv2d)]


def load_integer_network(layers, description, blob):
    """Sets the convolutions of `layers` from an entropy.json network description."""
    convs = conv_layers(layers)
    described = [d for d in description if d["op"] == "conv"]
    if len(convs) != len(described):
        raise ValueError(f"{len(described)} convolutions described, the network has {len(convs)}")
    for conv, d in zip(convs, described):
        w = blob[d["weight"] : d["weight"] + conv.weight.numel()].reshape(conv.weight.shape)
        b = blob[d["bias"] : d["bias"] + conv.bias.numel()]
        with torch.no_grad():
            conv.weight.copy_(torch.from_numpy(w / 2.0**WEIGHT_BITS))
            conv.bias.copy_(torch.from_numpy(b / 2.0 ** (WEIGHT_BITS + ACT_BITS)))


def fit_laplace(prior, channels):
    """Per-channel (loc, log scale) of a Laplace matching prior.json's quantized CDFs."""
    locs, log_scales = [], []
    for c in range(channels):
        cdf = np.asarray(prior["quantized_cdf"][c][: prior["cdf_length"][c]], dtype=np.float64)
        pmf = np.diff(cdf)[:-1]  # the last symbol is the escape
        pmf = pmf / pmf.sum()
        values = prior["offset"][c] + np.arange(len(pmf))
        loc = values[np.searchsorted(np.cumsum(pmf), 0.5)]
        mad = max(float((pmf * np.abs(values - loc)).sum()), 0.05)
        locs.append(float(loc))
        log_scales.append(float(np.log(mad)))
    return torch.tensor(locs), torch.tensor(log_scales)


def rebuild(model_dir, analysis_dir):
    entropy = json.loads((model_dir / "entropy.json").read_text())
    blob = np.frombuffer((model_dir / "entropy.bin").read_bytes(), dtype="<i4").astype(np.float64)
    networks = entropy["networks"]
    analysis = initializers(analysis_dir / "model.onnx")
    synthesis = initializers(model_dir / "model.onnx")
    ep = [d for d in networks["ep_anchor"][0] if d["op"] == "conv"]
    codec = VariableRateCodec(
        len(entropy["rates"]), n=analysis["g_a.0.weight"].shape[0], m=entropy["latent_channels"],
        z=entropy["hyper_channels"], slices=entropy["slices"], ep_hidden=(ep[0]["cout"], ep[1]["cout"]),
    )
    if entropy["context"] != codec.context:
        raise ValueError(f"context {entropy['context']} is not {codec.context}")
    state = codec.state_dict()
    for name, tensor in analysis.items():
        state[name].copy_(tensor)
    for name, tensor in synthesis.items():
        state[f"g_s.{name}"].copy_(tensor)
    load_integer_network(codec.h_s, networks["h_s"], blob)
    for kind in ("ep_anchor", "spatial", "ep_other"):
        modules = getattr(codec, kind)
        for s, description in enumerate(networks[kind]):
            module = modules[s] if kind != "spatial" else torch.nn.Sequential(modules[s])
            load_integer_network(module, description, blob)
    with torch.no_grad():
        codec.log_gain.copy_(torch.tensor([r["gain"] for r in entropy["rates"]]).log())
        codec.log_inverse_gain.copy_(torch.tensor([r["inverse_gain"] for r in entropy["rates"]]).log())
        loc, log_scale = fit_laplace(json.loads((model_dir / "prior.json").read_text()), codec.z)
        codec.z_loc.copy_(loc)
        codec.z_log_scale.copy_(log_scale)
    unused = set(state) - {*analysis, *(f"g_s.{n}" for n in synthesis)}
    return codec, entropy, blob, sorted(unused)


def check(codec, entropy, blob, model_dir, analysis_dir, photo):
    """Max |ONNX − PyTorch| of analysis and synthesis, and the integers that differ from entropy.bin."""
    codec.eval()
    x = torch.from_numpy(photo.transpose(2, 0, 1)[None].copy())
    gain = torch.tensor(entropy["rates"][3]["gain"], dtype=torch.float32).view(1, -1, 1, 1)
    with torch.no_grad():
        y = codec.g_a(x) * gain
        z = codec.h_a(y)
        x_hat = codec.g_s(torch.round(y))
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    a = ort.InferenceSession(str(analysis_dir / "model.onnx"), options)
    y_ort, z_ort = a.run(None, {"image": x.numpy(), "gain": gain.numpy()})
    s = ort.InferenceSession(str(model_dir / "model.onnx"), options)
    (x_ort,) = s.run(None, {"y_hat": torch.round(y).numpy()})
    diffs = {
        "analysis_y": float(np.abs(y_ort - y.numpy()).max()),
        "analysis_z": float(np.abs(z_ort - z.numpy()).max()),
        "synthesis": float(np.abs(x_ort - x_hat.numpy()).max()),
    }
    integer = IntegerModel(codec)
    networks = entropy["networks"]
    differing = total = 0

    def compare(layers, description):
        nonlocal differing, total
        convs = [p for kind, p in layers if kind == "conv"]
        described = [d for d in description if d["op"] == "conv"]
        for (w, b), d in zip(convs, described):
            for values, offset in ((w, d["weight"]), (b, d["bias"])):
                shipped = blob[offset : offset + values.size]
                differing += int((shipped != values.ravel()).sum())
                total += values.size

    compare(integer.h_s, networks["h_s"])
    for s in range(codec.slices):
        compare(integer.ep_anchor[s], networks["ep_anchor"][s])
        compare([("conv", integer.spatial[s])], networks["spatial"][s])
        compare(integer.ep_other[s], networks["ep_other"][s])
    return diffs, differing, total


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True, help="the shipped mlic/N folder")
    parser.add_argument("--analysis", type=Path, required=True, help="the shipped mlic-analysis/N folder")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--half", action="store_true", help="store the shards as fp16")
    parser.add_argument("--tolerance", type=float, default=1e-3, help="max |ONNX − PyTorch| allowed")
    args = parser.parse_args()
    torch.set_num_threads(2)
    codec, entropy, blob, unused = rebuild(args.model, args.analysis)
    shared = Path(__file__).resolve().parents[3] / ".." / "shared" / "datasets" / "images" / "mcmaster"
    photo = np.asarray(Image.open(sorted(shared.glob("*.tif"))[0]).convert("RGB"), dtype=np.float32) / 255.0
    diffs, differing, total = check(codec, entropy, blob, args.model, args.analysis, photo[:256, :256])
    print(f"parameters not from the ONNX graphs (from entropy.bin, entropy.json, prior.json): {len(unused)}")
    print("max |ONNX Runtime - PyTorch| on a 256x256 McMaster crop: "
          + ", ".join(f"{k} {v:.2e}" for k, v in diffs.items()))
    print(f"integer entropy networks re-quantized: {differing} of {total} integers differ from entropy.bin")
    ok = differing == 0 and max(diffs.values()) <= args.tolerance
    args.out.mkdir(parents=True, exist_ok=True)
    state = codec.state_dict()
    if args.half:
        state = {k: v.half() for k, v in state.items()}
    save_shards(state, args.out, "model")
    training = json.loads((args.model / "training.json").read_text())
    run = {k: v for k, v in training.items() if k not in ("data", "validation_mcmaster", "validation_images")}
    run["rebuilt_from"] = {"model": str(args.model), "analysis": str(args.analysis), "half": args.half,
                           "checks": {**diffs, "integers_differing": differing}}
    (args.out / "run.json").write_text(json.dumps(run, indent=1))
    size = sum(p.stat().st_size for p in args.out.glob("model-*.pt"))
    print(f"wrote {args.out} ({size / 2**20:.1f} MiB of shards); checks {'passed' if ok else 'FAILED'}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
