"""Converts an official LLMLingua-2 checkpoint that a user has locally (for example
microsoft/llmlingua-2-xlm-roberta-large-meetingbank or
microsoft/llmlingua-2-bert-base-multilingual-cased-meetingbank, downloaded elsewhere; nothing is
fetched here) into a terse keep-classifier model directory, ready for package.py:

  <out>/model.onnx      input_ids, attention_mask (int64 [N, T]) -> logits [N, T, 2] (fp32, or
                        int8 with --int8)
  <out>/tokenizer.json  the checkpoint's tokenizer with the 100 [NEWi] force-token placeholders
                        that llmlingua adds (same ids: appended after the vocabulary)
  <out>/training.json   provenance (package.py writes the manifest from it)

The embedding matrix is resized exactly as llmlingua's init_llmlingua2 does it
(`tokenizer.add_special_tokens` then `model.resize_token_embeddings`), with the same seed, so the
placeholders get the same vectors as in the reference.

  python models/scripts/lingua/export_official.py /path/to/llmlingua-2-xlm-roberta-large-meetingbank /tmp/official
  python models/scripts/lingua/package.py /tmp/official llmlingua2-xlmr-meetingbank
"""

import argparse
import json
from pathlib import Path

import sys

import torch
from transformers import AutoModelForTokenClassification, AutoTokenizer

sys.path.insert(0, str(Path(__file__).parent))
from train_keep_model import export_onnx  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("checkpoint")
    parser.add_argument("out")
    parser.add_argument("--int8", action="store_true")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from llmlingua.utils import seed_everything

    seed_everything(42)  # as init_llmlingua2
    tokenizer = AutoTokenizer.from_pretrained(args.checkpoint)
    model = AutoModelForTokenClassification.from_pretrained(args.checkpoint, torch_dtype=torch.float32).eval()
    tokenizer.add_special_tokens({"additional_special_tokens": [f"[NEW{i}]" for i in range(100)]})
    model.resize_token_embeddings(len(tokenizer))
    tokenizer.backend_tokenizer.save(str(out / "tokenizer.json"))

    target = out / ("model.fp32.onnx" if args.int8 else "model.onnx")
    export_onnx(model, target)
    if args.int8:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantize_dynamic(str(target), str(out / "model.onnx"), weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul", "Gather"])
    (out / "training.json").write_text(json.dumps({"source_checkpoint": str(Path(args.checkpoint).resolve())}, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
