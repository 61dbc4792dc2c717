"""Typed clients over the generated stubs.

The service wrappers build requests and interpret responses once; an *invoker* performs the
calls: :class:`_SyncInvoker` for :class:`Client`, :class:`_AsyncInvoker` (``grpc.aio``) for
:class:`AsyncClient`. Every call carries the deadline and the bearer token, and is retried on
``UNAVAILABLE`` with exponential back-off.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Sequence, Union

import grpc
import numpy as np
from grpc_health.v1 import health_pb2, health_pb2_grpc

from terse_client import _tensors
from terse_client._proto.compress.audio.v1 import audio_pb2, audio_pb2_grpc
from terse_client._proto.compress.common.v1 import common_pb2
from terse_client._proto.compress.context.v1 import context_pb2, context_pb2_grpc
from terse_client._proto.compress.image.v1 import image_pb2, image_pb2_grpc
from terse_client._proto.compress.models.v1 import models_pb2, models_pb2_grpc
from terse_client._proto.compress.splat.v1 import splat_pb2, splat_pb2_grpc
from terse_client._proto.compress.tensor.v1 import tensor_pb2, tensor_pb2_grpc
from terse_client._proto.compress.vision.v1 import vision_pb2, vision_pb2_grpc

#: A file path or the file's bytes.
Source = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview]

_MAX_MESSAGE = 256 << 20
_IMAGE_FORMATS = {
    "png": image_pb2.IMAGE_FORMAT_PNG,
    "webp": image_pb2.IMAGE_FORMAT_WEBP,
    "raw_rgb8": image_pb2.IMAGE_FORMAT_RAW_RGB8,
}
_SPLAT_FORMATS = {
    "ply": splat_pb2.SPLAT_FORMAT_PLY,
    "spz": splat_pb2.SPLAT_FORMAT_SPZ,
    "terse": splat_pb2.SPLAT_FORMAT_TERSE,
}
_PRESETS = {
    "high": splat_pb2.PRESET_HIGH,
    "balanced": splat_pb2.PRESET_BALANCED,
    "small": splat_pb2.PRESET_SMALL,
    "web": splat_pb2.PRESET_WEB,
}
_PRUNE_METHODS = {
    name.removeprefix("PRUNE_METHOD_").lower(): value
    for name, value in vision_pb2.PruneMethod.items()
    if value != vision_pb2.PRUNE_METHOD_UNSPECIFIED
}


def _read(source: Source) -> bytes:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source)
    with open(source, "rb") as file:
        return file.read()


def _choice(table: dict, value: str, what: str) -> int:
    try:
        return table[value.lower()]
    except KeyError:
        raise ValueError(f"unknown {what} {value!r}; expected one of {sorted(table)}") from None


def _keep(keep: Union[int, float]) -> vision_pb2.Keep:
    """An ``int`` is a token count, a ``float`` in (0, 1] a ratio."""
    if isinstance(keep, bool) or not isinstance(keep, (int, float)):
        raise TypeError("keep is a token count (int) or a ratio (float)")
    if isinstance(keep, int):
        return vision_pb2.Keep(count=keep)
    return vision_pb2.Keep(ratio=keep)


@dataclass
class PrunedImage:
    """One image's reduced visual tokens."""

    #: Indices of the kept input tokens, ascending.
    kept_indices: np.ndarray
    #: Output tokens ``[slots, D]``: kept tokens in index order, then merged tokens.
    tokens: np.ndarray
    #: Per input token, its output slot or -1 when dropped.
    slot: np.ndarray
    #: Per output slot, how many input tokens it stands for.
    sizes: np.ndarray
    #: Tokens the reduced sequence counts as.
    effective_tokens: int
    #: Per-token scores, when asked for.
    scores: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))

    @classmethod
    def from_proto(cls, reduction: vision_pb2.ImageReduction) -> "PrunedImage":
        return cls(
            kept_indices=np.asarray(reduction.kept_indices, dtype=np.uint32),
            tokens=_tensors.to_array(reduction.tokens),
            slot=np.asarray(reduction.slot, dtype=np.int32),
            sizes=np.asarray(reduction.sizes, dtype=np.float32),
            effective_tokens=reduction.effective_tokens,
            scores=np.asarray(reduction.scores, dtype=np.float32),
        )


