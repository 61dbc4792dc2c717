from terse_client._proto.compress.common.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ModelState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MODEL_STATE_UNSPECIFIED: _ClassVar[ModelState]
    MODEL_STATE_READY: _ClassVar[ModelState]
    MODEL_STATE_UNLOADED: _ClassVar[ModelState]
    MODEL_STATE_FAILED: _ClassVar[ModelState]

class ExecutionProvider(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EXECUTION_PROVIDER_UNSPECIFIED: _ClassVar[ExecutionProvider]
    EXECUTION_PROVIDER_CPU: _ClassVar[ExecutionProvider]
    EXECUTION_PROVIDER_CUDA: _ClassVar[ExecutionProvider]
    EXECUTION_PROVIDER_TENSORRT: _ClassVar[ExecutionProvider]
MODEL_STATE_UNSPECIFIED: ModelState
MODEL_STATE_READY: ModelState
MODEL_STATE_UNLOADED: ModelState
MODEL_STATE_FAILED: ModelState
EXECUTION_PROVIDER_UNSPECIFIED: ExecutionProvider
EXECUTION_PROVIDER_CPU: ExecutionProvider
EXECUTION_PROVIDER_CUDA: ExecutionProvider
EXECUTION_PROVIDER_TENSORRT: ExecutionProvider

class ProviderFallback(_message.Message):
    __slots__ = ("provider", "reason")
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    provider: ExecutionProvider
    reason: str
    def __init__(self, provider: _Optional[_Union[ExecutionProvider, str]] = ..., reason: _Optional[str] = ...) -> None: ...

class TensorSpec(_message.Message):
    __slots__ = ("name", "datatype", "shape")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DATATYPE_FIELD_NUMBER: _ClassVar[int]
    SHAPE_FIELD_NUMBER: _ClassVar[int]
    name: str
    datatype: _common_pb2.DataType
    shape: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, name: _Optional[str] = ..., datatype: _Optional[_Union[_common_pb2.DataType, str]] = ..., shape: _Optional[_Iterable[int]] = ...) -> None: ...

class ModelStatus(_message.Message):
    __slots__ = ("state", "reason", "provider", "fallbacks", "session_pool_size", "batching")
    STATE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    FALLBACKS_FIELD_NUMBER: _ClassVar[int]
    SESSION_POOL_SIZE_FIELD_NUMBER: _ClassVar[int]
    BATCHING_FIELD_NUMBER: _ClassVar[int]
    state: ModelState
    reason: str
    provider: ExecutionProvider
    fallbacks: _containers.RepeatedCompositeFieldContainer[ProviderFallback]
    session_pool_size: int
    batching: DynamicBatching
    def __init__(self, state: _Optional[_Union[ModelState, str]] = ..., reason: _Optional[str] = ..., provider: _Optional[_Union[ExecutionProvider, str]] = ..., fallbacks: _Optional[_Iterable[_Union[ProviderFallback, _Mapping]]] = ..., session_pool_size: _Optional[int] = ..., batching: _Optional[_Union[DynamicBatching, _Mapping]] = ...) -> None: ...

class DynamicBatching(_message.Message):
    __slots__ = ("max_batch_size", "max_queue_delay_us", "pad_axis")
    MAX_BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    MAX_QUEUE_DELAY_US_FIELD_NUMBER: _ClassVar[int]
    PAD_AXIS_FIELD_NUMBER: _ClassVar[int]
    max_batch_size: int
    max_queue_delay_us: int
    pad_axis: int
    def __init__(self, max_batch_size: _Optional[int] = ..., max_queue_delay_us: _Optional[int] = ..., pad_axis: _Optional[int] = ...) -> None: ...

