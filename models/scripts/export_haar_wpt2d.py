#!/usr/bin/env python3
"""Exports the one-level 2D Haar wavelet packet transform pair as ONNX models.

    haar-wpt2d-analysis  : image  float32 [N, 3, H, W]       -> coefficients float32 [N, 12, H/2, W/2]
    haar-wpt2d-synthesis : coefficients [N, 12, H/2, W/2]    -> image [N, 3, H, W]

Channel 4c+k of the coefficients is subband k of input channel c, with k = 0 LL (average),
1 horizontal detail (differences along the width), 2 vertical detail (along the height),
3 diagonal detail. The filters are orthonormal (scaled by 1/2 in 2D), so synthesis is the
transposed convolution with the same weights and analysis -> synthesis is the identity.
H and W must be even (the manifests say so with `multiple_of`, checked by the runtime).

The weights are fixed, not learned: the graph is fully determined by this script, so running it
again reproduces the files byte for byte. Usage (from the repository root):

    python3 -m venv .venv-export && .venv-export/bin/pip install -r models/scripts/requirements-export.txt
    .venv-export/bin/python models/scripts/export_haar_wpt2d.py
    # then refresh the sha256 lines of the two manifests: `sha256sum models/repository/haar-wpt2d-*/1/model.onnx`
"""

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

CHANNELS = 3
OPSET = 17
IR_VERSION = 8
REPOSITORY = Path(__file__).resolve().parents[1] / "repository"


def haar_filters(channels: int) -> np.ndarray:
    """Weights of shape [4 * channels, 1, 2, 2]: LL, H, V, D per input channel."""
    ll = [[1, 1], [1, 1]]
    horizontal = [[1, -1], [1, -1]]
    vertical = [[1, 1], [-1, -1]]
    diagonal = [[1, -1], [-1, 1]]
    bank = 0.5 * np.array([ll, horizontal, vertical, diagonal], dtype=np.float32)
    return np.concatenate([bank[:, None]] * channels, axis=0)


def build(name: str, op: str, x_name: str, y_name: str, x_channels: int, y_channels: int, scale: str) -> onnx.ModelProto:
    weights = numpy_helper.from_array(haar_filters(CHANNELS), name="haar_filters")
    node = helper.make_node(
        op,
        inputs=[x_name, "haar_filters"],
        outputs=[y_name],
        kernel_shape=[2, 2],
        strides=[2, 2],
        group=CHANNELS,
    )
    h_in, w_in = ("H", "W") if scale == "down" else ("H2", "W2")
    h_out, w_out = ("H2", "W2") if scale == "down" else ("H", "W")
    graph = helper.make_graph(
        [node],
        name,
        inputs=[helper.make_tensor_value_info(x_name, TensorProto.FLOAT, ["N", x_channels, h_in, w_in])],
        outputs=[helper.make_tensor_value_info(y_name, TensorProto.FLOAT, ["N", y_channels, h_out, w_out])],
        initializer=[weights],
    )
    model = helper.make_model(
        graph,
        producer_name="terse/models/scripts/export_haar_wpt2d.py",
        opset_imports=[helper.make_opsetid("", OPSET)],
    )
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model, full_check=True)
    return model


def main() -> None:
    models = {
        "haar-wpt2d-analysis": build("haar_wpt2d_analysis", "Conv", "image", "coefficients", CHANNELS, 4 * CHANNELS, "down"),
        "haar-wpt2d-synthesis": build("haar_wpt2d_synthesis", "ConvTranspose", "coefficients", "image", 4 * CHANNELS, CHANNELS, "up"),
    }
    for name, model in models.items():
        path = REPOSITORY / name / "1" / "model.onnx"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(model.SerializeToString(deterministic=True))
        print(f"wrote {path.relative_to(REPOSITORY.parent.parent)} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
