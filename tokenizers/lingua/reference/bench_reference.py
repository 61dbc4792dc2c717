"""Times the Python reference (llmlingua 0.2.2 over the shipped model, reference_compressor.py)
on the inputs terse's context eval bench hands it, and returns its outputs:

  python tokenizers/lingua/reference/bench_reference.py IN.json OUT.json

IN.json: {"texts": [...], "rate": 0.5}; OUT.json: {"outputs": [...], "seconds": [...]}.
"""

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from reference_compressor import reference_compressor  # noqa: E402


def main():
    request = json.loads(Path(sys.argv[1]).read_text())
    compressor = reference_compressor()
    outputs, seconds = [], []
    for text in request["texts"]:
        start = time.perf_counter()
        result = compressor.compress_prompt_llmlingua2([text], rate=request["rate"])
        seconds.append(time.perf_counter() - start)
        outputs.append(result["compressed_prompt"])
    Path(sys.argv[2]).write_text(json.dumps({"outputs": outputs, "seconds": seconds}))


if __name__ == "__main__":
    main()
