from terse_client._proto.compress.common.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PruneMethod(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PRUNE_METHOD_UNSPECIFIED: _ClassVar[PruneMethod]
    PRUNE_METHOD_FASTERVLM: _ClassVar[PruneMethod]
    PRUNE_METHOD_VISIONZIP: _ClassVar[PruneMethod]
    PRUNE_METHOD_DIVPRUNE: _ClassVar[PruneMethod]
    PRUNE_METHOD_PRUMERGE: _ClassVar[PruneMethod]
    PRUNE_METHOD_PRUMERGE_PLUS: _ClassVar[PruneMethod]
    PRUNE_METHOD_TOME: _ClassVar[PruneMethod]
    PRUNE_METHOD_IDPRUNER: _ClassVar[PruneMethod]
    PRUNE_METHOD_UNIFORM: _ClassVar[PruneMethod]
    PRUNE_METHOD_AVG_POOL: _ClassVar[PruneMethod]
PRUNE_METHOD_UNSPECIFIED: PruneMethod
PRUNE_METHOD_FASTERVLM: PruneMethod
PRUNE_METHOD_VISIONZIP: PruneMethod
PRUNE_METHOD_DIVPRUNE: PruneMethod
PRUNE_METHOD_PRUMERGE: PruneMethod
PRUNE_METHOD_PRUMERGE_PLUS: PruneMethod
PRUNE_METHOD_TOME: PruneMethod
PRUNE_METHOD_IDPRUNER: PruneMethod
PRUNE_METHOD_UNIFORM: PruneMethod
PRUNE_METHOD_AVG_POOL: PruneMethod

class Keep(_message.Message):
    __slots__ = ("count", "ratio")
    COUNT_FIELD_NUMBER: _ClassVar[int]
    RATIO_FIELD_NUMBER: _ClassVar[int]
    count: int
    ratio: float
    def __init__(self, count: _Optional[int] = ..., ratio: _Optional[float] = ...) -> None: ...

class MethodParams(_message.Message):
    __slots__ = ("contextual_tokens", "protected_tokens", "neighbours", "adaptive")
    CONTEXTUAL_TOKENS_FIELD_NUMBER: _ClassVar[int]
    PROTECTED_TOKENS_FIELD_NUMBER: _ClassVar[int]
    LAMBDA_FIELD_NUMBER: _ClassVar[int]
    NEIGHBOURS_FIELD_NUMBER: _ClassVar[int]
    ADAPTIVE_FIELD_NUMBER: _ClassVar[int]
    contextual_tokens: int
    protected_tokens: int
    neighbours: int
    adaptive: bool
    def __init__(self, contextual_tokens: _Optional[int] = ..., protected_tokens: _Optional[int] = ..., neighbours: _Optional[int] = ..., adaptive: bool = ..., **kwargs) -> None: ...

class PruneTokensRequest(_message.Message):
    __slots__ = ("tokens", "cls_attention", "keys", "query", "importance", "method", "keep", "params", "return_scores")
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    CLS_ATTENTION_FIELD_NUMBER: _ClassVar[int]
    KEYS_FIELD_NUMBER: _ClassVar[int]
    QUERY_FIELD_NUMBER: _ClassVar[int]
    IMPORTANCE_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    KEEP_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    RETURN_SCORES_FIELD_NUMBER: _ClassVar[int]
    tokens: _common_pb2.Tensor
    cls_attention: _common_pb2.Tensor
    keys: _common_pb2.Tensor
    query: _common_pb2.Tensor
    importance: _common_pb2.Tensor
    method: PruneMethod
    keep: Keep
    params: MethodParams
    return_scores: bool
    def __init__(self, tokens: _Optional[_Union[_common_pb2.Tensor, _Mapping]] = ..., cls_attention: _Optional[_Union[_common_pb2.Tensor, _Mapping]] = ..., keys: _Optional[_Union[_common_pb2.Tensor, _Mapping]] = ..., query: _Optional[_Union[_common_pb2.Tensor, _Mapping]] = ..., importance: _Optional[_Union[_common_pb2.Tensor, _Mapping]] = ..., method: _Optional[_Union[PruneMethod, str]] = ..., keep: _Optional[_Union[Keep, _Mapping]] = ..., params: _Optional[_Union[MethodParams, _Mapping]] = ..., return_scores: bool = ...) -> None: ...

class ImageReduction(_message.Message):
    __slots__ = ("kept_indices", "tokens", "slot", "sizes", "effective_tokens", "scores")
    KEPT_INDICES_FIELD_NUMBER: _ClassVar[int]
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    SLOT_FIELD_NUMBER: _ClassVar[int]
    SIZES_FIELD_NUMBER: _ClassVar[int]
    EFFECTIVE_TOKENS_FIELD_NUMBER: _ClassVar[int]
    SCORES_FIELD_NUMBER: _ClassVar[int]
    kept_indices: _containers.RepeatedScalarFieldContainer[int]
    tokens: _common_pb2.Tensor
    slot: _containers.RepeatedScalarFieldContainer[int]
    sizes: _containers.RepeatedScalarFieldContainer[float]
    effective_tokens: int
    scores: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, kept_indices: _Optional[_Iterable[int]] = ..., tokens: _Optional[_Union[_common_pb2.Tensor, _Mapping]] = ..., slot: _Optional[_Iterable[int]] = ..., sizes: _Optional[_Iterable[float]] = ..., effective_tokens: _Optional[int] = ..., scores: _Optional[_Iterable[float]] = ...) -> None: ...

class PruneTokensResponse(_message.Message):
    __slots__ = ("images", "input_tokens")
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    images: _containers.RepeatedCompositeFieldContainer[ImageReduction]
    input_tokens: int
    def __init__(self, images: _Optional[_Iterable[_Union[ImageReduction, _Mapping]]] = ..., input_tokens: _Optional[int] = ...) -> None: ...

class PruneFramesRequest(_message.Message):
    __slots__ = ("frames", "keep", "reuse_threshold", "alpha", "return_scores")
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    KEEP_FIELD_NUMBER: _ClassVar[int]
    REUSE_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    ALPHA_FIELD_NUMBER: _ClassVar[int]
    RETURN_SCORES_FIELD_NUMBER: _ClassVar[int]
    frames: _common_pb2.Tensor
    keep: Keep
    reuse_threshold: float
    alpha: float
    return_scores: bool
    def __init__(self, frames: _Optional[_Union[_common_pb2.Tensor, _Mapping]] = ..., keep: _Optional[_Union[Keep, _Mapping]] = ..., reuse_threshold: _Optional[float] = ..., alpha: _Optional[float] = ..., return_scores: bool = ...) -> None: ...

class FrameReduction(_message.Message):
    __slots__ = ("reduction", "static_tokens")
    REDUCTION_FIELD_NUMBER: _ClassVar[int]
    STATIC_TOKENS_FIELD_NUMBER: _ClassVar[int]
    reduction: ImageReduction
    static_tokens: int
    def __init__(self, reduction: _Optional[_Union[ImageReduction, _Mapping]] = ..., static_tokens: _Optional[int] = ...) -> None: ...

class PruneFramesResponse(_message.Message):
    __slots__ = ("frames",)
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    frames: _containers.RepeatedCompositeFieldContainer[FrameReduction]
    def __init__(self, frames: _Optional[_Iterable[_Union[FrameReduction, _Mapping]]] = ...) -> None: ...
