//! Float tensors off the wire: FP32, FP16 or BF16, checked shape and byte length.

use ndarray::{Array2, ArrayD, Axis, IxDyn};
use terse_proto::common::v1 as common;
use tonic::Status;

/// A decoded float tensor.
pub type Floats = ArrayD<f32>;

/// Decodes `tensor` (named `what` in errors) to f32, checking dtype, shape and byte length
/// against `max_elements`.
pub fn floats(tensor: &common::Tensor, what: &str, max_elements: usize) -> Result<Floats, Status> {
    let dtype =
        common::DataType::try_from(tensor.datatype).unwrap_or(common::DataType::Unspecified);
    let width = match dtype {
        common::DataType::Fp32 => 4,
        common::DataType::Fp16 | common::DataType::Bf16 => 2,
        other => {
            return Err(Status::invalid_argument(format!(
                "{what}: datatype {other:?} is not supported (FP32, FP16 or BF16)"
            )));
        }
    };
    let mut shape = Vec::with_capacity(tensor.shape.len());
    let mut count: usize = 1;
    for &d in &tensor.shape {
        let d = usize::try_from(d)
            .map_err(|_| Status::invalid_argument(format!("{what}: negative dimension {d}")))?;
        count = count
            .checked_mul(d)
            .filter(|&c| c <= max_elements)
            .ok_or_else(|| {
                Status::resource_exhausted(format!("{what}: more than {max_elements} elements"))
            })?;
        shape.push(d);
    }
    if tensor.raw_contents.len() != count * width {
        return Err(Status::invalid_argument(format!(
            "{what}: shape {:?} of {dtype:?} needs {} bytes, raw_contents has {}",
            tensor.shape,
            count * width,
            tensor.raw_contents.len()
        )));
    }
    let bytes = &tensor.raw_contents;
    let values: Vec<f32> = match dtype {
        common::DataType::Fp32 => terse_core::from_le_bytes(bytes),
        common::DataType::Fp16 => bytes
            .chunks_exact(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        _ => bytes
            .chunks_exact(2)
            .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
    };
    ArrayD::from_shape_vec(IxDyn(&shape), values)
        .map_err(|e| Status::invalid_argument(format!("{what}: {e}")))
}

/// Splits a `[N, X]` or `[B, N, X]` tensor into `batch` matrices (a rank-2 tensor is shared
/// when `batch` is 1).
pub fn per_image(
    t: &Floats,
    what: &str,
    batch: usize,
    n: usize,
) -> Result<Vec<Array2<f32>>, Status> {
    let bad = || {
        Status::invalid_argument(format!(
            "{what} must be [{n}, *] or [{batch}, {n}, *], got {:?}",
            t.shape()
        ))
    };
    match t.ndim() {
        2 if batch == 1 && t.shape()[0] == n => {
            Ok(vec![t.clone().into_dimensionality().map_err(|_| bad())?])
        }
        3 if t.shape()[0] == batch && t.shape()[1] == n => Ok(t
            .axis_iter(Axis(0))
            .map(|m| m.into_dimensionality().expect("rank 2").to_owned())
            .collect()),
        _ => Err(bad()),
    }
}

/// Splits [CLS] attention into per-image `[H, N]` matrices. Accepted: `[N]`, `[H, N]` (single
/// image), `[B, N]` (batch), `[B, H, N]`.
pub fn attention_per_image(
    t: &Floats,
    batch: usize,
    n: usize,
    batched: bool,
) -> Result<Vec<Array2<f32>>, Status> {
    let bad = || {
        Status::invalid_argument(format!(
            "cls_attention must be [{n}], [H, {n}]{} or [{batch}, H, {n}], got {:?}",
            if batched {
                format!(", [{batch}, {n}]")
            } else {
                String::new()
            },
            t.shape()
        ))
    };
    let shape = t.shape();
    if shape.last() != Some(&n) {
        return Err(bad());
    }
    match (shape.len(), batched) {
        (1, _) if batch == 1 => Ok(vec![
            t.clone().into_shape_with_order((1, n)).map_err(|_| bad())?,
        ]),
        (2, false) => Ok(vec![t.clone().into_dimensionality().map_err(|_| bad())?]),
        (2, true) if shape[0] == batch => Ok(t
            .axis_iter(Axis(0))
            .map(|row| row.to_owned().into_shape_with_order((1, n)).expect("row"))
            .collect()),
        (3, _) if shape[0] == batch => Ok(t
            .axis_iter(Axis(0))
            .map(|m| m.into_dimensionality().expect("rank 2").to_owned())
            .collect()),
        _ => Err(bad()),
    }
}

/// An f32 matrix as a wire tensor.
pub fn to_tensor(name: &str, m: &Array2<f32>) -> common::Tensor {
    common::Tensor {
        name: name.to_string(),
        datatype: common::DataType::Fp32 as i32,
        shape: m.shape().iter().map(|&d| d as i64).collect(),
        raw_contents: m.iter().flat_map(|v| v.to_le_bytes()).collect(),
    }
}
