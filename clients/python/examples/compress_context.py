"""Compress the prompt on stdin to half its tokens with LLMLingua-2.

    echo "a long prompt ..." | python examples/compress_context.py 127.0.0.1:50051
"""

import sys

from terse_client import Client

with Client(sys.argv[1]) as client:
    response = client.context.compress_prompt(sys.stdin.read(), rate=0.5)
    print(response.compressed_prompt)
    print(f"{response.origin_tokens} -> {response.compressed_tokens} tokens", file=sys.stderr)
