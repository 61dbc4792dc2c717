"""NumPy reference computations of the visual-token reducers in `terse-vision`.

Each function follows the rule of the method's reference implementation (cited per function),
written in NumPy so the fixture can be regenerated without PyTorch:

    python tokenizers/vision/reference/reference.py > tokenizers/vision/tests/fixtures/reference.json

Inputs are patch tokens [N, D] (no [CLS] token), [CLS]->patch attention [H, N] and keys [N, Dk].
Ties are broken toward the lower token index everywhere (stable sorts, first argmax).
"""

import json
import math
import sys

import numpy as np


def normalize(x):
    norm = np.sqrt((x.astype(np.float64) ** 2).sum(axis=-1, keepdims=True))
    return (x / np.maximum(norm, 1e-12)).astype(np.float32)


def top_k(scores, k):
    """Indices of the k largest scores, ties to the lower index, returned sorted ascending."""
    order = np.argsort(-scores.astype(np.float64), kind="stable")
    return np.sort(order[:k])


def uniform(n, k):
    """Plain baseline: k tokens at the centres of k equal strides."""
    return np.array([int(math.floor((j + 0.5) * n / k)) for j in range(k)], dtype=np.int64)


def avg_pool(tokens, side_out):
    """Plain baseline: adaptive average pooling of the square token grid (torch adaptive_avg_pool2d bins)."""
    n, d = tokens.shape
    side = int(round(math.sqrt(n)))
    grid = tokens.reshape(side, side, d).astype(np.float64)
    out = []
    for i in range(side_out):
        r0, r1 = (i * side) // side_out, -((-(i + 1) * side) // side_out)
        for j in range(side_out):
            c0, c1 = (j * side) // side_out, -((-(j + 1) * side) // side_out)
            out.append(grid[r0:r1, c0:c1].reshape(-1, d).mean(axis=0))
    return np.array(out, dtype=np.float32)


def fastervlm(attention, k):
    """FasterVLM: top-k patches by [CLS] attention averaged over heads."""
    return top_k(attention.astype(np.float64).mean(axis=0), k)


