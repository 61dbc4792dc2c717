"""Times the NumPy reference reducers on inputs written by the Rust bench (`cargo bench -p terse-vision`).

    python bench.py DIR N D HEADS REPS  ->  prints {"method": [seconds, ...], ...} as JSON
"""

import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import reference as ref  # noqa: E402


def main():
    folder, n, d, heads, reps = Path(sys.argv[1]), *map(int, sys.argv[2:6])
    tokens = np.fromfile(folder / "tokens.f32", dtype="<f4").reshape(n, d)
    attention = np.fromfile(folder / "attention.f32", dtype="<f4").reshape(heads, n)
    k = n // 4
    methods = {
        "fastervlm": lambda: tokens[ref.fastervlm(attention, k)],
        "visionzip": lambda: ref.visionzip(tokens, attention, tokens, k - k * 10 // 64, k * 10 // 64),
        "divprune": lambda: tokens[ref.divprune(tokens, k)],
        "prumerge": lambda: ref.prumerge(tokens, attention, tokens, plus=False),
        "tome": lambda: ref.tome(tokens, tokens, n // 2 - 1, 0),
        "idpruner": lambda: tokens[ref.idpruner(tokens, attention.astype(np.float64).mean(axis=0), k)],
        "uniform": lambda: tokens[ref.uniform(n, k)],
    }
    out = {}
    for name, run in methods.items():
        times = []
        for _ in range(reps):
            start = time.perf_counter()
            run()
            times.append(time.perf_counter() - start)
        out[name] = times
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