def _retry_config(retries: int, backoff: float) -> tuple[int, float]:
    if retries < 0 or backoff < 0:
        raise ValueError("retries and backoff must be non-negative")
    return retries, backoff


class _SyncInvoker:
    def __init__(self, channel: grpc.Channel, timeout, retries, backoff, metadata):
        self.channel = channel
        self.timeout = timeout
        self.retries, self.backoff = _retry_config(retries, backoff)
        self.metadata = metadata

    def call(self, method: Callable, request_factory: Callable[[], Any], post: Callable):
        delay = self.backoff
        for attempt in range(self.retries + 1):
            try:
                response = method(request_factory(), timeout=self.timeout, metadata=self.metadata)
                return post(response)
            except grpc.RpcError as error:
                if error.code() != grpc.StatusCode.UNAVAILABLE or attempt == self.retries:
                    raise
                time.sleep(delay)
                delay *= 2

    def download(self, method: Callable, request_factory: Callable[[], Any], post: Callable):
        """A server-streaming call whose messages are all read, then passed to ``post``."""
        return self.call(method, request_factory, lambda parts: post(list(parts)))


class _AsyncInvoker(_SyncInvoker):
    async def download(self, method: Callable, request_factory: Callable[[], Any], post: Callable):
        delay = self.backoff
        for attempt in range(self.retries + 1):
            try:
                call = method(request_factory(), timeout=self.timeout, metadata=self.metadata)
                return post([part async for part in call])
            except grpc.aio.AioRpcError as error:
                if error.code() != grpc.StatusCode.UNAVAILABLE or attempt == self.retries:
                    raise
                await asyncio.sleep(delay)
                delay *= 2

    async def call(self, method: Callable, request_factory: Callable[[], Any], post: Callable):
        delay = self.backoff
        for attempt in range(self.retries + 1):
            try:
                response = await method(
                    request_factory(), timeout=self.timeout, metadata=self.metadata
                )
                return post(response)
            except grpc.aio.AioRpcError as error:
                if error.code() != grpc.StatusCode.UNAVAILABLE or attempt == self.retries:
                    raise
                await asyncio.sleep(delay)
                delay *= 2


def _assemble(parts: list) -> tuple[Any, bytes]:
    """The first message of a ``DecodeStream`` (its header fields) and the whole file, each
    chunk's offset checked against the bytes before it."""
    if not parts:
        raise ValueError("DecodeStream ended without a message")
    data = bytearray()
    for part in parts:
        if part.HasField("chunk"):
            if part.chunk.offset != len(data):
                raise ValueError(
                    f"DecodeStream chunk at offset {part.chunk.offset} follows {len(data)} bytes"
                )
            data += part.chunk.data
    return parts[0], bytes(data)


