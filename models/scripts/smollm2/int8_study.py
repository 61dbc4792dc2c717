#!/usr/bin/env python3
"""Measures int8 variants of the causal LM's graph against the shipped fp32 graph: the time of
one prefill and the mean next-token negative log-likelihood (as perplexity) on the same text,
in one run. Issue 21 asks for the fastest graph that keeps perplexities close; this is the
measurement behind docs/context.md's int8 paragraph. Nothing here is shipped.

Usage: int8_study.py FP32_MODEL TEXT_FILE [--calibration FILE ...] [--alpha 0.75]
                     [--tokens 512] [--threads 2] [--work DIR]

Needs onnxruntime (with its quantization tools), onnx, numpy and tokenizers (the tokenizer.json
next to FP32_MODEL). The variants:
  all       every MatMul and the output head, int8 weights per channel, activations quantized
            per tensor at run time (onnxruntime's quantize_dynamic)
  no-down   the same, but the MLP down projections (inputs with outlier channels) and the head
            stay fp32
  smooth    every MatMul int8 after SmoothQuant-style smoothing (Xiao et al. 2023), the head
            fp32: each input channel j of a weight is multiplied by s_j and the activation
            divided by s_j where it is made (the RMSNorm weight before q/k/v and gate/up, the up
            projection's output before the down projection), so the fp32 graph computes the same
            function; s_j = max|X_j|^alpha / max|W_j|^(1 - alpha) over the calibration files
            (text other than TEXT_FILE), rounded to a power of two (exact scaling, and the same
            bytes from calibration maxima that differ in their last bits)
The token embedding is tied to the output head (one initializer read by a Gather and a Gemm with
transB); quantize_dynamic turns that Gemm into a MatMul by transposing the initializer in place,
which breaks the Gather (the graph no longer loads). The head gets its own copy first.
"""

import argparse
import copy
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.quantization import QuantType, quantize_dynamic
from tokenizers import Tokenizer



def untied(model_path, out_path):
    """The graph with the output head reading its own copy of the token embedding; returns the
    head's node names (the Gemm, and the MatMul quantize_dynamic may turn it into)."""
    model = onnx.load(model_path)
    gathers = [n for n in model.graph.node if n.op_type == "Gather"]
    embedding = gathers[0].input[0]
    head = next(n for n in model.graph.node if n.op_type == "Gemm" and n.input[1] == embedding)
    init = next(i for i in model.graph.initializer if i.name == embedding)
    copy_ = copy.deepcopy(init)
    copy_.name = embedding + "_head"
    model.graph.initializer.append(copy_)
    head.input[1] = copy_.name
    onnx.save(model, out_path)
    return [head.name, head.name + "_MatMul"]


def down_projections(model_path):
    """Names of the MatMuls whose weight has the most input rows (the MLP down projections,
    [intermediate, hidden])."""
    model = onnx.load(model_path, load_external_data=False)
    shapes = {i.name: tuple(i.dims) for i in model.graph.initializer}
    matmuls = [n for n in model.graph.node if n.op_type == "MatMul" and n.input[1] in shapes]
    widest = max(shapes[n.input[1]][0] for n in matmuls)
    return [n.name for n in matmuls if shapes[n.input[1]][0] == widest]


def chunks(tokenizer, files, tokens):
    """The calibration files' token ids, in pieces of at most `tokens`, 2,048 per file at most."""
    for path in files:
        ids = tokenizer.encode(path.read_text()).ids[:2048]
        yield from (ids[k : k + tokens] for k in range(0, len(ids), tokens))


