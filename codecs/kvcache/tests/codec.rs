//! The KV codec on synthetic caches shaped like a transformer's (channel offsets, an outsized
//! first token): error bounds, levels, and hostile bitstreams.

use terse_core::{Classify, ErrorKind, KvCache, KvShape};
use terse_entropy::{CodecId, Container, ModelTag};
use terse_kvcache::{EncodeOptions, KvError, MAX_LEVEL, decode, encode, info, step_fraction};

fn tag(name: &str) -> ModelTag {
    ModelTag::from_sha256_hex(name, "0123456789abcdef0123456789abcdef").unwrap()
}

const SHAPE: KvShape = KvShape {
    layers: 3,
    kv_heads: 2,
    tokens: 40,
    head_dim: 8,
};

/// Deterministic values: a per-channel offset, a slow drift over tokens, noise, and a first
/// token ten times larger (the attention sink).
fn cache(shape: KvShape) -> KvCache {
    let mut state = 0x9e37_79b9u32;
    let mut noise = move || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        (state >> 8) as f32 / (1u32 << 24) as f32 - 0.5
    };
    let mut values = Vec::with_capacity(shape.elements().unwrap());
    for layer in 0..shape.layers {
        for kv in 0..2 {
            for head in 0..shape.kv_heads {
                for token in 0..shape.tokens {
                    for channel in 0..shape.head_dim {
                        let offset = (channel as f32 - 3.0) * (1.0 + layer as f32 + kv as f32);
                        let drift = (token as f32 * 0.1 + head as f32).sin();
                        let mut v = offset + drift + noise();
                        if token == 0 {
                            v *= 10.0;
                        }
                        values.push(v);
                    }
                }
            }
        }
    }
    KvCache::new(shape, values).unwrap()
}

/// Largest error of `decoded` against `original` outside the sink, per plane, as a fraction of
/// the plane's RMS around its channel means.
fn relative_errors(original: &KvCache, decoded: &KvCache, sink: usize) -> Vec<f32> {
    let shape = original.shape();
    let mut out = Vec::new();
    for layer in 0..shape.layers {
        for kv in 0..2 {
            let (a, b) = (original.plane(layer, kv), decoded.plane(layer, kv));
            let mut max_error = 0f32;
            let mut squares = 0f64;
            let mut count = 0usize;
            for head in 0..shape.kv_heads {
                for channel in 0..shape.head_dim {
                    let at = |t: usize| (head * shape.tokens + t) * shape.head_dim + channel;
                    let kept: Vec<usize> = (sink..shape.tokens).map(at).collect();
                    let mean =
                        kept.iter().map(|&i| f64::from(a[i])).sum::<f64>() / kept.len() as f64;
                    for &i in &kept {
                        squares += (f64::from(a[i]) - mean).powi(2);
                        count += 1;
                        max_error = max_error.max((a[i] - b[i]).abs());
                    }
                }
            }
            let rms = (squares / count as f64).sqrt() as f32;
            out.push(max_error / rms);
        }
    }
    out
}

#[test]
fn every_level_round_trips_within_half_its_step_and_more_bits_buy_less_error() {
    let original = cache(SHAPE);
    let mut previous: Option<(usize, f32)> = None;
    for level in 1..=MAX_LEVEL {
        let options = EncodeOptions {
            level,
            sink_tokens: 1,
        };
        let bitstream = encode(&original, &tag("lm"), "fp32", &options).unwrap();
        let (header, decoded) = decode(&bitstream, Some(&tag("lm")), usize::MAX).unwrap();
        assert_eq!(header, info(&bitstream).unwrap());
        assert_eq!(header.shape, SHAPE);
        assert_eq!((header.level, header.sink_tokens), (level, 1));
        assert_eq!(header.dtype, "fp32");
        // The sink is kept to fp16 precision.
        for layer in 0..SHAPE.layers {
            for kv in 0..2 {
                for head in 0..SHAPE.kv_heads {
                    let at = head * SHAPE.tokens * SHAPE.head_dim;
                    for d in 0..SHAPE.head_dim {
                        let (a, b) = (
                            original.plane(layer, kv)[at + d],
                            decoded.plane(layer, kv)[at + d],
                        );
                        assert!((a - b).abs() <= a.abs() / 1024.0, "sink {a} -> {b}");
                    }
                }
            }
        }
        let errors = relative_errors(&original, &decoded, 1);
        for (plane, &error) in errors.iter().enumerate() {
            let bound = 0.5 * step_fraction(level, plane / 2, SHAPE.layers) * 1.001;
            assert!(
                error <= bound,
                "level {level} plane {plane}: {error} > {bound}"
            );
        }
        let worst = errors.iter().copied().fold(0.0, f32::max);
        if let Some((bytes, error)) = previous {
            assert!(bitstream.len() > bytes, "level {level} is not larger");
            assert!(worst < error, "level {level} is not more accurate");
        }
        previous = Some((bitstream.len(), worst));
    }
}

