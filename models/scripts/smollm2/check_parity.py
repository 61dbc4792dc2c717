#!/usr/bin/env python3
"""Checks a graph built by build_onnx.py against Hugging Face transformers running the same GGUF
(transformers dequantizes it to fp32): logits of a prefill and of incremental steps through the
KV cache, and the tokenizer on the same text. Not run by the tests (needs torch and transformers:
models/scripts/lingua/requirements-train.txt).

Usage: check_parity.py GGUF BUILD_DIR TEXT_FILE [--tokens N]
Prints the largest absolute logit difference, top-1 agreement and the mean next-token negative
log-likelihood of both; exits 1 when the tokenizers disagree or the top-1 agreement is < 0.99.
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from tokenizers import Tokenizer
from transformers import AutoModelForCausalLM, AutoTokenizer


def nll(logits, targets):
    shifted = logits - logits.max(-1, keepdims=True)
    logp = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    return float(-np.mean(logp[np.arange(len(targets)), targets]))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("gguf", type=Path)
    parser.add_argument("build_dir", type=Path)
    parser.add_argument("text", type=Path)
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--write-fixture", type=Path,
                        help="also write the first paragraph's ids and transformers' next-token "
                             "log-probabilities and top-1 tokens (the causal-lm crate's test fixture)")
    args = parser.parse_args()
    text = args.text.read_text()
    config = json.loads((args.build_dir / "config.json").read_text())

    reference_tok = AutoTokenizer.from_pretrained(str(args.gguf.parent), gguf_file=args.gguf.name)
    ours = Tokenizer.from_file(str(args.build_dir / "tokenizer.json"))
    paragraphs = [p for p in text.split("\n") if p.strip()]
    mismatched = sum(reference_tok(p, add_special_tokens=False)["input_ids"] != ours.encode(p, add_special_tokens=False).ids
                     for p in paragraphs)
    print(f"tokenizer: {len(paragraphs) - mismatched}/{len(paragraphs)} paragraphs identical")

    ids = ours.encode(text, add_special_tokens=False).ids[: args.tokens]
    model = AutoModelForCausalLM.from_pretrained(str(args.gguf.parent), gguf_file=args.gguf.name,
                                                 torch_dtype=torch.float32).eval()
    with torch.no_grad():
        reference = model(torch.tensor([ids])).logits[0].numpy()

    if args.write_fixture:
        first = paragraphs[0]
        first_ids = reference_tok(first, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            logits = model(torch.tensor([first_ids])).logits[0].double()
        logp = torch.log_softmax(logits, -1)
        args.write_fixture.write_text(json.dumps({
            "source": f"{args.text.name}, first paragraph; transformers on {args.gguf.name} (fp32)",
            "text": first, "ids": first_ids,
            "next_log_probs": [round(float(logp[i, first_ids[i + 1]]), 5) for i in range(len(first_ids) - 1)],
            "top1": [int(t) for t in logits.argmax(-1)],
        }, indent=None) + "\n")

    session = ort.InferenceSession(str(args.build_dir / "model.onnx"), providers=["CPUExecutionProvider"])
    shape = lambda past: [config["layers"], 2, 1, config["kv_heads"], past, config["head_dim"]]  # noqa: E731
    split = len(ids) * 3 // 4
    logits_a, present = session.run(None, {
        "input_ids": np.array([ids[:split]], dtype=np.int64),
        "attention_mask": np.ones((1, split), dtype=np.int64),
        "past_key_values": np.zeros(shape(0), dtype=np.float32)})
    steps = [logits_a[0]]
    for position in range(split, len(ids)):  # one token at a time through the cache
        logits_b, present = session.run(None, {
            "input_ids": np.array([[ids[position]]], dtype=np.int64),
            "attention_mask": np.ones((1, position + 1), dtype=np.int64),
            "past_key_values": present})
        steps.append(logits_b[0])
    ours_logits = np.concatenate(steps)
    # Left padding must not change anything.
    padded, _ = session.run(None, {
        "input_ids": np.array([[0] * 5 + ids[:split]], dtype=np.int64),
        "attention_mask": np.array([[0] * 5 + [1] * split], dtype=np.int64),
        "past_key_values": np.zeros(shape(0), dtype=np.float32)})
    diff = float(np.abs(ours_logits - reference).max())
    top1 = float(np.mean(ours_logits.argmax(-1) == reference.argmax(-1)))
    pad_diff = float(np.abs(padded[0, 5:] - logits_a[0]).max())
    targets = np.array(ids[1:])
    print(f"tokens {len(ids)} (prefill {split}, then one by one): max |Δlogit| {diff:.4f}, top-1 agreement {top1:.4f}, "
          f"NLL ours {nll(ours_logits[:-1], targets):.4f} vs transformers {nll(reference[:-1], targets):.4f}, "
          f"left-padding max |Δlogit| {pad_diff:.5f}")
    sys.exit(0 if mismatched == 0 and top1 >= 0.99 else 1)


if __name__ == "__main__":
    main()
