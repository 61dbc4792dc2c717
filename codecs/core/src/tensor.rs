//! Tensors as they travel: element type, shape and raw little-endian bytes (KServe v2 style).

use std::fmt;

use serde::Deserialize;

use crate::Error;

/// Element type of a tensor. Names follow KServe v2 (`fp32`, `int64`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DataType {
    /// `bool`, one byte per element (0 or 1).
    Bool,
    /// `u8`.
    Uint8,
    /// `u16`.
    Uint16,
    /// `u32`.
    Uint32,
    /// `u64`.
    Uint64,
    /// `i8`.
    Int8,
    /// `i16`.
    Int16,
    /// `i32`.
    Int32,
    /// `i64`.
    Int64,
    /// IEEE half precision (carried as raw bits).
    Fp16,
    /// `f32`.
    Fp32,
    /// `f64`.
    Fp64,
    /// bfloat16 (carried as raw bits).
    Bf16,
}

impl DataType {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Self::Bool | Self::Uint8 | Self::Int8 => 1,
            Self::Uint16 | Self::Int16 | Self::Fp16 | Self::Bf16 => 2,
            Self::Uint32 | Self::Int32 | Self::Fp32 => 4,
            Self::Uint64 | Self::Int64 | Self::Fp64 => 8,
        }
    }
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Self::Bool => "bool",
            Self::Uint8 => "uint8",
            Self::Uint16 => "uint16",
            Self::Uint32 => "uint32",
            Self::Uint64 => "uint64",
            Self::Int8 => "int8",
            Self::Int16 => "int16",
            Self::Int32 => "int32",
            Self::Int64 => "int64",
            Self::Fp16 => "fp16",
            Self::Fp32 => "fp32",
            Self::Fp64 => "fp64",
            Self::Bf16 => "bf16",
        };
        f.write_str(name)
    }
}

/// A dense tensor with its elements as row-major little-endian bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorData {
    /// Model input or output name.
    pub name: String,
    /// Element type.
    pub datatype: DataType,
    /// Dimensions; all non-negative.
    pub shape: Vec<i64>,
    /// `product(shape) * datatype.size()` bytes.
    pub bytes: Vec<u8>,
}

/// Number of elements of `shape`, or an error for negative dimensions or overflow.
pub fn element_count(shape: &[i64]) -> Result<usize, String> {
    shape.iter().try_fold(1usize, |count, &dim| {
        let dim = usize::try_from(dim).map_err(|_| format!("dimension {dim} is negative"))?;
        count
            .checked_mul(dim)
            .ok_or_else(|| format!("shape {shape:?} overflows"))
    })
}

/// The little-endian bytes of `values`, in one copy (a byte swap per element on big-endian
/// machines).
pub fn le_bytes<T: bytemuck::Pod>(values: &[T]) -> Vec<u8> {
    let mut bytes = bytemuck::cast_slice::<T, u8>(values).to_vec();
    if cfg!(target_endian = "big") {
        bytes
            .chunks_exact_mut(std::mem::size_of::<T>())
            .for_each(<[u8]>::reverse);
    }
    bytes
}

/// The values whose little-endian bytes are `bytes`, in one copy (any alignment); a trailing
/// partial element is ignored.
pub fn from_le_bytes<T: bytemuck::Pod>(bytes: &[u8]) -> Vec<T> {
    let whole = bytes.len() - bytes.len() % std::mem::size_of::<T>();
    if cfg!(target_endian = "big") {
        let mut swapped = bytes[..whole].to_vec();
        swapped
            .chunks_exact_mut(std::mem::size_of::<T>())
            .for_each(<[u8]>::reverse);
        return bytemuck::pod_collect_to_vec(&swapped);
    }
    bytemuck::pod_collect_to_vec(&bytes[..whole])
}

impl TensorData {
    /// Builds an `f32` tensor from values (used by tests and services that compute inputs).
    pub fn from_f32(name: impl Into<String>, shape: Vec<i64>, values: &[f32]) -> Self {
        Self {
            name: name.into(),
            datatype: DataType::Fp32,
            shape,
            bytes: le_bytes(values),
        }
    }

    /// The elements as `f32`, if this is an `fp32` tensor.
    pub fn to_f32(&self) -> Option<Vec<f32>> {
        (self.datatype == DataType::Fp32).then(|| from_le_bytes(&self.bytes))
    }

    /// Builds an `int64` tensor from values (token ids, masks).
    pub fn from_i64(name: impl Into<String>, shape: Vec<i64>, values: &[i64]) -> Self {
        Self {
            name: name.into(),
            datatype: DataType::Int64,
            shape,
            bytes: le_bytes(values),
        }
    }

    /// An `f32` tensor from an array of any rank.
    pub fn from_f32_array(name: impl Into<String>, array: ndarray::ArrayViewD<f32>) -> Self {
        let shape = array.shape().iter().map(|&d| d as i64).collect();
        Self {
            name: name.into(),
            datatype: DataType::Fp32,
            shape,
            bytes: array.iter().flat_map(|v| v.to_le_bytes()).collect(),
        }
    }

    /// The elements as an `f32` array of this tensor's shape, if this is a consistent `fp32`
    /// tensor.
    pub fn to_f32_array(&self) -> Option<ndarray::ArrayD<f32>> {
        let dims: Vec<usize> = self
            .shape
            .iter()
            .map(|&d| usize::try_from(d).ok())
            .collect::<Option<_>>()?;
        ndarray::ArrayD::from_shape_vec(dims, self.to_f32()?).ok()
    }

    /// Checks that the byte length matches shape and type; returns the element count.
    pub fn validate(&self) -> Result<usize, Error> {
        let count = element_count(&self.shape)
            .map_err(|e| Error::invalid(format!("tensor `{}`: {e}", self.name)))?;
        let expected = count
            .checked_mul(self.datatype.size())
            .ok_or_else(|| Error::invalid(format!("tensor `{}`: size overflows", self.name)))?;
        if self.bytes.len() != expected {
            return Err(Error::invalid(format!(
                "tensor `{}`: shape {:?} of {} needs {expected} bytes, got {}",
                self.name,
                self.shape,
                self.datatype,
                self.bytes.len()
            )));
        }
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_rejects_wrong_byte_length() {
        let mut t = TensorData::from_f32("x", vec![2, 3], &[0.0; 6]);
        assert_eq!(t.validate().unwrap(), 6);
        t.bytes.pop();
        let err = t.validate().unwrap_err().to_string();
        assert!(err.contains("needs 24 bytes, got 23"), "{err}");
    }

    #[test]
    fn validate_rejects_negative_and_overflowing_shapes() {
        let t = TensorData {
            name: "x".into(),
            datatype: DataType::Fp32,
            shape: vec![-1, 2],
            bytes: vec![],
        };
        assert!(t.validate().unwrap_err().to_string().contains("negative"));
        let t = TensorData {
            name: "x".into(),
            datatype: DataType::Fp32,
            shape: vec![i64::MAX, i64::MAX],
            bytes: vec![],
        };
        assert!(t.validate().unwrap_err().to_string().contains("overflows"));
    }

    #[test]
    fn f32_round_trips_through_bytes() {
        let values = [1.5f32, -0.25, f32::MAX, f32::MIN_POSITIVE];
        let t = TensorData::from_f32("x", vec![4], &values);
        assert_eq!(t.to_f32().unwrap(), values);
    }
}
