//! The shipped WaLLoC audio model on a real music clip (a held-out track): latents round-trip
//! exactly through both entropy codings, decoding through ONNX Runtime reaches the quality the
//! model was trained for, mono clips work, and malformed bitstreams are refused.

use std::{path::PathBuf, sync::Arc};

use terse_audio_io::{AudioClip, DecodeLimits, decode_audio_file};
use terse_codec::EncodeOptions;
use terse_eval::{ROOT, decode, encode, registry, repository};
use terse_walloc::{WallocAudio, WallocError, snr};

fn codecs() -> Vec<WallocAudio> {
    terse_hosting::walloc_audio_codecs(&registry(&repository(), 1)).unwrap()
}

/// Decodes through the Codec trait (the decoder network through the runtime): the samples.
fn decoded(codec: &WallocAudio, bitstream: &[u8]) -> ndarray::Array2<f32> {
    decode(codec, bitstream).unwrap().samples
}

fn music() -> AudioClip {
    let bytes =
        std::fs::read(PathBuf::from(ROOT).join("tests/fixtures/audio/through_space_6s.ogg"))
            .unwrap();
    decode_audio_file(
        &bytes,
        DecodeLimits {
            max_seconds: 10.0,
            max_channels: 2,
        },
    )
    .unwrap()
}

#[test]
fn latents_round_trip_and_decoding_reaches_trained_quality() {
    let codecs = codecs();
    assert!(
        !codecs.is_empty(),
        "no walloc-audio model in models/repository"
    );
    let clip = music();
    assert_eq!(
        (clip.sample_rate, clip.samples.dim()),
        (48_000, (2, 288_000))
    );
    for hosted in &codecs {
        let codec = hosted.codec();
        let (bitstream, latents) = codec
            .encode(clip.samples.view(), clip.sample_rate, 0)
            .unwrap();
        assert_eq!(codec.decode_latents(&bitstream, u64::MAX).unwrap(), latents);
        let codings = codec.code_latents(&latents).unwrap();
        let smaller = codings.factorized.len().min(codings.context_bytes());
        let overhead = bitstream.len() as i64 - smaller as i64;
        assert!(
            (0..400).contains(&overhead),
            "container overhead {overhead} B"
        );
        let decoded = decoded(hosted, &bitstream);
        assert_eq!(decoded.dim(), clip.samples.dim());
        let options = EncodeOptions {
            reconstruct: true,
            ..Default::default()
        };
        let encoding = encode(hosted, &Arc::new(clip.clone()), options).unwrap();
        assert_eq!(encoding.bitstream, bitstream);
        assert_eq!(encoding.reconstruction.unwrap().samples, decoded);
        let quality = snr(clip.samples.view(), decoded.view());
        let kbps = bitstream.len() as f64 * 8.0 / clip.seconds() / 1000.0;
        assert!(
            quality > 8.0,
            "{}: SNR {quality:.2} dB at {kbps:.1} kbps",
            codec.model().name
        );
        // Decoding is deterministic.
        assert_eq!(self::decoded(hosted, &bitstream), decoded);

        // The rate knob: each latent bit fewer gives a smaller bitstream that still decodes.
        let mut previous = (bitstream.len(), quality);
        for bits in [6, 4] {
            let shift = codec.shift_for(bits).unwrap();
            let (coarse, latents) = codec
                .encode(clip.samples.view(), clip.sample_rate, shift)
                .unwrap();
            assert_eq!(codec.decode_latents(&coarse, u64::MAX).unwrap(), latents);
            let coarse_quality = snr(clip.samples.view(), self::decoded(hosted, &coarse).view());
            assert!(
                coarse.len() < previous.0 && coarse_quality < previous.1,
                "{bits} bits: {} B, {coarse_quality:.2} dB",
                coarse.len()
            );
            previous = (coarse.len(), coarse_quality);
        }
        assert!(codec.shift_for(1).is_err() && codec.shift_for(9).is_err());

        // A mono clip is coded as identical channels and comes back mono.
        let mono = clip
            .samples
            .mean_axis(ndarray::Axis(0))
            .unwrap()
            .insert_axis(ndarray::Axis(0));
        let (mono_bits, _) = codec.encode(mono.view(), 48_000, 0).unwrap();
        let back = self::decoded(hosted, &mono_bits);
        assert_eq!(back.dim(), (1, 288_000));
        assert!(snr(mono.view(), back.view()) > 8.0);
    }
}

#[test]
fn wrong_input_and_malformed_bitstreams_are_refused() {
    let hosted = codecs().into_iter().next().expect("a walloc-audio model");
    let codec = hosted.codec();
    let clip = music();
    let err = codec.encode(clip.samples.view(), 44_100, 0).unwrap_err();
    assert!(err.to_string().contains("resample"), "{err}");
    let surround = ndarray::Array2::<f32>::zeros((6, 1000));
    assert!(matches!(
        codec.encode(surround.view(), 48_000, 0),
        Err(WallocError::Invalid(_))
    ));
    let (bitstream, _) = codec.encode(clip.samples.view(), 48_000, 0).unwrap();
    for cut in [0, 10, bitstream.len() / 2, bitstream.len() - 1] {
        assert!(codec.decode_latents(&bitstream[..cut], u64::MAX).is_err());
    }
    let mut flipped = bitstream.clone();
    flipped[bitstream.len() / 2] ^= 0x10;
    assert!(codec.decode_latents(&flipped, u64::MAX).is_err());
    assert!(matches!(
        codec.decode_latents(&bitstream, 48_000),
        Err(WallocError::TooLarge(_))
    ));
}
