"""Re-quantizes a keep/drop classifier with static int8 activations, so its logits no longer
depend on padding or batch-mates (issue 20).

A dynamically quantized graph (`quantize_dynamic`, what train_keep_model.py shipped until now)
picks each activation's int8 scale from the tensor at run time: padding a row, or batching it
with other rows, changes the scale and so the logits. A static graph fixes every scale once, from
calibration text, so a token's logits are a function of its own row only: the integer matrix
products are exact, the fp32 ops (layer norm, masked softmax) are per row.

Input: a dynamic-int8 graph (its MatMulInteger products are turned back into fp32 MatMul over the
dequantized weights first; the int8 embedding tables stay as they are) or an fp32 graph.
Calibration: paragraphs of the gensim 4.4.0 test corpora (Wikipedia extract and Lee news, never
SQuAD, which the eval asks about), tokenized with the model's tokenizer.json.

  python models/scripts/lingua/quantize_static.py IN.onnx TOKENIZER.json OUT.onnx [--paragraphs 256]
"""

import argparse
import re
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper


def dequantize_matmul_integer(model):
    """Rewrites DynamicQuantizeLinear -> MatMulInteger -> Cast -> Mul(scales) chains as fp32
    MatMul over dequantized weights; returns the rewritten model."""
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    producer = {o: n for n in graph.node for o in n.output}
    consumers = {}
    for n in graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    drop, replace = set(), {}
    for node in graph.node:
        if node.op_type != "MatMulInteger":
            continue
        quantize = producer[node.input[0]]
        assert quantize.op_type == "DynamicQuantizeLinear", quantize.op_type
        weight_q = numpy_helper.to_array(inits[node.input[1]]).astype(np.float32)
        zero = numpy_helper.to_array(inits[node.input[3]]).astype(np.float32)
        scale = numpy_helper.to_array(inits[node.input[1].replace("_quantized", "_scale")])
        name = node.input[1].replace("_quantized", "_dequantized")
        graph.initializer.append(numpy_helper.from_array((weight_q - zero) * scale, name))
        (cast,) = consumers[node.output[0]]
        (scale_mul,) = consumers[cast.output[0]]
        assert cast.op_type == "Cast" and scale_mul.op_type == "Mul"
        replace[id(node)] = helper.make_node("MatMul", [quantize.input[0], name], [scale_mul.output[0]],
                                             name=node.name.replace("_quant", ""))
        drop.update({id(cast), id(scale_mul)})
    nodes = [replace.get(id(n), n) for n in graph.node if id(n) not in drop]
    # Drop what nothing reads any more (the activation quantizers, the scale products).
    needed = {o.name for o in graph.output}
    kept = []
    for n in reversed(nodes):
        if any(o in needed for o in n.output):
            kept.append(n)
            needed.update(n.input)
    del graph.node[:]
    graph.node.extend(reversed(kept))
    live = [i for i in graph.initializer if i.name in needed]
    del graph.initializer[:]
    graph.initializer.extend(live)
    return model


def calibration_paragraphs(count):
    """The first `count` paragraphs (>= 40 words) of the gensim test corpora, alternating
    Wikipedia and news (the keep model's training corpora, train_keep_model.py)."""
    from train_keep_model import paragraphs

    every = paragraphs(None)
    wiki = [text for source, text in every if source.startswith("wiki:")]
    news = [text for source, text in every if source.startswith("lee:")]
    mixed = [p for pair in zip(wiki, news) for p in pair]
    return mixed[:count]


class Reader:
    """Calibration batches for onnxruntime.quantization: the paragraphs' tokens as one stream cut
    into rows of `width` tokens ([CLS] ... [SEP], no padding: the percentile calibrator needs
    equal shapes, and padded positions would skew the ranges)."""

    def __init__(self, tokenizer_path, paragraphs, width=256):
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(tokenizer_path))
        tokenizer.no_padding()
        tokenizer.no_truncation()
        cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
        stream = [i for text in paragraphs for i in tokenizer.encode(text, add_special_tokens=False).ids]
        inner = width - 2
        self.feeds = []
        for at in range(0, len(stream) - inner + 1, inner):
            ids = np.array([[cls, *stream[at : at + inner], sep]], dtype=np.int64)
            self.feeds.append({"input_ids": ids, "attention_mask": np.ones_like(ids)})
        self.at = 0

    def get_next(self):
        if self.at >= len(self.feeds):
            return None
        self.at += 1
        return self.feeds[self.at - 1]

    def rewind(self):
        self.at = 0


# The feed-forward down-projections (after GELU, the widest activation range): left fp32 by
# default, as int8 there costs most of the accuracy (on SQuAD paragraphs, keep-probability Pearson
# with the fp32 graph: 0.954 all int8, 0.995 with these fp32; dynamic int8 0.994).
FFN_OUTPUTS = (r"layer\.\d+/output/dense/MatMul$",)


def quantize(source, tokenizer, target, paragraphs=256, method="percentile", keep_fp32=FFN_OUTPUTS):
    """Writes the static-int8 graph of `source` to `target`; MatMul nodes whose name matches a
    regular expression of `keep_fp32` stay fp32 (still padding-independent, slower)."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    model = onnx.load(str(source))
    if any(n.op_type == "MatMulInteger" for n in model.graph.node):
        model = dequantize_matmul_integer(model)
    with tempfile.TemporaryDirectory() as work:
        fp32 = Path(work) / "model.fp32.onnx"
        onnx.save(model, str(fp32))
        inits = {i.name for i in model.graph.initializer}
        weight_matmuls = [n.name for n in model.graph.node if n.op_type == "MatMul" and n.input[1] in inits
                          and not any(re.search(k, n.name) for k in keep_fp32)]
        methods = {"percentile": CalibrationMethod.Percentile, "minmax": CalibrationMethod.MinMax,
                   "entropy": CalibrationMethod.Entropy}
        quantize_static(
            str(fp32), str(target), Reader(tokenizer, calibration_paragraphs(paragraphs)),
            quant_format=QuantFormat.QDQ, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
            op_types_to_quantize=["MatMul"], nodes_to_quantize=weight_matmuls, per_channel=True,
            calibrate_method=methods[method],
            extra_options={"CalibPercentile": 99.999, "ActivationSymmetric": False},
        )
    return fp32


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path)
    parser.add_argument("tokenizer", type=Path)
    parser.add_argument("target", type=Path)
    parser.add_argument("--paragraphs", type=int, default=256)
    parser.add_argument("--calibration", choices=["percentile", "minmax", "entropy"], default="percentile")
    parser.add_argument("--keep-fp32", nargs="*", default=list(FFN_OUTPUTS),
                        help="regular expressions of MatMul names left fp32 (default: the FFN down-projections)")
    args = parser.parse_args()
    quantize(args.source, args.tokenizer, args.target, args.paragraphs, args.calibration, args.keep_fp32)
    print(f"wrote {args.target} ({args.target.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
