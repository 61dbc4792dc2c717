#!/usr/bin/env python3
"""Measures the working memory per unit (pixel, audio sample, splat, file byte) that the server's cost
model reserves (docs/operations.md, issue 18 finding 4): for each request a fresh `terse`
serves one call, and the rise of its peak RSS (VmHWM) over the idle server is divided by the
request's units. Run: `.venv-sdk/bin/python scripts/cost_model.py image|audio|splat|tensor|kv` after
`cargo build` (uses target/debug/terse, or $TERSE_BIN); `tensor FILE...` measures per file byte,
`kv` per cache value (a random fp32 cache of the first KV model, 512 and 2048 tokens); `tiled [CODEC...]`
measures image calls over the codecs' tile bounds, which are coded in tiles (encode with
quality, and decode, at 2048² and 4096²; mlic-q6 and the default WaLLoC codec unless named)."""

import io
import os
import pathlib
import struct
import subprocess
import sys
import time
import zlib

import numpy as np

ROOT = str(pathlib.Path(__file__).resolve().parents[1])
sys.path.insert(0, f"{ROOT}/clients/python/src")
sys.path.insert(0, f"{ROOT}/clients/python/tests")
from terse_client import Client  # noqa: E402

def png(side):
    rng = np.random.default_rng(side)
    img = (rng.integers(0, 256, (side, side, 3), dtype=np.uint8) // 4 + np.arange(side, dtype=np.uint8)[None, :, None]).astype(np.uint8)
    raw = b"".join(b"\x00" + img[y].tobytes() for y in range(side))
    def chunk(t, d):
        c = struct.pack(">I", len(d)) + t + d
        return c + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(raw, 1)) + chunk(b"IEND", b"")

