#!/usr/bin/env python3
"""LMCache's CacheGen (PyPI lmcache 0.5.6, its CPU device ops) on the caches kv_eval measures:
same model graph (models/repository/smollm2-135m through onnxruntime), same SQuAD articles,
prefix and continuation, same metrics, so its row sits beside terse's in docs/tensors.md.

Usage: lmcache_cachegen.py [--articles 4-15]
Needs a venv with torch (CPU), onnxruntime 1.31.1, tokenizers, numba, cachetools and
`pip install --no-deps lmcache==0.5.6` (its pinned transformers>=5.4 is not needed on this path).

LMCache's quantization config for a 30-layer model (its default rule for models of 10+ layers):
keys of layers 0-9 with 32 bins and the rest 16; values of layers 0-1 with 32 bins and the rest
16; one scale (max magnitude) per token and layer; arithmetic coding with a CDF per layer and
channel. Sizes: `to_bytes()` as LMCache stores it (pickle) and the raw payload (bytestreams +
int16 CDFs + fp32 scales).
"""

import argparse
import json
import sys
import types
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from tokenizers import Tokenizer

from lmcache.storage_backend.serde.cachegen_basics import QuantizationSpec
from lmcache.storage_backend.serde.cachegen_decoder import decode_function_gpu, do_dequantize
from lmcache.storage_backend.serde.cachegen_encoder import encode_function

ROOT = Path(__file__).resolve().parents[3]
MODEL = ROOT / "models/repository/smollm2-135m/1"
SQUAD = ROOT / "../shared/datasets/text/squad-v1.1-dev-part-a.json"
PREFIX, CONTINUATION = 512, 256


def log_softmax(x):
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def mean_ci(values):
    values = np.asarray(values, dtype=np.float64)
    t = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179]
    half = t[len(values) - 2] * values.std(ddof=1) / np.sqrt(len(values)) if len(values) > 1 else float("nan")
    return values.mean(), half


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--articles", default="4-15")
    args = parser.parse_args()
    first, last = map(int, args.articles.split("-"))
    tok = Tokenizer.from_file(str(MODEL / "tokenizer.json"))
    config = json.loads((MODEL / "config.json").read_text())
    layers, heads, dim = config["layers"], config["kv_heads"], config["head_dim"]
    options = ort.SessionOptions()
    session = ort.InferenceSession(str(MODEL / "model.onnx"), options, providers=["CPUExecutionProvider"])

    def run(ids, past):
        total = past.shape[4] + len(ids)
        return session.run(None, {"input_ids": np.array([ids], np.int64),
                                  "attention_mask": np.ones((1, total), np.int64),
                                  "past_key_values": past.astype(np.float32)})

    # The fields of LMCache's CacheGenConfig that encode_function reads (its v1 class pulls in
    # the storage backends).
    cg = types.SimpleNamespace(nlayers=layers,
                        kspecs=[QuantizationSpec(0, 10, 32), QuantizationSpec(10, layers, 16)],
                        vspecs=[QuantizationSpec(0, 2, 32), QuantizationSpec(2, layers, 16)])

    def bins(specs):
        out = torch.zeros(layers)
        for spec in specs:
            out[spec.start_layer:spec.end_layer] = spec.bins
        return out

    key_bins, value_bins = bins(cg.kspecs), bins(cg.vspecs)
    squad = json.loads(SQUAD.read_text())["data"]
    rows = {"pickle": [], "payload": [], "dnll": [], "top1": []}
    titles = []
    for article in squad[first:last + 1]:
        ids = tok.encode("\n".join(p["context"] for p in article["paragraphs"])).ids
        if len(ids) < PREFIX + CONTINUATION:
            continue
        titles.append(article["title"])
        _, cache = run(ids[:PREFIX - 1], np.zeros((layers, 2, 1, heads, 0, dim), np.float32))
        continuation, targets = ids[PREFIX - 1:PREFIX - 1 + CONTINUATION], np.array(ids[PREFIX:PREFIX + CONTINUATION])
        exact = run(continuation, cache)[0][0]
        # ours [L, 2, 1, H, T, D] -> LMCache [L, 2, T, H, D]
        kv = torch.from_numpy(cache[:, :, 0].transpose(0, 1, 3, 2, 4).copy())
        tokens = kv.shape[2]
        encoded = encode_function(kv, cg, key_bins, value_bins, tokens)
        pickled = len(encoded.to_bytes())
        payload = sum(int(c.bytestream.numel()) for c in encoded.data_chunks) \
            + encoded.cdf.numel() * 2 + (encoded.max_tensors_key.numel() + encoded.max_tensors_value.numel()) * 4
        output = torch.zeros((tokens, 2 * layers * heads * dim), dtype=torch.uint8)
        key, value = decode_function_gpu(encoded.cdf, encoded.data_chunks, layers, tokens, output)
        key = do_dequantize(key, key_bins, encoded.max_tensors_key)
        value = do_dequantize(value, value_bins, encoded.max_tensors_value)
        decoded = torch.stack([key, value]).reshape(2, layers, tokens, heads, dim).permute(1, 0, 3, 2, 4)
        decoded = decoded.numpy()[:, :, None].astype(np.float32)
        got = run(continuation, decoded)[0][0]
        lp_exact = log_softmax(exact)[np.arange(len(targets)), targets]
        lp_got = log_softmax(got)[np.arange(len(targets)), targets]
        elements = cache.size
        rows["pickle"].append(pickled * 8 / elements)
        rows["payload"].append(payload * 8 / elements)
        rows["dnll"].append(float(lp_exact.mean() - lp_got.mean()))
        rows["top1"].append(float((got.argmax(-1) == exact.argmax(-1)).mean()))
        print(f"{article['title']}: {rows['payload'][-1]:.3f} bits/element, dNLL {rows['dnll'][-1]:+.4f}, "
              f"top-1 {rows['top1'][-1]:.3f}", file=sys.stderr, flush=True)
    eight_bit = 8 + 16 / (heads * dim)  # one fp16 scale per 192-value vector, as in kv_eval
    print(f"lmcache 0.5.6 CacheGen on {len(titles)} articles ({', '.join(titles)})")
    for name, key in [("LMCache CacheGen (to_bytes)", "pickle"), ("LMCache CacheGen (raw payload)", "payload")]:
        bits = np.mean(rows[key])
        d, dci = mean_ci(rows["dnll"])
        a, aci = mean_ci(rows["top1"])
        print(f"| {name} | {bits:.3f} | {eight_bit / bits:.2f}× | {d:+.4f} ± {dci:.4f} | {(np.exp(d) - 1) * 100:+.2f} % "
              f"| {a:.3f} ± {aci:.3f} | — | — |")


if __name__ == "__main__":
    main()
