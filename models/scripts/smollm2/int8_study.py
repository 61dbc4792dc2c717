#!/usr/bin/env python3
"""Measures int8 variants of the causal LM's graph against the shipped fp32 graph: the time of
one prefill and the mean next-token negative log-likelihood (as perplexity) on the same text,
in one run. Issue 21 asks for the fastest graph that keeps perplexities close; this is the
measurement behind docs/context.md's int8 paragraph. Nothing here is shipped.

Usage: int8_study.py FP32_MODEL TEXT_FILE [--tokens 512] [--threads 2] [--work DIR]

Needs onnxruntime (with its quantization tools), onnx, numpy and tokenizers (the tokenizer.json
next to FP32_MODEL). The variants:
  all       every MatMul and the output head, int8 weights per channel, activations quantized
            per tensor at run time (onnxruntime's quantize_dynamic)
  no-down   the same, but the MLP down projections (inputs with outlier channels) and the head
            stay fp32
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
    seconds, reference = measure(args.model, ids, args.threads)
    print(f"{len(ids)} tokens of {args.text}, {args.threads} threads")
    print(f"  fp32      prefill {seconds:.3f} s  perplexity {np.exp(reference.mean()):.3f}")
    for name, options in variants.items():
        path = args.work / f"{name}.onnx"
        quantize_dynamic(
            base,
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
