//! `compress.tensor.v1.TensorService` on the real `terse` binary: safetensors files encoded
//! (unary and streamed) and decoded (unary and streamed) byte for byte, single tensors read,
//! precise errors and limits.

use safetensors::{Dtype, tensor::TensorView};
use terse_e2e::{ConfigFile, Server, assert_status, health_status, upload_chunks};
use terse_proto::tensor::v1::{
    DecodeRequest, DecodeStreamRequest, EncodeOptions, EncodeRequest, EncodeResult,
    EncodeStreamRequest, InfoRequest, ReadTensorRequest, encode_stream_request::Part,
    tensor_service_client::TensorServiceClient,
};
use tonic::{Code, transport::Channel};

const TENSOR_ONLY: &str = "[server]\nservices = [\"tensor\"]\n";

/// A BF16 matrix of 1.5 M elements (six chunks at the default size), an FP32 vector, integer
/// ids and metadata: about 3 MB.
fn checkpoint() -> Vec<u8> {
    let w = terse_e2e::weight_values(1_500_000, 3);
    let bf16: Vec<u8> = w
        .iter()
        .flat_map(|v| ((v.to_bits() >> 16) as u16).to_le_bytes())
        .collect();
    let bias: Vec<u8> = w[..4096].iter().flat_map(|v| v.to_le_bytes()).collect();
    let ids: Vec<u8> = (0..512i64).flat_map(|i| i.to_le_bytes()).collect();
    let views = vec![
        (
            "model.layers.0.mlp.weight".to_string(),
            TensorView::new(Dtype::BF16, vec![1500, 1000], &bf16).unwrap(),
        ),
        (
            "model.layers.0.mlp.bias".to_string(),
            TensorView::new(Dtype::F32, vec![4096], &bias).unwrap(),
        ),
        (
            "position_ids".to_string(),
            TensorView::new(Dtype::I64, vec![1, 512], &ids).unwrap(),
        ),
    ];
    let metadata = std::collections::HashMap::from([("format".to_string(), "pt".to_string())]);
    safetensors::serialize(views, Some(metadata)).unwrap()
}

async fn client(server: &Server) -> TensorServiceClient<Channel> {
    TensorServiceClient::new(server.channel().await)
        .max_decoding_message_size(64 << 20)
        .max_encoding_message_size(64 << 20)
}

async fn encode(
    client: &mut TensorServiceClient<Channel>,
    file: Vec<u8>,
    options: EncodeOptions,
) -> Result<EncodeResult, tonic::Status> {
    Ok(client
        .encode(EncodeRequest {
            file,
            options: Some(options),
        })
        .await?
        .into_inner()
        .result
        .unwrap())
}

fn stream_parts(options: EncodeOptions, file: &[u8], chunk: usize) -> Vec<EncodeStreamRequest> {
    let mut parts = vec![EncodeStreamRequest {
        part: Some(Part::Options(options)),
    }];
    parts.extend(
        upload_chunks(file, chunk)
            .into_iter()
            .map(|chunk| EncodeStreamRequest {
                part: Some(Part::Chunk(chunk)),
            }),
    );
    parts
}

/// EncodeStream: the file up in 256 KiB chunks, the bitstream down in chunks, then the result.
async fn encode_streamed(
    client: &mut TensorServiceClient<Channel>,
    file: &[u8],
) -> Result<EncodeResult, tonic::Status> {
    let parts = stream_parts(EncodeOptions::default(), file, 256 << 10);
    let mut stream = client
        .encode_stream(tokio_stream::iter(parts))
        .await?
        .into_inner();
    let mut bitstream = Vec::new();
    while let Some(part) = stream.message().await? {
        if let Some(chunk) = part.chunk {
            assert_eq!(chunk.offset, bitstream.len() as u64);
            bitstream.extend_from_slice(&chunk.data);
        }
        if let Some(mut result) = part.result {
            assert!(result.bitstream.is_empty(), "the bitstream came in chunks");
            assert!(
                stream.message().await?.is_none(),
                "the result closes the stream"
            );
            result.bitstream = bitstream;
            return Ok(result);
        }
    }
    panic!("EncodeStream ended without its result")
}