class _Service:
    def __init__(self, invoker: _SyncInvoker, stub, chunk_bytes: int):
        self._invoker = invoker
        self._stub = stub
        self._chunk_bytes = chunk_bytes

    def _unary(self, name: str, request, post: Callable = lambda response: response):
        return self._invoker.call(getattr(self._stub, name), lambda: request, post)

    def _upload(self, module, field_name: str, data: bytes, options):
        """``Encode`` for small inputs, else ``EncodeStream`` (options, then 1 MiB chunks)."""
        result = lambda response: response.result  # noqa: E731
        if len(data) <= self._chunk_bytes:
            request = module.EncodeRequest(**{field_name: data}, options=options)
            return self._unary("Encode", request, result)
        parts = self._chunks(
            data,
            lambda chunk: module.EncodeStreamRequest(chunk=chunk),
            first=module.EncodeStreamRequest(options=options),
        )
        return self._invoker.call(self._stub.EncodeStream, parts, result)

    def _chunks(
        self, data: bytes, wrap: Callable[[Any], Any], first=None
    ) -> Callable[[], Iterator]:
        """The messages of a streamed upload: ``first`` (when given), then ``data`` in chunks of
        ``chunk_bytes``, each wrapped by ``wrap``; a factory, so a retried call sends them
        again."""
        size = self._chunk_bytes

        def parts() -> Iterator:
            if first is not None:
                yield first
            for offset in range(0, len(data), size):
                yield wrap(common_pb2.Chunk(data=data[offset : offset + size], offset=offset))

        return parts

    def _download(self, request, build: Callable[[Any, bytes], Any]):
        """``DecodeStream``: the output comes back in chunks, so its size is not bounded by
        the server's response-size limit; ``build`` makes the unary response from the first
        message and the file."""
        return self._invoker.download(
            self._stub.DecodeStream, lambda: request, lambda parts: build(*_assemble(parts))
        )


class ImageService(_Service):
    """``compress.image.v1``: learned image codecs."""

    def list_codecs(self):
        """The codecs the server hosts (``ListCodecsResponse.codecs``)."""
        return self._unary("ListCodecs", image_pb2.ListCodecsRequest(), lambda r: list(r.codecs))

    def encode(
        self,
        image: Source,
        *,
        codec: str = "",
        latent_bits: int = 0,
        measure_quality: bool = True,
        return_reconstruction: bool = False,
        return_latents: bool = False,
    ) -> image_pb2.EncodeResult:
        """Encodes a PNG/JPEG/WebP/BMP/TIFF file (path or bytes). ``latent_bits`` (2..8, 0 for
        the codec's default) is the quality knob: fewer bits, smaller and blurrier."""
        options = image_pb2.EncodeOptions(
            codec=codec,
            latent_bits=latent_bits,
            measure_quality=measure_quality,
            return_reconstruction=return_reconstruction,
            return_latents=return_latents,
        )
        return self._upload(image_pb2, "image", _read(image), options)

    def decode(self, bitstream: bytes, *, format: str = "png") -> image_pb2.DecodeResponse:
        """Decodes a bitstream to ``png``, ``webp`` or ``raw_rgb8`` (through ``DecodeStream``,
        so the image's size is not bounded by the message-size limits)."""
        code = _choice(_IMAGE_FORMATS, format, "image format")
        request = image_pb2.DecodeStreamRequest(bitstream=bytes(bitstream), format=code)
        return self._download(
            request,
            lambda header, data: image_pb2.DecodeResponse(
                image=data,
                format=code,
                width=header.width,
                height=header.height,
                channels=header.channels,
            ),
        )


class AudioService(_Service):
    """``compress.audio.v1``: learned audio codecs."""

    def list_codecs(self):
        """The codecs the server hosts."""
        return self._unary("ListCodecs", audio_pb2.ListCodecsRequest(), lambda r: list(r.codecs))

    def encode(
        self,
        audio: Source,
        *,
        codec: str = "",
        latent_bits: int = 0,
        measure_quality: bool = True,
        resample: bool = False,
        return_reconstruction: bool = False,
    ) -> audio_pb2.EncodeResult:
        """Encodes a WAV/FLAC/MP3/OGG file (path or bytes). Audio at another rate than the
        codec's is refused unless ``resample``."""
        options = audio_pb2.EncodeOptions(
            codec=codec,
            latent_bits=latent_bits,
            measure_quality=measure_quality,
            resample=resample,
            return_reconstruction=return_reconstruction,
        )
        return self._upload(audio_pb2, "audio", _read(audio), options)

    def decode(self, bitstream: bytes) -> audio_pb2.DecodeResponse:
        """Decodes a bitstream to 16-bit WAV (``DecodeResponse.wav``), through
        ``DecodeStream``."""
        return self._download(
            audio_pb2.DecodeStreamRequest(bitstream=bytes(bitstream)),
            lambda header, data: audio_pb2.DecodeResponse(
                wav=data,
                sample_rate=header.sample_rate,
                channels=header.channels,
                frames=header.frames,
            ),
        )


