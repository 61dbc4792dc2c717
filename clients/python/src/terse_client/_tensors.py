"""numpy arrays <-> ``compress.common.v1.Tensor`` (little-endian raw contents)."""

from __future__ import annotations

import numpy as np

from terse_client._proto.compress.common.v1 import common_pb2

_TO_PROTO = {
    np.dtype(np.bool_): common_pb2.DATA_TYPE_BOOL,
    np.dtype(np.uint8): common_pb2.DATA_TYPE_UINT8,
    np.dtype(np.uint16): common_pb2.DATA_TYPE_UINT16,
    np.dtype(np.uint32): common_pb2.DATA_TYPE_UINT32,
    np.dtype(np.uint64): common_pb2.DATA_TYPE_UINT64,
    np.dtype(np.int8): common_pb2.DATA_TYPE_INT8,
    np.dtype(np.int16): common_pb2.DATA_TYPE_INT16,
    np.dtype(np.int32): common_pb2.DATA_TYPE_INT32,
    np.dtype(np.int64): common_pb2.DATA_TYPE_INT64,
    np.dtype(np.float16): common_pb2.DATA_TYPE_FP16,
    np.dtype(np.float32): common_pb2.DATA_TYPE_FP32,
    np.dtype(np.float64): common_pb2.DATA_TYPE_FP64,
}
_FROM_PROTO = {code: dtype for dtype, code in _TO_PROTO.items()}


def to_tensor(name: str, array: np.ndarray) -> common_pb2.Tensor:
    """A tensor message from an array. float64 is sent as float32 (what the services take);
    :func:`to_tensor_exact` keeps any dtype."""
    array = np.asarray(array)
    if array.dtype == np.float64:
        array = array.astype(np.float32)
    return to_tensor_exact(name, array)


def to_tensor_exact(name: str, array: np.ndarray) -> common_pb2.Tensor:
    """A tensor message keeping the array's dtype."""
    array = np.asarray(array)
    if array.dtype not in _TO_PROTO:
        raise TypeError(f"tensor {name!r}: dtype {array.dtype} has no terse data type")
    little = array.astype(array.dtype.newbyteorder("<"), copy=False)
    return common_pb2.Tensor(
        name=name,
        datatype=_TO_PROTO[array.dtype],
        shape=list(array.shape),
        raw_contents=np.ascontiguousarray(little).tobytes(),
    )


def to_array(tensor: common_pb2.Tensor) -> np.ndarray:
    """An array from a tensor message; the byte length must match the shape."""
    if tensor.datatype not in _FROM_PROTO:
        raise ValueError(f"tensor {tensor.name!r}: unsupported data type {tensor.datatype}")
    dtype = _FROM_PROTO[tensor.datatype].newbyteorder("<")
    shape = tuple(int(d) for d in tensor.shape)
    if any(d < 0 for d in shape):
        raise ValueError(f"tensor {tensor.name!r}: negative dimension in {shape}")
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if expected != len(tensor.raw_contents):
        raise ValueError(
            f"tensor {tensor.name!r}: shape {shape} needs {expected} bytes, "
            f"the message holds {len(tensor.raw_contents)}"
        )
    return np.frombuffer(tensor.raw_contents, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))
