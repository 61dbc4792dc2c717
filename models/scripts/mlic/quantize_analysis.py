"""Quantizes the MLIC analysis network's inner convolutions to int8 (issue 23: encode speed).

The analysis (g_a, the rate point's gains, h_a) only feeds the encoder: the bitstream holds the
rounded latents, and everything that decodes them is integer arithmetic. So the encoder may run
an approximate analysis; what it costs is rate and distortion, which the mlic_eval bench measures
on Kodak (never trained on, never used here).

Quantized: g_a's second and third convolutions (128 -> 128 channels, 5x5, stride 2), where most
of the analysis' multiply-adds are. Static int8 (QDQ): weights per output channel, activations
with one scale per tensor from calibration photos (MinMax). Kept in fp32:
- g_a's first convolution (3 input channels, at half resolution: its int8 form and the
  conversions around the GDN that follows cost more than they save);
- g_a's last convolution, whose output is y itself: quantizing it puts y on an 8-bit grid that
  the rate point's gains then stretch (on 12 Kodak photos: +6.4 % BD-rate, against +1.2 %
  without it);
- the GDN layers, and h_a (its input is scaled by the rate point's gains, so one set of
  activation scales would not fit every rate point; it is a few percent of the work).

Calibration: the first N PNGs of a folder (default: the 68 CBSD68 photos in ../shared), each
edge-padded to multiples of 64 as the codec pads. The result is deterministic for given inputs.

  python models/scripts/mlic/quantize_analysis.py IN.onnx OUT.onnx [--calibration DIR] [--photos 16]
"""

import argparse
import hashlib
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)
from PIL import Image


def padded_photo(path):
    """A photo as [1, 3, H', W'] in [0, 1], edge-padded to multiples of 64 (as the codec pads)."""
    pixels = np.asarray(Image.open(path).convert("RGB"), np.float32).transpose(2, 0, 1)[None] / 255.0
    h, w = pixels.shape[2:]
    return np.pad(pixels, ((0, 0), (0, 0), (0, -h % 64), (0, -w % 64)), mode="edge")


def inner_analysis_convs(model):
    """g_a's convolutions with stored weights, but for the first (3 input channels) and the last
    (it outputs y)."""
    weights = {i.name: i for i in model.graph.initializer}
    convs = [
        n.name
        for n in model.graph.node
        if n.op_type == "Conv" and n.name.startswith("/g_a/") and n.input[1] in weights
    ]
    return convs[1:-1]


class Photos(CalibrationDataReader):
    def __init__(self, files, gain_shape):
        gain = np.ones(gain_shape, np.float32)
        self.feeds = iter({"image": padded_photo(f), "gain": gain} for f in files)

    def get_next(self):
        return next(self.feeds, None)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument(
        "--calibration",
        type=Path,
        default=Path(__file__).resolve().parents[3] / "../shared/datasets/images/cbsd68",
    )
    parser.add_argument("--photos", type=int, default=16)
    args = parser.parse_args()

    model = onnx.load(args.source)
    nodes = inner_analysis_convs(model)
    if not nodes:
        raise SystemExit("no g_a convolutions to quantize")
    gain_shape = next(
        [d.dim_value for d in i.type.tensor_type.shape.dim] for i in model.graph.input if i.name == "gain"
    )
    files = sorted(args.calibration.glob("*.png"))[: args.photos]
    if len(files) < args.photos:
        raise SystemExit(f"{args.calibration}: {len(files)} PNGs, {args.photos} wanted")
    quantize_static(
        str(args.source),
        str(args.out),
        Photos(files, gain_shape),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        nodes_to_quantize=nodes,
        calibrate_method=CalibrationMethod.MinMax,
    )

    # How far the latents move on one calibration photo (the eval measures what that costs).
    feed = {"image": padded_photo(files[0]), "gain": np.ones(gain_shape, np.float32)}
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    outputs = [
        ort.InferenceSession(str(p), options, providers=["CPUExecutionProvider"]).run(None, feed)
        for p in (args.source, args.out)
    ]
    for name, exact, quantized in zip(("y", "z"), *outputs):
        moved = np.mean(np.round(exact) != np.round(quantized))
        print(f"{name}: rms difference {np.sqrt(np.mean((exact - quantized) ** 2)):.4f}, rounded values moved {moved:.2%}")
    print(f"quantized {', '.join(nodes)} on {len(files)} photos from {args.calibration}")
    print(f"{args.out}: sha256 {hashlib.sha256(args.out.read_bytes()).hexdigest()}")


if __name__ == "__main__":
    main()