class SplatService(_Service):
    """``compress.splat.v1``: 3D Gaussian-splat scenes."""

    def encode(
        self, scene: Source, *, preset: str = "balanced", **options: Any
    ) -> splat_pb2.EncodeResult:
        """Encodes a 3DGS ``.ply`` or SPZ scene. ``preset`` is ``high``, ``balanced``, ``small``
        or ``web``; other ``EncodeOptions`` fields (``sh_codebook=…``) pass through."""
        message = splat_pb2.EncodeOptions(preset=_choice(_PRESETS, preset, "preset"), **options)
        return self._upload(splat_pb2, "scene", _read(scene), message)

    def decode(
        self, bitstream: bytes, *, format: str = "ply", spz_version: int = 0
    ) -> splat_pb2.DecodeResponse:
        """Decodes to ``ply`` or ``spz`` (``spz_version`` 0: the latest), through
        ``DecodeStream``, so a scene over the message-size limits still decodes."""
        code = _choice(_SPLAT_FORMATS, format, "splat format")
        request = splat_pb2.DecodeStreamRequest(
            bitstream=bytes(bitstream), output_format=code, spz_version=spz_version
        )
        return self._download(
            request,
            lambda header, data: splat_pb2.DecodeResponse(
                scene=data,
                format=code,
                splat_count=header.splat_count,
                sh_degree=header.sh_degree,
            ),
        )

    def info(self, data: Source) -> splat_pb2.InfoResponse:
        """Format, splat count and sections of a PLY, SPZ or terse file."""
        return self._unary("Info", splat_pb2.InfoRequest(data=_read(data)))