/// DecodeStream: the bitstream up in 256 KiB chunks, the file down in chunks.
async fn decode_streamed(
    client: &mut TensorServiceClient<Channel>,
    bitstream: &[u8],
) -> Result<Vec<u8>, tonic::Status> {
    let parts: Vec<DecodeStreamRequest> = upload_chunks(bitstream, 256 << 10)
        .into_iter()
        .map(|chunk| DecodeStreamRequest { chunk: Some(chunk) })
        .collect();
    let mut stream = client
        .decode_stream(tokio_stream::iter(parts))
        .await?
        .into_inner();
    let (mut file, mut declared) = (Vec::new(), Vec::new());
    while let Some(part) = stream.message().await? {
        let chunk = part.chunk.unwrap();
        assert_eq!(chunk.offset, file.len() as u64);
        file.extend_from_slice(&chunk.data);
        declared.push(part.file_bytes);
    }
    assert!(
        declared.iter().all(|&d| d == file.len() as u64),
        "{declared:?}"
    );
    Ok(file)
}

#[tokio::test]
async fn checkpoints_over_the_message_limits_stream_both_ways() {
    // 2 MiB each way (the smallest response limit allowed), a 6 MB file, a 4 MB bitstream.
    let config = ConfigFile::new(&format!(
        "{TENSOR_ONLY}[server.max_request_bytes]\ndefault = 2097152\n\
         [server.max_response_bytes]\ndefault = 2097152\n"
    ));
    let server = Server::start(&["--config", config.arg()]).await;
    let mut client = client(&server).await;
    let file = terse_e2e::bf16_checkpoint(3_000_000);
    let result = encode_streamed(&mut client, &file).await.unwrap();
    assert!(
        result.bitstream.len() > 2 << 20,
        "{}",
        result.bitstream.len()
    );
    assert!(
        encode(&mut client, file.clone(), EncodeOptions::default())
            .await
            .is_err(),
        "the unary request is over the limit"
    );
    let decoded = decode_streamed(&mut client, &result.bitstream)
        .await
        .unwrap();
    assert!(decoded == file, "byte for byte");
}