def visionzip(tokens, attention, keys, dominant, contextual):
    """VisionZip (dvlab-research/VisionZip, clip_encoder.py): dominant tokens by [CLS] attention summed
    over heads; of the rest (original order), targets at a uniform stride max(1, R // C), every other
    token assigned to its most similar target by cosine of L2-normalized keys, merged = target + mean."""
    scores = attention.astype(np.float64).sum(axis=0)
    kept = top_k(scores, dominant)
    rest = np.array([i for i in range(tokens.shape[0]) if i not in set(kept.tolist())], dtype=np.int64)
    r = len(rest)
    step = max(1, r // contextual)
    target_pos = np.arange(0, r, step)[:contextual]
    other_pos = np.array([p for p in range(r) if p not in set(target_pos.tolist())], dtype=np.int64)
    normed = normalize(keys[rest])
    sim = normed[other_pos].astype(np.float32) @ normed[target_pos].astype(np.float32).T
    assign = sim.argmax(axis=1)
    merged = []
    for t in range(len(target_pos)):
        members = other_pos[assign == t]
        mean = tokens[rest[members]].astype(np.float64).mean(axis=0) if len(members) else 0.0
        merged.append(tokens[rest[target_pos[t]]].astype(np.float64) + mean)
    out = np.concatenate([tokens[kept].astype(np.float64), np.array(merged)], axis=0).astype(np.float32)
    slot = -np.ones(tokens.shape[0], dtype=np.int64)
    slot[kept] = np.arange(len(kept))
    slot[rest[target_pos]] = len(kept) + np.arange(len(target_pos))
    slot[rest[other_pos]] = len(kept) + assign
    return kept, rest[target_pos], out, slot


def divprune(tokens, k):
    """DivPrune (vbdi/divprune): greedy max-min diversity on 1 - cosine similarity; the first pick is
    the token farthest from its nearest neighbour, then the token farthest from the selected set."""
    normed = normalize(tokens)
    dist = (1.0 - normed.astype(np.float32) @ normed.astype(np.float32).T).astype(np.float32)
    selected = []
    for i in range(k):
        if i == 0:
            scores = np.partition(dist, 1, axis=0)[1, :]
        else:
            scores = dist[selected].min(axis=0)
        selected.append(int(np.argmax(scores)))
    return np.sort(np.array(selected, dtype=np.int64))


def tome(tokens, metric, r, protected, sizes=None):
    """ToMe (facebookresearch/ToMe, merge.py bipartite_soft_matching + merge_wavg): alternate tokens
    into sets A (even) and B (odd); each A token's best B match by cosine; the r best-matching A
    tokens merge into their B match with size-weighted averages. The first `protected` tokens
    (e.g. [CLS]) never merge. Output slots here are ordered by their token's input index."""
    n, d = tokens.shape
    sizes = np.ones(n, dtype=np.float64) if sizes is None else sizes.astype(np.float64)
    normed = normalize(metric)
    a_idx, b_idx = np.arange(0, n, 2), np.arange(1, n, 2)
    scores = (normed[a_idx].astype(np.float32) @ normed[b_idx].astype(np.float32).T).astype(np.float64)
    scores[a_idx < protected, :] = -np.inf
    scores[:, b_idx < protected] = -np.inf
    node_max = scores.max(axis=1)
    node_idx = scores.argmax(axis=1)
    edge_order = np.argsort(-node_max, kind="stable")
    src = edge_order[:r]
    dst = node_idx[src]
    weighted = tokens.astype(np.float64) * sizes[:, None]
    total = sizes.copy()
    out_x = {int(b): weighted[b].copy() for b in b_idx}
    out_size = {int(b): total[b] for b in b_idx}
    slot_of = {}
    for s, t in zip(src, dst):
        a_tok, b_tok = int(a_idx[s]), int(b_idx[t])
        out_x[b_tok] += weighted[a_tok]
        out_size[b_tok] += total[a_tok]
        slot_of[a_tok] = b_tok
    for s in edge_order[r:]:
        a_tok = int(a_idx[s])
        out_x[a_tok] = weighted[a_tok].copy()
        out_size[a_tok] = total[a_tok]
    kept = np.array(sorted(out_x), dtype=np.int64)
    out = np.array([out_x[i] / out_size[i] for i in kept], dtype=np.float32)
    position = {int(i): p for p, i in enumerate(kept)}
    slot = np.array([position[slot_of.get(i, i)] for i in range(n)], dtype=np.int64)
    return kept, out, np.array([out_size[i] for i in kept]), slot


def iqr_ratio(attention):
    """PruMerge's outlier_dectection: share of scores above Q3 + 1.5 IQR (NumPy linear percentiles)."""
    q1, q3 = np.percentile(attention, 25), np.percentile(attention, 75)
    return float((attention > q3 + 1.5 * (q3 - q1)).sum()) / len(attention)


def prumerge(tokens, attention, keys, plus, adaptive=True, ratio=1 / 8, neighbours=32):
    """LLaVA-PruMerge / PruMerge+ (42Shawn/LLaVA-PruMerge, clip_encoder.py token_prune_merge_advanced[_plus]):
    keep int(N * ratio) tokens by [CLS] attention (ratio from the IQR outlier rule when adaptive);
    PruMerge+ adds tokens at arange(int(step/6), N-1, int(step/3)), step = int(1/ratio), not already kept;
    each kept token += sum over its `neighbours` most key-similar other tokens of token * attention;
    one extra token = sum of the unkept tokens * attention. Output: kept tokens by ascending index,
    then the extra token."""
    n = tokens.shape[0]
    attn = attention.astype(np.float64).mean(axis=0)
    if adaptive:
        ratio = iqr_ratio(attn)
    left = int(n * ratio)
    order = np.argsort(-attn, kind="stable")
    idx = [int(i) for i in order[:left]]
    if plus and ratio > 0:
        step = int(1 / ratio)
        stride = max(1, int(step / 3))
        idx += [x for x in range(int(step / 6), n - 1, stride) if x not in set(idx)]
    chosen = set(idx)
    compl = [i for i in range(n) if i not in chosen]
    normed = normalize(keys).astype(np.float64)
    toks = tokens.astype(np.float64)
    updated = {}
    for p, i in enumerate(idx):
        rest = idx[:p] + idx[p + 1:] + compl
        sims = normed[rest] @ normed[i]
        pick = np.argsort(-sims, kind="stable")[: min(neighbours, len(rest))]
        chosen_rest = [rest[j] for j in pick]
        updated[i] = toks[i] + (toks[chosen_rest] * attn[chosen_rest][:, None]).sum(axis=0)
    extra = (toks[compl] * attn[compl][:, None]).sum(axis=0) if compl else np.zeros(tokens.shape[1])
    kept = sorted(idx)
    out = np.array([updated[i] for i in kept] + [extra], dtype=np.float32)
    return np.array(kept, dtype=np.int64), out, ratio


def idpruner(tokens, importance, k, lam=0.5, eps=1e-6):
    """IDPruner (Tan et al. 2026): Maximal Marginal Relevance, argmax of lam * Imp - (1 - lam) * max cosine
    to the selected set, Imp = min-max normalized importance (+eps in the denominator)."""
    w = importance.astype(np.float64)
    imp = (w - w.min()) / (w.max() - w.min() + eps)
    normed = normalize(tokens).astype(np.float64)
    sim = normed @ normed.T
    selected = []
    redundancy = np.zeros(len(w))
    for step in range(k):
        score = lam * imp - (1 - lam) * redundancy
        score[selected] = -np.inf
        j = int(np.argmax(score))
        selected.append(j)
        redundancy = sim[j].copy() if step == 0 else np.maximum(redundancy, sim[j])
    return np.sort(np.array(selected, dtype=np.int64))


def query_importance(tokens, query):
    """Importance from a text query: mean over query rows of the cosine to each token."""
    return (normalize(tokens).astype(np.float64) @ normalize(query).astype(np.float64).T).mean(axis=1)


def stc(frames, k, reuse=0.9, alpha=0.5):
    """STC-style streaming reducer (terse's rule, after Wang et al. 2026): a token whose cosine to the cached
    token at its position is >= reuse is static and reused (not sent); among dynamic tokens keep the k with
    the highest alpha * (1 - cos to cache) + (1 - alpha) * (1 - cos to the frame's mean token); the cache
    takes the frame's dynamic tokens. The first frame has no cache: every token is dynamic, temporal term 1."""
    cache = None
    result = []
    for frame in frames:
        normed = normalize(frame).astype(np.float64)
        mean = normalize(frame.astype(np.float64).mean(axis=0, keepdims=True).astype(np.float32)).astype(np.float64)[0]
        spatial = 1.0 - normed @ mean
        if cache is None:
            temporal = np.ones(frame.shape[0])
            dynamic = np.ones(frame.shape[0], dtype=bool)
        else:
            similarity = (normed * normalize(cache).astype(np.float64)).sum(axis=1)
            temporal = 1.0 - similarity
            dynamic = similarity < reuse
        score = alpha * temporal + (1 - alpha) * spatial
        candidates = np.flatnonzero(dynamic)
        order = candidates[np.argsort(-score[candidates], kind="stable")]
        kept = np.sort(order[: min(k, len(order))])
        result.append({"kept": kept.tolist(), "static": int((~dynamic).sum())})
        cache = frame.copy() if cache is None else np.where(dynamic[:, None], frame, cache)
    return result


def scene(seed, n, d, dk, heads):
    """Structured synthetic tokens: a few clusters with noise, attention peaked on some tokens."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(6, d))
    labels = rng.integers(0, 6, size=n)
    tokens = (centres[labels] + 0.3 * rng.normal(size=(n, d))).astype(np.float32)
    keys = (tokens[:, :dk] + 0.1 * rng.normal(size=(n, dk))).astype(np.float32)
    logits = rng.normal(size=(heads, n)) + 3.0 * (rng.random(size=n) < 0.1)
    attention = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return tokens, keys, attention.astype(np.float32)


def main():
    cases = []
    for seed, n, d, dk, heads in [(1, 64, 16, 8, 4), (2, 100, 16, 8, 8), (3, 36, 8, 8, 1)]:
        tokens, keys, attention = scene(seed, n, d, dk, heads)
        k = n // 4
        dominant, contextual = n // 6, n // 12
        vz_kept, vz_targets, vz_tokens, vz_slot = visionzip(tokens, attention, keys, dominant, contextual)
        tm_kept, tm_tokens, tm_sizes, tm_slot = tome(tokens, keys, n // 3, 1)
        side_out = int(round(math.sqrt(n))) // 2 + 1
        pm_kept, pm_tokens, pm_ratio = prumerge(tokens, attention[:1], keys, plus=False)
        pp_kept, pp_tokens, _ = prumerge(tokens, attention[:1], keys, plus=True)
        fixed_kept, fixed_tokens, _ = prumerge(tokens, attention[:1], keys, plus=False, adaptive=False, ratio=0.25, neighbours=8)
        query = np.random.default_rng(seed + 100).normal(size=(3, d)).astype(np.float32)
        rng = np.random.default_rng(seed + 200)
        frames = [tokens]
        for _ in range(3):
            moved = frames[-1].copy()
            change = rng.random(size=n) < 0.3
            moved[change] += rng.normal(size=(int(change.sum()), d)).astype(np.float32)
            frames.append(moved.astype(np.float32))
        cases.append({
            "seed": seed,
            "prumerge": {"kept": pm_kept.tolist(), "tokens": pm_tokens.tolist(), "ratio": pm_ratio},
            "prumerge_plus": {"kept": pp_kept.tolist(), "tokens": pp_tokens.tolist()},
            "prumerge_fixed": {"ratio": 0.25, "neighbours": 8, "kept": fixed_kept.tolist(), "tokens": fixed_tokens.tolist()},
            "idpruner_attention": idpruner(tokens, attention.astype(np.float64).mean(axis=0), k).tolist(),
            "idpruner_query": {"query": query.tolist(), "kept": idpruner(tokens, query_importance(tokens, query), k, lam=0.7).tolist()},
            "stc": {"frames": [f.tolist() for f in frames[1:]], "k": k, "result": stc(frames, k)},
            "tokens": tokens.tolist(),
            "keys": keys.tolist(),
            "attention": attention.tolist(),
            "k": k,
            "uniform": uniform(n, k).tolist(),
            "avg_pool": {"side": side_out, "tokens": avg_pool(tokens, side_out).tolist()},
            "fastervlm": fastervlm(attention, k).tolist(),
            "visionzip": {
                "dominant": dominant,
                "contextual": contextual,
                "kept": vz_kept.tolist(),
                "targets": vz_targets.tolist(),
                "tokens": vz_tokens.tolist(),
                "slot": vz_slot.tolist(),
            },
            "divprune": divprune(tokens, k).tolist(),
            "tome": {
                "r": n // 3,
                "protected": 1,
                "kept": tm_kept.tolist(),
                "tokens": tm_tokens.tolist(),
                "sizes": tm_sizes.tolist(),
                "slot": tm_slot.tolist(),
            },
        })
    json.dump({"format": "terse-vision-reference/1", "cases": cases}, sys.stdout)


if __name__ == "__main__":
    main()
