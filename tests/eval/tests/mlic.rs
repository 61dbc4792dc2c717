//! The shipped MLIC-style codec: the integer entropy path equals the training script's bit for
//! bit (fixture), bitstreams decode to exactly the encoder's latents whatever the ONNX Runtime
//! thread count, quality reaches what training measured, and malformed input is refused.
//!
//! `TERSE_MLIC_REPOSITORY` / `TERSE_MLIC_MODEL` point the tests at another packaged model
//! (default: models/repository, `mlic-q3`).

use std::{path::PathBuf, sync::Arc};

use ndarray::Array3;
use terse_codec::EncodeOptions;
use terse_entropy::ModelTag;
use terse_mlic::{
    MlicCodec, MlicError,
    entropy_model::{RoundingCoder, SectionDecoder},
};

mod support;

use support::{ROOT, load, model_name};
use terse_eval::{decode, encode, photo};
use terse_walloc::psnr;

/// Encodes through the Codec trait (the analysis network through the runtime): the bitstream
/// and the latents `y_hat` the decoder will see.
fn encoded(
    loaded: &support::Loaded,
    original: &image::RgbImage,
) -> (Vec<u8>, ndarray::Array4<f32>) {
    let options = EncodeOptions {
        latents: true,
        ..Default::default()
    };
    let encoding = encode(&loaded.image, &Arc::new(original.clone()), options).unwrap();
    let latents = encoding.latents.unwrap();
    let shape: Vec<usize> = std::iter::once(1)
        .chain(latents.shape.iter().map(|&d| d as usize))
        .collect();
    let y_hat = ndarray::Array4::from_shape_vec(
        (shape[0], shape[1], shape[2], shape[3]),
        latents.to_f32().unwrap(),
    )
    .unwrap();
    (encoding.bitstream, y_hat)
}

#[test]
fn integer_entropy_path_equals_the_training_script() {
    let path =
        PathBuf::from(ROOT).join(format!("codecs/mlic/tests/fixtures/{}.json", model_name()));
    let fixture: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let dims = |key: &str| -> Vec<usize> {
        fixture[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect()
    };
    let ints = |key: &str| -> Vec<i64> {
        fixture[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect()
    };
    let (y_shape, z_shape) = (dims("y_shape"), dims("z_shape"));
    let y: Vec<f32> = fixture["y"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() as f32)
        .collect();
    let y = Array3::from_shape_vec((y_shape[0], y_shape[1], y_shape[2]), y).unwrap();
    let z_hat = Array3::from_shape_vec(
        (z_shape[0], z_shape[1], z_shape[2]),
        ints("z_hat").into_iter().map(|v| v as i32).collect(),
    )
    .unwrap();
    let loaded = load(1);
    let model = loaded.codec().entropy();
    let mut encoder = RoundingCoder::new(y.view());
    let y_hat_q = model.run(z_hat.view(), &mut encoder).unwrap();
    assert_eq!(
        y_hat_q.iter().copied().collect::<Vec<_>>(),
        ints("y_hat_q"),
        "y_hat (Q10)"
    );
    let decoded = model
        .run(z_hat.view(), &mut SectionDecoder::new(&encoder.sections))
        .unwrap();
    assert_eq!(decoded, y_hat_q);
}

#[test]
fn decoding_is_bit_exact_across_thread_counts_and_reaches_trained_quality() {
    let (one, two) = (load(1), load(2));
    for name in ["astronaut_200x136.png", "coffee_131x97.png"] {
        let original = photo(name);
        for encoder in [&one, &two] {
            let (bitstream, y_hat_encoded) = encoded(encoder, &original);
            // The latents depend only on integer arithmetic: every decoder agrees exactly.
            for decoder in [&one, &two] {
                let (y_hat, w, h) = decoder
                    .codec()
                    .decode_latents(&bitstream, u64::MAX)
                    .unwrap();
                assert_eq!((w, h), original.dimensions());
                assert_eq!(y_hat, y_hat_encoded, "{name}");
            }
            let a = decode(&one.image, &bitstream).unwrap();
            let b = decode(&two.image, &bitstream).unwrap();
            let differing = a
                .as_raw()
                .iter()
                .zip(b.as_raw())
                .filter(|(x, y)| x.abs_diff(**y) > 1)
                .count();
            assert_eq!(
                differing, 0,
                "synthesis differs by more than 1 level across thread counts"
            );
            let quality = psnr(&original, &a);
            let bpp =
                bitstream.len() as f64 * 8.0 / f64::from(original.width() * original.height());
            assert!(
                quality > encoder.validation_psnr - 4.0,
                "{name}: {quality:.2} dB at {bpp:.3} bpp (validation {:.2} dB)",
                encoder.validation_psnr
            );
        }
    }
}

#[test]
fn malformed_bitstreams_are_refused() {
    let loaded = load(1);
    let original = photo("coffee_131x97.png");
    let (bitstream, _) = encoded(&loaded, &original);
    for cut in [0, 10, bitstream.len() / 2, bitstream.len() - 1] {
        assert!(
            loaded
                .codec()
                .decode_latents(&bitstream[..cut], u64::MAX)
                .is_err(),
            "cut {cut}"
        );
    }
    let mut flipped = bitstream.clone();
    let last = flipped.len() - 3;
    flipped[last] ^= 0x55;
    assert!(
        loaded.codec().decode_latents(&flipped, u64::MAX).is_err(),
        "checksum"
    );
    assert!(matches!(
        loaded.codec().decode_latents(&bitstream, 1000),
        Err(MlicError::TooLarge(_))
    ));
    let other = MlicCodec::new(
        terse_mlic::EntropyModel::from_assets(
            &loaded.asset("entropy"),
            &loaded.asset("entropy-weights"),
            &loaded.asset("prior"),
        )
        .unwrap(),
        ModelTag::from_sha256_hex("another", &"ab".repeat(32)).unwrap(),
    );
    assert!(matches!(
        other.decode_latents(&bitstream, u64::MAX),
        Err(MlicError::Bitstream(_))
    ));
}

#[test]
fn hostile_sections_in_a_valid_container_never_panic() {
    use terse_entropy::{CodecId, Container};
    let loaded = load(1);
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for round in 0..24 {
        let mut container = Container::new(CodecId::MlicImage);
        container.model = Some(loaded.codec().model().clone());
        container.put_u64("width", 1 + next() % 130);
        container.put_u64("height", 1 + next() % 130);
        let mut tags: Vec<[u8; 4]> = vec![*b"ZHAT"];
        for slice in 0..4u8 {
            for pass in [b'A', b'N', b'F'] {
                tags.push([b'Y', b'0' + slice, pass, b' ']);
            }
        }
        for tag in tags {
            if next() % 8 == 0 {
                continue; // a missing section
            }
            let len = (next() % 64) as usize;
            container.push_section(tag, (0..len).map(|_| next() as u8).collect());
        }
        let bytes = container.to_bytes().unwrap();
        // Ok (garbage latents) or a typed error; never a panic, whatever the bytes.
        let _ = loaded
            .codec()
            .decode_latents(&bytes, u64::MAX)
            .map_err(|e| {
                assert!(
                    matches!(e, MlicError::Bitstream(_) | MlicError::Entropy(_)),
                    "round {round}: {e}"
                )
            });
    }
}