class TensorService(_Service):
    """``compress.tensor.v1``: lossless model weights (safetensors)."""

    def encode(
        self, file: Source, *, chunk_elements: int | None = None
    ) -> tensor_pb2.EncodeResult:
        """Encodes a safetensors file (path or bytes); it decodes back byte for byte.
        ``chunk_elements`` (default 262144) is the unit of parallel decoding. A file over
        ``chunk_bytes`` goes up, and its bitstream comes back, through ``EncodeStream`` in
        chunks, so neither is bounded by the message-size limits."""
        data = _read(file)
        options = tensor_pb2.EncodeOptions(chunk_elements=chunk_elements)
        if len(data) <= self._chunk_bytes:
            return self._upload(tensor_pb2, "file", data, options)
        parts = self._chunks(
            data,
            lambda chunk: tensor_pb2.EncodeStreamRequest(chunk=chunk),
            first=tensor_pb2.EncodeStreamRequest(options=options),
        )

        def result(messages: list) -> tensor_pb2.EncodeResult:
            _, bitstream = _assemble(messages)
            if not messages[-1].HasField("result"):
                raise ValueError("EncodeStream ended without its result")
            done = tensor_pb2.EncodeResult()
            done.CopyFrom(messages[-1].result)
            done.bitstream = bitstream
            return done

        return self._invoker.download(self._stub.EncodeStream, parts, result)

    def decode(self, bitstream: bytes) -> bytes:
        """The safetensors file a bitstream was made from; both go through ``DecodeStream``
        in chunks."""
        parts = self._chunks(
            bytes(bitstream), lambda chunk: tensor_pb2.DecodeStreamRequest(chunk=chunk)
        )
        return self._invoker.download(
            self._stub.DecodeStream, parts, lambda messages: _assemble(messages)[1]
        )

    def read_tensor(self, bitstream: bytes, name: str) -> tensor_pb2.ReadTensorResponse:
        """One tensor (summary and little-endian ``data``) without decoding the rest."""
        request = tensor_pb2.ReadTensorRequest(bitstream=bytes(bitstream), name=name)
        return self._unary("ReadTensor", request)

    def info(self, bitstream: bytes) -> tensor_pb2.InfoResponse:
        """The tensors of a bitstream: names, dtypes, shapes, sizes raw and coded."""
        return self._unary("Info", tensor_pb2.InfoRequest(bitstream=bytes(bitstream)))

    def encode_kv_cache(
        self,
        model: str,
        cache: np.ndarray,
        *,
        level: int = 0,
        sink_tokens: int | None = None,
    ) -> tensor_pb2.EncodeKvCacheResponse:
        """Encodes (lossy) the KV cache of the causal LM ``model``: an array
        ``[layers, 2 (key, value), kv_heads, tokens, head_dim]`` of float32 or float16.
        ``level`` 1 (smallest) to 8 (closest); 0 is the server's default. The response carries
        the bitstream, its bits per element and the SNR and largest error of the decode."""
        array = np.asarray(cache)
        dtypes = {np.dtype(np.float32): "fp32", np.dtype(np.float16): "fp16"}
        if array.ndim != 5 or array.shape[1] != 2 or array.dtype not in dtypes:
            raise ValueError(
                "a KV cache is a float32 or float16 array [layers, 2, kv_heads, tokens, head_dim], "
                f"got {array.dtype} {array.shape}"
            )
        layers, _, kv_heads, tokens, head_dim = array.shape
        message = tensor_pb2.KvCache(
            layers=layers, kv_heads=kv_heads, tokens=tokens, head_dim=head_dim,
            dtype=dtypes[array.dtype],
            values=np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes(),
        )
        request = tensor_pb2.EncodeKvCacheRequest(
            model=model, cache=message, level=level, sink_tokens=sink_tokens
        )
        return self._unary("EncodeKvCache", request)

    def decode_kv_cache(self, bitstream: bytes) -> tensor_pb2.DecodeKvCacheResponse:
        """Decodes a KV-cache bitstream; ``kv_array(response.cache)`` is the cache as an
        array in the dtype it was encoded from."""
        return self._unary(
            "DecodeKvCache", tensor_pb2.DecodeKvCacheRequest(bitstream=bytes(bitstream))
        )

    def list_kv_models(self) -> list:
        """The causal LMs whose KV caches the server codes (``KvModel`` messages)."""
        return self._unary(
            "ListKvModels", tensor_pb2.ListKvModelsRequest(), lambda r: list(r.models)
        )


def kv_array(cache: tensor_pb2.KvCache) -> np.ndarray:
    """A ``KvCache`` message as an array ``[layers, 2, kv_heads, tokens, head_dim]`` (float32
    or float16; bf16 values come as float32)."""
    shape = (cache.layers, 2, cache.kv_heads, cache.tokens, cache.head_dim)
    if cache.dtype == "bf16":
        raw = np.frombuffer(cache.values, dtype="<u2").astype(np.uint32) << 16
        return raw.view(np.float32).reshape(shape)
    dtype = {"fp32": "<f4", "fp16": "<f2"}.get(cache.dtype)
    if dtype is None:
        raise ValueError(f"unknown KV cache dtype {cache.dtype!r}")
    return np.frombuffer(cache.values, dtype=dtype).reshape(shape)


def _documents(documents: Iterable[Union[str, dict, context_pb2.Document]]):
    out = []
    for index, document in enumerate(documents):
        if isinstance(document, str):
            out.append(context_pb2.Document(id=str(index), text=document))
        elif isinstance(document, dict):
            out.append(context_pb2.Document(**document))
        else:
            out.append(document)
    return out


