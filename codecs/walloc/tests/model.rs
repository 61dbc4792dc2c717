//! The shipped WaLLoC models on real photos: latents round-trip exactly through both entropy
//! codings, decoding through ONNX Runtime reaches the quality the model was trained for, and
//! malformed bitstreams are refused.

use std::{path::PathBuf, sync::Arc};

use ndarray::Array4;
use terse_entropy::ModelTag;
use terse_image_service::read_asset;
use terse_runtime::{
    LoadedModel, ModelRegistry, ModelSelection, ModelState, OnnxRuntime, SessionOptions, TensorData,
};
use terse_walloc::{BandDecoder, WallocError, WallocImageCodec, decode_image_file, psnr};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

struct Decoder(Arc<LoadedModel>, tokio::runtime::Runtime);

impl BandDecoder for Decoder {
    fn decode(&self, normal: Array4<f32>) -> Result<Array4<f32>, String> {
        let shape: Vec<i64> = normal.shape().iter().map(|&d| d as i64).collect();
        let input = TensorData::from_f32("normal_latent", shape, normal.as_slice().unwrap());
        let out = self
            .1
            .block_on(self.0.infer(vec![input], &[]))
            .map_err(|e| e.to_string())?;
        let d: Vec<usize> = out.outputs[0].shape.iter().map(|&x| x as usize).collect();
        Array4::from_shape_vec((d[0], d[1], d[2], d[3]), out.outputs[0].to_f32().unwrap())
            .map_err(|e| e.to_string())
    }
}

fn codecs() -> Vec<(WallocImageCodec, Decoder)> {
    std::env::set_current_dir(ROOT).unwrap();
    let library = terse_runtime::resolve_library_path(None).expect("scripts/setup makes ./.venv");
    let ort = OnnxRuntime::load(&library).unwrap();
    let registry = ModelRegistry::load(
        &ort,
        &PathBuf::from("models/repository"),
        &ModelSelection::default(),
        &SessionOptions::default(),
        None,
    )
    .unwrap();
    registry
        .entries()
        .iter()
        .filter_map(|e| match &e.state {
            ModelState::Ready(model) if e.entry.manifest.task == "walloc-image" => {
                let tag =
                    ModelTag::from_sha256_hex(&e.entry.manifest.name, &e.entry.manifest.sha256)
                        .unwrap();
                let codec =
                    WallocImageCodec::from_assets(|name| read_asset(&e.entry, name), tag).unwrap();
                Some((
                    codec,
                    Decoder(
                        Arc::clone(model),
                        tokio::runtime::Builder::new_current_thread()
                            .build()
                            .unwrap(),
                    ),
                ))
            }
            _ => None,
        })
        .collect()
}

fn photo(name: &str) -> image::RgbImage {
    let bytes =
        std::fs::read(PathBuf::from(ROOT).join("tests/fixtures/images").join(name)).unwrap();
    decode_image_file(&bytes, u64::MAX).unwrap().0
}

#[test]
fn latents_round_trip_and_decoding_reaches_trained_quality() {
    let codecs = codecs();
    assert!(
        !codecs.is_empty(),
        "no walloc-image model in models/repository"
    );
    for (codec, decoder) in &codecs {
        for name in ["astronaut_200x136.png", "coffee_131x97.png"] {
            let original = photo(name);
            let (bitstream, latents) = codec.encode(&original).unwrap();
            assert_eq!(
                codec.decode_latents(&bitstream, u64::MAX).unwrap(),
                latents,
                "{name}"
            );
            let decoded = codec.decode(&bitstream, decoder, u64::MAX).unwrap();
            assert_eq!(decoded.dimensions(), original.dimensions());
            let quality = psnr(&original, &decoded);
            let bpp =
                bitstream.len() as f64 * 8.0 / f64::from(original.width() * original.height());
            let floor = if codec.weights().latent_dim >= 48 {
                27.0
            } else {
                22.0
            };
            assert!(
                quality > floor,
                "{} on {name}: {quality:.2} dB at {bpp:.3} bpp",
                codec.model().name
            );
            // Decoding is deterministic: the same bytes give the same pixels.
            assert_eq!(
                codec.decode(&bitstream, decoder, u64::MAX).unwrap(),
                decoded
            );
        }
    }
}

#[test]
fn malformed_bitstreams_are_refused() {
    let (codec, _) = codecs().into_iter().next().expect("a walloc model");
    let (bitstream, _) = codec.encode(&photo("coffee_131x97.png")).unwrap();
    for cut in [0, 10, bitstream.len() / 2, bitstream.len() - 1] {
        assert!(codec.decode_latents(&bitstream[..cut], u64::MAX).is_err());
    }
    let mut flipped = bitstream.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 0x40;
    let err = codec.decode_latents(&flipped, u64::MAX).unwrap_err();
    assert!(err.to_string().contains("checksum"), "{err}");
    assert!(matches!(
        codec.decode_latents(&bitstream, 100),
        Err(WallocError::TooLarge(_))
    ));
    let other = WallocImageCodec::new(
        &std::fs::read(PathBuf::from(ROOT).join("models/repository/walloc-rgb-16x/1/encoder.json"))
            .unwrap(),
        &std::fs::read(PathBuf::from(ROOT).join("models/repository/walloc-rgb-16x/1/prior.json"))
            .unwrap(),
        ModelTag {
            name: "walloc-rgb-16x".into(),
            sha256_prefix: [0; 8],
        },
    )
    .unwrap();
    let err = other
        .decode_latents(&bitstream, u64::MAX)
        .unwrap_err()
        .to_string();
    assert!(err.contains("coded with model"), "{err}");
}
