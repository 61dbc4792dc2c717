//! KV caches through `compress.tensor.v1.TensorService` on the real `terse` binary: the causal
//! LM of the repository listed with its dimensions, caches coded and decoded in their dtype,
//! precise errors and limits.

use terse_e2e::{ConfigFile, Server, assert_status};
use terse_proto::tensor::v1::{
    DecodeKvCacheRequest, DecodeRequest, EncodeKvCacheRequest, EncodeKvCacheResponse, KvCache,
    ListKvModelsRequest, tensor_service_client::TensorServiceClient,
};
use tonic::{Code, transport::Channel};

const TENSOR_ONLY: &str = "[server]\nservices = [\"tensor\"]\n";
const MODEL: &str = "smollm2-135m";
const LAYERS: u32 = 30;
const HEADS: u32 = 3;
const DIM: u32 = 64;

async fn client(server: &Server) -> TensorServiceClient<Channel> {
    TensorServiceClient::new(server.channel().await)
        .max_decoding_message_size(256 << 20)
        .max_encoding_message_size(256 << 20)
}

/// Values shaped like a transformer's cache: channel offsets, a drift over tokens, noise.
fn values(tokens: u32) -> Vec<f32> {
    let n = (LAYERS * 2 * HEADS * tokens * DIM) as usize;
    let noise = terse_e2e::weight_values(n, 11);
    (0..n)
        .map(|i| {
            let channel = (i % DIM as usize) as f32;
            let token = ((i / DIM as usize) % tokens as usize) as f32;
            (channel - 32.0) * 0.05 + (token * 0.1).sin() + noise[i] * 20.0
        })
        .collect()
}

fn cache(tokens: u32, dtype: &str, values: &[f32]) -> KvCache {
    let bytes = match dtype {
        "fp16" => values
            .iter()
            .flat_map(|&v| half::f16::from_f32(v).to_le_bytes())
            .collect(),
        _ => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
    };
    KvCache {
        layers: LAYERS,
        kv_heads: HEADS,
        tokens,
        head_dim: DIM,
        dtype: dtype.into(),
        values: bytes,
    }
}

async fn encode(
    client: &mut TensorServiceClient<Channel>,
    model: &str,
    cache: KvCache,
    level: u32,
) -> Result<EncodeKvCacheResponse, tonic::Status> {
    Ok(client
        .encode_kv_cache(EncodeKvCacheRequest {
            model: model.into(),
            cache: Some(cache),
            level,
            sink_tokens: None,
        })
        .await?
        .into_inner())
}