class ContextService(_Service):
    """``compress.context.v1``: prompt (LLMLingua-2) and RAG-context (RECOMP) compression."""

    def list_models(self):
        """Keep classifiers and sentence encoders the server hosts."""
        return self._unary("ListModels", context_pb2.ListModelsRequest(), lambda r: list(r.models))

    def compress_prompt(
        self,
        context: Union[str, Sequence[str]],
        *,
        rate: float | None = None,
        target_token: int | None = None,
        model: str = "",
        **options: Any,
    ) -> context_pb2.CompressPromptResponse:
        """Compresses one text or a list of contexts. ``rate`` keeps that fraction of tokens;
        ``target_token`` is a budget in target-LLM tokens; other ``PromptOptions`` fields
        (``force_tokens=["\\n"]``, ``use_context_level_filter=True``, …) pass through."""
        contexts = [context] if isinstance(context, str) else list(context)
        request = context_pb2.CompressPromptRequest(
            context=contexts,
            options=context_pb2.PromptOptions(rate=rate, target_token=target_token, **options),
            model=common_pb2.ModelRef(name=model) if model else None,
        )
        return self._unary("CompressPrompt", request)

    def compress_prompt_llmlingua(
        self,
        context: Union[str, Sequence[str]],
        *,
        method: str = "llmlingua",
        question: str = "",
        instruction: str = "",
        rate: float | None = None,
        target_token: int | None = None,
        model: str = "",
        **options: Any,
    ) -> context_pb2.CompressPromptResponse:
        """LLMLingua-1 (``method="llmlingua"``) or LongLLMLingua (``"longllmlingua"``, needs a
        ``question``) on the server's causal LM, as the Python package ``llmlingua`` 0.2.2 runs
        them; or LongCodeZip (``"longcodezip"``: one source file as ``context``, the code before
        a completion point or a question as ``question``, ``language="python"`` or
        ``"rust"``). Other ``PerplexityOptions`` fields (``iterative_size=200``,
        ``condition_compare=True``, ``fine_ratio=0.5``, …) pass through."""
        methods = {
            "llmlingua": context_pb2.PERPLEXITY_METHOD_LLMLINGUA,
            "longllmlingua": context_pb2.PERPLEXITY_METHOD_LONGLLMLINGUA,
            "longcodezip": context_pb2.PERPLEXITY_METHOD_LONGCODEZIP,
        }
        if method not in methods:
            raise ValueError(f"method must be one of {sorted(methods)}, got {method!r}")
        contexts = [context] if isinstance(context, str) else list(context)
        request = context_pb2.CompressPromptRequest(
            context=contexts,
            perplexity=context_pb2.PerplexityOptions(
                method=methods[method], question=question, instruction=instruction,
                rate=rate, target_token=target_token, **options,
            ),
            model=common_pb2.ModelRef(name=model) if model else None,
        )
        return self._unary("CompressPrompt", request)

    def compress_context(
        self,
        query: str,
        documents: Iterable[Union[str, dict, context_pb2.Document]],
        *,
        top_k_sentences: int | None = None,
        target_tokens: int | None = None,
        min_score: float | None = None,
        then_compress: dict | None = None,
        **fields: Any,
    ) -> context_pb2.CompressContextResponse:
        """Keeps the sentences of ``documents`` (strings, dicts or ``Document``) that answer
        ``query``; ``then_compress`` (``PromptOptions`` fields) runs LLMLingua-2 on the
        selection in the same call."""
        request = context_pb2.CompressContextRequest(
            query=query,
            documents=_documents(documents),
            top_k_sentences=top_k_sentences,
            target_tokens=target_tokens,
            min_score=min_score,
            then_compress=context_pb2.PromptOptions(**then_compress) if then_compress else None,
            **fields,
        )
        return self._unary("CompressContext", request)


