"""Python SDK for the terse compression services.

>>> from terse_client import Client
>>> with Client("127.0.0.1:50051", timeout=30) as client:           # doctest: +SKIP
...     result = client.image.encode("photo.png", latent_bits=7)
...     png = client.image.decode(result.bitstream).image
...     short = client.context.compress_prompt(long_text, rate=0.5).compressed_prompt

:class:`Client` blocks; :class:`AsyncClient` is the same API for asyncio. The generated
messages and stubs are importable from ``terse_client.<package>`` (``terse_client.image`` is
``compress.image.v1``'s ``image_pb2``), and errors are ``grpc.RpcError`` with the server's
status code.
"""

from terse_client._client import (
    AsyncClient,
    AudioService,
    Client,
    ContextService,
    ImageService,
    ModelsService,
    PrunedImage,
    SplatService,
    TensorService,
    VisionService,
    kv_array,
)
from terse_client._proto.compress.audio.v1 import audio_pb2 as audio
from terse_client._proto.compress.common.v1 import common_pb2 as common
from terse_client._proto.compress.context.v1 import context_pb2 as context
from terse_client._proto.compress.image.v1 import image_pb2 as image
from terse_client._proto.compress.models.v1 import models_pb2 as models
from terse_client._proto.compress.splat.v1 import splat_pb2 as splat
from terse_client._proto.compress.tensor.v1 import tensor_pb2 as tensor
from terse_client._proto.compress.vision.v1 import vision_pb2 as vision
from terse_client._tensors import to_array, to_tensor

__all__ = [
    "AsyncClient",
    "AudioService",
    "Client",
    "ContextService",
    "ImageService",
    "ModelsService",
    "PrunedImage",
    "SplatService",
    "TensorService",
    "VisionService",
    "audio",
    "common",
    "context",
    "image",
    "models",
    "splat",
    "tensor",
    "vision",
    "to_array",
    "to_tensor",
    "kv_array",
]
