#!/usr/bin/env python3
"""ZipNN on a safetensors file, for the tensor_eval bench (issue 22).

Usage: tensor-baselines.py FILE [--bf16]

Runs PyPI `zipnn` (0.5.4) the way its README shows for model weights, once per tensor, in
both of its input modes: `byte` (the tensor's raw bytes with the dtype named) and `torch` (the
tensor itself). With --bf16, F32 tensors are first cast to BF16 with torch (round to nearest
even), as the Rust bench casts them. Prints one line per mode: compressed size as a share of
the file, compression and decompression throughput (MB/s of tensor data, best of 5 decodes,
zipnn's own threads, i.e. all cores), and how many tensors came back bit-exact. Not run by the
test suite; needs a venv with zipnn, torch, numpy and safetensors.
"""

import sys
import time

import torch
from safetensors.torch import load_file
from zipnn import ZipNN

BYTE_DTYPES = {torch.bfloat16: "bfloat16", torch.float16: "float16", torch.float32: "float32"}


def raw_bytes(tensor):
    return tensor.contiguous().view(torch.uint8).numpy().tobytes()


def run(tensors, file_bytes, mode):
    packed, sizes, encode_s, exact = [], 0, 0.0, 0
    for name, tensor in tensors.items():
        if tensor.dtype not in BYTE_DTYPES or tensor.numel() == 0:
            sizes += tensor.numel() * tensor.element_size()
            continue
        if mode == "byte":
            codec = ZipNN(input_format="byte", bytearray_dtype=BYTE_DTYPES[tensor.dtype])
            data = raw_bytes(tensor)
        else:
            codec = ZipNN(input_format="torch")
            # zipnn 0.5.4 rewrites the tensor it compresses in place (its sign-bit reorder),
            # so it gets a copy and the original stays the reference.
            data = tensor.clone()
        start = time.perf_counter()
        compressed = codec.compress(data)
        encode_s += time.perf_counter() - start
        sizes += len(compressed)
        packed.append((name, codec, compressed))
    decode_s = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        outputs = [(name, codec.decompress(c)) for name, codec, c in packed]
        decode_s = min(decode_s, time.perf_counter() - start)
    for name, out in outputs:
        expected = raw_bytes(tensors[name])
        got = bytes(out) if mode == "byte" else raw_bytes(out)
        exact += got == expected
    data_bytes = sum(t.numel() * t.element_size() for t in tensors.values())
    print(
        f"zipnn {mode}: {100 * sizes / file_bytes:.2f}% of the tensor bytes, "
        f"enc {data_bytes / encode_s / 1e6:.0f} MB/s, dec {data_bytes / decode_s / 1e6:.0f} MB/s, "
        f"{exact}/{len(packed)} tensors bit-exact"
    )


def main():
    path = sys.argv[1]
    tensors = load_file(path)
    if "--bf16" in sys.argv[2:]:
        tensors = {
            n: (t.to(torch.bfloat16) if t.dtype == torch.float32 else t) for n, t in tensors.items()
        }
    file_bytes = sum(t.numel() * t.element_size() for t in tensors.values())
    for mode in ("byte", "torch"):
        run(tensors, file_bytes, mode)


if __name__ == "__main__":
    main()