class VisionService(_Service):
    """``compress.vision.v1``: training-free visual-token reduction, numpy in and out."""

    def prune_tokens(
        self,
        tokens: np.ndarray,
        *,
        method: str,
        keep: Union[int, float],
        cls_attention: np.ndarray | None = None,
        keys: np.ndarray | None = None,
        query: np.ndarray | None = None,
        importance: np.ndarray | None = None,
        return_scores: bool = False,
        **params: Any,
    ) -> list[PrunedImage]:
        """Prunes patch tokens ``[N, D]`` or ``[B, N, D]`` with ``method`` (``fastervlm``,
        ``visionzip``, ``divprune``, ``prumerge``, ``prumerge_plus``, ``tome``, ``idpruner``,
        ``uniform``, ``avg_pool``); ``keep`` is a count (int) or ratio (float). ``params`` are
        ``MethodParams`` fields. Returns one :class:`PrunedImage` per image."""

        def optional(name, array):
            return None if array is None else _tensors.to_tensor(name, array)

        request = vision_pb2.PruneTokensRequest(
            tokens=_tensors.to_tensor("tokens", tokens),
            cls_attention=optional("cls_attention", cls_attention),
            keys=optional("keys", keys),
            query=optional("query", query),
            importance=optional("importance", importance),
            method=_choice(_PRUNE_METHODS, method, "method"),
            keep=_keep(keep),
            params=vision_pb2.MethodParams(**params) if params else None,
            return_scores=return_scores,
        )
        return self._unary(
            "PruneTokens", request, lambda r: [PrunedImage.from_proto(i) for i in r.images]
        )

    def prune_frames(
        self,
        frames: np.ndarray,
        *,
        keep: Union[int, float],
        reuse_threshold: float | None = None,
        alpha: float | None = None,
    ) -> vision_pb2.PruneFramesResponse:
        """Reduces a video's frame tokens ``[T, N, D]`` (STC-style reuse of static tokens)."""
        request = vision_pb2.PruneFramesRequest(
            frames=_tensors.to_tensor("frames", frames),
            keep=_keep(keep),
            reuse_threshold=reuse_threshold,
            alpha=alpha,
        )
        return self._unary("PruneFrames", request)


