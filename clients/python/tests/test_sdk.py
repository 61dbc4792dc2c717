"""The Python SDK against the real server: every service, sync and asyncio, errors, retries."""

from __future__ import annotations

import asyncio
import io
import subprocess
import sys
import threading
import time
import wave

import grpc
import numpy as np
import pytest

from conftest import FIXTURES, ROOT, Server
from terse_client import AsyncClient, Client, kv_array

PASSAGE = (
    "The Eiffel Tower is a wrought-iron lattice tower on the Champ de Mars in Paris, France. "
    "It is named after the engineer Gustave Eiffel, whose company designed and built the tower "
    "from 1887 to 1889. Locally nicknamed La dame de fer, it was constructed as the centrepiece "
    "of the 1889 World's Fair."
)


def test_image_round_trip_from_a_path_and_streamed(server):
    with Client(server.address, timeout=60) as client:
        path = FIXTURES / "images" / "astronaut_200x136.png"
        result = client.image.encode(path)
        assert (result.width, result.height) == (200, 136)
        assert result.rate_distortion.psnr_db > 20
        assert result.rate_distortion.bits_per_pixel == pytest.approx(
            8 * len(result.bitstream) / (200 * 136)
        )
        decoded = client.image.decode(result.bitstream, format="png")
        assert decoded.image.startswith(b"\x89PNG")
        assert (decoded.width, decoded.height) == (200, 136)
    # Inputs over chunk_bytes go through EncodeStream: the bitstream is the same.
    with Client(server.address, chunk_bytes=4096) as chunked:
        assert chunked.image.encode(path.read_bytes()).bitstream == result.bitstream
        coarse = chunked.image.encode(path, latent_bits=5)
        assert len(coarse.bitstream) < len(result.bitstream)


def test_audio_and_splats(server):
    with Client(server.address, timeout=60) as client:
        encoded = client.audio.encode(FIXTURES / "audio" / "speech_16k_mono_3s.wav", resample=True)
        assert encoded.resampled_from == 16000
        wav = client.audio.decode(encoded.bitstream).wav
        with wave.open(io.BytesIO(wav)) as reader:
            assert reader.getnframes() == encoded.frames
        with pytest.raises(grpc.RpcError) as refused:
            client.audio.encode(FIXTURES / "audio" / "speech_16k_mono_3s.wav")
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT

        ply = FIXTURES / "splats" / "yashica_1024_sh3.ply"
        scene = client.splat.encode(ply, preset="small")
        assert scene.splat_count == 1024
        assert client.splat.info(scene.bitstream).splat_count == 1024
        decoded = client.splat.decode(scene.bitstream, format="spz")
        assert decoded.splat_count == 1024 and len(decoded.scene) > 0


def _bf16_safetensors(n: int) -> bytes:
    """A safetensors file of one BF16 tensor ``w`` of weight-like values."""
    values = np.random.default_rng(5).normal(0, 0.04, n).astype(np.float32)
    data = (values.view(np.uint32) >> 16).astype("<u2").tobytes()
    header = f'{{"w":{{"dtype":"BF16","shape":[{n}],"data_offsets":[0,{2 * n}]}}}}'
    header += " " * (-len(header) % 8)
    return len(header).to_bytes(8, "little") + header.encode() + data


def test_weights_round_trip_byte_for_byte(server):
    model = _bf16_safetensors(600_000)
    with Client(server.address, timeout=60, chunk_bytes=256 << 10) as client:
        encoded = client.tensor.encode(model)
        assert len(encoded.bitstream) < 0.75 * len(model)
        assert [(t.name, t.dtype, list(t.shape)) for t in encoded.tensors] == [
            ("w", "BF16", [600_000])
        ]
        assert client.tensor.decode(encoded.bitstream) == model
        assert client.tensor.read_tensor(encoded.bitstream, "w").data == model[-1_200_000:]
        assert client.tensor.info(encoded.bitstream).file_bytes == len(model)
        with pytest.raises(grpc.RpcError) as missing:
            client.tensor.read_tensor(encoded.bitstream, "v")
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    # Small enough for unary Encode: the same bitstream.
    with Client(server.address, timeout=60, chunk_bytes=4 << 20) as unary:
        assert unary.tensor.encode(model).bitstream == encoded.bitstream


