//! The service's transport over a codec whose decoder is a [`FakeNetwork`]: no ONNX Runtime.
//! The WaLLoC codec is the shipped model's Rust side (its JSON assets).

use std::sync::Arc;

use api::audio_service_server::AudioService as _;
use terse_core::FakeNetwork;
use terse_entropy::ModelTag;
use terse_walloc::{WallocAudio, WallocAudioCodec};

use super::*;
use tonic::Request;

const MODEL: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../models/repository/walloc-stereo-19x/1"
);

fn hosting(decoder: FakeNetwork) -> AudioService {
    let read = |name: &str| Ok(std::fs::read(format!("{MODEL}/{name}.json")).ok());
    let tag = ModelTag::from_sha256_hex("walloc-stereo-19x", &"cd".repeat(32)).unwrap();
    let codec = WallocAudioCodec::from_assets(read, tag).unwrap();
    let mut codecs = CodecRegistry::new("audio");
    codecs
        .register(Arc::new(WallocAudio::new(
            codec,
            Arc::new(decoder),
            "1",
            "test",
        )))
        .unwrap();
    AudioService::new(
        codecs,
        AudioLimits {
            max_seconds: 5.0,
            max_bytes: 1 << 22,
        },
        MemoryBudget::new(1 << 30),
    )
}

/// A decoder answering silence in as many bands as the model's decoder (2 channels × 2^8).
fn silent_decoder() -> FakeNetwork {
    FakeNetwork::f32("fake-decoder", |inputs| {
        let steps = inputs[0].shape()[2];
        Ok(vec![ndarray::ArrayD::zeros(vec![1, 2 << 8, steps])])
    })
}

fn wav(sample_rate: u32, frames: usize) -> Vec<u8> {
    let samples = ndarray::Array2::from_shape_fn((2, frames), |(c, i)| {
        ((i as f32 * 0.05 + c as f32).sin()) * 0.3
    });
    encode_wav(&AudioClip {
        sample_rate,
        samples,
    })
    .unwrap()
}

fn request(audio: Vec<u8>, options: api::EncodeOptions) -> Request<api::EncodeRequest> {
    Request::new(api::EncodeRequest {
        audio,
        options: Some(options),
    })
}

#[tokio::test]
async fn encodes_and_decodes_through_the_codec_trait() {
    let decoder = silent_decoder();
    let service = hosting(decoder.clone());
    let quality = api::EncodeOptions {
        measure_quality: true,
        ..Default::default()
    };
    let result = service
        .encode(request(wav(48_000, 4800), quality))
        .await
        .unwrap()
        .into_inner()
        .result
        .unwrap();
    assert_eq!(
        (result.sample_rate, result.channels, result.frames),
        (48_000, 2, 4800)
    );
    assert_eq!(decoder.calls(), 1);
    assert!(result.rate_distortion.unwrap().snr_db.is_some());
    let decoded = service
        .decode(Request::new(api::DecodeRequest {
            bitstream: result.bitstream,
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((decoded.channels, decoded.frames), (2, 4800));
    assert_eq!(decoder.calls(), 2);
}

#[tokio::test]
async fn other_rates_and_oversized_clips_are_refused_before_the_network() {
    let decoder = silent_decoder();
    let service = hosting(decoder.clone());
    let e = service
        .encode(request(wav(44_100, 4410), Default::default()))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e:?}");
    assert!(e.message().contains("resample"), "{e:?}");
    let e = service
        .encode(request(wav(48_000, 48_000 * 6), Default::default()))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::ResourceExhausted, "{e:?}");
    let e = service
        .decode(Request::new(api::DecodeRequest {
            bitstream: b"TRSE but not really".to_vec(),
        }))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e:?}");
    assert_eq!(decoder.calls(), 0);
}
