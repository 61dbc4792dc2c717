//! Conversion of tensors ([`TensorData`], defined in `terse-core`) to and from ONNX Runtime
//! values.

use std::fmt;

use ort::value::{DynValue, Tensor, TensorElementType, ValueType};

use crate::error::InferError;
pub use terse_core::{DataType, TensorData, element_count};
use terse_core::{from_le_bytes, le_bytes};

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
    fn build<T: ort::value::PrimitiveTensorElementType + bytemuck::Pod + fmt::Debug>(
        shape: &[i64],
        bytes: &[u8],
    ) -> ort::Result<DynValue> {
        let values: Vec<T> = from_le_bytes(bytes);
        Ok(Tensor::from_array((shape.to_vec(), values))?.into_dyn())
    }
    let shape = tensor.shape.as_slice();
    let bytes = tensor.bytes.as_slice();
    let value = match tensor.datatype {
        DataType::Bool => Tensor::from_array((
            shape.to_vec(),
            bytes.iter().map(|&b| b != 0).collect::<Vec<bool>>(),
        ))
        .map(Tensor::into_dyn),
        DataType::Uint8 => build::<u8>(shape, bytes),
        DataType::Int8 => build::<i8>(shape, bytes),
        DataType::Uint16 => build::<u16>(shape, bytes),
        DataType::Int16 => build::<i16>(shape, bytes),
        DataType::Uint32 => build::<u32>(shape, bytes),
        DataType::Int32 => build::<i32>(shape, bytes),
        DataType::Fp32 => build::<f32>(shape, bytes),
        DataType::Uint64 => build::<u64>(shape, bytes),
        DataType::Int64 => build::<i64>(shape, bytes),
        DataType::Fp64 => build::<f64>(shape, bytes),
        DataType::Fp16 | DataType::Bf16 => {
            return Err(InferError::InvalidInput(format!(
                "tensor `{}`: {} inputs are not supported by this server build",
                tensor.name, tensor.datatype
            )));
        }
    };
    value.map_err(|e| InferError::InvalidInput(format!("tensor `{}`: {e}", tensor.name)))
}

/// Copies an ONNX Runtime output value into a tensor (one copy, little endian).
pub(crate) fn from_ort_value(name: &str, value: &DynValue) -> Result<TensorData, InferError> {
    fn extract<T: ort::value::PrimitiveTensorElementType + bytemuck::Pod>(
        value: &DynValue,
    ) -> ort::Result<(Vec<i64>, Vec<u8>)> {
        let (shape, values) = value.try_extract_tensor::<T>()?;
        Ok((shape.to_vec(), le_bytes(values)))
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
        DataType::Bool => value.try_extract_tensor::<bool>().map(|(shape, values)| {
            (
                shape.to_vec(),
                values.iter().map(|&v| u8::from(v)).collect(),
            )
        }),
        DataType::Uint8 => extract::<u8>(value),
        DataType::Int8 => extract::<i8>(value),
        DataType::Uint16 => extract::<u16>(value),
        DataType::Int16 => extract::<i16>(value),
        DataType::Uint32 => extract::<u32>(value),
        DataType::Int32 => extract::<i32>(value),
        DataType::Fp32 => extract::<f32>(value),
        DataType::Uint64 => extract::<u64>(value),
        DataType::Int64 => extract::<i64>(value),
        DataType::Fp64 => extract::<f64>(value),
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