def test_kv_caches_in_float16_and_float32_within_the_reported_error(server):
    with Client(server.address, timeout=60) as client:
        models = {m.model.name: m for m in client.tensor.list_kv_models()}
        lm = models["smollm2-135m"]
        shape = (lm.layers, 2, lm.kv_heads, 64, lm.head_dim)
        # A cache's structure: channel offsets, a slow drift over tokens, some noise.
        channel = np.arange(shape[-1]) * 0.05
        drift = np.sin(np.arange(shape[3]) * 0.1)[:, None]
        noise = np.random.default_rng(7).normal(0, 0.1, shape)
        cache = (channel + drift + noise).astype(np.float32)
        for dtype in (np.float32, np.float16):
            encoded = client.tensor.encode_kv_cache("smollm2-135m", cache.astype(dtype), level=6)
            assert 0 < encoded.rate_distortion.bits_per_element < 8
            decoded = client.tensor.decode_kv_cache(encoded.bitstream)
            values = kv_array(decoded.cache)
            assert values.dtype == dtype and values.shape == shape
            error = np.abs(values.astype(np.float64) - cache.astype(dtype).astype(np.float64)).max()
            assert error <= encoded.max_abs_error + 1e-3
        with pytest.raises(ValueError):
            client.tensor.encode_kv_cache("smollm2-135m", cache[0])
        with pytest.raises(grpc.RpcError) as wrong:
            client.tensor.encode_kv_cache("smollm2-135m", cache[:, :, :2].copy())
        assert wrong.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_llmlingua_and_longllmlingua_match_the_python_package(server):
    fixture = ROOT / "tokenizers" / "perplexity" / "tests" / "fixtures" / "llmlingua.json"
    import json

    cases = json.loads(fixture.read_text())["cases"]
    case = next(c for c in cases if c["method"] == "longllmlingua")
    with Client(server.address, timeout=120) as client:
        result = client.context.compress_prompt_llmlingua(
            case["context"], method="longllmlingua", question=case["question"],
            rate=case["rate"], iterative_size=case["iterative_size"],
        )
        assert result.compressed_prompt == case["compressed_prompt"]
        with pytest.raises(grpc.RpcError) as missing:
            client.context.compress_prompt_llmlingua(case["context"], method="longllmlingua")
        assert missing.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(ValueError):
            client.context.compress_prompt_llmlingua("text", method="llmlingua-3")


def test_async_weights_stream_both_ways(server):
    model = _bf16_safetensors(300_000)

    async def run():
        async with AsyncClient(server.address, chunk_bytes=64 << 10) as client:
            encoded = await client.tensor.encode(model)
            return await client.tensor.decode(encoded.bitstream)

    assert asyncio.run(run()) == model


def test_context_compression(server):
    with Client(server.address) as client:
        response = client.context.compress_prompt(PASSAGE, rate=0.5, force_tokens=["."])
        assert 0 < response.compressed_tokens < response.origin_tokens
        assert response.compressed_prompt
        selected = client.context.compress_context(
            "Which engineer is the tower named after?", [PASSAGE], top_k_sentences=1
        )
        assert len(selected.sentences) == 1
        assert "Gustave Eiffel" in selected.compressed_context
        with pytest.raises(grpc.RpcError) as bad:
            client.context.compress_prompt(PASSAGE, rate=1.5)
        assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_visual_tokens_numpy_in_and_out(server):
    rng = np.random.default_rng(7)
    tokens = rng.standard_normal((2, 64, 16)).astype(np.float32)
    attention = rng.random((2, 64)).astype(np.float32)
    with Client(server.address) as client:
        images = client.vision.prune_tokens(
            tokens, method="fastervlm", keep=8, cls_attention=attention
        )
        assert len(images) == 2
        for b, image in enumerate(images):
            assert image.tokens.shape == (8, 16)
            expected = np.sort(np.argsort(-attention[b], kind="stable")[:8])
            np.testing.assert_array_equal(image.kept_indices, expected)
            np.testing.assert_array_equal(image.tokens, tokens[b, image.kept_indices])
        ratio = client.vision.prune_tokens(tokens[0], method="uniform", keep=0.25)
        assert ratio[0].tokens.shape == (16, 16)


def test_async_client_runs_calls_concurrently(server):
    async def main():
        async with AsyncClient(server.address, timeout=60) as client:
            assert await client.serving()
            png = (FIXTURES / "images" / "coffee_131x97.png").read_bytes()
            encoded, prompt = await asyncio.gather(
                client.image.encode(png), client.context.compress_prompt(PASSAGE, rate=0.5)
            )
            decoded = await client.image.decode(encoded.bitstream)
            return decoded, prompt

    decoded, prompt = asyncio.run(main())
    assert (decoded.width, decoded.height) == (131, 97)
    assert prompt.compressed_tokens < prompt.origin_tokens


def test_unavailable_is_retried_until_the_server_comes_up(free_port):
    address = f"127.0.0.1:{free_port}"
    with Client(address, retries=0) as impatient:
        with pytest.raises(grpc.RpcError) as error:
            impatient.serving()
        assert error.value.code() == grpc.StatusCode.UNAVAILABLE

    started = {}

    def start_later():
        time.sleep(0.3)
        started["server"] = Server(listen=address, services="vision")

    thread = threading.Thread(target=start_later)
    thread.start()
    try:
        with Client(address, retries=12, backoff=0.05) as patient:
            assert patient.serving()
    finally:
        thread.join()
        started["server"].stop()


