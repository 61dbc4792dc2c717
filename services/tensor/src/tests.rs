//! The tensor service over the shipped weight codec and a KV-cache codec of made-up model
//! dimensions: conversion, limits and status mapping (no model weights, so no ONNX Runtime).

use api::tensor_service_server::TensorService as _;
use safetensors::{Dtype, tensor::TensorView};
use terse_e2e::weight_values;
use terse_kvcache::ModelDims;
use tonic::Code;

use super::*;
use tonic::Request;

const DIMS: ModelDims = ModelDims {
    layers: 2,
    kv_heads: 2,
    head_dim: 8,
    context_length: 256,
};

fn service(limits: TensorLimits, memory_bytes: u64) -> TensorService {
    let kv = KvCacheCodec::new("tiny-lm", "1", &"ab".repeat(32), DIMS).unwrap();
    TensorService::new(
        terse_hosting::tensor_codecs(),
        vec![Arc::new(kv)],
        limits,
        MemoryBudget::new(memory_bytes),
    )
}

fn roomy() -> TensorService {
    service(TensorLimits::default(), 1 << 30)
}

/// A safetensors file: a BF16 matrix, an F32 vector and metadata.
fn checkpoint() -> Vec<u8> {
    let w = weight_values(300 * 200, 3);
    let bf16: Vec<u8> = w
        .iter()
        .flat_map(|v| ((v.to_bits() >> 16) as u16).to_le_bytes())
        .collect();
    let bias: Vec<u8> = w[..500].iter().flat_map(|v| v.to_le_bytes()).collect();
    let views = vec![
        (
            "layer.weight".to_string(),
            TensorView::new(Dtype::BF16, vec![300, 200], &bf16).unwrap(),
        ),
        (
            "layer.bias".to_string(),
            TensorView::new(Dtype::F32, vec![500], &bias).unwrap(),
        ),
    ];
    let metadata = std::collections::HashMap::from([("format".to_string(), "pt".to_string())]);
    safetensors::serialize(views, Some(metadata)).unwrap()
}

async fn encode(service: &TensorService, file: Vec<u8>) -> Result<api::EncodeResult, Status> {
    Ok(service
        .encode(Request::new(api::EncodeRequest {
            file,
            options: Some(api::EncodeOptions {
                chunk_elements: Some(16_384),
            }),
        }))
        .await?
        .into_inner()
        .result
        .expect("a result"))
}

fn kv_request(values: &[f32], tokens: u32, level: u32) -> api::EncodeKvCacheRequest {
    api::EncodeKvCacheRequest {
        model: "tiny-lm".into(),
        cache: Some(api::KvCache {
            layers: DIMS.layers as u32,
            kv_heads: DIMS.kv_heads as u32,
            tokens,
            head_dim: DIMS.head_dim as u32,
            dtype: "fp32".into(),
            values: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        }),
        level,
        sink_tokens: None,
    }
}

fn assert_code<T: std::fmt::Debug>(result: Result<T, Status>, code: Code, says: &str) {
    let status = result.expect_err("an error status");
    assert_eq!(status.code(), code, "{status:?}");
    assert!(status.message().contains(says), "{status:?}");
}

