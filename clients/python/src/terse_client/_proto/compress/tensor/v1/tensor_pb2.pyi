from terse_client._proto.compress.common.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class KvCache(_message.Message):
    __slots__ = ("layers", "kv_heads", "tokens", "head_dim", "dtype", "values")
    LAYERS_FIELD_NUMBER: _ClassVar[int]
    KV_HEADS_FIELD_NUMBER: _ClassVar[int]
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    HEAD_DIM_FIELD_NUMBER: _ClassVar[int]
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    layers: int
    kv_heads: int
    tokens: int
    head_dim: int
    dtype: str
    values: bytes
    def __init__(self, layers: _Optional[int] = ..., kv_heads: _Optional[int] = ..., tokens: _Optional[int] = ..., head_dim: _Optional[int] = ..., dtype: _Optional[str] = ..., values: _Optional[bytes] = ...) -> None: ...

class EncodeKvCacheRequest(_message.Message):
    __slots__ = ("model", "cache", "level", "sink_tokens")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    CACHE_FIELD_NUMBER: _ClassVar[int]
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    SINK_TOKENS_FIELD_NUMBER: _ClassVar[int]
    model: str
    cache: KvCache
    level: int
    sink_tokens: int
    def __init__(self, model: _Optional[str] = ..., cache: _Optional[_Union[KvCache, _Mapping]] = ..., level: _Optional[int] = ..., sink_tokens: _Optional[int] = ...) -> None: ...

class EncodeKvCacheResponse(_message.Message):
    __slots__ = ("bitstream", "rate_distortion", "max_abs_error")
    BITSTREAM_FIELD_NUMBER: _ClassVar[int]
    RATE_DISTORTION_FIELD_NUMBER: _ClassVar[int]
    MAX_ABS_ERROR_FIELD_NUMBER: _ClassVar[int]
    bitstream: bytes
    rate_distortion: _common_pb2.RateDistortion
    max_abs_error: float
    def __init__(self, bitstream: _Optional[bytes] = ..., rate_distortion: _Optional[_Union[_common_pb2.RateDistortion, _Mapping]] = ..., max_abs_error: _Optional[float] = ...) -> None: ...

class DecodeKvCacheRequest(_message.Message):
    __slots__ = ("bitstream",)
    BITSTREAM_FIELD_NUMBER: _ClassVar[int]
    bitstream: bytes
    def __init__(self, bitstream: _Optional[bytes] = ...) -> None: ...

class DecodeKvCacheResponse(_message.Message):
    __slots__ = ("model", "level", "sink_tokens", "cache")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    SINK_TOKENS_FIELD_NUMBER: _ClassVar[int]
    CACHE_FIELD_NUMBER: _ClassVar[int]
    model: str
    level: int
    sink_tokens: int
    cache: KvCache
    def __init__(self, model: _Optional[str] = ..., level: _Optional[int] = ..., sink_tokens: _Optional[int] = ..., cache: _Optional[_Union[KvCache, _Mapping]] = ...) -> None: ...

class ListKvModelsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class KvModel(_message.Message):
    __slots__ = ("model", "layers", "kv_heads", "head_dim", "context_length")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    LAYERS_FIELD_NUMBER: _ClassVar[int]
    KV_HEADS_FIELD_NUMBER: _ClassVar[int]
    HEAD_DIM_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_LENGTH_FIELD_NUMBER: _ClassVar[int]
    model: _common_pb2.ModelRef
    layers: int
    kv_heads: int
    head_dim: int
    context_length: int
    def __init__(self, model: _Optional[_Union[_common_pb2.ModelRef, _Mapping]] = ..., layers: _Optional[int] = ..., kv_heads: _Optional[int] = ..., head_dim: _Optional[int] = ..., context_length: _Optional[int] = ...) -> None: ...

class ListKvModelsResponse(_message.Message):
    __slots__ = ("models",)
    MODELS_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[KvModel]
    def __init__(self, models: _Optional[_Iterable[_Union[KvModel, _Mapping]]] = ...) -> None: ...

class EncodeOptions(_message.Message):
    __slots__ = ("chunk_elements",)
    CHUNK_ELEMENTS_FIELD_NUMBER: _ClassVar[int]
    chunk_elements: int
    def __init__(self, chunk_elements: _Optional[int] = ...) -> None: ...

class TensorSummary(_message.Message):
    __slots__ = ("name", "dtype", "shape", "bytes", "coded_bytes", "chunks")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    SHAPE_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    CODED_BYTES_FIELD_NUMBER: _ClassVar[int]
    CHUNKS_FIELD_NUMBER: _ClassVar[int]
    name: str
    dtype: str
    shape: _containers.RepeatedScalarFieldContainer[int]
    bytes: int
    coded_bytes: int
    chunks: int
    def __init__(self, name: _Optional[str] = ..., dtype: _Optional[str] = ..., shape: _Optional[_Iterable[int]] = ..., bytes: _Optional[int] = ..., coded_bytes: _Optional[int] = ..., chunks: _Optional[int] = ...) -> None: ...