#[tokio::test]
async fn a_checkpoint_comes_back_byte_for_byte_smaller_on_the_wire() {
    let config = ConfigFile::new(TENSOR_ONLY);
    let server = Server::start(&["--config", config.arg()]).await;
    assert_eq!(
        health_status(server.channel().await, "compress.tensor.v1.TensorService").await,
        tonic_health::pb::health_check_response::ServingStatus::Serving
    );
    let mut client = client(&server).await;
    let file = checkpoint();
    let result = encode(&mut client, file.clone(), EncodeOptions::default())
        .await
        .unwrap();
    let rd = result.rate_distortion.unwrap();
    assert_eq!(
        (rd.compressed_bytes, rd.original_bytes),
        (result.bitstream.len() as u64, file.len() as u64)
    );
    assert!(
        result.compression_ratio > 1.3,
        "ratio {}",
        result.compression_ratio
    );
    let names: Vec<(&str, &str, u32)> = result
        .tensors
        .iter()
        .map(|t| (t.name.as_str(), t.dtype.as_str(), t.chunks))
        .collect();
    assert_eq!(
        names,
        // Data order: safetensors writes wider dtypes first.
        [
            ("position_ids", "I64", 1),
            ("model.layers.0.mlp.bias", "F32", 1),
            ("model.layers.0.mlp.weight", "BF16", 6),
        ]
    );

    let decoded = client
        .decode(DecodeRequest {
            bitstream: result.bitstream.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(decoded.file == file, "unary decode is the file");

    let streamed = decode_streamed(&mut client, &result.bitstream)
        .await
        .unwrap();
    assert!(streamed == file, "streamed decode is the file");

    let uploaded = encode_streamed(&mut client, &file).await.unwrap();
    assert!(uploaded.bitstream == result.bitstream);
    assert_eq!(uploaded.tensors, result.tensors);

    let parsed = safetensors::SafeTensors::deserialize(&file).unwrap();
    let read = client
        .read_tensor(ReadTensorRequest {
            bitstream: result.bitstream.clone(),
            name: "model.layers.0.mlp.bias".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        read.data,
        parsed.tensor("model.layers.0.mlp.bias").unwrap().data()
    );
    assert_eq!(read.tensor.unwrap().shape, [4096]);

    let info = client
        .info(InfoRequest {
            bitstream: result.bitstream.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.file_bytes, file.len() as u64);
    assert_eq!(info.chunk_elements, 1 << 18);
    assert_eq!(info.tensors, result.tensors);
}

#[tokio::test]
async fn bad_input_gets_a_precise_status() {
    let config = ConfigFile::new(TENSOR_ONLY);
    let server = Server::start(&["--config", config.arg()]).await;
    let mut client = client(&server).await;
    assert_status(
        encode(
            &mut client,
            b"not safetensors".to_vec(),
            EncodeOptions::default(),
        )
        .await,
        Code::InvalidArgument,
        "not a safetensors file",
    );
    assert_status(
        encode(
            &mut client,
            checkpoint(),
            EncodeOptions {
                chunk_elements: Some(0),
            },
        )
        .await,
        Code::InvalidArgument,
        "chunk_elements 0",
    );
    let file = checkpoint();
    let bitstream = encode(
        &mut client,
        file,
        EncodeOptions {
            chunk_elements: Some(4096),
        },
    )
    .await
    .unwrap()
    .bitstream;
    let decode = |bitstream: Vec<u8>| {
        let mut client = client.clone();
        async move { client.decode(DecodeRequest { bitstream }).await }
    };
    assert_status(
        decode(b"PK\x03\x04 a zip".to_vec()).await,
        Code::InvalidArgument,
        "magic",
    );
    let splat = terse_entropy::Container::new(terse_entropy::CodecId::Splat)
        .to_bytes()
        .unwrap();
    assert_status(
        decode(splat).await,
        Code::FailedPrecondition,
        "compress.splat.v1.SplatService decodes it",
    );
    let mut damaged = bitstream.clone();
    let last = damaged.len() - 10;
    damaged[last] ^= 0x10;
    assert_status(decode(damaged).await, Code::InvalidArgument, "checksum");
    assert_status(
        decode(bitstream[..bitstream.len() - 1].to_vec()).await,
        Code::InvalidArgument,
        "",
    );
    assert_status(
        client
            .read_tensor(ReadTensorRequest {
                bitstream,
                name: "lm_head.weight".into(),
            })
            .await,
        Code::NotFound,
        "lm_head.weight",
    );
}

#[tokio::test]
async fn files_over_the_limit_are_refused_before_the_work() {
    let big = ConfigFile::new(TENSOR_ONLY);
    let server = Server::start(&["--config", big.arg()]).await;
    let file = checkpoint();
    let bitstream = encode(&mut client(&server).await, file, EncodeOptions::default())
        .await
        .unwrap()
        .bitstream;
    drop(server);
    // Between the bitstream (about 2 MB) and the file (about 3 MB).
    assert!(bitstream.len() < 2_500_000);

    let small = ConfigFile::new(&format!(
        "{TENSOR_ONLY}[tensor]\nmax_file_bytes = 2500000\n"
    ));
    let server = Server::start(&["--config", small.arg()]).await;
    let mut client = client(&server).await;
    assert_status(
        encode(&mut client, checkpoint(), EncodeOptions::default()).await,
        Code::ResourceExhausted,
        "exceeds the limit",
    );
    assert_status(
        client
            .encode_stream(tokio_stream::iter(stream_parts(
                EncodeOptions::default(),
                &checkpoint(),
                256 << 10,
            )))
            .await,
        Code::ResourceExhausted,
        "exceeds the limit",
    );
    assert_status(
        client.decode(DecodeRequest { bitstream }).await,
        Code::ResourceExhausted,
        "decodes to 3",
    );
}
