"""Times the Python reference (llmlingua 0.2.2 over the shipped model, reference_compressor.py)
on the inputs terse's context eval bench hands it, and returns its outputs:

  python tokenizers/lingua/reference/bench_reference.py IN.json OUT.json

IN.json: {"texts": [...], "rate": 0.5}; OUT.json: {"outputs": [...], "seconds": [...],
"onnx_seconds": [...]} (per text: the whole call, and the part spent in ONNX Runtime).
"""

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from reference_compressor import OnnxTokenClassifier, reference_compressor  # noqa: E402


def main():
    request = json.loads(Path(sys.argv[1]).read_text())
    compressor = reference_compressor()
    outputs, seconds, onnx_seconds = [], [], []
    for text in request["texts"]:
        start, onnx_start = time.perf_counter(), OnnxTokenClassifier.seconds
        result = compressor.compress_prompt_llmlingua2([text], rate=request["rate"])
        seconds.append(time.perf_counter() - start)
        onnx_seconds.append(OnnxTokenClassifier.seconds - onnx_start)
        outputs.append(result["compressed_prompt"])
    Path(sys.argv[2]).write_text(json.dumps({"outputs": outputs, "seconds": seconds, "onnx_seconds": onnx_seconds}))


if __name__ == "__main__":
    main()