class EncodeResult(_message.Message):
    __slots__ = ("bitstream", "rate_distortion", "compression_ratio", "tensors")
    BITSTREAM_FIELD_NUMBER: _ClassVar[int]
    RATE_DISTORTION_FIELD_NUMBER: _ClassVar[int]
    COMPRESSION_RATIO_FIELD_NUMBER: _ClassVar[int]
    TENSORS_FIELD_NUMBER: _ClassVar[int]
    bitstream: bytes
    rate_distortion: _common_pb2.RateDistortion
    compression_ratio: float
    tensors: _containers.RepeatedCompositeFieldContainer[TensorSummary]
    def __init__(self, bitstream: _Optional[bytes] = ..., rate_distortion: _Optional[_Union[_common_pb2.RateDistortion, _Mapping]] = ..., compression_ratio: _Optional[float] = ..., tensors: _Optional[_Iterable[_Union[TensorSummary, _Mapping]]] = ...) -> None: ...

class EncodeRequest(_message.Message):
    __slots__ = ("file", "options")
    FILE_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    file: bytes
    options: EncodeOptions
    def __init__(self, file: _Optional[bytes] = ..., options: _Optional[_Union[EncodeOptions, _Mapping]] = ...) -> None: ...

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
    __slots__ = ("chunk", "result")
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    chunk: _common_pb2.Chunk
    result: EncodeResult
    def __init__(self, chunk: _Optional[_Union[_common_pb2.Chunk, _Mapping]] = ..., result: _Optional[_Union[EncodeResult, _Mapping]] = ...) -> None: ...

class DecodeRequest(_message.Message):
    __slots__ = ("bitstream",)
    BITSTREAM_FIELD_NUMBER: _ClassVar[int]
    bitstream: bytes
    def __init__(self, bitstream: _Optional[bytes] = ...) -> None: ...

class DecodeResponse(_message.Message):
    __slots__ = ("file",)
    FILE_FIELD_NUMBER: _ClassVar[int]
    file: bytes
    def __init__(self, file: _Optional[bytes] = ...) -> None: ...

class DecodeStreamRequest(_message.Message):
    __slots__ = ("chunk",)
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    chunk: _common_pb2.Chunk
    def __init__(self, chunk: _Optional[_Union[_common_pb2.Chunk, _Mapping]] = ...) -> None: ...

class DecodeStreamResponse(_message.Message):
    __slots__ = ("file_bytes", "chunk")
    FILE_BYTES_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    file_bytes: int
    chunk: _common_pb2.Chunk
    def __init__(self, file_bytes: _Optional[int] = ..., chunk: _Optional[_Union[_common_pb2.Chunk, _Mapping]] = ...) -> None: ...

class ReadTensorRequest(_message.Message):
    __slots__ = ("bitstream", "name")
    BITSTREAM_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    bitstream: bytes
    name: str
    def __init__(self, bitstream: _Optional[bytes] = ..., name: _Optional[str] = ...) -> None: ...

class ReadTensorResponse(_message.Message):
    __slots__ = ("tensor", "data")
    TENSOR_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    tensor: TensorSummary
    data: bytes
    def __init__(self, tensor: _Optional[_Union[TensorSummary, _Mapping]] = ..., data: _Optional[bytes] = ...) -> None: ...

class InfoRequest(_message.Message):
    __slots__ = ("bitstream",)
    BITSTREAM_FIELD_NUMBER: _ClassVar[int]
    bitstream: bytes
    def __init__(self, bitstream: _Optional[bytes] = ...) -> None: ...

class InfoResponse(_message.Message):
    __slots__ = ("file_bytes", "chunk_elements", "format_version", "tensors")
    FILE_BYTES_FIELD_NUMBER: _ClassVar[int]
    CHUNK_ELEMENTS_FIELD_NUMBER: _ClassVar[int]
    FORMAT_VERSION_FIELD_NUMBER: _ClassVar[int]
    TENSORS_FIELD_NUMBER: _ClassVar[int]
    file_bytes: int
    chunk_elements: int
    format_version: int
    tensors: _containers.RepeatedCompositeFieldContainer[TensorSummary]
    def __init__(self, file_bytes: _Optional[int] = ..., chunk_elements: _Optional[int] = ..., format_version: _Optional[int] = ..., tensors: _Optional[_Iterable[_Union[TensorSummary, _Mapping]]] = ...) -> None: ...