class ModelsService(_Service):
    """``compress.models.v1``: the model repository and raw tensor inference."""

    def list(self):
        """Every model in the repository with its state."""
        return self._unary("ListModels", models_pb2.ListModelsRequest(), lambda r: list(r.models))

    def infer(self, model: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Runs ``model`` on named numpy inputs and returns its named outputs."""
        request = models_pb2.InferRequest(
            model=common_pb2.ModelRef(name=model),
            inputs=[_tensors.to_tensor_exact(name, array) for name, array in inputs.items()],
        )
        return self._unary(
            "Infer", request, lambda r: {t.name: _tensors.to_array(t) for t in r.outputs}
        )


def _options(max_message_bytes: int) -> list[tuple[str, Any]]:
    return [
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.keepalive_time_ms", 30_000),
        # Spread calls over every address the target resolves to (a headless Service's pods,
        # or ``ipv4:host:port,host:port``); one address behaves as before.
        ("grpc.lb_policy_name", "round_robin"),
    ]


def _target(address: str) -> str:
    for scheme in ("http://", "https://"):
        if address.startswith(scheme):
            return address[len(scheme) :]
    return address


def _credentials(tls: bool, root_certificates, private_key, certificate_chain):
    if not (tls or root_certificates or private_key or certificate_chain):
        return None

    def pem(value):
        if value is None or isinstance(value, bytes):
            return value
        return _read(value)

    return grpc.ssl_channel_credentials(
        root_certificates=pem(root_certificates),
        private_key=pem(private_key),
        certificate_chain=pem(certificate_chain),
    )


def _is_serving(response: health_pb2.HealthCheckResponse) -> bool:
    return response.status == health_pb2.HealthCheckResponse.SERVING


def _metadata(token: str | None):
    if token is None:
        token = os.environ.get("TERSE_TOKEN") or None
    return (("authorization", f"Bearer {token}"),) if token else None


class _Base:
    """The constructor and service attributes both clients share; subclasses pick the gRPC
    channel flavour (blocking or ``grpc.aio``) and the invoker."""

    _secure_channel: Callable = staticmethod(grpc.secure_channel)
    _insecure_channel: Callable = staticmethod(grpc.insecure_channel)
    _invoker_class: type = _SyncInvoker

    def __init__(
        self,
        address: str = "127.0.0.1:50051",
        *,
        timeout: float | None = 60.0,
        retries: int = 3,
        backoff: float = 0.1,
        token: str | None = None,
        tls: bool = False,
        root_certificates: Source | None = None,
        private_key: Source | None = None,
        certificate_chain: Source | None = None,
        max_message_bytes: int = _MAX_MESSAGE,
        chunk_bytes: int = 1 << 20,
    ) -> None:
        credentials = _credentials(tls, root_certificates, private_key, certificate_chain)
        options = _options(max_message_bytes)
        target = _target(address)
        if "," in target:
            # ``ipv4:a:1,b:2`` is not a valid HTTP/2 :authority; name the first replica instead.
            first = target.split(":", 1)[1].split(",")[0]
            options.append(("grpc.default_authority", first))
        self._channel = (
            self._secure_channel(target, credentials, options)
            if credentials
            else self._insecure_channel(target, options)
        )
        invoker = self._invoker_class(self._channel, timeout, retries, backoff, _metadata(token))
        self._setup(invoker, chunk_bytes)

    def serving(self, service: str = ""):
        """Whether ``service`` (empty: the server) reports SERVING on the health protocol
        (awaitable on :class:`AsyncClient`)."""
        return self._invoker.call(
            health_pb2_grpc.HealthStub(self._channel).Check,
            lambda: health_pb2.HealthCheckRequest(service=service),
            _is_serving,
        )

    def _setup(self, invoker: _SyncInvoker, chunk_bytes: int) -> None:
        channel = invoker.channel
        #: Images (``compress.image.v1``).
        self.image = ImageService(invoker, image_pb2_grpc.ImageServiceStub(channel), chunk_bytes)
        #: Audio (``compress.audio.v1``).
        self.audio = AudioService(invoker, audio_pb2_grpc.AudioServiceStub(channel), chunk_bytes)
        #: Splat scenes (``compress.splat.v1``).
        self.splat = SplatService(invoker, splat_pb2_grpc.SplatServiceStub(channel), chunk_bytes)
        #: Model weights (``compress.tensor.v1``).
        self.tensor = TensorService(
            invoker, tensor_pb2_grpc.TensorServiceStub(channel), chunk_bytes
        )
        #: Prompts and contexts (``compress.context.v1``).
        self.context = ContextService(
            invoker, context_pb2_grpc.ContextServiceStub(channel), chunk_bytes
        )
        #: Visual tokens (``compress.vision.v1``).
        self.vision = VisionService(
            invoker, vision_pb2_grpc.VisionServiceStub(channel), chunk_bytes
        )
        #: Model repository (``compress.models.v1``).
        self.models = ModelsService(
            invoker, models_pb2_grpc.ModelRepositoryServiceStub(channel), chunk_bytes
        )
        self._invoker = invoker


class Client(_Base):
    """A blocking client. Use as a context manager or call :meth:`close`.

    ``address`` is ``host:port`` (``http://``/``https://`` prefixes are accepted). ``timeout``
    is the per-call deadline in seconds; ``retries``/``backoff`` retry ``UNAVAILABLE`` with
    exponential back-off; ``token`` (default ``$TERSE_TOKEN``) is sent as a bearer token; TLS is
    on with ``tls=True`` or any of the PEM options (bytes or paths).
    """

    def close(self) -> None:
        """Closes the channel."""
        self._channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class AsyncClient(_Base):
    """The asyncio twin of :class:`Client` (``grpc.aio``), with the same constructor: every
    method is awaitable. Use ``async with`` or ``await client.close()``."""

    _secure_channel = staticmethod(grpc.aio.secure_channel)
    _insecure_channel = staticmethod(grpc.aio.insecure_channel)
    _invoker_class = _AsyncInvoker

    async def close(self) -> None:
        """Closes the channel."""
        await self._channel.close()

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()
