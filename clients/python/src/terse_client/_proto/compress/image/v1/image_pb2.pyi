from terse_client._proto.compress.common.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ImageFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    IMAGE_FORMAT_UNSPECIFIED: _ClassVar[ImageFormat]
    IMAGE_FORMAT_PNG: _ClassVar[ImageFormat]
    IMAGE_FORMAT_WEBP: _ClassVar[ImageFormat]
    IMAGE_FORMAT_RAW_RGB8: _ClassVar[ImageFormat]
IMAGE_FORMAT_UNSPECIFIED: ImageFormat
IMAGE_FORMAT_PNG: ImageFormat
IMAGE_FORMAT_WEBP: ImageFormat
IMAGE_FORMAT_RAW_RGB8: ImageFormat

class CodecInfo(_message.Message):
    __slots__ = ("name", "model", "description", "latent_channels", "levels", "latent_bits", "family")
    NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    LATENT_CHANNELS_FIELD_NUMBER: _ClassVar[int]
    LEVELS_FIELD_NUMBER: _ClassVar[int]
    LATENT_BITS_FIELD_NUMBER: _ClassVar[int]
    FAMILY_FIELD_NUMBER: _ClassVar[int]
    name: str
    model: _common_pb2.ModelRef
    description: str
    latent_channels: int
    levels: int
    latent_bits: int
    family: str
    def __init__(self, name: _Optional[str] = ..., model: _Optional[_Union[_common_pb2.ModelRef, _Mapping]] = ..., description: _Optional[str] = ..., latent_channels: _Optional[int] = ..., levels: _Optional[int] = ..., latent_bits: _Optional[int] = ..., family: _Optional[str] = ...) -> None: ...

class EncodeOptions(_message.Message):
    __slots__ = ("codec", "measure_quality", "return_reconstruction", "reconstruction_format", "return_latents", "latent_bits")
    CODEC_FIELD_NUMBER: _ClassVar[int]
    MEASURE_QUALITY_FIELD_NUMBER: _ClassVar[int]
    RETURN_RECONSTRUCTION_FIELD_NUMBER: _ClassVar[int]
    RECONSTRUCTION_FORMAT_FIELD_NUMBER: _ClassVar[int]
    RETURN_LATENTS_FIELD_NUMBER: _ClassVar[int]
    LATENT_BITS_FIELD_NUMBER: _ClassVar[int]
    codec: str
    measure_quality: bool
    return_reconstruction: bool
    reconstruction_format: ImageFormat
    return_latents: bool
    latent_bits: int
    def __init__(self, codec: _Optional[str] = ..., measure_quality: bool = ..., return_reconstruction: bool = ..., reconstruction_format: _Optional[_Union[ImageFormat, str]] = ..., return_latents: bool = ..., latent_bits: _Optional[int] = ...) -> None: ...

class EncodeResult(_message.Message):
    __slots__ = ("bitstream", "width", "height", "channels", "rate_distortion", "model", "reconstruction", "latents", "warnings", "latent_bits")
    BITSTREAM_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    RATE_DISTORTION_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    RECONSTRUCTION_FIELD_NUMBER: _ClassVar[int]
    LATENTS_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    LATENT_BITS_FIELD_NUMBER: _ClassVar[int]
    bitstream: bytes
    width: int
    height: int
    channels: int
    rate_distortion: _common_pb2.RateDistortion
    model: _common_pb2.ModelRef
    reconstruction: bytes
    latents: _common_pb2.Tensor
    warnings: _containers.RepeatedScalarFieldContainer[str]
    latent_bits: int
    def __init__(self, bitstream: _Optional[bytes] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., channels: _Optional[int] = ..., rate_distortion: _Optional[_Union[_common_pb2.RateDistortion, _Mapping]] = ..., model: _Optional[_Union[_common_pb2.ModelRef, _Mapping]] = ..., reconstruction: _Optional[bytes] = ..., latents: _Optional[_Union[_common_pb2.Tensor, _Mapping]] = ..., warnings: _Optional[_Iterable[str]] = ..., latent_bits: _Optional[int] = ...) -> None: ...

class ListCodecsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListCodecsResponse(_message.Message):
    __slots__ = ("codecs",)
    CODECS_FIELD_NUMBER: _ClassVar[int]
    codecs: _containers.RepeatedCompositeFieldContainer[CodecInfo]
    def __init__(self, codecs: _Optional[_Iterable[_Union[CodecInfo, _Mapping]]] = ...) -> None: ...

class EncodeRequest(_message.Message):
    __slots__ = ("image", "options")
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    image: bytes
    options: EncodeOptions
    def __init__(self, image: _Optional[bytes] = ..., options: _Optional[_Union[EncodeOptions, _Mapping]] = ...) -> None: ...

class EncodeResponse(_message.Message):
    __slots__ = ("result",)
    RESULT_FIELD_NUMBER: _ClassVar[int]
    result: EncodeResult
    def __init__(self, result: _Optional[_Union[EncodeResult, _Mapping]] = ...) -> None: ...

class EncodeStreamRequest(_message.Message):
    __slots__ = ("options", "chunk")
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    options: EncodeOptions
    chunk: _common_pb2.Chunk
    def __init__(self, options: _Optional[_Union[EncodeOptions, _Mapping]] = ..., chunk: _Optional[_Union[_common_pb2.Chunk, _Mapping]] = ...) -> None: ...

class EncodeStreamResponse(_message.Message):
    __slots__ = ("result",)
    RESULT_FIELD_NUMBER: _ClassVar[int]
    result: EncodeResult
    def __init__(self, result: _Optional[_Union[EncodeResult, _Mapping]] = ...) -> None: ...

class DecodeRequest(_message.Message):
    __slots__ = ("bitstream", "format")
    BITSTREAM_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    bitstream: bytes
    format: ImageFormat
    def __init__(self, bitstream: _Optional[bytes] = ..., format: _Optional[_Union[ImageFormat, str]] = ...) -> None: ...

class DecodeResponse(_message.Message):
    __slots__ = ("image", "format", "width", "height", "channels")
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    image: bytes
    format: ImageFormat
    width: int
    height: int
    channels: int
    def __init__(self, image: _Optional[bytes] = ..., format: _Optional[_Union[ImageFormat, str]] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., channels: _Optional[int] = ...) -> None: ...

class DecodeStreamRequest(_message.Message):
    __slots__ = ("bitstream", "format")
    BITSTREAM_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    bitstream: bytes
    format: ImageFormat
    def __init__(self, bitstream: _Optional[bytes] = ..., format: _Optional[_Union[ImageFormat, str]] = ...) -> None: ...

class DecodeStreamResponse(_message.Message):
    __slots__ = ("width", "height", "channels", "chunk")
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    width: int
    height: int
    channels: int
    chunk: _common_pb2.Chunk
    def __init__(self, width: _Optional[int] = ..., height: _Optional[int] = ..., channels: _Optional[int] = ..., chunk: _Optional[_Union[_common_pb2.Chunk, _Mapping]] = ...) -> None: ...