def hwm(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM"):
            return int(line.split()[1]) / 1024
def rss(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024

def server(services):
    binary = os.environ.get("TERSE_BIN", f"{ROOT}/target/debug/terse")
    config = pathlib.Path(os.environ.get("TMPDIR", "/tmp")) / "terse-cost-model.toml"
    # No deadline and no budget: the measurement must not be cut by what it calibrates.
    config.write_text("[server]\nrequest_timeout_ms = 0\nmax_work_memory_bytes = 1099511627776\n")
    p = subprocess.Popen(
        [binary, "--config", str(config), "--listen", "127.0.0.1:0", "--metrics-listen", "",
         "--services", services, "--log-level", "warn"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    line = p.stdout.readline()
    addr = dict(x.split("=", 1) for x in line.split()[2:])["grpc"]
    return p, addr

def run(label, services, work):
    p, addr = server(services)
    base = hwm(p.pid)
    with Client(addr, timeout=600) as c:
        t = time.time(); units = work(c); dt = time.time() - t
    peak = hwm(p.pid)
    p.terminate(); p.wait()
    print(f"{label}: base {base:.0f} MiB peak {peak:.0f} MiB delta {peak-base:.0f} MiB units {units} -> {(peak-base)*2**20/units:.1f} B/unit, {dt:.1f}s", flush=True)

what = sys.argv[1]
if what == "image":
    for side in [1024, 2048]:
        data = png(side)
        for codec in ["mlic-q6", ""]:
            def work(c, data=data, codec=codec, side=side):
                r = c.image.encode(data, codec=codec, measure_quality=False)
                return side * side
            run(f"encode {codec or 'walloc'} {side}", "image", work)
            def work2(c, data=data, codec=codec, side=side):
                r = c.image.encode(data, codec=codec, measure_quality=False)
                c.image.decode(r.bitstream)
                return side * side
            run(f"encode+decode {codec or 'walloc'} {side}", "image", work2)
if what == "tiled":
    for side in [2048, 4096]:
        data = png(side)
        for codec in sys.argv[2:] or ["mlic-q6", ""]:
            def work(c, data=data, codec=codec, side=side):
                c.image.encode(data, codec=codec, measure_quality=True)
                return side * side
            run(f"encode with quality {codec or 'walloc'} {side}", "image", work)
            bitstream = None
            def work2(c, data=data, codec=codec, side=side):
                r = c.image.encode(data, codec=codec, measure_quality=False)
                return r.bitstream
            p, addr = server("image")
            with Client(addr, timeout=600) as c:
                bitstream = work2(c)
            p.terminate(); p.wait()
            def work3(c, bitstream=bitstream, side=side):
                c.image.decode(bitstream)
                return side * side
            run(f"decode {codec or 'walloc'} {side}", "image", work3)
if what == "audio":
    import wave
    for seconds in [30, 120]:
        rng = np.random.default_rng(1)
        n = 48000 * seconds
        t = np.arange(n) / 48000
        x = (0.3 * np.sin(2 * np.pi * 440 * t)[:, None] + 0.05 * rng.normal(size=(n, 2))).clip(-1, 1)
        buf = io.BytesIO()
        with wave.open(buf, "wb") as w:
            w.setnchannels(2); w.setsampwidth(2); w.setframerate(48000)
            w.writeframes((x * 32767).astype("<i2").tobytes())
        data = buf.getvalue()
        def work(c, data=data, n=n):
            r = c.audio.encode(data, measure_quality=False)
            return n
        run(f"audio encode {seconds}s", "audio", work)
        def work2(c, data=data, n=n):
            r = c.audio.encode(data, measure_quality=False)
            c.audio.decode(r.bitstream)
            return n
        run(f"audio encode+decode {seconds}s", "audio", work2)
if what == "splat":
    from test_sdk import _synthetic_ply
    for n in [50_000, 200_000]:
        data = _synthetic_ply(n)
        def work(c, data=data, n=n):
            c.splat.encode(data)
            return n
        run(f"splat encode {n}", "splat", work)
        def work2(c, data=data, n=n):
            r = c.splat.encode(data)
            c.splat.decode(r.bitstream)
            return n
        run(f"splat encode+decode {n}", "splat", work2)
if what == "tensor":
    # Real checkpoints (scripts/tensor-weights.py OUT_DIR), paths after the mode.
    for path in sys.argv[2:]:
        data = pathlib.Path(path).read_bytes()
        name = pathlib.Path(path).name
        def work(c, data=data):
            c.tensor.encode(data)
            return len(data)
        run(f"tensor encode {name}", "tensor", work)
        # The bitstream from a throwaway server, so the measured one only decodes.
        p, addr = server("tensor")
        with Client(addr, timeout=600) as c:
            bitstream = c.tensor.encode(data).bitstream
        p.terminate(); p.wait()
        def work2(c, bitstream=bitstream, n=len(data)):
            c.tensor.decode(bitstream)
            return n
        run(f"tensor decode {name}", "tensor", work2)
if what == "kv":
    p, addr = server("tensor")
    with Client(addr, timeout=600) as c:
        model = c.tensor.list_kv_models()[0]
    p.terminate(); p.wait()
    for tokens in [512, 2048]:
        shape = (model.layers, 2, model.kv_heads, tokens, model.head_dim)
        cache = np.random.default_rng(tokens).standard_normal(shape, dtype=np.float32)
        def work(c, cache=cache):
            c.tensor.encode_kv_cache(model.model.name, cache, level=3)
            return cache.size
        run(f"kv encode {model.model.name} {tokens} tokens", "tensor", work)
        p, addr = server("tensor")
        with Client(addr, timeout=600) as c:
            bitstream = c.tensor.encode_kv_cache(model.model.name, cache, level=3).bitstream
        p.terminate(); p.wait()
        def work2(c, bitstream=bitstream, n=cache.size):
            c.tensor.decode_kv_cache(bitstream)
            return n
        run(f"kv decode {model.model.name} {tokens} tokens", "tensor", work2)
