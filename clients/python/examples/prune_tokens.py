"""Prune 576 visual tokens to 64 with DivPrune (numpy in, numpy out).

    python examples/prune_tokens.py 127.0.0.1:50051
"""

import sys

import numpy as np

from terse_client import Client

tokens = np.random.default_rng(0).standard_normal((576, 1024)).astype(np.float32)
with Client(sys.argv[1]) as client:
    (image,) = client.vision.prune_tokens(tokens, method="divprune", keep=64)
    print(f"kept {image.tokens.shape[0]} of {tokens.shape[0]} tokens: {image.kept_indices[:8]}...")
