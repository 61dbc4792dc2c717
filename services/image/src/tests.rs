//! The service's transport over codecs whose networks are [`FakeNetwork`]s: no ONNX Runtime.
//! The WaLLoC codec is the shipped model's Rust side (its JSON assets); its decoder network is
//! a fake answering mid-grey bands, or failing.

use std::sync::Arc;

use api::image_service_server::ImageService as _;
use terse_core::{Error, FakeNetwork};
use terse_entropy::ModelTag;
use terse_walloc::{WallocImage, WallocImageCodec};

use super::*;
use tonic::Request;

const MODEL: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../models/repository/walloc-rgb-16x/1"
);

/// The shipped `walloc-rgb-16x` Rust side (no ONNX model loaded).
fn walloc_codec() -> WallocImageCodec {
    let read = |name: &str| Ok(std::fs::read(format!("{MODEL}/{name}.json")).ok());
    let tag = ModelTag::from_sha256_hex("walloc-rgb-16x", &"ab".repeat(32)).unwrap();
    WallocImageCodec::from_assets(read, tag).unwrap()
}

/// A decoder that answers zero bands of the shape the model's decoder would.
fn zero_decoder(bands: usize) -> FakeNetwork {
    FakeNetwork::f32("fake-decoder", move |inputs| {
        let shape = inputs[0].shape();
        let (h, w) = (shape[2], shape[3]);
        Ok(vec![ndarray::ArrayD::zeros(vec![1, bands, h, w])])
    })
}

fn hosting(decoder: FakeNetwork, memory_bytes: u64) -> ImageService {
    let codec = walloc_codec();
    let mut codecs = CodecRegistry::new("image");
    codecs
        .register(Arc::new(WallocImage::new(
            codec,
            Arc::new(decoder),
            "1",
            "test",
        )))
        .unwrap();
    ImageService::new(
        codecs,
        ImageLimits {
            max_pixels: 1 << 20,
            max_bytes: 1 << 20,
        },
        MemoryBudget::new(memory_bytes),
    )
}

fn png(width: u32, height: u32) -> Vec<u8> {
    let image = RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x * 7) as u8, (y * 5) as u8, ((x + y) * 3) as u8])
    });
    encode_image_file(&image, ImageFormat::Png).unwrap()
}

fn encode_request(image: Vec<u8>, options: api::EncodeOptions) -> Request<api::EncodeRequest> {
    Request::new(api::EncodeRequest {
        image,
        options: Some(options),
    })
}

#[tokio::test]
async fn encodes_measures_and_decodes_through_the_codec_trait() {
    let bands = walloc_codec().weights().bands();
    let decoder = zero_decoder(bands);
    let service = hosting(decoder.clone(), 1 << 30);
    let options = api::EncodeOptions {
        measure_quality: true,
        return_latents: true,
        ..Default::default()
    };
    let result = service
        .encode(encode_request(png(40, 24), options))
        .await
        .unwrap()
        .into_inner()
        .result
        .unwrap();
    assert_eq!((result.width, result.height), (40, 24));
    assert_eq!(decoder.calls(), 1, "quality needs one decoder run");
    let rate = result.rate_distortion.unwrap();
    assert_eq!(rate.compressed_bytes, result.bitstream.len() as u64);
    assert!(rate.psnr_db.is_some_and(|p| p.is_finite()));
    let latents = result.latents.unwrap();
    assert_eq!(latents.datatype, common::DataType::Int32 as i32);
    assert_eq!(result.model.unwrap().name, "walloc-rgb-16x");

    let decoded = service
        .decode(Request::new(api::DecodeRequest {
            bitstream: result.bitstream,
            format: api::ImageFormat::RawRgb8 as i32,
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((decoded.width, decoded.height), (40, 24));
    assert_eq!(decoded.image.len(), 40 * 24 * 3);
    assert_eq!(decoder.calls(), 2);
}

#[tokio::test]
async fn errors_map_to_precise_statuses() {
    let bands = walloc_codec().weights().bands();
    let service = hosting(zero_decoder(bands), 1 << 30);
    let unknown = api::EncodeOptions {
        codec: "jpeg2000".into(),
        ..Default::default()
    };
    let e = service
        .encode(encode_request(png(8, 8), unknown))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound, "{e:?}");
    assert!(e.message().contains("available: walloc-rgb-16x"), "{e:?}");

    let e = service
        .encode(encode_request(b"not an image".to_vec(), Default::default()))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e:?}");

    let mut splat = terse_entropy::Container::new(CodecId::Splat);
    splat.push_section(*b"DATA", vec![1, 2, 3]);
    let e = service
        .decode(Request::new(api::DecodeRequest {
            bitstream: splat.to_bytes().unwrap(),
            format: 0,
        }))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::FailedPrecondition, "{e:?}");

    let e = service
        .encode(encode_request(vec![0; (1 << 20) + 1], Default::default()))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::ResourceExhausted, "{e:?}");
}

#[tokio::test]
async fn a_failing_network_is_internal_and_the_memory_budget_is_checked_first() {
    let failing = FakeNetwork::new("broken", |_| Err(Error::internal("the GPU fell off")));
    let service = hosting(failing.clone(), 1 << 30);
    let quality = api::EncodeOptions {
        measure_quality: true,
        ..Default::default()
    };
    let e = service
        .encode(encode_request(png(16, 16), quality.clone()))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::Internal, "{e:?}");
    assert!(e.message().contains("the GPU fell off"), "{e:?}");

    // 64 × 64 pixels at 220 bytes each is over a 100 kB budget: refused before any work.
    let small = hosting(failing.clone(), 100_000);
    let before = failing.calls();
    let e = small
        .encode(encode_request(png(64, 64), quality))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::ResourceExhausted, "{e:?}");
    assert_eq!(failing.calls(), before, "no network ran");
}
