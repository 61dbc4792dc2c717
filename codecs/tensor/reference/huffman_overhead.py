#!/usr/bin/env python3
"""What a Huffman code of the tensor codec's symbols would cost over their entropy (the
question behind a faster decode path, docs/tensors.md).

Usage: huffman_overhead.py FILE.safetensors...  (numpy only; files from
scripts/tensor-weights.py). For every BF16 tensor (FP32 ones cast to BF16, round to nearest
even), in chunks of 2^18 elements as the codec cuts them, it compares the entropy of the
9-bit symbol (exponent and top mantissa bit) with the mean length of a Huffman code built
from the chunk's own histogram (lengths not limited), and prints the difference in bits per
element and as a share of the BF16 size.
"""
import heapq, json, struct, sys
import numpy as np
def load(path):
    """The BF16 bit patterns of every float tensor of a safetensors file."""
    raw = open(path, 'rb').read()
    n = struct.unpack('<Q', raw[:8])[0]
    head = json.loads(raw[8:8+n]); data = raw[8+n:]
    out = []
    for k, v in head.items():
        if k == '__metadata__': continue
        a, b = v['data_offsets']; buf = data[a:b]
        if v['dtype'] == 'F32':
            u = np.frombuffer(buf, '<u4').astype(np.uint64)
            r = ((u + 0x7fff + ((u >> 16) & 1)) >> 16).astype(np.uint16)
        elif v['dtype'] == 'BF16':
            r = np.frombuffer(buf, '<u2')
        else: continue
        out.append(r)
    return out
def huff_lengths(counts):
    """Code lengths of a plain (not length-limited) Huffman code."""
    heap = [(c, i) for i, c in enumerate(counts)]
    if len(heap) == 1: return [1]
    heapq.heapify(heap); nid = len(counts)
    depth = [0]*len(counts); groups = {i: [i] for i in range(len(counts))}
    while len(heap) > 1:
        c1, a = heapq.heappop(heap); c2, b = heapq.heappop(heap)
        g = groups.pop(a) + groups.pop(b)
        for s in g: depth[s] += 1
        groups[nid] = g; heapq.heappush(heap, (c1 + c2, nid)); nid += 1
    return depth
tot_h = tot_huf = tot_n = 0; maxlen = 0
for path in sys.argv[1:]:
    for t in load(path):
        for start in range(0, len(t), 1 << 18):
            sym = (t[start:start + (1 << 18)] >> 6) & 0x1ff
            vals, counts = np.unique(sym, return_counts=True)
            p = counts / counts.sum()
            h = -(counts * np.log2(p)).sum()
            L = huff_lengths(list(counts))
            maxlen = max(maxlen, max(L))
            tot_h += h; tot_huf += (counts * np.array(L)).sum(); tot_n += counts.sum()
print(f"symbols {tot_n}: entropy {tot_h/tot_n:.4f} bits, huffman {tot_huf/tot_n:.4f} bits, overhead {(tot_huf-tot_h)/tot_n:.4f} bits/elem = {100*(tot_huf-tot_h)/8/(2*tot_n):.3f} % of BF16 size; max code length {maxlen}")
