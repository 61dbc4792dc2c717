from terse_client._proto.compress.common.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CodecInfo(_message.Message):
    __slots__ = ("name", "model", "sample_rate", "channels", "description", "latent_channels", "levels", "latent_bits")
    NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_RATE_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    LATENT_CHANNELS_FIELD_NUMBER: _ClassVar[int]
    LEVELS_FIELD_NUMBER: _ClassVar[int]
    LATENT_BITS_FIELD_NUMBER: _ClassVar[int]
    name: str
    model: _common_pb2.ModelRef
    sample_rate: int
    channels: int
    description: str
    latent_channels: int
    levels: int
    latent_bits: int
    def __init__(self, name: _Optional[str] = ..., model: _Optional[_Union[_common_pb2.ModelRef, _Mapping]] = ..., sample_rate: _Optional[int] = ..., channels: _Optional[int] = ..., description: _Optional[str] = ..., latent_channels: _Optional[int] = ..., levels: _Optional[int] = ..., latent_bits: _Optional[int] = ...) -> None: ...

class EncodeOptions(_message.Message):
    __slots__ = ("codec", "measure_quality", "return_reconstruction", "return_latents", "resample", "latent_bits")
    CODEC_FIELD_NUMBER: _ClassVar[int]
    MEASURE_QUALITY_FIELD_NUMBER: _ClassVar[int]
    RETURN_RECONSTRUCTION_FIELD_NUMBER: _ClassVar[int]
    RETURN_LATENTS_FIELD_NUMBER: _ClassVar[int]
    RESAMPLE_FIELD_NUMBER: _ClassVar[int]
    LATENT_BITS_FIELD_NUMBER: _ClassVar[int]
    codec: str
    measure_quality: bool
    return_reconstruction: bool
    return_latents: bool
    resample: bool
    latent_bits: int
    def __init__(self, codec: _Optional[str] = ..., measure_quality: bool = ..., return_reconstruction: bool = ..., return_latents: bool = ..., resample: bool = ..., latent_bits: _Optional[int] = ...) -> None: ...

class EncodeResult(_message.Message):
    __slots__ = ("bitstream", "sample_rate", "channels", "frames", "duration_seconds", "rate_distortion", "model", "reconstruction", "latents", "resampled_from", "latent_bits")
    BITSTREAM_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_RATE_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    DURATION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    RATE_DISTORTION_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    RECONSTRUCTION_FIELD_NUMBER: _ClassVar[int]
    LATENTS_FIELD_NUMBER: _ClassVar[int]
    RESAMPLED_FROM_FIELD_NUMBER: _ClassVar[int]
    LATENT_BITS_FIELD_NUMBER: _ClassVar[int]
    bitstream: bytes
    sample_rate: int
    channels: int
    frames: int
    duration_seconds: float
    rate_distortion: _common_pb2.RateDistortion
    model: _common_pb2.ModelRef
    reconstruction: bytes
    latents: _common_pb2.Tensor
    resampled_from: int
    latent_bits: int
    def __init__(self, bitstream: _Optional[bytes] = ..., sample_rate: _Optional[int] = ..., channels: _Optional[int] = ..., frames: _Optional[int] = ..., duration_seconds: _Optional[float] = ..., rate_distortion: _Optional[_Union[_common_pb2.RateDistortion, _Mapping]] = ..., model: _Optional[_Union[_common_pb2.ModelRef, _Mapping]] = ..., reconstruction: _Optional[bytes] = ..., latents: _Optional[_Union[_common_pb2.Tensor, _Mapping]] = ..., resampled_from: _Optional[int] = ..., latent_bits: _Optional[int] = ...) -> None: ...

class ListCodecsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListCodecsResponse(_message.Message):
    __slots__ = ("codecs",)
    CODECS_FIELD_NUMBER: _ClassVar[int]
    codecs: _containers.RepeatedCompositeFieldContainer[CodecInfo]
    def __init__(self, codecs: _Optional[_Iterable[_Union[CodecInfo, _Mapping]]] = ...) -> None: ...

class EncodeRequest(_message.Message):
    __slots__ = ("audio", "options")
    AUDIO_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    audio: bytes
    options: EncodeOptions
    def __init__(self, audio: _Optional[bytes] = ..., options: _Optional[_Union[EncodeOptions, _Mapping]] = ...) -> None: ...

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
    __slots__ = ("bitstream",)
    BITSTREAM_FIELD_NUMBER: _ClassVar[int]
    bitstream: bytes
    def __init__(self, bitstream: _Optional[bytes] = ...) -> None: ...

class DecodeResponse(_message.Message):
    __slots__ = ("wav", "sample_rate", "channels", "frames")
    WAV_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_RATE_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    wav: bytes
    sample_rate: int
    channels: int
    frames: int
    def __init__(self, wav: _Optional[bytes] = ..., sample_rate: _Optional[int] = ..., channels: _Optional[int] = ..., frames: _Optional[int] = ...) -> None: ...

class DecodeStreamRequest(_message.Message):
    __slots__ = ("bitstream",)
    BITSTREAM_FIELD_NUMBER: _ClassVar[int]
    bitstream: bytes
    def __init__(self, bitstream: _Optional[bytes] = ...) -> None: ...

class DecodeStreamResponse(_message.Message):
    __slots__ = ("sample_rate", "channels", "frames", "chunk")
    SAMPLE_RATE_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    sample_rate: int
    channels: int
    frames: int
    chunk: _common_pb2.Chunk
    def __init__(self, sample_rate: _Optional[int] = ..., channels: _Optional[int] = ..., frames: _Optional[int] = ..., chunk: _Optional[_Union[_common_pb2.Chunk, _Mapping]] = ...) -> None: ...