class ModelInfo(_message.Message):
    __slots__ = ("name", "version", "task", "description", "sha256", "license", "source", "file_bytes", "inputs", "outputs", "status")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    LICENSE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    FILE_BYTES_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    task: str
    description: str
    sha256: str
    license: str
    source: str
    file_bytes: int
    inputs: _containers.RepeatedCompositeFieldContainer[TensorSpec]
    outputs: _containers.RepeatedCompositeFieldContainer[TensorSpec]
    status: ModelStatus
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., task: _Optional[str] = ..., description: _Optional[str] = ..., sha256: _Optional[str] = ..., license: _Optional[str] = ..., source: _Optional[str] = ..., file_bytes: _Optional[int] = ..., inputs: _Optional[_Iterable[_Union[TensorSpec, _Mapping]]] = ..., outputs: _Optional[_Iterable[_Union[TensorSpec, _Mapping]]] = ..., status: _Optional[_Union[ModelStatus, _Mapping]] = ...) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ("ready_only",)
    READY_ONLY_FIELD_NUMBER: _ClassVar[int]
    ready_only: bool
    def __init__(self, ready_only: bool = ...) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("models", "runtime_version", "available_providers")
    MODELS_FIELD_NUMBER: _ClassVar[int]
    RUNTIME_VERSION_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_PROVIDERS_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[ModelInfo]
    runtime_version: str
    available_providers: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, models: _Optional[_Iterable[_Union[ModelInfo, _Mapping]]] = ..., runtime_version: _Optional[str] = ..., available_providers: _Optional[_Iterable[str]] = ...) -> None: ...

class GetModelRequest(_message.Message):
    __slots__ = ("model",)
    MODEL_FIELD_NUMBER: _ClassVar[int]
    model: _common_pb2.ModelRef
    def __init__(self, model: _Optional[_Union[_common_pb2.ModelRef, _Mapping]] = ...) -> None: ...

class GetModelResponse(_message.Message):
    __slots__ = ("model",)
    MODEL_FIELD_NUMBER: _ClassVar[int]
    model: ModelInfo
    def __init__(self, model: _Optional[_Union[ModelInfo, _Mapping]] = ...) -> None: ...

class GetModelStatisticsRequest(_message.Message):
    __slots__ = ("model",)
    MODEL_FIELD_NUMBER: _ClassVar[int]
    model: _common_pb2.ModelRef
    def __init__(self, model: _Optional[_Union[_common_pb2.ModelRef, _Mapping]] = ...) -> None: ...

class ModelStatistics(_message.Message):
    __slots__ = ("name", "version", "inference_count", "failure_count", "execution_ns", "queue_ns", "last_inference_unix_ms")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    INFERENCE_COUNT_FIELD_NUMBER: _ClassVar[int]
    FAILURE_COUNT_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_NS_FIELD_NUMBER: _ClassVar[int]
    QUEUE_NS_FIELD_NUMBER: _ClassVar[int]
    LAST_INFERENCE_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    inference_count: int
    failure_count: int
    execution_ns: int
    queue_ns: int
    last_inference_unix_ms: int
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., inference_count: _Optional[int] = ..., failure_count: _Optional[int] = ..., execution_ns: _Optional[int] = ..., queue_ns: _Optional[int] = ..., last_inference_unix_ms: _Optional[int] = ...) -> None: ...

class GetModelStatisticsResponse(_message.Message):
    __slots__ = ("statistics",)
    STATISTICS_FIELD_NUMBER: _ClassVar[int]
    statistics: _containers.RepeatedCompositeFieldContainer[ModelStatistics]
    def __init__(self, statistics: _Optional[_Iterable[_Union[ModelStatistics, _Mapping]]] = ...) -> None: ...

class InferRequest(_message.Message):
    __slots__ = ("model", "inputs", "outputs")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    model: _common_pb2.ModelRef
    inputs: _containers.RepeatedCompositeFieldContainer[_common_pb2.Tensor]
    outputs: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, model: _Optional[_Union[_common_pb2.ModelRef, _Mapping]] = ..., inputs: _Optional[_Iterable[_Union[_common_pb2.Tensor, _Mapping]]] = ..., outputs: _Optional[_Iterable[str]] = ...) -> None: ...

class InferResponse(_message.Message):
    __slots__ = ("model_name", "model_version", "outputs", "provider", "execution_ns")
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_NS_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    model_version: str
    outputs: _containers.RepeatedCompositeFieldContainer[_common_pb2.Tensor]
    provider: ExecutionProvider
    execution_ns: int
    def __init__(self, model_name: _Optional[str] = ..., model_version: _Optional[str] = ..., outputs: _Optional[_Iterable[_Union[_common_pb2.Tensor, _Mapping]]] = ..., provider: _Optional[_Union[ExecutionProvider, str]] = ..., execution_ns: _Optional[int] = ...) -> None: ...