#[tokio::test]
async fn a_cache_comes_back_in_its_dtype_within_its_reported_error() {
    let config = ConfigFile::new(TENSOR_ONLY);
    let server = Server::start(&["--config", config.arg()]).await;
    let mut client = client(&server).await;
    let models = client
        .list_kv_models(ListKvModelsRequest {})
        .await
        .unwrap()
        .into_inner()
        .models;
    let listed = models
        .iter()
        .find(|m| m.model.as_ref().unwrap().name == MODEL)
        .expect("the causal LM is listed");
    assert_eq!(
        (
            listed.layers,
            listed.kv_heads,
            listed.head_dim,
            listed.context_length
        ),
        (LAYERS, HEADS, DIM, 8192)
    );

    let tokens = 48;
    let original = values(tokens);
    let mut sizes = Vec::new();
    for level in [2, 5, 8] {
        let encoded = encode(&mut client, MODEL, cache(tokens, "fp32", &original), level)
            .await
            .unwrap();
        let rd = encoded.rate_distortion.unwrap();
        assert_eq!(rd.original_bytes, original.len() as u64 * 4);
        assert_eq!(rd.compressed_bytes, encoded.bitstream.len() as u64);
        let bits = rd.bits_per_element.unwrap();
        assert!(
            bits > 0.5 && bits < 8.0,
            "level {level}: {bits} bits/element"
        );
        sizes.push((bits, rd.snr_db.unwrap()));

        let decoded = client
            .decode_kv_cache(DecodeKvCacheRequest {
                bitstream: encoded.bitstream,
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!((decoded.model.as_str(), decoded.level), (MODEL, level));
        assert_eq!(decoded.sink_tokens, 1);
        let cache = decoded.cache.unwrap();
        assert_eq!(
            (cache.layers, cache.tokens, cache.dtype.as_str()),
            (LAYERS, tokens, "fp32")
        );
        let got: Vec<f32> = cache
            .values
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect();
        let max = original
            .iter()
            .zip(&got)
            .map(|(a, b)| f64::from((a - b).abs()))
            .fold(0.0, f64::max);
        assert!(
            (max - encoded.max_abs_error).abs() < 1e-6,
            "reported {} measured {max}",
            encoded.max_abs_error
        );
    }
    // Higher levels: more bits, higher SNR.
    assert!(
        sizes.windows(2).all(|w| w[1].0 > w[0].0 && w[1].1 > w[0].1),
        "{sizes:?}"
    );

    // fp16 in, fp16 out.
    let encoded = encode(&mut client, MODEL, cache(tokens, "fp16", &original), 0)
        .await
        .unwrap();
    let decoded = client
        .decode_kv_cache(DecodeKvCacheRequest {
            bitstream: encoded.bitstream,
        })
        .await
        .unwrap()
        .into_inner()
        .cache
        .unwrap();
    assert_eq!(decoded.dtype, "fp16");
    assert_eq!(decoded.values.len(), original.len() * 2);
}

#[tokio::test]
async fn bad_caches_and_bitstreams_get_precise_statuses() {
    let config = ConfigFile::new(TENSOR_ONLY);
    let server = Server::start(&["--config", config.arg()]).await;
    let mut client = client(&server).await;
    let tokens = 8;
    let good = cache(tokens, "fp32", &values(tokens));

    let unknown = encode(&mut client, "no-such-lm", good.clone(), 0).await;
    assert_status(unknown, Code::NotFound, "no-such-lm");
    let mut wrong_shape = good.clone();
    wrong_shape.layers = 29;
    wrong_shape
        .values
        .truncate(wrong_shape.values.len() / 30 * 29);
    assert_status(
        encode(&mut client, MODEL, wrong_shape, 0).await,
        Code::InvalidArgument,
        "30 of 3 of 64",
    );
    let mut short = good.clone();
    short.values.pop();
    assert_status(
        encode(&mut client, MODEL, short, 0).await,
        Code::InvalidArgument,
        "bytes",
    );
    let mut dtype = good.clone();
    dtype.dtype = "int8".into();
    assert_status(
        encode(&mut client, MODEL, dtype, 0).await,
        Code::InvalidArgument,
        "int8",
    );
    assert_status(
        encode(&mut client, MODEL, good.clone(), 9).await,
        Code::InvalidArgument,
        "level 9",
    );
    let mut nan = good.clone();
    nan.values[..4].copy_from_slice(&f32::NAN.to_le_bytes());
    assert_status(
        encode(&mut client, MODEL, nan, 0).await,
        Code::InvalidArgument,
        "non-finite",
    );

    let bitstream = encode(&mut client, MODEL, good, 0).await.unwrap().bitstream;
    let mut corrupt = bitstream.clone();
    let middle = corrupt.len() / 2;
    corrupt[middle] ^= 0x40;
    assert_status(
        client
            .decode_kv_cache(DecodeKvCacheRequest { bitstream: corrupt })
            .await,
        Code::InvalidArgument,
        "checksum",
    );
    assert_status(
        client
            .decode_kv_cache(DecodeKvCacheRequest {
                bitstream: bitstream[..bitstream.len() - 9].to_vec(),
            })
            .await,
        Code::InvalidArgument,
        "truncated",
    );
    // A KV bitstream sent to the weights' Decode names the call that decodes it.
    assert_status(
        client
            .decode(DecodeRequest {
                bitstream: bitstream.clone(),
            })
            .await,
        Code::FailedPrecondition,
        "DecodeKvCache",
    );
}

#[tokio::test]
async fn caches_over_the_limit_are_refused_before_the_work() {
    let config = ConfigFile::new(&format!(
        "{TENSOR_ONLY}[tensor]\nmax_kv_elements = 100000\n"
    ));
    let server = Server::start(&["--config", config.arg()]).await;
    let mut client = client(&server).await;
    // 30 x 2 x 3 x 9 x 64 = 103,680 values.
    let tokens = 9;
    assert_status(
        encode(
            &mut client,
            MODEL,
            cache(tokens, "fp32", &values(tokens)),
            0,
        )
        .await,
        Code::ResourceExhausted,
        "over the limit of 100000",
    );
    let tokens = 8;
    let bitstream = encode(
        &mut client,
        MODEL,
        cache(tokens, "fp32", &values(tokens)),
        0,
    )
    .await
    .unwrap()
    .bitstream;
    assert!(
        client
            .decode_kv_cache(DecodeKvCacheRequest { bitstream })
            .await
            .is_ok()
    );
}
