"""Parity fixtures for terse's LLMLingua-2 port: runs the Python reference (PyPI `llmlingua`
0.2.2, `PromptCompressor(use_llmlingua2=True)`) on SQuAD contexts with many option sets and
writes what it returns to tests/fixtures/parity.json.

The reference loads the shipped model's PyTorch twin (models/scripts/lingua/train_keep_model.py
writes it to <out>/hf) from a directory whose name contains "bert-base-multilingual-cased" (the
reference picks its word-merge rules by model name), and its forward pass is replaced by the
shipped ONNX graph through onnxruntime, so both sides classify with bit-identical weights and
kernels, one chunk per call as terse runs it. cl100k_base (the reference's target-LLM tokenizer) is read from the copy that the
`tiktoken-rs` crate ships, so nothing is downloaded.

  TIKTOKEN_CACHE_DIR=... python tokenizers/lingua/reference/make_fixtures.py /tmp/lingua-minilm/hf \
      models/repository/lingua-minilm-keep/1/model.onnx
"""

import hashlib
import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

ROOT = Path(__file__).resolve().parents[3]
SQUAD = ROOT / ".." / "shared" / "datasets" / "text" / "squad-v1.1-dev-part-a.json"


def tiktoken_offline():
    import glob
    import os

    url = b"https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken"
    cache = Path(tempfile.mkdtemp())
    source = sorted(glob.glob(str(Path.home() / ".cargo/registry/src/*/tiktoken-rs-*/assets/cl100k_base.tiktoken")))[-1]
    shutil.copyfile(source, cache / hashlib.sha1(url).hexdigest())
    os.environ["TIKTOKEN_CACHE_DIR"] = str(cache)


class OnnxTokenClassifier(torch.nn.Module):
    """Stands in for the PyTorch model inside the reference: same call, logits from ONNX."""

    def __init__(self, path):
        super().__init__()
        self.session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])

    def forward(self, input_ids, attention_mask):
        # One row per call, as terse runs the int8 graph (its activation quantization is per
        # call, so batch-mates would change a row's logits).
        logits = np.concatenate([
            self.session.run(["logits"], {
                "input_ids": input_ids[i : i + 1].numpy().astype(np.int64),
                "attention_mask": attention_mask[i : i + 1].numpy().astype(np.int64),
            })[0]
            for i in range(input_ids.shape[0])
        ])

        class Out:
            loss = None

        out = Out()
        out.logits = torch.from_numpy(logits)
        return out


def contexts():
    data = json.loads(SQUAD.read_text())["data"]
    paragraphs = [(a["title"], p["context"]) for a in data for p in a["paragraphs"]]
    return paragraphs


def main():
    hf_dir, onnx_path = Path(sys.argv[1]), sys.argv[2]
    tiktoken_offline()
    from llmlingua import PromptCompressor

    work = Path(tempfile.mkdtemp()) / "bert-base-multilingual-cased-terse-keep"
    shutil.copytree(hf_dir, work)
    compressor = PromptCompressor(model_name=str(work), use_llmlingua2=True, device_map="cpu")
    compressor.model = OnnxTokenClassifier(onnx_path)

    paras = contexts()
    short = [p for _, p in paras[:40]]
    long_text = " ".join(p for _, p in paras[40:52])  # > 510 tokens: several chunks
    cases = [
        ("rate_0.5", [short[0]], dict(rate=0.5)),
        ("rate_0.33", [short[1]], dict(rate=0.33)),
        ("rate_0.7_first", [short[2]], dict(rate=0.7, token_to_word="first")),
        ("force_tokens", [short[3]], dict(rate=0.4, force_tokens=["\n", ".", "!", "?", ","])),
        ("force_tokens_drop_consecutive", [short[4] + "\n\n" + short[5]], dict(rate=0.3, force_tokens=["\n", ".", ","], drop_consecutive=True)),
        ("force_reserve_digit", [short[6]], dict(rate=0.4, force_reserve_digit=True)),
        ("target_token", [short[7]], dict(target_token=40)),
        ("long_chunked", [long_text], dict(rate=0.5)),
        ("many_contexts", short[8:14], dict(rate=0.5)),
        ("context_level_filter", short[14:22], dict(rate=0.5, use_context_level_filter=True)),
        ("context_level_target", short[22:30], dict(target_token=200, use_context_level_filter=True)),
        ("word_labels", [short[30]], dict(rate=0.5, return_word_label=True)),
        ("no_token_filter", short[31:35], dict(rate=0.5, use_context_level_filter=True, use_token_level_filter=False, return_word_label=True)),
        ("rate_1", [short[35]], dict(rate=1.0)),
    ]
    out = []
    for name, ctx, options in cases:
        result = compressor.compress_prompt_llmlingua2(list(ctx), **options)
        out.append({"name": name, "context": ctx, "options": options, "result": result})
        print(name, result["origin_tokens"], "->", result["compressed_tokens"])
    target = ROOT / "tokenizers" / "lingua" / "tests" / "fixtures" / "parity.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(out, indent=1, ensure_ascii=False))
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
