"""Fixture for terse's keep probability: PyTorch's CPU softmax (what llmlingua's `F.softmax`
runs) over 1,024 logit pairs, as f32 bit patterns, for tokenizers/context's unit test. The pairs
are the shipped keep model's logits on SQuAD paragraphs plus wide random pairs.

  python tokenizers/lingua/reference/make_softmax_fixture.py
"""

import json
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from tokenizers import Tokenizer

sys.path.insert(0, str(Path(__file__).parent))
from reference_compressor import MODEL, ROOT  # noqa: E402

SQUAD = ROOT / ".." / "shared" / "datasets" / "text" / "squad-v1.1-dev-part-a.json"


def main():
    tokenizer = Tokenizer.from_file(str(MODEL / "tokenizer.json"))
    session = ort.InferenceSession(str(MODEL / "model.onnx"), providers=["CPUExecutionProvider"])
    paragraphs = [p["context"] for a in json.loads(SQUAD.read_text())["data"] for p in a["paragraphs"]]
    logits = []
    for text in paragraphs[::60]:
        ids = np.array([tokenizer.encode(text).ids[:512]], dtype=np.int64)
        logits.append(session.run(["logits"], {"input_ids": ids, "attention_mask": np.ones_like(ids)})[0][0])
    pairs = np.concatenate(logits)[:768].astype(np.float32)
    rng = np.random.default_rng(0)
    pairs = np.concatenate([pairs, rng.uniform(-60, 60, (256, 2)).astype(np.float32)])
    probs = torch.softmax(torch.from_numpy(pairs), dim=-1)[:, 1].numpy()
    target = ROOT / "tokenizers" / "context" / "tests" / "fixtures" / "torch_softmax.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps({
        "torch": torch.__version__,
        "pairs": [[int(a.view(np.uint32)), int(b.view(np.uint32)), int(p.view(np.uint32))] for (a, b), p in zip(pairs, probs)],
    }) + "\n")
    print(f"wrote {target} ({len(pairs)} pairs)")


if __name__ == "__main__":
    main()