#[test]
fn caches_without_tokens_or_made_only_of_sink_round_trip() {
    for (tokens, sink) in [(0, 1), (3, 3), (3, 10), (5, 0)] {
        let shape = KvShape { tokens, ..SHAPE };
        let original = cache(shape);
        let options = EncodeOptions {
            level: 4,
            sink_tokens: sink,
        };
        let bitstream = encode(&original, &tag("lm"), "fp16", &options).unwrap();
        let (header, decoded) = decode(&bitstream, None, usize::MAX).unwrap();
        assert_eq!(header.sink_tokens, sink.min(tokens));
        assert_eq!(decoded.shape(), shape);
        if sink >= tokens {
            for (a, b) in original.values().iter().zip(decoded.values()) {
                assert!((a - b).abs() <= a.abs() / 1024.0);
            }
        }
    }
}

#[test]
fn bad_caches_and_options_are_refused() {
    let mut values = cache(SHAPE).into_values();
    values[17] = f32::NAN;
    let nan = KvCache::new(SHAPE, values).unwrap();
    let refused = encode(&nan, &tag("lm"), "fp32", &EncodeOptions::default()).unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::InvalidInput);
    assert!(refused.to_string().contains("non-finite"), "{refused}");
    for level in [0, MAX_LEVEL + 1] {
        let options = EncodeOptions {
            level,
            sink_tokens: 1,
        };
        let refused = encode(&cache(SHAPE), &tag("lm"), "fp32", &options).unwrap_err();
        assert_eq!(refused.kind(), ErrorKind::InvalidInput, "{refused}");
    }
}

#[test]
fn a_bitstream_of_another_model_or_over_the_limit_is_refused_before_decoding() {
    let bitstream = encode(&cache(SHAPE), &tag("lm"), "fp32", &EncodeOptions::default()).unwrap();
    let wrong = decode(&bitstream, Some(&tag("other-lm")), usize::MAX).unwrap_err();
    assert!(matches!(wrong, KvError::WrongModel(_)), "{wrong}");
    assert_eq!(wrong.kind(), ErrorKind::InvalidInput);
    let elements = SHAPE.elements().unwrap();
    let over = decode(&bitstream, None, elements - 1).unwrap_err();
    assert_eq!(over.kind(), ErrorKind::TooLarge, "{over}");
    assert!(decode(&bitstream, None, elements).is_ok());
}

#[test]
fn every_corrupted_or_truncated_bitstream_is_an_error_not_a_panic() {
    let bitstream = encode(&cache(SHAPE), &tag("lm"), "fp32", &EncodeOptions::default()).unwrap();
    for len in (0..bitstream.len()).step_by(7) {
        assert!(
            decode(&bitstream[..len], None, usize::MAX).is_err(),
            "truncated to {len}"
        );
    }
    for at in (0..bitstream.len()).step_by(3) {
        let mut bad = bitstream.clone();
        bad[at] ^= 0x5a;
        let error = decode(&bad, None, usize::MAX).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidInput, "byte {at}: {error}");
    }
}

#[test]
fn headers_that_contradict_themselves_are_refused_without_allocating() {
    let base = |tokens: u64, layers: u64, sink: u64, sections: usize| {
        let mut container = Container::new(CodecId::KvCache);
        container.model = Some(tag("lm"));
        container.put_u64("kv_format", 1);
        container.put_u64("layers", layers);
        container.put_u64("kv_heads", 3);
        container.put_u64("head_dim", 64);
        container.put_u64("tokens", tokens);
        container.put_u64("level", 5);
        container.put_u64("sink_tokens", sink);
        container.put_field("dtype", b"fp32".to_vec());
        for i in 0..sections {
            container.push_section(*b"K000", vec![i as u8]);
        }
        container.to_bytes().unwrap()
    };
    // Trillions of values: refused by the limit, nothing allocated.
    let huge = decode(&base(1 << 40, 30, 1, 60), None, 1 << 30).unwrap_err();
    assert_eq!(huge.kind(), ErrorKind::TooLarge, "{huge}");
    let overflow = decode(&base(u64::MAX, 30, 1, 60), None, usize::MAX).unwrap_err();
    assert_eq!(overflow.kind(), ErrorKind::TooLarge, "{overflow}");
    let too_many_layers = decode(&base(4, 5000, 1, 0), None, usize::MAX).unwrap_err();
    assert_eq!(
        too_many_layers.kind(),
        ErrorKind::TooLarge,
        "{too_many_layers}"
    );
    let sink = decode(&base(4, 1, 5, 2), None, usize::MAX).unwrap_err();
    assert!(sink.to_string().contains("sink"), "{sink}");
    let sections = decode(&base(4, 2, 1, 3), None, usize::MAX).unwrap_err();
    assert!(sections.to_string().contains("sections"), "{sections}");
    // Right count, garbage planes.
    let garbage = decode(&base(4, 1, 1, 2), None, usize::MAX).unwrap_err();
    assert_eq!(garbage.kind(), ErrorKind::InvalidInput, "{garbage}");
}