def smoothed(model_path, out_path, pieces, alpha, threads):
    """Writes the graph with its MatMul inputs smoothed (see the module doc)."""
    model = onnx.load(model_path)
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    shapes = {i.name: tuple(i.dims) for i in graph.initializer}
    made_by = {o: n for n in graph.node for o in n.output}
    read_by = {}
    for node in graph.node:
        for name in node.input:
            read_by.setdefault(name, []).append(node)
    weights = lambda n: n.op_type == "MatMul" and n.input[1] in shapes  # noqa: E731
    hidden = shapes[next(n for n in graph.node if n.op_type == "Gather").input[0]][1]
    groups = []  # (activation, absorber initializer, absorbs along columns, consumers)
    for name in down_projections(model_path):
        down = next(n for n in graph.node if n.name == name)
        up = next(made_by[i] for i in made_by[down.input[0]].input if made_by[i].op_type == "MatMul")
        groups.append((down.input[0], up.input[1], True, [down]))
    for node in graph.node:
        norm = [i for i in node.input if shapes.get(i) == (hidden,)]
        readers = [c for c in read_by.get(node.output[0], []) if weights(c)]
        if node.op_type == "Mul" and norm and len(readers) >= 2:
            groups.append((node.output[0], norm[0], False, readers))

    probe = onnx.load(model_path)
    names = sorted({g[0] for g in groups})
    for name in names:
        probe.graph.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, None))
    probe_path = out_path.with_suffix(".probe.onnx")
    onnx.save(probe, probe_path)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(probe_path), options, providers=["CPUExecutionProvider"])
    layers = session.get_inputs()[2].shape[0]
    peak = {}
    for ids in pieces:
        feed = {
            "input_ids": np.array([ids], dtype=np.int64),
            "attention_mask": np.ones((1, len(ids)), dtype=np.int64),
            "past_key_values": np.zeros((layers, 2, 1, 3, 0, 64), dtype=np.float32),
        }
        for name, value in zip(names, session.run(names, feed)):
            channel_max = np.abs(value).reshape(-1, value.shape[-1]).max(0)
            peak[name] = np.maximum(peak.get(name, 0.0), channel_max)

    array = lambda name: numpy_helper.to_array(inits[name]).astype(np.float32)  # noqa: E731
    for activation, absorber, along_columns, readers in groups:
        mats = [array(r.input[1]) for r in readers]
        weight_max = np.max([np.abs(w).max(1) for w in mats], axis=0)
        s = np.maximum(peak[activation], 1e-5) ** alpha / np.maximum(weight_max, 1e-5) ** (1 - alpha)
        s = np.exp2(np.clip(np.round(np.log2(s)), -10, 10)).astype(np.float32)
        for reader, w in zip(readers, mats):
            inits[reader.input[1]].CopyFrom(numpy_helper.from_array(w * s[:, None], reader.input[1]))
        scaled = array(absorber) / (s[None, :] if along_columns else s)
        inits[absorber].CopyFrom(numpy_helper.from_array(scaled.astype(np.float32), absorber))
    onnx.save(model, out_path)
    probe_path.unlink()


def measure(path, ids, threads):
    """Best of three prefill seconds and the per-token next-token NLL."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    layers = session.get_inputs()[2].shape[0]
    feed = {
        "input_ids": np.array([ids], dtype=np.int64),
        "attention_mask": np.ones((1, len(ids)), dtype=np.int64),
        "past_key_values": np.zeros((layers, 2, 1, 3, 0, 64), dtype=np.float32),
    }
    session.run(["logits"], feed)
    best, logits = float("inf"), None
    for _ in range(3):
        start = time.perf_counter()
        logits = session.run(["logits"], feed)[0][0].astype(np.float64)
        best = min(best, time.perf_counter() - start)
    shifted = logits - logits.max(-1, keepdims=True)
    logp = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    targets = np.array(ids[1:])
    return best, -logp[np.arange(len(targets)), targets]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("text", type=Path)
    parser.add_argument("--calibration", type=Path, nargs="*", default=[])
    parser.add_argument("--alpha", type=float, default=0.75)
    parser.add_argument("--tokens", type=int, default=512)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--work", type=Path, default=Path("/tmp/terse-int8-study"))
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    tokenizer = Tokenizer.from_file(str(args.model.parent / "tokenizer.json"))
    ids = tokenizer.encode(args.text.read_text()).ids[: args.tokens]

    base = args.work / "untied.onnx"
    head = untied(args.model, base)
    variants = {
        "all": dict(op_types_to_quantize=["MatMul", "Gemm"]),
        "no-down": dict(
            op_types_to_quantize=["MatMul"], nodes_to_exclude=down_projections(base) + head
        ),
    }
    if args.calibration:
        smooth = args.work / "smoothed.onnx"
        pieces = list(chunks(tokenizer, args.calibration, args.tokens))
        smoothed(base, smooth, pieces, args.alpha, args.threads)
        variants["smooth"] = dict(op_types_to_quantize=["MatMul"], nodes_to_exclude=head)
    seconds, reference = measure(args.model, ids, args.threads)
    print(f"{len(ids)} tokens of {args.text}, {args.threads} threads")
    print(f"  fp32      prefill {seconds:.3f} s  perplexity {np.exp(reference.mean()):.3f}")
    for name, options in variants.items():
        path = args.work / f"{name}.onnx"
        quantize_dynamic(
            smooth if name == "smooth" else base,
            path,
            weight_type=QuantType.QInt8,
            per_channel=True,
            extra_options={"MatMulConstBOnly": True},
            **options,
        )
        s, nll = measure(path, ids, args.threads)
        print(
            f"  {name:<9} prefill {s:.3f} s ({seconds / s:.2f}x)  perplexity "
            f"{np.exp(nll.mean()):.3f}  |token NLL - fp32| mean {np.abs(nll - reference).mean():.3f} "
            f"max {np.abs(nll - reference).max():.2f}"
        )


if __name__ == "__main__":
    main()