def test_mutual_tls_and_bearer_token(tmp_path):
    tls = FIXTURES / "tls"
    token = "python-sdk-token-5e8f0a7c"
    tokens = tmp_path / "tokens"
    tokens.write_text(token + "\n")
    secured = Server(
        services="models",
        extra=[
            "--tls-cert", str(tls / "server.pem"),
            "--tls-key", str(tls / "server.key"),
            "--tls-client-ca", str(tls / "ca.pem"),
            "--auth-tokens-file", str(tokens),
        ],
    )
    address = "localhost:" + secured.address.rsplit(":", 1)[1]
    identity = dict(
        root_certificates=tls / "ca.pem",
        private_key=tls / "client.key",
        certificate_chain=tls / "client.pem",
        retries=0,
    )
    try:
        with Client(address, token=token, **identity) as client:
            assert client.serving()
            assert len(client.models.list()) > 0
        with Client(address, **identity) as anonymous:
            assert anonymous.serving()  # health needs no token
            with pytest.raises(grpc.RpcError) as error:
                anonymous.models.list()
            assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with Client(address, token=token, root_certificates=tls / "ca.pem", retries=0) as no_cert:
            with pytest.raises(grpc.RpcError) as error:
                no_cert.models.list()
            assert error.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        secured.stop()
    assert token not in "".join(secured._stderr)


def test_calls_are_spread_over_replicas():
    replicas = [Server(services="vision", extra=["--log-level", "debug"]) for _ in range(2)]
    try:
        target = "ipv4:" + ",".join(r.address for r in replicas)
        with Client(target) as client:
            for _ in range(20):
                assert client.serving("compress.vision.v1.VisionService")
        time.sleep(0.2)
        calls = ["".join(r._stderr).count("call finished") for r in replicas]
        assert all(n > 0 for n in calls), calls
    finally:
        for replica in replicas:
            replica.stop()


def test_deadline_is_enforced(server):
    with Client(server.address, timeout=0.001, retries=0) as client:
        with pytest.raises(grpc.RpcError) as error:
            client.context.compress_prompt(PASSAGE * 40, rate=0.5)
        assert error.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED


@pytest.mark.parametrize(
    "example, args, expect",
    [
        ("roundtrip_image.py", ["images/astronaut_200x136.png"], "200x136"),
        ("compress_context.py", [], "tokens"),
        ("prune_tokens.py", [], "kept 64 of 576"),
    ],
)
def test_examples_print_what_the_readme_says(server, tmp_path, example, args, expect):
    paths = [str(FIXTURES / arg) for arg in args]
    output = subprocess.run(
        [sys.executable, str(ROOT / "clients" / "python" / "examples" / example), server.address]
        + paths
        + [str(tmp_path / "out.png")] * bool(args),
        input=PASSAGE,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert expect in output.stdout + output.stderr



def _synthetic_ply(n: int, seed: int = 7) -> bytes:
    """A binary 3DGS PLY (INRIA layout, SH degree 3) of ``n`` random splats."""
    rng = np.random.default_rng(seed)
    names = (
        ["x", "y", "z", "nx", "ny", "nz"]
        + [f"f_dc_{i}" for i in range(3)]
        + [f"f_rest_{i}" for i in range(45)]
        + ["opacity"]
        + [f"scale_{i}" for i in range(3)]
        + [f"rot_{i}" for i in range(4)]
    )
    values = np.zeros((n, len(names)), np.float32)
    values[:, 0:3] = rng.uniform(-1, 1, (n, 3))
    values[:, 6:9] = rng.normal(0, 0.5, (n, 3))
    values[:, 9:54] = rng.normal(0, 0.05, (n, 45))
    values[:, 54] = rng.normal(0, 2, n)
    values[:, 55:58] = rng.uniform(-6, -3, (n, 3))
    rotations = rng.normal(0, 1, (n, 4))
    values[:, 58:62] = rotations / np.linalg.norm(rotations, axis=1, keepdims=True)
    header = "ply\nformat binary_little_endian 1.0\n" + f"element vertex {n}\n"
    header += "".join(f"property float {name}\n" for name in names) + "end_header\n"
    return header.encode() + values.astype("<f4").tobytes()


def test_outputs_over_the_response_limit_decode_through_the_stream(tmp_path):
    """Issue 18, finding 12: decode uses DecodeStream, so an output over the server's
    response-size limit (lowered to 2 MiB, the smallest allowed; the PLY is 3 MB) still comes
    back."""
    config = tmp_path / "terse.toml"
    config.write_text(
        '[server]\nservices = ["splat"]\n[server.max_response_bytes]\ndefault = 2097152\n'
    )
    ply = _synthetic_ply(12_000)
    assert len(ply) > 2097152
    limited = Server(extra=["--config", str(config)])
    try:
        with Client(limited.address, timeout=120) as client:
            encoded = client.splat.encode(ply)
            decoded = client.splat.decode(encoded.bitstream)
        assert len(decoded.scene) == len(ply)
        assert decoded.scene.startswith(b"ply\n")
        assert decoded.splat_count == 12_000

        async def decode_async():
            async with AsyncClient(limited.address, timeout=120) as client:
                return await client.splat.decode(encoded.bitstream)

        assert asyncio.run(decode_async()).scene == decoded.scene
    finally:
        limited.stop()
