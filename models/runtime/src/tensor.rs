//! Conversion of tensors ([`TensorData`], defined in `terse-core`) to and from ONNX Runtime
//! values.

use std::fmt;

use ort::value::{DynValue, Tensor, TensorElementType, ValueType};

use crate::error::InferError;
pub use terse_core::{DataType, TensorData, element_count};

/// The data type of an ONNX Runtime element type, `None` for strings and exotic types.
pub(crate) fn data_type_from_ort(ty: TensorElementType) -> Option<DataType> {
    Some(match ty {
        TensorElementType::Bool => DataType::Bool,
        TensorElementType::Uint8 => DataType::Uint8,
        TensorElementType::Uint16 => DataType::Uint16,
        TensorElementType::Uint32 => DataType::Uint32,
        TensorElementType::Uint64 => DataType::Uint64,
        TensorElementType::Int8 => DataType::Int8,
        TensorElementType::Int16 => DataType::Int16,
        TensorElementType::Int32 => DataType::Int32,
        TensorElementType::Int64 => DataType::Int64,
        TensorElementType::Float16 => DataType::Fp16,
        TensorElementType::Float32 => DataType::Fp32,
        TensorElementType::Float64 => DataType::Fp64,
        TensorElementType::Bfloat16 => DataType::Bf16,
        _ => return None,
    })
}

/// Converts into an ONNX Runtime value (copies the bytes once, decoding little endian).
pub(crate) fn to_ort_value(tensor: &TensorData) -> Result<DynValue, InferError> {
    fn build<T: ort::value::PrimitiveTensorElementType + Clone + fmt::Debug + 'static>(
        shape: &[i64],
        bytes: &[u8],
        decode: impl Fn(&[u8]) -> T,
    ) -> ort::Result<DynValue> {
        let size = std::mem::size_of::<T>().max(1);
        let values: Vec<T> = bytes.chunks_exact(size).map(decode).collect();
        Ok(Tensor::from_array((shape.to_vec(), values))?.into_dyn())
    }
    let shape = tensor.shape.as_slice();
    let bytes = tensor.bytes.as_slice();
    let value = match tensor.datatype {
        DataType::Bool => build(shape, bytes, |b| b[0] != 0),
        DataType::Uint8 => build(shape, bytes, |b| b[0]),
        DataType::Int8 => build(shape, bytes, |b| b[0] as i8),
        DataType::Uint16 => build(shape, bytes, |b| u16::from_le_bytes([b[0], b[1]])),
        DataType::Int16 => build(shape, bytes, |b| i16::from_le_bytes([b[0], b[1]])),
        DataType::Uint32 => build(shape, bytes, |b| {
            u32::from_le_bytes(b.try_into().unwrap_or_default())
        }),
        DataType::Int32 => build(shape, bytes, |b| {
            i32::from_le_bytes(b.try_into().unwrap_or_default())
        }),
        DataType::Fp32 => build(shape, bytes, |b| {
            f32::from_le_bytes(b.try_into().unwrap_or_default())
        }),
        DataType::Uint64 => build(shape, bytes, |b| {
            u64::from_le_bytes(b.try_into().unwrap_or_default())
        }),
        DataType::Int64 => build(shape, bytes, |b| {
            i64::from_le_bytes(b.try_into().unwrap_or_default())
        }),
        DataType::Fp64 => build(shape, bytes, |b| {
            f64::from_le_bytes(b.try_into().unwrap_or_default())
        }),
        DataType::Fp16 | DataType::Bf16 => {
            return Err(InferError::InvalidInput(format!(
                "tensor `{}`: {} inputs are not supported by this server build",
                tensor.name, tensor.datatype
            )));
        }
    };
    value.map_err(|e| InferError::InvalidInput(format!("tensor `{}`: {e}", tensor.name)))
}

/// Copies an ONNX Runtime output value into a tensor.
pub(crate) fn from_ort_value(name: &str, value: &DynValue) -> Result<TensorData, InferError> {
    fn extract<T: ort::value::PrimitiveTensorElementType + Copy>(
        value: &DynValue,
        encode: impl Fn(T) -> Vec<u8>,
    ) -> ort::Result<(Vec<i64>, Vec<u8>)> {
        let (shape, values) = value.try_extract_tensor::<T>()?;
        Ok((
            shape.to_vec(),
            values.iter().flat_map(|&v| encode(v)).collect(),
        ))
    }
    let ValueType::Tensor { ty, .. } = value.dtype() else {
        return Err(InferError::Execution(format!(
            "output `{name}` is not a tensor"
        )));
    };
    let datatype = data_type_from_ort(*ty).ok_or_else(|| {
        InferError::Execution(format!(
            "output `{name}` has unsupported element type {ty:?}"
        ))
    })?;
    let extracted = match datatype {
        DataType::Bool => extract::<bool>(value, |v| vec![v as u8]),
        DataType::Uint8 => extract::<u8>(value, |v| vec![v]),
        DataType::Int8 => extract::<i8>(value, |v| v.to_le_bytes().to_vec()),
        DataType::Uint16 => extract::<u16>(value, |v| v.to_le_bytes().to_vec()),
        DataType::Int16 => extract::<i16>(value, |v| v.to_le_bytes().to_vec()),
        DataType::Uint32 => extract::<u32>(value, |v| v.to_le_bytes().to_vec()),
        DataType::Int32 => extract::<i32>(value, |v| v.to_le_bytes().to_vec()),
        DataType::Fp32 => extract::<f32>(value, |v| v.to_le_bytes().to_vec()),
        DataType::Uint64 => extract::<u64>(value, |v| v.to_le_bytes().to_vec()),
        DataType::Int64 => extract::<i64>(value, |v| v.to_le_bytes().to_vec()),
        DataType::Fp64 => extract::<f64>(value, |v| v.to_le_bytes().to_vec()),
        DataType::Fp16 | DataType::Bf16 => {
            return Err(InferError::Execution(format!(
                "output `{name}`: {datatype} outputs are not supported by this server build"
            )));
        }
    };
    let (shape, bytes) =
        extracted.map_err(|e| InferError::Execution(format!("output `{name}`: {e}")))?;
    Ok(TensorData {
        name: name.to_string(),
        datatype,
        shape,
        bytes,
    })
}
