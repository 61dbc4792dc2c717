"""Parity fixtures for terse's LLMLingua-2 port: runs the Python reference (PyPI `llmlingua`
0.2.2, `PromptCompressor(use_llmlingua2=True)`) over the shipped keep/drop model on SQuAD
contexts with many option sets and writes what it returns to tests/fixtures/parity.json. The
reference's forward pass is the shipped ONNX graph (see reference_compressor.py), so both sides
classify with bit-identical weights and kernels.

  python tokenizers/lingua/reference/make_fixtures.py
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from reference_compressor import ROOT, reference_compressor  # noqa: E402

SQUAD = ROOT / ".." / "shared" / "datasets" / "text" / "squad-v1.1-dev-part-a.json"


def contexts():
    data = json.loads(SQUAD.read_text())["data"]
    paragraphs = [(a["title"], p["context"]) for a in data for p in a["paragraphs"]]
    return paragraphs


def main():
    compressor = reference_compressor()

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
