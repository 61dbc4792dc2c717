"""The Python reference (PyPI `llmlingua` 0.2.2, `PromptCompressor(use_llmlingua2=True)`) set up
over a shipped terse keep/drop model, from the model repository alone:

- a temporary Hugging Face directory (BERT config sized from the ONNX graph, the shipped
  tokenizer.json, placeholder weights) whose name contains "bert-base-multilingual-cased", as the
  reference picks its word-merge rules by model name;
- the network's forward pass replaced by the shipped ONNX graph through onnxruntime, one chunk
  per call as terse runs it (the int8 graph quantizes activations per call);
- cl100k_base (the reference's target-LLM tokenizer) read from the copy inside the `tiktoken-rs`
  crate, so nothing is downloaded.
"""

import glob
import hashlib
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

ROOT = Path(__file__).resolve().parents[3]
# The shipped (newest) version of the keep model.
MODEL = max((ROOT / "models" / "repository" / "lingua-minilm-keep").iterdir(), key=lambda p: int(p.name))


def tiktoken_offline():
    url = b"https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken"
    cache = Path(tempfile.mkdtemp())
    source = sorted(glob.glob(str(Path.home() / ".cargo/registry/src/*/tiktoken-rs-*/assets/cl100k_base.tiktoken")))[-1]
    shutil.copyfile(source, cache / hashlib.sha1(url).hexdigest())
    os.environ["TIKTOKEN_CACHE_DIR"] = str(cache)


class OnnxTokenClassifier(torch.nn.Module):
    """Stands in for the PyTorch model inside the reference: same call, logits from ONNX."""

    def __init__(self, path):
        super().__init__()
        options = ort.SessionOptions()
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    seconds = 0.0  # time spent in ONNX Runtime, for the eval bench

    def forward(self, input_ids, attention_mask):
        start = time.perf_counter()
        logits = np.concatenate([
            self.session.run(["logits"], {
                "input_ids": input_ids[i : i + 1].numpy().astype(np.int64),
                "attention_mask": attention_mask[i : i + 1].numpy().astype(np.int64),
            })[0]
            for i in range(input_ids.shape[0])
        ])
        OnnxTokenClassifier.seconds += time.perf_counter() - start

        class Out:
            loss = None

        out = Out()
        out.logits = torch.from_numpy(logits)
        return out


def hf_directory(model_dir=MODEL):
    """A loadable Hugging Face directory for the shipped model (weights are placeholders: the
    forward pass is replaced by the ONNX graph)."""
    from transformers import BertConfig, BertForTokenClassification, BertTokenizerFast

    work = Path(tempfile.mkdtemp()) / "bert-base-multilingual-cased-terse-keep"
    tokenizer = BertTokenizerFast(tokenizer_file=str(model_dir / "tokenizer.json"), do_lower_case=True,
                                  additional_special_tokens=[f"[NEW{i}]" for i in range(100)])
    tokenizer.save_pretrained(work)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=384, num_hidden_layers=1, num_attention_heads=12,
                        intermediate_size=64, max_position_embeddings=512, num_labels=2,
                        architectures=["BertForTokenClassification"])
    BertForTokenClassification(config).save_pretrained(work)
    return work


def reference_compressor(model_dir=MODEL):
    tiktoken_offline()
    from llmlingua import PromptCompressor

    compressor = PromptCompressor(model_name=str(hf_directory(model_dir)), use_llmlingua2=True, device_map="cpu")
    compressor.model = OnnxTokenClassifier(model_dir / "model.onnx")
    return compressor
