//! The splat service over the shipped splat codec: conversion, limits and status mapping
//! (no model, so no ONNX Runtime).

use api::splat_service_server::SplatService as _;
use terse_splat::{ply, synth::surface_scene};
use tonic::Code;

use super::*;
use tonic::Request;

fn service(memory_bytes: u64) -> SplatService {
    SplatService::hosted(
        SplatLimits {
            max_splats: 5_000,
            max_scene_bytes: 4 << 20,
        },
        MemoryBudget::new(memory_bytes),
    )
}

fn encode_request(scene: Vec<u8>, options: api::EncodeOptions) -> Request<api::EncodeRequest> {
    Request::new(api::EncodeRequest {
        scene,
        options: Some(options),
    })
}

#[tokio::test]
async fn encode_measures_and_decode_restores_the_scene() {
    let service = service(1 << 30);
    let scene = ply::write_ply(&surface_scene(2_000, 3, 11));
    let options = api::EncodeOptions {
        max_sh_degree: Some(1),
        min_opacity: Some(0.3),
        ..Default::default()
    };
    let result = service
        .encode(encode_request(scene.clone(), options))
        .await
        .unwrap()
        .into_inner()
        .result
        .unwrap();
    assert_eq!(result.source_splats, 2_000);
    assert!(result.pruned_splats > 0, "low-opacity splats are pruned");
    assert_eq!(result.splat_count + result.pruned_splats, 2_000);
    assert_eq!(result.sh_degree, 1);
    assert!(result.warnings.iter().any(|w| w.contains("above degree 1")));
    assert!(
        result
            .attribute_errors
            .iter()
            .any(|e| e.attribute == "position")
    );
    let section_bytes: u64 = result.sections.iter().map(|s| s.bytes).sum();
    assert!(section_bytes > 0 && section_bytes < result.bitstream.len() as u64);

    let decoded = service
        .decode(Request::new(api::DecodeRequest {
            bitstream: result.bitstream.clone(),
            output_format: api::SplatFormat::Spz as i32,
            spz_version: 3,
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(decoded.splat_count, result.splat_count);
    assert_eq!(decoded.format, api::SplatFormat::Spz as i32);
    let info = service
        .info(Request::new(api::InfoRequest {
            data: result.bitstream,
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.splat_count, result.splat_count);
    assert_eq!(info.source_splats, 2_000);
}

#[tokio::test]
async fn bad_requests_get_precise_statuses() {
    let service = service(1 << 30);
    let scene = ply::write_ply(&surface_scene(100, 0, 3));
    let bad_knob = api::EncodeOptions {
        position_bits: Some(40),
        ..Default::default()
    };
    let status = service
        .encode(encode_request(scene.clone(), bad_knob))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("position_bits"));

    let status = service
        .encode(encode_request(b"not a scene".to_vec(), Default::default()))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");

    let too_many = ply::write_ply(&surface_scene(5_001, 0, 3));
    let status = service
        .encode(encode_request(too_many, Default::default()))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");

    let status = service
        .decode(Request::new(api::DecodeRequest {
            bitstream: scene,
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
}

#[tokio::test]
async fn the_memory_budget_refuses_before_any_work() {
    let service = service(1 << 20);
    let scene = ply::write_ply(&surface_scene(4_000, 3, 5));
    let status = service
        .encode(encode_request(scene, Default::default()))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        status.message().contains("4000 splats"),
        "{}",
        status.message()
    );
}

#[test]
fn an_explicit_position_knob_replaces_the_presets_grid() {
    let options = |bits, step| {
        codec_options(&api::EncodeOptions {
            position_bits: bits,
            position_step: step,
            ..Default::default()
        })
        .unwrap()
    };
    let preset = CodecOptions::default();
    let unset = options(None, None);
    assert_eq!(
        (unset.position_bits, unset.position_step),
        (preset.position_bits, preset.position_step)
    );
    let bits = options(Some(16), None);
    assert_eq!((bits.position_bits, bits.position_step), (16, 0.0));
    let step = options(None, Some(0.001));
    assert_eq!((step.position_bits, step.position_step), (0, 0.001));
    let both = options(Some(12), Some(0.01));
    assert_eq!((both.position_bits, both.position_step), (12, 0.01));
}

#[tokio::test]
async fn a_codebook_that_does_not_pay_is_reported() {
    let service = service(1 << 30);
    // 200 splats of a real scene: distinct SH vectors (no exact palette), and too few for even
    // 16 codebook entries.
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/splats/yashica_1024_sh3.ply"
    );
    let real = ply::read_ply(&std::fs::read(path).unwrap(), 1 << 20)
        .unwrap()
        .0;
    let scene = ply::write_ply(&real.retain_indices(&(0..200).collect::<Vec<_>>()));
    let encode = |sh_codebook| {
        let request = encode_request(
            scene.clone(),
            api::EncodeOptions {
                sh_codebook,
                ..Default::default()
            },
        );
        async { service.encode(request).await.unwrap().into_inner() }
    };
    let asked = encode(Some(4096)).await.result.unwrap();
    assert!(
        asked
            .warnings
            .iter()
            .any(|w| w.contains("sh_codebook not used")),
        "{:?}",
        asked.warnings
    );
    let plain = encode(None).await.result.unwrap();
    assert!(!plain.warnings.iter().any(|w| w.contains("sh_codebook")));
    assert_eq!(asked.bitstream, plain.bitstream);
}
