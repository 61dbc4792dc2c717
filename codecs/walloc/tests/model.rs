//! The shipped WaLLoC models on real photos: latents round-trip exactly through both entropy
//! codings, decoding through ONNX Runtime reaches the quality the model was trained for, and
//! malformed bitstreams are refused.

use std::path::PathBuf;

use terse_entropy::ModelTag;
use terse_walloc::{WallocError, WallocImageCodec, decode_image_file, psnr};
use terse_walloc_host::{BlockingDecoder, host_repository};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

fn codecs() -> Vec<(WallocImageCodec, BlockingDecoder)> {
    std::env::set_current_dir(ROOT).unwrap();
    let hosted = host_repository(&PathBuf::from("models/repository"))
        .expect("scripts/setup makes ./.venv with ONNX Runtime");
    hosted
        .into_iter()
        .map(|h| {
            let codec = std::sync::Arc::try_unwrap(h.codec).ok().expect("one owner");
            (codec, BlockingDecoder::new(h.decoder).unwrap())
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
