from terse_client._proto.compress.common.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SplatFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SPLAT_FORMAT_UNSPECIFIED: _ClassVar[SplatFormat]
    SPLAT_FORMAT_PLY: _ClassVar[SplatFormat]
    SPLAT_FORMAT_SPZ: _ClassVar[SplatFormat]
    SPLAT_FORMAT_TERSE: _ClassVar[SplatFormat]

class Preset(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PRESET_UNSPECIFIED: _ClassVar[Preset]
    PRESET_HIGH: _ClassVar[Preset]
    PRESET_BALANCED: _ClassVar[Preset]
    PRESET_SMALL: _ClassVar[Preset]
    PRESET_WEB: _ClassVar[Preset]
SPLAT_FORMAT_UNSPECIFIED: SplatFormat
SPLAT_FORMAT_PLY: SplatFormat
SPLAT_FORMAT_SPZ: SplatFormat
SPLAT_FORMAT_TERSE: SplatFormat
PRESET_UNSPECIFIED: Preset
PRESET_HIGH: Preset
PRESET_BALANCED: Preset
PRESET_SMALL: Preset
PRESET_WEB: Preset

class EncodeOptions(_message.Message):
    __slots__ = ("input_format", "position_bits", "max_sh_degree", "preset", "rotation_bits", "opacity_bits", "scale_step", "color_step", "sh_band1_step", "sh_higher_step", "min_opacity", "sh_codebook", "position_step")
    INPUT_FORMAT_FIELD_NUMBER: _ClassVar[int]
    POSITION_BITS_FIELD_NUMBER: _ClassVar[int]
    MAX_SH_DEGREE_FIELD_NUMBER: _ClassVar[int]
    PRESET_FIELD_NUMBER: _ClassVar[int]
    ROTATION_BITS_FIELD_NUMBER: _ClassVar[int]
    OPACITY_BITS_FIELD_NUMBER: _ClassVar[int]
    SCALE_STEP_FIELD_NUMBER: _ClassVar[int]
    COLOR_STEP_FIELD_NUMBER: _ClassVar[int]
    SH_BAND1_STEP_FIELD_NUMBER: _ClassVar[int]
    SH_HIGHER_STEP_FIELD_NUMBER: _ClassVar[int]
    MIN_OPACITY_FIELD_NUMBER: _ClassVar[int]
    SH_CODEBOOK_FIELD_NUMBER: _ClassVar[int]
    POSITION_STEP_FIELD_NUMBER: _ClassVar[int]
    input_format: SplatFormat
    position_bits: int
    max_sh_degree: int
    preset: Preset
    rotation_bits: int
    opacity_bits: int
    scale_step: float
    color_step: float
    sh_band1_step: float
    sh_higher_step: float
    min_opacity: float
    sh_codebook: int
    position_step: float
    def __init__(self, input_format: _Optional[_Union[SplatFormat, str]] = ..., position_bits: _Optional[int] = ..., max_sh_degree: _Optional[int] = ..., preset: _Optional[_Union[Preset, str]] = ..., rotation_bits: _Optional[int] = ..., opacity_bits: _Optional[int] = ..., scale_step: _Optional[float] = ..., color_step: _Optional[float] = ..., sh_band1_step: _Optional[float] = ..., sh_higher_step: _Optional[float] = ..., min_opacity: _Optional[float] = ..., sh_codebook: _Optional[int] = ..., position_step: _Optional[float] = ...) -> None: ...

class AttributeError(_message.Message):
    __slots__ = ("attribute", "rmse", "max_abs_error", "psnr_db", "mean_error")
    ATTRIBUTE_FIELD_NUMBER: _ClassVar[int]
    RMSE_FIELD_NUMBER: _ClassVar[int]
    MAX_ABS_ERROR_FIELD_NUMBER: _ClassVar[int]
    PSNR_DB_FIELD_NUMBER: _ClassVar[int]
    MEAN_ERROR_FIELD_NUMBER: _ClassVar[int]
    attribute: str
    rmse: float
    max_abs_error: float
    psnr_db: float
    mean_error: float
    def __init__(self, attribute: _Optional[str] = ..., rmse: _Optional[float] = ..., max_abs_error: _Optional[float] = ..., psnr_db: _Optional[float] = ..., mean_error: _Optional[float] = ...) -> None: ...

class Section(_message.Message):
    __slots__ = ("tag", "bytes")
    TAG_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    tag: str
    bytes: int
    def __init__(self, tag: _Optional[str] = ..., bytes: _Optional[int] = ...) -> None: ...

class EncodeResult(_message.Message):
    __slots__ = ("bitstream", "splat_count", "sh_degree", "rate_distortion", "attribute_errors", "source_splats", "pruned_splats", "sections", "warnings", "compression_ratio")
    BITSTREAM_FIELD_NUMBER: _ClassVar[int]
    SPLAT_COUNT_FIELD_NUMBER: _ClassVar[int]
    SH_DEGREE_FIELD_NUMBER: _ClassVar[int]
    RATE_DISTORTION_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTE_ERRORS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_SPLATS_FIELD_NUMBER: _ClassVar[int]
    PRUNED_SPLATS_FIELD_NUMBER: _ClassVar[int]
    SECTIONS_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    COMPRESSION_RATIO_FIELD_NUMBER: _ClassVar[int]
    bitstream: bytes
    splat_count: int
    sh_degree: int
    rate_distortion: _common_pb2.RateDistortion
    attribute_errors: _containers.RepeatedCompositeFieldContainer[AttributeError]
    source_splats: int
    pruned_splats: int
    sections: _containers.RepeatedCompositeFieldContainer[Section]
    warnings: _containers.RepeatedScalarFieldContainer[str]
    compression_ratio: float
    def __init__(self, bitstream: _Optional[bytes] = ..., splat_count: _Optional[int] = ..., sh_degree: _Optional[int] = ..., rate_distortion: _Optional[_Union[_common_pb2.RateDistortion, _Mapping]] = ..., attribute_errors: _Optional[_Iterable[_Union[AttributeError, _Mapping]]] = ..., source_splats: _Optional[int] = ..., pruned_splats: _Optional[int] = ..., sections: _Optional[_Iterable[_Union[Section, _Mapping]]] = ..., warnings: _Optional[_Iterable[str]] = ..., compression_ratio: _Optional[float] = ...) -> None: ...

class EncodeRequest(_message.Message):
    __slots__ = ("scene", "options")
    SCENE_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    scene: bytes
    options: EncodeOptions
    def __init__(self, scene: _Optional[bytes] = ..., options: _Optional[_Union[EncodeOptions, _Mapping]] = ...) -> None: ...

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
    __slots__ = ("bitstream", "output_format", "spz_version")
    BITSTREAM_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FORMAT_FIELD_NUMBER: _ClassVar[int]
    SPZ_VERSION_FIELD_NUMBER: _ClassVar[int]
    bitstream: bytes
    output_format: SplatFormat
    spz_version: int
    def __init__(self, bitstream: _Optional[bytes] = ..., output_format: _Optional[_Union[SplatFormat, str]] = ..., spz_version: _Optional[int] = ...) -> None: ...

class DecodeResponse(_message.Message):
    __slots__ = ("scene", "format", "splat_count", "sh_degree")
    SCENE_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    SPLAT_COUNT_FIELD_NUMBER: _ClassVar[int]
    SH_DEGREE_FIELD_NUMBER: _ClassVar[int]
    scene: bytes
    format: SplatFormat
    splat_count: int
    sh_degree: int
    def __init__(self, scene: _Optional[bytes] = ..., format: _Optional[_Union[SplatFormat, str]] = ..., splat_count: _Optional[int] = ..., sh_degree: _Optional[int] = ...) -> None: ...

class DecodeStreamRequest(_message.Message):
    __slots__ = ("bitstream", "output_format", "spz_version")
    BITSTREAM_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FORMAT_FIELD_NUMBER: _ClassVar[int]
    SPZ_VERSION_FIELD_NUMBER: _ClassVar[int]
    bitstream: bytes
    output_format: SplatFormat
    spz_version: int
    def __init__(self, bitstream: _Optional[bytes] = ..., output_format: _Optional[_Union[SplatFormat, str]] = ..., spz_version: _Optional[int] = ...) -> None: ...

class DecodeStreamResponse(_message.Message):
    __slots__ = ("splat_count", "sh_degree", "chunk")
    SPLAT_COUNT_FIELD_NUMBER: _ClassVar[int]
    SH_DEGREE_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    splat_count: int
    sh_degree: int
    chunk: _common_pb2.Chunk
    def __init__(self, splat_count: _Optional[int] = ..., sh_degree: _Optional[int] = ..., chunk: _Optional[_Union[_common_pb2.Chunk, _Mapping]] = ...) -> None: ...

class InfoRequest(_message.Message):
    __slots__ = ("data",)
    DATA_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    def __init__(self, data: _Optional[bytes] = ...) -> None: ...

class InfoResponse(_message.Message):
    __slots__ = ("format", "format_version", "splat_count", "sh_degree", "source_splats", "sections")
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    FORMAT_VERSION_FIELD_NUMBER: _ClassVar[int]
    SPLAT_COUNT_FIELD_NUMBER: _ClassVar[int]
    SH_DEGREE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_SPLATS_FIELD_NUMBER: _ClassVar[int]
    SECTIONS_FIELD_NUMBER: _ClassVar[int]
    format: SplatFormat
    format_version: int
    splat_count: int
    sh_degree: int
    source_splats: int
    sections: _containers.RepeatedCompositeFieldContainer[Section]
    def __init__(self, format: _Optional[_Union[SplatFormat, str]] = ..., format_version: _Optional[int] = ..., splat_count: _Optional[int] = ..., sh_degree: _Optional[int] = ..., source_splats: _Optional[int] = ..., sections: _Optional[_Iterable[_Union[Section, _Mapping]]] = ...) -> None: ...