#[tokio::test]
async fn weights_round_trip_byte_for_byte_and_read_one_tensor() {
    let service = roomy();
    let file = checkpoint();
    let result = encode(&service, file.clone()).await.unwrap();
    assert!(
        result.compression_ratio > 1.0,
        "{}",
        result.compression_ratio
    );
    let names: Vec<&str> = result.tensors.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names.contains(&"layer.weight") && names.contains(&"layer.bias"));
    let weight = result.tensors.iter().find(|t| t.name == "layer.weight");
    assert_eq!(
        weight.unwrap().chunks,
        4,
        "60,000 values in chunks of 16,384"
    );

    let decoded = service
        .decode(Request::new(api::DecodeRequest {
            bitstream: result.bitstream.clone(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(decoded.file, file);

    let info = service
        .info(Request::new(api::InfoRequest {
            bitstream: result.bitstream.clone(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.file_bytes, file.len() as u64);
    assert_eq!(info.chunk_elements, 16_384);

    let bias = service
        .read_tensor(Request::new(api::ReadTensorRequest {
            bitstream: result.bitstream,
            name: "layer.bias".into(),
        }))
        .await
        .unwrap()
        .into_inner();
    let expected: Vec<u8> = weight_values(300 * 200, 3)[..500]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    assert_eq!(bias.data, expected);
}

#[tokio::test]
async fn kv_caches_round_trip_within_the_reported_error() {
    let service = roomy();
    let models = service
        .list_kv_models(Request::new(api::ListKvModelsRequest {}))
        .await
        .unwrap()
        .into_inner()
        .models;
    assert_eq!(models.len(), 1);
    assert_eq!(models[0].model.as_ref().unwrap().name, "tiny-lm");
    assert_eq!((models[0].layers, models[0].head_dim), (2, 8));

    let tokens = 40u32;
    let cache = weight_values(
        DIMS.layers * 2 * DIMS.kv_heads * tokens as usize * DIMS.head_dim,
        9,
    );
    let encoded = service
        .encode_kv_cache(Request::new(kv_request(&cache, tokens, 0)))
        .await
        .unwrap()
        .into_inner();
    let rd = encoded.rate_distortion.unwrap();
    assert_eq!(rd.original_bytes, cache.len() as u64 * 4);
    assert!(rd.compressed_bytes < rd.original_bytes / 2, "{rd:?}");
    assert!(rd.snr_db.unwrap() > 10.0, "{rd:?}");

    let decoded = service
        .decode_kv_cache(Request::new(api::DecodeKvCacheRequest {
            bitstream: encoded.bitstream,
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(decoded.model, "tiny-lm");
    let back = decoded.cache.unwrap();
    assert_eq!((back.tokens, back.dtype.as_str()), (tokens, "fp32"));
    let worst = back
        .values
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .zip(&cache)
        .map(|(a, b)| f64::from((a - b).abs()))
        .fold(0.0, f64::max);
    assert!(
        (worst - encoded.max_abs_error).abs() < 1e-9,
        "reported {} measured {worst}",
        encoded.max_abs_error
    );
}

#[tokio::test]
async fn bad_requests_get_precise_statuses() {
    let service = roomy();
    let cache = weight_values(DIMS.layers * 2 * DIMS.kv_heads * 4 * DIMS.head_dim, 1);

    assert_code(
        encode(&service, b"not a safetensors file".to_vec()).await,
        Code::InvalidArgument,
        "",
    );
    let zero_chunks = service
        .encode(Request::new(api::EncodeRequest {
            file: checkpoint(),
            options: Some(api::EncodeOptions {
                chunk_elements: Some(0),
            }),
        }))
        .await;
    assert_code(zero_chunks, Code::InvalidArgument, "chunk_elements");
    let garbage = service
        .decode(Request::new(api::DecodeRequest {
            bitstream: b"GIF89a".to_vec(),
        }))
        .await;
    assert_code(garbage, Code::InvalidArgument, "TRSE");

    let mut unknown = kv_request(&cache, 4, 0);
    unknown.model = "no-such-lm".into();
    let unknown = service.encode_kv_cache(Request::new(unknown)).await;
    assert_code(unknown, Code::NotFound, "no-such-lm");
    let short = service
        .encode_kv_cache(Request::new(kv_request(&cache[1..], 4, 0)))
        .await;
    assert_code(short, Code::InvalidArgument, "bytes");
    let level = service
        .encode_kv_cache(Request::new(kv_request(&cache, 4, 99)))
        .await;
    assert_code(level, Code::InvalidArgument, "level 99");
    let mut no_cache = kv_request(&cache, 4, 0);
    no_cache.cache = None;
    let no_cache = service.encode_kv_cache(Request::new(no_cache)).await;
    assert_code(no_cache, Code::InvalidArgument, "no cache");
    // A weight bitstream sent to the KV-cache method says where it belongs.
    let weights = encode(&service, checkpoint()).await.unwrap().bitstream;
    let crossed = service
        .decode_kv_cache(Request::new(api::DecodeKvCacheRequest {
            bitstream: weights,
        }))
        .await;
    assert_code(
        crossed,
        Code::FailedPrecondition,
        "TensorService decodes it",
    );
}

#[tokio::test]
async fn limits_are_enforced_before_any_work() {
    let small = service(
        TensorLimits {
            max_file_bytes: 1_000,
            max_kv_elements: 100,
        },
        1 << 30,
    );
    assert_code(
        encode(&small, checkpoint()).await,
        Code::ResourceExhausted,
        "",
    );
    let cache = weight_values(DIMS.layers * 2 * DIMS.kv_heads * 4 * DIMS.head_dim, 1);
    let over = small
        .encode_kv_cache(Request::new(kv_request(&cache, 4, 0)))
        .await;
    assert_code(over, Code::ResourceExhausted, "over the limit of 100");

    // The weight codec's working memory does not fit a 1 KiB budget.
    let starved = service(TensorLimits::default(), 1 << 10);
    assert_code(
        encode(&starved, checkpoint()).await,
        Code::ResourceExhausted,
        "",
    );
    // A bitstream under the limit that declares a file over it is refused from its header.
    let file = checkpoint();
    let bitstream = encode(&roomy(), file.clone()).await.unwrap().bitstream;
    assert!(bitstream.len() < file.len());
    let limited = service(
        TensorLimits {
            max_file_bytes: ((bitstream.len() + file.len()) / 2) as u64,
            max_kv_elements: 100,
        },
        1 << 30,
    );
    let decoded = limited
        .decode(Request::new(api::DecodeRequest { bitstream }))
        .await;
    assert_code(decoded, Code::ResourceExhausted, "decodes to");
}
