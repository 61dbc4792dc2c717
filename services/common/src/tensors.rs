//! Tensors between the wire form (`compress.common.v1.Tensor`) and [`TensorData`].

use terse_core::{DataType, TensorData};
use terse_proto::common::v1 as common;
use tonic::Status;

/// Proto enum value of a runtime data type.
pub fn datatype_to_proto(datatype: DataType) -> common::DataType {
    match datatype {
        DataType::Bool => common::DataType::Bool,
        DataType::Uint8 => common::DataType::Uint8,
        DataType::Uint16 => common::DataType::Uint16,
        DataType::Uint32 => common::DataType::Uint32,
        DataType::Uint64 => common::DataType::Uint64,
        DataType::Int8 => common::DataType::Int8,
        DataType::Int16 => common::DataType::Int16,
        DataType::Int32 => common::DataType::Int32,
        DataType::Int64 => common::DataType::Int64,
        DataType::Fp16 => common::DataType::Fp16,
        DataType::Fp32 => common::DataType::Fp32,
        DataType::Fp64 => common::DataType::Fp64,
        DataType::Bf16 => common::DataType::Bf16,
    }
}

/// Runtime data type of a proto enum value; `None` for UNSPECIFIED or unknown numbers.
pub fn datatype_from_proto(value: i32) -> Option<DataType> {
    Some(match common::DataType::try_from(value).ok()? {
        common::DataType::Unspecified => return None,
        common::DataType::Bool => DataType::Bool,
        common::DataType::Uint8 => DataType::Uint8,
        common::DataType::Uint16 => DataType::Uint16,
        common::DataType::Uint32 => DataType::Uint32,
        common::DataType::Uint64 => DataType::Uint64,
        common::DataType::Int8 => DataType::Int8,
        common::DataType::Int16 => DataType::Int16,
        common::DataType::Int32 => DataType::Int32,
        common::DataType::Int64 => DataType::Int64,
        common::DataType::Fp16 => DataType::Fp16,
        common::DataType::Fp32 => DataType::Fp32,
        common::DataType::Fp64 => DataType::Fp64,
        common::DataType::Bf16 => DataType::Bf16,
    })
}

/// Converts a wire tensor, rejecting an unspecified data type.
pub fn tensor_from_proto(tensor: common::Tensor) -> Result<TensorData, Status> {
    let datatype = datatype_from_proto(tensor.datatype).ok_or_else(|| {
        Status::invalid_argument(format!(
            "tensor `{}`: datatype is unspecified or unknown",
            tensor.name
        ))
    })?;
    Ok(TensorData {
        name: tensor.name,
        datatype,
        shape: tensor.shape,
        bytes: tensor.raw_contents,
    })
}

/// Converts a runtime tensor to the wire form.
pub fn tensor_to_proto(tensor: TensorData) -> common::Tensor {
    common::Tensor {
        name: tensor.name,
        datatype: datatype_to_proto(tensor.datatype).into(),
        shape: tensor.shape,
        raw_contents: tensor.bytes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_proto_datatype_round_trips() {
        for value in 1..=13 {
            let datatype = datatype_from_proto(value).unwrap();
            assert_eq!(datatype_to_proto(datatype) as i32, value);
        }
        assert_eq!(datatype_from_proto(0), None);
        assert_eq!(datatype_from_proto(99), None);
    }
}
