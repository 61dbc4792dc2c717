//! `compress.common.v1.Tensor` ⇄ `ndarray` conversions (little-endian raw contents).

use ndarray::{ArrayD, ArrayViewD, IxDyn};
use terse_proto::common::v1::{DataType, Tensor};

use crate::Error;

/// A float32 tensor message from an array of any rank (copies into row-major order).
pub fn f32_tensor(name: &str, array: ArrayViewD<'_, f32>) -> Tensor {
    let mut raw = Vec::with_capacity(array.len() * 4);
    for value in array.iter() {
        raw.extend_from_slice(&value.to_le_bytes());
    }
    Tensor {
        name: name.to_string(),
        datatype: DataType::Fp32 as i32,
        shape: array.shape().iter().map(|&d| d as i64).collect(),
        raw_contents: raw,
    }
}

/// The shape of a tensor message, checked against its byte length for `element_bytes`.
fn checked_shape(tensor: &Tensor, element_bytes: usize) -> Result<Vec<usize>, Error> {
    let shape = tensor
        .shape
        .iter()
        .map(|&d| usize::try_from(d))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| Error::Tensor(format!("`{}` has a negative dimension", tensor.name)))?;
    let elements = shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .ok_or_else(|| Error::Tensor(format!("`{}` shape overflows", tensor.name)))?;
    if elements.checked_mul(element_bytes) != Some(tensor.raw_contents.len()) {
        return Err(Error::Tensor(format!(
            "`{}`: shape {:?} needs {} bytes, the message holds {}",
            tensor.name,
            shape,
            elements.saturating_mul(element_bytes),
            tensor.raw_contents.len()
        )));
    }
    Ok(shape)
}

/// Reads a tensor message of `expected` type into an array, element by element.
fn to_array<T, const N: usize>(
    tensor: &Tensor,
    expected: DataType,
    read: fn([u8; N]) -> T,
) -> Result<ArrayD<T>, Error> {
    if tensor.datatype != expected as i32 {
        return Err(Error::Tensor(format!(
            "`{}` is {:?}, expected {:?}",
            tensor.name,
            DataType::try_from(tensor.datatype).unwrap_or(DataType::Unspecified),
            expected
        )));
    }
    let shape = checked_shape(tensor, N)?;
    let values = tensor
        .raw_contents
        .chunks_exact(N)
        .map(|bytes| read(bytes.try_into().expect("exact chunk")))
        .collect();
    ArrayD::from_shape_vec(IxDyn(&shape), values).map_err(|e| Error::Tensor(e.to_string()))
}

/// A float32 array from a tensor message; other data types are an error.
pub fn f32_array(tensor: &Tensor) -> Result<ArrayD<f32>, Error> {
    to_array(tensor, DataType::Fp32, f32::from_le_bytes)
}

/// An int32 array from a tensor message (e.g. WaLLoC latents); other data types are an error.
pub fn i32_array(tensor: &Tensor) -> Result<ArrayD<i32>, Error> {
    to_array(tensor, DataType::Int32, i32::from_le_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array;

    #[test]
    fn f32_round_trip_keeps_shape_and_values() {
        let array = Array::from_shape_fn((2, 3, 4), |(a, b, c)| (a * 12 + b * 4 + c) as f32 - 5.5)
            .into_dyn();
        let tensor = f32_tensor("t", array.view());
        assert_eq!(tensor.shape, vec![2, 3, 4]);
        assert_eq!(f32_array(&tensor).unwrap(), array);
    }

    #[test]
    fn mismatched_length_and_type_are_errors() {
        let mut tensor = f32_tensor("t", ndarray::arr1(&[1.0f32, 2.0]).into_dyn().view());
        assert!(i32_array(&tensor).is_err());
        tensor.raw_contents.pop();
        assert!(f32_array(&tensor).is_err());
        tensor.shape = vec![-1];
        assert!(f32_array(&tensor).is_err());
    }
}
