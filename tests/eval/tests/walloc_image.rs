//! The shipped WaLLoC models on real photos: latents round-trip exactly through both entropy
//! codings, decoding through ONNX Runtime reaches the quality the model was trained for, and
//! malformed bitstreams are refused.

use std::{path::PathBuf, sync::Arc};

use terse_codec::{Codec, EncodeOptions};
use terse_entropy::ModelTag;
use terse_eval::{ROOT, decode, encode, photo, registry, repository};
use terse_walloc::{WallocError, WallocImage, WallocImageCodec, psnr};

fn codecs() -> Vec<WallocImage> {
    terse_hosting::walloc_image_codecs(&registry(&repository(), 1)).unwrap()
}

#[test]
fn latents_round_trip_and_decoding_reaches_trained_quality() {
    let codecs = codecs();
    assert!(
        !codecs.is_empty(),
        "no walloc-image model in models/repository"
    );
    for hosted in &codecs {
        let codec = hosted.codec();
        for name in ["astronaut_200x136.png", "coffee_131x97.png"] {
            let original = photo(name);
            let (bitstream, latents) = codec.encode(&original).unwrap();
            assert_eq!(
                codec.decode_latents(&bitstream, u64::MAX).unwrap(),
                latents,
                "{name}"
            );
            // The server's path: the Codec trait, the decoder network through the runtime.
            let original = Arc::new(original);
            let options = EncodeOptions {
                reconstruct: true,
                ..Default::default()
            };
            let encoding = encode(hosted, &original, options).unwrap();
            assert_eq!(encoding.bitstream, bitstream, "encoding is deterministic");
            let decoded = decode(hosted, &bitstream).unwrap();
            assert_eq!(encoding.reconstruction.as_ref(), Some(&decoded));
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
            assert_eq!(decode(hosted, &bitstream).unwrap(), decoded);
        }
    }
}

/// The encoder keeps the smaller of the two latent codings, byte for byte, at every latent
/// precision, although it skips the factorized coding when its information content already
/// exceeds the context coding.
#[test]
fn bitstreams_hold_the_smaller_latent_coding() {
    for hosted in &codecs() {
        let codec = hosted.codec();
        for name in ["astronaut_200x136.png", "coffee_131x97.png"] {
            let original = photo(name);
            for shift in (1..=16).filter_map(|bits| codec.shift_for(bits).ok()) {
                let (bitstream, latents) = codec.encode_at(&original, shift).unwrap();
                let codings = codec.code_latents(&latents).unwrap();
                let container = terse_entropy::Container::parse(&bitstream).unwrap();
                let coded: Vec<&[u8]> = container.sections().map(|(_, p)| p).collect();
                let context: Vec<&[u8]> = codings.context.iter().map(Vec::as_slice).collect();
                let label = format!("{} {name} shift {shift}", codec.model().name);
                if codings.factorized.len() <= codings.context_bytes() {
                    assert_eq!(coded, [codings.factorized.as_slice()], "{label}");
                } else {
                    assert_eq!(coded, context, "{label}");
                }
            }
        }
    }
}

/// A photo of 2^17 latents or more is context-coded in channel groups (coded and decoded in
/// parallel); its latents still round-trip exactly, and the bitstream decodes to the same
/// pixels every time.
#[test]
fn large_photos_code_their_context_streams_in_channel_groups() {
    let small = photo("astronaut_200x136.png");
    let large = image::imageops::resize(&small, 600, 408, image::imageops::FilterType::Triangle);
    let mut grouped = 0;
    for hosted in &codecs() {
        let codec = hosted.codec();
        let (bitstream, latents) = codec.encode(&large).unwrap();
        assert_eq!(codec.decode_latents(&bitstream, u64::MAX).unwrap(), latents);
        let container = terse_entropy::Container::parse(&bitstream).unwrap();
        let groups = terse_walloc::context_group_count(latents.values.dim());
        match container.u64("latent_coding").unwrap() {
            2 => {
                grouped += 1;
                assert!(groups >= 2, "{}", codec.model().name);
                assert_eq!(container.sections().count(), groups);
            }
            1 => assert_eq!(groups, 1, "{}", codec.model().name),
            _ => {}
        }
        let decoded = decode(hosted, &bitstream).unwrap();
        assert_eq!(decode(hosted, &bitstream).unwrap(), decoded);
    }
    assert!(grouped > 0, "no shipped model coded this photo in groups");
}

#[test]
fn malformed_bitstreams_are_refused() {
    let hosted = codecs().into_iter().next().expect("a walloc model");
    let codec = hosted.codec();
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
    let err = block_on_decode_limited(&hosted, &bitstream, 100);
    assert_eq!(err.kind, terse_core::ErrorKind::TooLarge, "{err}");
}

fn block_on_decode_limited(codec: &WallocImage, bitstream: &[u8], max: u64) -> terse_core::Error {
    let call = terse_codec::DecodeCall::new(bitstream.to_vec(), max, &terse_core::Inline);
    terse_eval::block_on(codec.decode(call)).unwrap_err()
}
